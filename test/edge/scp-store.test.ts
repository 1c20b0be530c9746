/**
 * C-STORE SCP with real dcmtk peers: what a modality sends arrives in the
 * spool as a Part 10 file whose data set bytes equal the original's, with a
 * file meta naming the calling AE; failures never leave anything queued.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readFileMeta } from '../../functions/core/dicom/part10';
import { writePart10 } from '../../functions/core/dicom/writer';
import { createDimseServer, type DimseServer } from '../../edge-gateway/src/dimse';
import { connectDimse } from '../../edge-gateway/src/dimse/requestor';
import { createEchoService } from '../../edge-gateway/src/scp/echo';
import { createStoreService, peekSopUIDs } from '../../edge-gateway/src/scp/store';
import { ctSeries, encapsulatedInstance, uid } from '../fixtures/synthetic';
import { PYDICOM_DIR } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';
import { FakeSpool, datasetBytes, run } from './dimse-helpers';

const AE = 'EDGE_TEST';

/** An association from 'SENDER' offering just this instance's SOP class and transfer syntax. */
function connectSender(server: DimseServer, inst: { sopClassUID: string; transferSyntaxUID: string }, extra: { maxPduLength?: number } = {}) {
  return connectDimse({
    host: '127.0.0.1',
    port: server.port,
    callingAETitle: 'SENDER',
    calledAETitle: AE,
    ...extra,
    presentationContexts: [{ abstractSyntax: inst.sopClassUID, transferSyntaxes: [inst.transferSyntaxUID] }],
  });
}

async function startStoreServer(spool: FakeSpool, extra: Partial<Parameters<typeof createDimseServer>[0]> = {}): Promise<DimseServer> {
  return createDimseServer({
    aeTitle: AE,
    host: '127.0.0.1',
    port: 0,
    services: { echo: createEchoService(), store: createStoreService({ spool, ackMode: 'spool' }) },
    maxAssociations: 8,
    maxPduLength: 65536,
    idleTimeoutMs: 30_000,
    artimTimeoutMs: 10_000,
    ...extra,
  });
}

