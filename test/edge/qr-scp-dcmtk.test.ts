/**
 * The C-FIND, C-MOVE and C-GET SCPs (edge-gateway/src/scp/find.ts, move.ts,
 * get.ts) on the gateway's DIMSE layer, driven by dcmtk's findscu, movescu and
 * getscu, answered from a real embedded archive with synthetic studies:
 * - findscu -S / -P at every level, wild card and date range, Latin-1
 *   (ISO_IR 100) and UTF-8 (ISO_IR 192) query names; answers compared with
 *   what was stored; C-CANCEL after the first response;
 * - movescu to a storescp destination: files arrive with their data set
 *   byte-identical to what was stored (RLE included: no re-encoding);
 *   a destination that accepts only Implicit VR LE gets converted native
 *   instances and the RLE one fails (0xB000 with the failed UID list);
 *   unknown destination 0xA801;
 * - getscu: files received on the same association.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parsePart10, readFileMeta } from '../../functions/core/dicom/part10';
import type { DicomJsonDataset } from '../../functions/core/dicom/json-model';
import { DicomWebClient } from '../../edge-gateway/src/cloud/dicomweb-client';
import { connectDimse, SopClass as QrSop, type DimseServer, type StoreContext, type StoreSink } from '../../edge-gateway/src/dimse';
import { startTestDimseServer } from './dimse-helpers';
import { createFindService } from '../../edge-gateway/src/scp/find';
import { createMoveService } from '../../edge-gateway/src/scp/move';
import { createGetService } from '../../edge-gateway/src/scp/get';
import { CHARSET_NAMES, crInstance, ctSeries, encapsulatedInstance, mrInstance, patientWithName, syntheticPatient, uid, SopClass, TS, type SyntheticInstance } from '../fixtures/synthetic';
import { startTestArchive, stow, type TestArchive } from '../helpers/archive';
import { freePort } from '../helpers/wait';
import { makeTempDir } from '../helpers/tmp';

const AE = 'EDGE_QR';
let archive: TestArchive;
let server: DimseServer;
const tmp = makeTempDir('qr-scp-');

const p1 = syntheticPatient(1);
const pLatin = patientWithName(CHARSET_NAMES.latin1, 2);
const pGreek = patientWithName(CHARSET_NAMES.greek, 3);
const studyA = uid();
const seriesA = uid();
let ctA: SyntheticInstance[];
let mrA: SyntheticInstance; // same study as the CT, implicit VR
let rleA: SyntheticInstance; // same study, RLE Lossless
let crLatin: SyntheticInstance;
let mrGreek: SyntheticInstance;

interface Destination { aet: string; port: number; dir: string; child: ChildProcess }
const destinations: Destination[] = [];

function run(cmd: string, args: string[], cwd = tmp.dir): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 120_000, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

async function startStorescp(aet: string, extra: string[]): Promise<Destination> {
  const port = await freePort();
  const dir = path.join(tmp.dir, `dest-${aet}`);
  fs.mkdirSync(dir);
  const child = spawn('storescp', ['-aet', aet, ...extra, '-od', dir, String(port)], { stdio: 'ignore' });
  const d = { aet, port, dir, child };
  destinations.push(d);
  for (let i = 0; i < 100; i++) {
    if ((await run('echoscu', ['-aec', aet, '127.0.0.1', String(port)])).code === 0) return d;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`storescp ${aet} did not start`);
}

function clearDir(dir: string): void {
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
}

const datasetOf = (bytes: Uint8Array) => Buffer.from(bytes.subarray(readFileMeta(bytes).datasetOffset));

/** Received files by SOP Instance UID. */
function received(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const f of fs.readdirSync(dir)) {
    const bytes = fs.readFileSync(path.join(dir, f));
    const sop = parsePart10(bytes).dataset['00080018']?.Value?.[0] as string;
    out.set(sop, bytes);
  }
  return out;
}

