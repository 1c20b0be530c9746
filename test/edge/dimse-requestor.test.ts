/**
 * The requestor: raw data set bytes go out unchanged in fragments sized to the
 * peer's max PDU, streamed from disk; checked against dcmtk's storescp in
 * bit-preserving mode and against our own acceptor.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parsePart10 } from '../../functions/core/dicom/part10';
import { connectDimse, createDimseServer, SopClass } from '../../edge-gateway/src/dimse';
import { createStoreService } from '../../edge-gateway/src/scp/store';
import { PYDICOM_DIR } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';
import { FakeSpool, datasetBytes, freePort } from './dimse-helpers';

/** Corpus files of every transfer syntax family, each with its own SOP Instance UID among the group sent together. */
const CORPUS = ['CT_small.dcm', 'MR_small_implicit.dcm', 'MR_small_bigendian.dcm', 'JPEG2000.dcm', 'SC_rgb_rle.dcm', 'SC_rgb_jpeg_dcmtk.dcm', 'image_dfl.dcm', 'rtplan.dcm', 'waveform_ecg.dcm'];

function corpusFile(name: string) {
  const file = path.join(PYDICOM_DIR, name);
  const bytes = fs.readFileSync(file);
  const parsed = parsePart10(bytes);
  return {
    file,
    bytes,
    datasetOffset: parsed.datasetOffset,
    // The data set's own UIDs (rtplan.dcm's file meta disagrees with its data set).
    sopClassUID: parsed.dataset['00080016']!.Value![0] as string,
    sopInstanceUID: parsed.dataset['00080018']!.Value![0] as string,
    transferSyntaxUID: parsed.transferSyntaxUID,
  };
}

/** image_dfl.dcm's deflated data set has odd length; the requestor pads it with one NUL (PS3.5 A.5). */
function evenDataset(f: { bytes: Buffer; datasetOffset: number }): Buffer {
  const ds = f.bytes.subarray(f.datasetOffset);
  return ds.length % 2 === 0 ? ds : Buffer.concat([ds, Buffer.from([0])]);
}


describe('DIMSE requestor', () => {
  const tmp = makeTempDir('dimse-requestor-');
  afterAll(() => tmp.cleanup());

  it('C-ECHO and streamed C-STOREs to dcmtk storescp arrive bit for bit (8 KiB PDUs)', async () => {
    const out = path.join(tmp.dir, 'storescp-out');
    fs.mkdirSync(out);
    const port = await freePort();
    // +B: write exactly what was received; +xa: accept every transfer syntax; -pdu 8192: many fragments per instance.
    const scp = spawn('storescp', [...(process.env.DEBUG_STORESCP ? ['-d'] : []), '-aet', 'DCMTK_SCP', '+B', '+xa', '-pdu', '8192', '-od', out, '-uf', String(port)], { stdio: ['ignore', process.env.DEBUG_STORESCP ? 'inherit' : 'ignore', process.env.DEBUG_STORESCP ? 'inherit' : 'ignore'], env: { ...process.env, TCP_NODELAY: '1' } });
    const scpExited = new Promise<void>((r) => scp.once('exit', () => r()));
    try {
      // storescp names files by SOP Instance UID: send one file per UID (MR_small_* share theirs).
      const files = CORPUS.map(corpusFile).filter((f, i, all) => all.findIndex((g) => g.sopInstanceUID === f.sopInstanceUID) === i);
      let association;
      for (let attempt = 0; ; attempt++) {
        try {
          association = await connectDimse({
            host: '127.0.0.1',
            port,
            callingAETitle: 'EDGE_SCU',
            calledAETitle: 'DCMTK_SCP',
            presentationContexts: [
              { abstractSyntax: SopClass.Verification, transferSyntaxes: ['1.2.840.10008.1.2'] },
              ...files.map((f) => ({ abstractSyntax: f.sopClassUID, transferSyntaxes: [f.transferSyntaxUID] })),
            ],
          });
          break;
        } catch (e) {
          if (attempt > 50) throw e;
          await new Promise((r) => setTimeout(r, 100)); // storescp still starting
        }
      }
      expect(association.peerMaxPduLength).toBe(8192);
      expect((await association.echo()).status).toBe(0);
      for (const f of files) {
        const rsp = await association.store({
          sopClassUID: f.sopClassUID,
          sopInstanceUID: f.sopInstanceUID,
          transferSyntaxUID: f.transferSyntaxUID,
          dataset: fs.createReadStream(f.file, { start: f.datasetOffset, highWaterMark: 3000 }),
        });
        expect(rsp.status).toBe(0);
        expect(rsp.command.affectedSOPInstanceUID).toBe(f.sopInstanceUID);
      }
      await association.release();
      expect(association.isOpen).toBe(false);
      for (const f of files) {
        const received = fs.readdirSync(out).find((n) => n.includes(f.sopInstanceUID));
        expect(received).toBeDefined();
        expect([f.file, datasetBytes(fs.readFileSync(path.join(out, received!))).equals(evenDataset(f))]).toEqual([f.file, true]);
      }
    } finally {
      scp.kill('SIGTERM');
      await scpExited;
    }
  });

  it('to our own acceptor: every corpus transfer syntax stored byte-identical; unknown contexts refused up front', async () => {
    const spool = new FakeSpool(path.join(tmp.dir, 'spool'));
    const server = await createDimseServer({
      aeTitle: 'EDGE',
      host: '127.0.0.1',
      port: 0,
      services: { store: createStoreService({ spool, ackMode: 'spool' }) },
      maxAssociations: 2,
      maxPduLength: 4096,
      idleTimeoutMs: 30_000,
      artimTimeoutMs: 10_000,
    });
    try {
      const files = CORPUS.map(corpusFile);
      const association = await connectDimse({
        host: '127.0.0.1',
        port: server.port,
        callingAETitle: 'SCU',
        calledAETitle: 'EDGE',
        presentationContexts: files.map((f) => ({ abstractSyntax: f.sopClassUID, transferSyntaxes: [f.transferSyntaxUID] })),
      });
      for (const f of files) {
        const rsp = await association.store({ sopClassUID: f.sopClassUID, sopInstanceUID: f.sopInstanceUID, transferSyntaxUID: f.transferSyntaxUID, dataset: f.bytes.subarray(f.datasetOffset) });
        expect([f.file, rsp.status]).toEqual([f.file, 0]);
      }
      await expect(
        association.store({ sopClassUID: files[0]!.sopClassUID, sopInstanceUID: files[0]!.sopInstanceUID, transferSyntaxUID: '1.2.840.10008.1.2.4.50', dataset: new Uint8Array(2) }),
      ).rejects.toMatchObject({ code: 'NO_PRESENTATION_CONTEXT' });
      await association.release();
      expect(spool.records).toHaveLength(files.length);
      for (const [i, f] of files.entries()) {
        expect(datasetBytes(fs.readFileSync(spool.records[i]!.file)).equals(evenDataset(f))).toBe(true);
      }
    } finally {
      await server.close();
    }
  });
});