describe('C-STORE SCP', () => {
  const tmp = makeTempDir('scp-store-');
  afterAll(() => tmp.cleanup());

  it('receives a 300-instance series from storescu, data set bytes unchanged', async () => {
    const src = path.join(tmp.dir, 'series');
    fs.mkdirSync(src);
    const instances = ctSeries({ count: 300, rows: 64, columns: 64 });
    for (const inst of instances) fs.writeFileSync(path.join(src, `${inst.instanceNumber}.dcm`), inst.bytes);
    const spool = new FakeSpool(path.join(tmp.dir, 'spool-series'));
    const server = await startStoreServer(spool);
    try {
      const r = await run('storescu', ['-aet', 'MODALITY1', '-aec', AE, '+sd', '+r', '127.0.0.1', String(server.port), src]);
      expect(r.code).toBe(0);
      expect(spool.records).toHaveLength(300);
      const byUid = new Map(instances.map((i) => [i.sopInstanceUID, i]));
      for (const rec of spool.records) {
        const original = byUid.get(rec.sopInstanceUID)!;
        expect(original).toBeDefined();
        const stored = fs.readFileSync(rec.file);
        expect(datasetBytes(stored).equals(datasetBytes(original.bytes))).toBe(true);
        const meta = readFileMeta(stored);
        expect(meta.transferSyntaxUID).toBe(original.transferSyntaxUID);
        expect(meta.fileMeta['00020002']?.Value).toEqual([original.sopClassUID]);
        expect(meta.fileMeta['00020003']?.Value).toEqual([original.sopInstanceUID]);
        expect(meta.fileMeta['00020016']?.Value).toEqual(['MODALITY1']);
        expect(rec.callingAETitle).toBe('MODALITY1');
      }
      expect(spool.incomingFiles()).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('keeps compressed transfer syntaxes as they were sent (JPEG, JPEG-LS, JPEG 2000, RLE, deflate, big endian)', async () => {
    // storescu proposes a compressed syntax only when told to (-x…); -R: only what the files need, so nothing is converted.
    // JPEG Lossless SV1 (.4.70): synthetic fragments are enough, storescu does not decode them.
    const rle = encapsulatedInstance();
    const losslessFile = path.join(tmp.dir, 'jpeg-lossless.dcm');
    fs.writeFileSync(losslessFile, writePart10(rle.dataset, { transferSyntaxUID: '1.2.840.10008.1.2.4.70', pixelData: { fragments: rle.fragments } }));
    const groups: [string, string[]][] = [
      ['-xy', ['SC_rgb_jpeg_dcmtk.dcm']], // 1.2.840.10008.1.2.4.50
      ['-xx', ['JPGExtended.dcm']], // .4.51 (not JPEG-lossy.dcm: its odd-length fragment is padded by storescu)
      ['-xs', [losslessFile]], // .4.70
      ['-xt', ['MR_small_jpeg_ls_lossless.dcm']], // .4.80
      ['-xv', ['MR_small_jp2klossless.dcm']], // .4.90
      ['-xw', ['JPEG2000.dcm']], // .4.91
      ['-xr', ['MR_small_RLE.dcm']], // 1.2.840.10008.1.2.5
      ['-xd', ['image_dfl.dcm']], // 1.2.840.10008.1.2.1.99
      ['-xb', ['MR_small_bigendian.dcm']], // 1.2.840.10008.1.2.2
    ];
    const files = groups.flatMap(([, fs]) => fs.map((f) => (path.isAbsolute(f) ? f : path.join(PYDICOM_DIR, f))));
    const spool = new FakeSpool(path.join(tmp.dir, 'spool-compressed'));
    const server = await startStoreServer(spool);
    try {
      for (const [option, names] of groups) {
        const paths = names.map((f) => (path.isAbsolute(f) ? f : path.join(PYDICOM_DIR, f)));
        const r = await run('storescu', ['-R', option, '-aec', AE, '127.0.0.1', String(server.port), ...paths]);
        expect(r.stderr).not.toMatch(/E:|Converting/);
        expect(r.code).toBe(0);
      }
      expect(spool.records).toHaveLength(files.length);
      // Records are in sending order (several corpus files share a SOP Instance UID).
      for (const [i, file] of files.entries()) {
        const original = fs.readFileSync(file);
        const originalMeta = readFileMeta(original);
        const rec = spool.records[i]!;
        expect(rec.sopInstanceUID).toBe(originalMeta.fileMeta['00020003']!.Value![0]);
        expect(rec.transferSyntaxUID).toBe(originalMeta.transferSyntaxUID);
        // storescu itself re-encodes some files (undefined → explicit sequence lengths), so where the
        // bytes differ, the element values (pixel data fragments included, +L) must still be identical.
        if (!datasetBytes(fs.readFileSync(rec.file)).equals(datasetBytes(original))) {
          expect([path.basename(file), await normalizedDump(rec.file)]).toEqual([path.basename(file), await normalizedDump(file)]);
        }
      }
    } finally {
      await server.close();
    }
  });

  it('answers 0xA900 when the data set SOP Instance UID differs from the command, and queues nothing', async () => {
    const spool = new FakeSpool(path.join(tmp.dir, 'spool-mismatch'));
    const server = await startStoreServer(spool);
    const [inst] = ctSeries({ count: 1, rows: 16, columns: 16 });
    try {
      const a = await connectSender(server, inst!);
      const good = await a.store({ sopClassUID: inst!.sopClassUID, sopInstanceUID: inst!.sopInstanceUID, transferSyntaxUID: inst!.transferSyntaxUID, dataset: datasetBytes(inst!.bytes) });
      expect(good.status).toBe(0);
      const bad = await a.store({ sopClassUID: inst!.sopClassUID, sopInstanceUID: uid(), transferSyntaxUID: inst!.transferSyntaxUID, dataset: datasetBytes(inst!.bytes) });
      expect(bad.status).toBe(0xa900);
      const invalid = await a.store({ sopClassUID: inst!.sopClassUID, sopInstanceUID: '1.2.abc', transferSyntaxUID: inst!.transferSyntaxUID, dataset: datasetBytes(inst!.bytes) });
      expect(invalid.status).toBe(0xc000);
      await a.release();
      expect(spool.records.map((r) => r.sopInstanceUID)).toEqual([inst!.sopInstanceUID]);
      expect(spool.incomingFiles()).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('answers 0xA700 when the spool runs out of space, deletes the partial file, and keeps serving', async () => {
    const spool = new FakeSpool(path.join(tmp.dir, 'spool-full'));
    spool.failAfterBytes = 4000;
    const server = await startStoreServer(spool);
    const [inst] = ctSeries({ count: 1, rows: 128, columns: 128 });
    try {
      const a = await connectSender(server, inst!, { maxPduLength: 16384 });
      const full = await a.store({ sopClassUID: inst!.sopClassUID, sopInstanceUID: inst!.sopInstanceUID, transferSyntaxUID: inst!.transferSyntaxUID, dataset: datasetBytes(inst!.bytes) });
      expect(full.status).toBe(0xa700);
      expect(spool.incomingFiles()).toEqual([]);
      spool.failAfterBytes = undefined;
      const again = await a.store({ sopClassUID: inst!.sopClassUID, sopInstanceUID: inst!.sopInstanceUID, transferSyntaxUID: inst!.transferSyntaxUID, dataset: datasetBytes(inst!.bytes) });
      expect(again.status).toBe(0);
      await a.release();
      expect(spool.records).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it('queues nothing when the association is aborted mid-transfer', async () => {
    const spool = new FakeSpool(path.join(tmp.dir, 'spool-abort'));
    const server = await startStoreServer(spool);
    const [inst] = ctSeries({ count: 1, rows: 256, columns: 256 });
    const data = datasetBytes(inst!.bytes);
    try {
      const a = await connectSender(server, inst!);
      let sent = 0;
      let reachedHalf!: () => void;
      const half = new Promise<void>((r) => (reachedHalf = r));
      // A data set that stops arriving half way; then the sender aborts.
      async function* slowDataset(): AsyncIterable<Uint8Array> {
        for (let at = 0; at < data.length; at += 8192) {
          if (at > data.length / 2) {
            reachedHalf();
            await new Promise(() => {}); // never resumes
          }
          sent += 8192;
          yield data.subarray(at, at + 8192);
        }
      }
      const storing = a.store({ sopClassUID: inst!.sopClassUID, sopInstanceUID: inst!.sopInstanceUID, transferSyntaxUID: inst!.transferSyntaxUID, dataset: slowDataset() });
      storing.catch(() => {});
      await half;
      // The first fragments reached the spool's incoming/ before the abort.
      await waitFor(() => spool.incomingFiles().length === 1);
      a.abort();
      await expect(storing).rejects.toMatchObject({ code: 'ASSOCIATION_ABORTED' });
      await waitFor(() => spool.incomingFiles().length === 0);
      expect(spool.records).toHaveLength(0);
      expect(sent).toBeGreaterThan(0);
      // still serving
      const r = await run('echoscu', ['-aec', AE, '127.0.0.1', String(server.port)]);
      expect(r.code).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('peeks SOP UIDs in implicit, explicit and big endian data sets', () => {
    const sopInstanceUID = uid();
    for (const ts of ['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2'] as const) {
      const bytes = writePart10({ '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] }, '00080018': { vr: 'UI', Value: [sopInstanceUID] }, '00100010': { vr: 'PN', Value: [{ Alphabetic: 'X' }] } }, { transferSyntaxUID: ts });
      const ds = datasetBytes(bytes);
      expect(peekSopUIDs(ds, ts)).toEqual({ state: 'found', sopClassUID: '1.2.840.10008.5.1.4.1.1.7', sopInstanceUID });
      expect(peekSopUIDs(ds.subarray(0, 20), ts)).toEqual({ state: 'more' });
    }
  });
});

/** dcmdump of the data set with every value in full, ignoring how sequence/item lengths were encoded and trailing padding (PS3.10 §7.2). */
async function normalizedDump(file: string): Promise<string> {
  const r = await run('dcmdump', ['-dc', '+L', file]);
  return r.stdout
    .split('\n')
    .filter((l) => !/^\s*\((0002,|fffe,e00d|fffe,e0dd|fffc,fffc)/.test(l))
    .map((l) => l.replace(/\s*#.*$/, '').replace(/ with (undefined|explicit) length/, ''))
    .join('\n');
}

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