/** findscu -X: one rsp####.dcm per pending response, decoded with the core parser (charset-aware). */
async function findscu(args: string[], queryFile?: string): Promise<{ code: number; out: string; responses: DicomJsonDataset[] }> {
  const dir = fs.mkdtempSync(path.join(tmp.dir, 'find-'));
  const r = await run('findscu', ['-v', '-aet', 'SCU', '-aec', AE, '-X', '-od', dir, ...args, '127.0.0.1', String(server.port), ...(queryFile ? [queryFile] : [])], dir);
  const files = fs.readdirSync(dir).filter((f) => /^rsp\d+\.dcm$/.test(f)).sort();
  return { ...r, responses: files.map((f) => parsePart10(fs.readFileSync(path.join(dir, f))).dataset) };
}

const first = (ds: DicomJsonDataset, tag: string) => ds[tag]?.Value?.[0];

/**
 * Holds archive requests the test names until released: makes "the archive
 * is slow right when the SCU cancels" deterministic (no timing assumptions).
 */
const gate = {
  hold: undefined as undefined | ((url: URL) => boolean),
  /** An answer of our own instead of the archive's (undefined: the archive answers). */
  answer: undefined as undefined | ((url: URL) => Response | undefined),
  seen: [] as string[],
  waiting: [] as Array<() => void>,
  release(): void {
    this.hold = undefined;
    for (const w of this.waiting.splice(0)) w();
  },
};
const gatedFetch: typeof fetch = (input, init) => {
  const url = new URL(String(input));
  gate.seen.push(url.pathname);
  const own = gate.answer?.(url);
  if (own) return Promise.resolve(own);
  if (gate.hold?.(url)) return new Promise<void>((r) => gate.waiting.push(r)).then(() => fetch(input, init));
  return fetch(input, init);
};

beforeAll(async () => {
  archive = await startTestArchive();
  ctA = ctSeries({ count: 3, rows: 32, columns: 32, studyInstanceUID: studyA, seriesInstanceUID: seriesA, patient: p1, studyDate: '20240105' });
  mrA = mrInstance({ studyInstanceUID: studyA, patient: p1, studyDate: '20240105', rows: 16, columns: 16, transferSyntaxUID: TS.ImplicitVRLittleEndian, seriesNumber: 2 });
  rleA = encapsulatedInstance({ studyInstanceUID: studyA, patient: p1, studyDate: '20240105', rows: 16, columns: 16, seriesNumber: 3 });
  crLatin = crInstance({ patient: pLatin, studyDate: '20230620', rows: 16, columns: 16 });
  mrGreek = mrInstance({ patient: pGreek, studyDate: '20221231', rows: 16, columns: 16 });
  const res = await stow(archive.dicomWebUrl, [...ctA, mrA, rleA, crLatin, mrGreek].map((i) => i.bytes));
  expect(res.status).toBe(200);

  const dest = await startStorescp('DEST', ['+xa']);
  const implicitOnly = await startStorescp('IMPLICIT', ['+xi']);
  const client = new DicomWebClient({ dicomWebUrl: archive.dicomWebUrl, auth: { kind: 'none' }, requestTimeoutMs: 60_000 }, { pageSize: 2, fetch: gatedFetch });
  server = await startTestDimseServer(AE, {
    find: createFindService({ client, aeTitle: AE }),
    move: createMoveService({
      client,
      aeTitle: AE,
      destinations: { DEST: { host: '127.0.0.1', port: dest.port }, IMPLICIT: { host: '127.0.0.1', port: implicitOnly.port }, DOWN: { host: '127.0.0.1', port: await freePort() } },
    }),
    get: createGetService({ client }),
  });
}, 60_000);

afterAll(async () => {
  await server?.close(0);
  for (const d of destinations) d.child.kill();
  await archive?.stop();
  tmp.cleanup();
});

describe('C-FIND with findscu', () => {
  test('-S STUDY: wild card on the name, answers are the stored studies with the requested keys', async () => {
    const r = await findscu(['-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientName=SYNTH*', '-k', 'StudyInstanceUID', '-k', 'StudyDate', '-k', 'PatientID', '-k', 'ModalitiesInStudy']);
    expect(r.code).toBe(0);
    expect(r.responses).toHaveLength(1);
    const s = r.responses[0]!;
    expect(first(s, '0020000D')).toBe(studyA);
    expect(first(s, '00080020')).toBe('20240105');
    expect(first(s, '00100020')).toBe(p1.id);
    expect(s['00080061']?.Value?.slice().sort()).toEqual([...new Set([ctA[0]!, mrA, rleA].map((i) => i.dataset['00080060']?.Value?.[0]))].sort());
    expect(first(s, '00080054')).toBe(AE);
    expect(first(s, '00080052')).toBe('STUDY');
  });

  test('-S STUDY date range', async () => {
    const r = await findscu(['-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'StudyDate=20221201-20231231', '-k', 'StudyInstanceUID']);
    expect(r.responses.map((d) => first(d, '0020000D')).sort()).toEqual([crLatin.studyInstanceUID, mrGreek.studyInstanceUID].sort());
  });

  test('-S SERIES and IMAGE levels', async () => {
    const series = await findscu(['-S', '-k', 'QueryRetrieveLevel=SERIES', '-k', `StudyInstanceUID=${studyA}`, '-k', 'SeriesInstanceUID', '-k', 'Modality', '-k', 'NumberOfSeriesRelatedInstances']);
    const expected = [[ctA[0]!, 3], [mrA, 1], [rleA, 1]] as const;
    expect(series.responses.map((d) => `${first(d, '0020000E')}:${first(d, '00080060')}:${first(d, '00201209')}`).sort())
      .toEqual(expected.map(([i, n]) => `${i.seriesInstanceUID}:${i.dataset['00080060']?.Value?.[0]}:${n}`).sort());
    const images = await findscu(['-S', '-k', 'QueryRetrieveLevel=IMAGE', '-k', `StudyInstanceUID=${studyA}`, '-k', `SeriesInstanceUID=${seriesA}`, '-k', 'SOPInstanceUID', '-k', 'InstanceNumber']);
    expect(images.responses.map((d) => first(d, '00080018')).sort()).toEqual(ctA.map((i) => i.sopInstanceUID).sort());
  });

  test('-P PATIENT and STUDY levels', async () => {
    const patients = await findscu(['-P', '-k', 'QueryRetrieveLevel=PATIENT', '-k', 'PatientName', '-k', 'PatientID', '-k', 'NumberOfPatientRelatedStudies']);
    expect(patients.responses.map((d) => first(d, '00100020')).sort()).toEqual([p1.id, pLatin.id, pGreek.id].sort());
    const studies = await findscu(['-P', '-k', 'QueryRetrieveLevel=STUDY', '-k', `PatientID=${pLatin.id}`, '-k', 'StudyInstanceUID']);
    expect(studies.responses.map((d) => first(d, '0020000D'))).toEqual([crLatin.studyInstanceUID]);
    const refused = await findscu(['-P', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'StudyInstanceUID']);
    expect(refused.responses).toHaveLength(0);
    // 0xA900 (dcmtk names it after the C-STORE meaning of the same code)
    expect(refused.out).toMatch(/Final Find Response \(Error: (DataSet|Identifier)DoesNotMatchSOPClass\)/);
  });

  test.each([
    ['ISO_IR 100', 'latin1', CHARSET_NAMES.latin1, () => crLatin],
    ['ISO_IR 192', 'utf8', CHARSET_NAMES.greek, () => mrGreek],
  ] as const)('query in %s: the non-ASCII name matches and comes back in UTF-8', async (charset, encoding, name, inst) => {
    const dir = fs.mkdtempSync(path.join(tmp.dir, 'cs-'));
    const dump = ['(0008,0005) CS [' + charset + ']', '(0008,0052) CS [STUDY]', `(0010,0010) PN [${name}]`, '(0020,000d) UI []', '(0010,0020) LO []'].join('\n');
    fs.writeFileSync(path.join(dir, 'q.txt'), Buffer.from(dump, encoding));
    expect((await run('dump2dcm', ['q.txt', 'q.dcm'], dir)).code).toBe(0);
    const r = await findscu(['-S'], path.join(dir, 'q.dcm'));
    expect(r.responses).toHaveLength(1);
    expect(first(r.responses[0]!, '0020000D')).toBe(inst().studyInstanceUID);
    expect(r.responses[0]!['00100010']?.Value).toEqual([{ Alphabetic: name }]);
    expect(first(r.responses[0]!, '00080005')).toBe('ISO_IR 192');
  });

  test('C-CANCEL while the archive is still paging: no more matches, final status Cancel', async () => {
    // Page one (2 matches) answers; page two is held until the test ends.
    gate.hold = (url) => url.pathname.endsWith('/instances') && url.searchParams.get('offset') !== '0';
    try {
      const r = await findscu(['-S', '--cancel', '1', '-k', 'QueryRetrieveLevel=IMAGE', '-k', `StudyInstanceUID=${studyA}`, '-k', `SeriesInstanceUID=${seriesA}`, '-k', 'SOPInstanceUID']);
      expect(r.responses.length).toBeGreaterThanOrEqual(1);
      expect(r.responses.length).toBeLessThanOrEqual(2);
      expect(r.out).toMatch(/Final Find Response \(Cancel/i);
    } finally {
      gate.release();
    }
  });
});

/** The final C-MOVE-RSP as movescu -d prints it (status and counts). */
function finalMove(out: string): string {
  const at = out.lastIndexOf('Received Final Move Response');
  expect(at).toBeGreaterThanOrEqual(0);
  return out.slice(at).replace(/\n(?:D:\s+(?:[0-9a-f]{2}\s+)+)(?=\n)/g, '');
}

describe('C-MOVE with movescu', () => {
  const movescu = (aem: string, keys: string[], extra: string[] = []) =>
    run('movescu', ['-d', '-S', '-aet', 'SCU', '-aec', AE, '-aem', aem, ...extra, ...keys.flatMap((k) => ['-k', k]), '127.0.0.1', String(server.port)]);

  test('a study to storescp: every instance arrives, data set byte-identical (RLE too), status Success', async () => {
    const dest = destinations.find((d) => d.aet === 'DEST')!;
    clearDir(dest.dir);
    const r = await movescu('DEST', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${studyA}`]);
    expect(r.code).toBe(0);
    const got = received(dest.dir);
    const sent = [...ctA, mrA, rleA];
    expect([...got.keys()].sort()).toEqual(sent.map((i) => i.sopInstanceUID).sort());
    for (const inst of sent) {
      const file = got.get(inst.sopInstanceUID)!;
      expect(readFileMeta(file).transferSyntaxUID).toBe(inst.transferSyntaxUID);
      expect(datasetOf(file).equals(datasetOf(inst.bytes))).toBe(true);
    }
    const final = finalMove(r.out);
    expect(final).toMatch(/DIMSE Status\s*:\s*0x0000/);
    expect(final).toMatch(/Completed Suboperations\s*:\s*5/);
    expect(final).toMatch(/Failed Suboperations\s*:\s*0/);
  });

  test('the series come in one answer each; an archive refusing that (413, AWS Lambda) is asked per instance, and everything arrives', async () => {
    const dest = destinations.find((d) => d.aet === 'DEST')!;
    const seriesRetrieve = new RegExp(`/series/${seriesA.replace(/\./g, '\\.')}$`);
    const instanceRetrieve = /\/instances\/[0-9.]+$/;
    for (const refuse of [false, true]) {
      clearDir(dest.dir);
      gate.seen = [];
      gate.answer = refuse ? (url) => (seriesRetrieve.test(url.pathname) ? new Response('{"code":"RESPONSE_TOO_LARGE"}', { status: 413 }) : undefined) : undefined;
      try {
        const r = await movescu('DEST', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${studyA}`]);
        expect(finalMove(r.out)).toMatch(/DIMSE Status\s*:\s*0x0000/);
        expect([...received(dest.dir).keys()].sort()).toEqual([...ctA, mrA, rleA].map((i) => i.sopInstanceUID).sort());
        // the 3-slice CT series: one series retrieve; the one-instance series: their own request
        expect(gate.seen.filter((u) => seriesRetrieve.test(u))).toHaveLength(1);
        expect(gate.seen.filter((u) => instanceRetrieve.test(u))).toHaveLength(refuse ? 5 : 2);
      } finally {
        gate.answer = undefined;
      }
    }
  });

  test('SERIES and IMAGE levels move exactly what they name', async () => {
    const dest = destinations.find((d) => d.aet === 'DEST')!;
    clearDir(dest.dir);
    await movescu('DEST', ['QueryRetrieveLevel=IMAGE', `StudyInstanceUID=${studyA}`, `SeriesInstanceUID=${seriesA}`, `SOPInstanceUID=${ctA[1]!.sopInstanceUID}`]);
    expect([...received(dest.dir).keys()]).toEqual([ctA[1]!.sopInstanceUID]);
    clearDir(dest.dir);
    await movescu('DEST', ['QueryRetrieveLevel=SERIES', `StudyInstanceUID=${studyA}`, `SeriesInstanceUID=${seriesA}`]);
    expect([...received(dest.dir).keys()].sort()).toEqual(ctA.map((i) => i.sopInstanceUID).sort());
  });

  test('a destination accepting only Implicit VR LE: native instances converted, RLE fails → 0xB000 with the failed UID', async () => {
    const dest = destinations.find((d) => d.aet === 'IMPLICIT')!;
    clearDir(dest.dir);
    const r = await movescu('IMPLICIT', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${studyA}`]);
    const got = received(dest.dir);
    expect([...got.keys()].sort()).toEqual([...ctA, mrA].map((i) => i.sopInstanceUID).sort());
    for (const inst of [...ctA, mrA]) {
      const file = got.get(inst.sopInstanceUID)!;
      expect(readFileMeta(file).transferSyntaxUID).toBe(TS.ImplicitVRLittleEndian);
      const pixels = (b: Uint8Array) => {
        const p = parsePart10(b).pixelData!;
        return Buffer.from(b.subarray(p.valueOffset, p.valueOffset + p.valueLength!));
      };
      expect(pixels(file).length).toBeGreaterThan(0);
      expect(pixels(file).equals(pixels(inst.bytes))).toBe(true);
      // and the attributes survived the conversion
      const { dataset } = parsePart10(file);
      expect(dataset['00100020']?.Value).toEqual([p1.id]);
      expect(dataset['0020000E']?.Value).toEqual([inst.seriesInstanceUID]);
    }
    const final = finalMove(r.out);
    expect(final).toMatch(/DIMSE Status\s*:\s*0xb000/);
    expect(final).toMatch(/Completed Suboperations\s*:\s*4/);
    expect(final).toMatch(/Failed Suboperations\s*:\s*1/);
    // Failed SOP Instance UID List (0008,0058) in the final response's identifier
    expect(final).toMatch(new RegExp(`\\(0008,0058\\) UI \\[${rleA.sopInstanceUID.replace(/\./g, '\\.')}\\]`));
  });

  test('unknown destination: 0xA801; unreachable destination: 0xA702, all failed', async () => {
    const unknown = await movescu('NOWHERE', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${studyA}`]);
    expect(finalMove(unknown.out)).toMatch(/DIMSE Status\s*:\s*0xa801/);
    const down = await movescu('DOWN', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${crLatin.studyInstanceUID}`]);
    expect(finalMove(down.out)).toMatch(/DIMSE Status\s*:\s*0xa702/);
    expect(finalMove(down.out)).toMatch(/Failed Suboperations\s*:\s*1/);
  });

  test('C-CANCEL between sub-operations: what was sent counts, the rest remaining, final status Cancel', async () => {
    const dest = destinations.find((d) => d.aet === 'DEST')!;
    clearDir(dest.dir);
    // The first retrieve (one instance, or the 3-slice CT series in one answer) goes through; the next
    // retrieve is held, so the cancel arrives at the latest while we wait for it (within the CT series
    // answer it may arrive after its first or second instance).
    let fetched = 0;
    gate.hold = (url) => /\/(instances|series)\/[0-9.]+$/.test(url.pathname) && ++fetched > 1;
    try {
      const r = await movescu('DEST', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${studyA}`], ['--cancel', '1']);
      const final = finalMove(r.out);
      expect(final).toMatch(/DIMSE Status\s*:\s*0xfe00/);
      // A Cancel response carries the sub-operations not attempted (PS3.4 C.4.2.1.5): 5 in the study.
      const sent = Number(/Completed Suboperations\s*:\s*(\d+)/.exec(final)?.[1]);
      expect([1, 2, 3]).toContain(sent);
      expect(final).toMatch(new RegExp(`Remaining Suboperations\\s*:\\s*${5 - sent}\\b`));
      expect(received(dest.dir).size).toBe(sent);
    } finally {
      gate.release();
    }
  });
});

describe('C-GET with getscu', () => {
  test('a series comes back on the same association, data sets byte-identical', async () => {
    const dir = fs.mkdtempSync(path.join(tmp.dir, 'get-'));
    const r = await run('getscu', ['-S', '-aet', 'SCU', '-aec', AE, '-od', dir, '-k', 'QueryRetrieveLevel=SERIES', '-k', `StudyInstanceUID=${studyA}`, '-k', `SeriesInstanceUID=${seriesA}`, '127.0.0.1', String(server.port)]);
    expect(r.code).toBe(0);
    const got = received(dir);
    expect([...got.keys()].sort()).toEqual(ctA.map((i) => i.sopInstanceUID).sort());
    for (const inst of ctA) expect(datasetOf(got.get(inst.sopInstanceUID)!).equals(datasetOf(inst.bytes))).toBe(true);
  });

  test('-P PATIENT level gets every instance of the patient', async () => {
    const dir = fs.mkdtempSync(path.join(tmp.dir, 'get-'));
    await run('getscu', ['-P', '-aet', 'SCU', '-aec', AE, '-od', dir, '-k', 'QueryRetrieveLevel=PATIENT', '-k', `PatientID=${pLatin.id}`, '127.0.0.1', String(server.port)]);
    expect([...received(dir).keys()]).toEqual([crLatin.sopInstanceUID]);
  });

  /** The gateway's own requestor as C-GET SCU: it receives the C-STOREs (collected in memory here). */
  async function getWithRequestor(roles: boolean): Promise<{ status: number; counts: string; files: Map<string, { ts: string; bytes: Buffer }> }> {
    const files = new Map<string, { ts: string; bytes: Buffer }>();
    const association = await connectDimse({
      host: '127.0.0.1',
      port: server.port,
      callingAETitle: 'GETSCU',
      calledAETitle: AE,
      presentationContexts: [
        { abstractSyntax: QrSop.StudyRootGet, transferSyntaxes: ['1.2.840.10008.1.2.1'] },
        { abstractSyntax: SopClass.CTImage, transferSyntaxes: ['1.2.840.10008.1.2.1'] },
      ],
      roles: roles ? [{ sopClassUID: SopClass.CTImage, scuRole: false, scpRole: true }] : [],
      services: {
        store: async (ctx: StoreContext): Promise<StoreSink> => {
          const chunks: Buffer[] = [];
          return {
            write: async (c) => void chunks.push(Buffer.from(c)),
            end: async () => {
              files.set(ctx.sopInstanceUID, { ts: ctx.transferSyntaxUID, bytes: Buffer.concat(chunks) });
              return { status: 0 };
            },
            abort: async () => undefined,
          };
        },
      },
    });
    try {
      const rsp = await association.request(
        { commandField: 0x0010, affectedSOPClassUID: QrSop.StudyRootGet, priority: 0 },
        { '00080052': { vr: 'CS', Value: ['SERIES'] }, '0020000D': { vr: 'UI', Value: [studyA] }, '0020000E': { vr: 'UI', Value: [seriesA] } },
      );
      const c = rsp.command;
      return { status: rsp.status, counts: `${c.numberOfCompletedSuboperations}/${c.numberOfFailedSuboperations}/${c.numberOfWarningSuboperations}`, files };
    } finally {
      await association.release();
    }
  }

  test('C-GET SCU that took the SCP role for the storage class: every instance, byte-identical data sets', async () => {
    const r = await getWithRequestor(true);
    expect(r.status).toBe(0);
    expect(r.counts).toBe('3/0/0');
    expect([...r.files.keys()].sort()).toEqual(ctA.map((i) => i.sopInstanceUID).sort());
    for (const inst of ctA) expect(r.files.get(inst.sopInstanceUID)!.bytes.equals(datasetOf(inst.bytes))).toBe(true);
  });

  test('C-GET SCU without the SCP role: nothing is sent, all sub-operations fail (0xA702)', async () => {
    const r = await getWithRequestor(false);
    expect(r.status).toBe(0xa702);
    expect(r.counts).toBe('0/3/0');
    expect(r.files.size).toBe(0);
  });
});
