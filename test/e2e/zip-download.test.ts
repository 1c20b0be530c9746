/**
 * Study / series ZIP download (non-standard export, docs/conformance.md):
 * checked with Info-ZIP's unzip (integrity and contents byte for byte) and,
 * with dicomdir=true, a DICOMDIR that dcmtk's dcmdump reads, whose records
 * link PATIENT → STUDY → SERIES → IMAGE with correct offsets and File IDs.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestArchive, stow, withZeroPreamble, type TestArchive } from '../helpers/archive';
import { makeTempDir } from '../helpers/tmp';
import { ctSeries, mrInstance, uid } from '../fixtures/synthetic';
import { writeZip } from '../../functions/core/archive/zip-download';

let archive: TestArchive;
let tmp: ReturnType<typeof makeTempDir>;
const study = uid();
const ct = ctSeries({ studyInstanceUID: study, count: 3, rows: 64, columns: 64 });
const mr = mrInstance({ studyInstanceUID: study, rows: 32, columns: 32, seriesNumber: 2 });

async function download(url: string, file: string, accept = 'application/zip') {
  const res = await fetch(url, { headers: { Accept: accept } });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status === 200) fs.writeFileSync(path.join(tmp.dir, file), body);
  return { status: res.status, type: res.headers.get('content-type'), disposition: res.headers.get('content-disposition'), body };
}

function unzipTo(file: string, dir: string): string[] {
  execFileSync('unzip', ['-tq', path.join(tmp.dir, file)]);
  execFileSync('unzip', ['-q', '-o', path.join(tmp.dir, file), '-d', path.join(tmp.dir, dir)]);
  return execFileSync('find', ['.', '-type', 'f'], { cwd: path.join(tmp.dir, dir), encoding: 'utf8' }).trim().split('\n').map((s) => s.slice(2)).sort();
}

beforeAll(async () => {
  tmp = makeTempDir('zip-');
  archive = await startTestArchive();
  expect((await stow(archive.dicomWebUrl, [...ct, mr].map((i) => i.bytes))).status).toBe(200);
});
afterAll(async () => {
  await archive?.stop();
  tmp?.cleanup();
});

test('a study as ZIP: every instance byte for byte (preamble zeroed), unzip -t passes', async () => {
  const r = await download(`${archive.dicomWebUrl}/studies/${study}/archive`, 'study.zip');
  expect(r.status).toBe(200);
  expect(r.type).toBe('application/zip');
  expect(r.disposition).toMatch(/^attachment; filename="study-.*\.zip"$/);
  const files = unzipTo('study.zip', 'study');
  expect(files).toHaveLength(4);
  for (const i of [...ct, mr]) {
    const f = path.join(tmp.dir, 'study', i.studyInstanceUID, i.seriesInstanceUID, `${i.sopInstanceUID}.dcm`);
    expect(Buffer.compare(fs.readFileSync(f), withZeroPreamble(i.bytes))).toBe(0);
  }
});

test('a series with a DICOMDIR: File IDs of 8-character components, records linked by offsets', async () => {
  const r = await download(`${archive.dicomWebUrl}/studies/${study}/series/${ct[0]!.seriesInstanceUID}/archive?dicomdir=true`, 'series.zip', '*/*');
  expect(r.status).toBe(200);
  const files = unzipTo('series.zip', 'series');
  expect(files).toEqual(['DICOM/ST000001/SE000001/IM000001', 'DICOM/ST000001/SE000001/IM000002', 'DICOM/ST000001/SE000001/IM000003', 'DICOMDIR']);
  const dump = execFileSync('dcmdump', ['+L', path.join(tmp.dir, 'series', 'DICOMDIR')], { encoding: 'utf8' });
  expect(dump).toMatch(/MediaStorageSOPClassUID.*|=MediaStorageDirectoryStorage/);
  expect(dump.match(/DirectoryRecordType/g)).toHaveLength(6); // PATIENT, STUDY, SERIES, 3 × IMAGE
  for (const t of ['PATIENT', 'STUDY', 'SERIES', 'IMAGE']) expect(dump).toContain(`[${t}]`);
  // Each IMAGE record names a file that exists and holds the instance it claims.
  const ids = [...dump.matchAll(/\(0004,1500\) CS \[([^\]]+)\]/g)].map((m) => m[1]!.replace(/\\/g, '/'));
  const sops = [...dump.matchAll(/\(0004,1511\) UI \[([^\]]+)\]/g)].map((m) => m[1]!);
  expect(ids).toHaveLength(3);
  for (let i = 0; i < 3; i++) {
    const inFile = execFileSync('dcmdump', ['+P', '0008,0018', path.join(tmp.dir, 'series', ids[i]!)], { encoding: 'utf8' });
    expect(inFile).toContain(sops[i]);
  }
  // dcmdump +P on offsets: the root points at the PATIENT record, which points down to the STUDY, and so on.
  const bytes = fs.readFileSync(path.join(tmp.dir, 'series', 'DICOMDIR'));
  const offsets = [...dump.matchAll(/\(0004,1200\) up (\d+)/g)].map((m) => Number(m[1]));
  expect(offsets).toHaveLength(1);
  expect(bytes.readUInt32LE(offsets[0]!)).toBe(0xe000fffe); // an item starts there (PS3.3 F.3.2.1 offsets from the file's first byte)
  const record = (at: number) => {
    // First elements of a record: (0004,1400) next, (0004,1410) in use, (0004,1420) lower, (0004,1430) type.
    expect(bytes.readUInt32LE(at)).toBe(0xe000fffe);
    const next = bytes.readUInt32LE(at + 8 + 8);
    const lower = bytes.readUInt32LE(at + 8 + 12 + 10 + 8);
    const typeAt = at + 8 + 12 + 10 + 12;
    const type = bytes.subarray(typeAt + 8, typeAt + 8 + bytes.readUInt16LE(typeAt + 6)).toString('latin1').trim();
    return { next, lower, type };
  };
  const patient = record(offsets[0]!);
  expect(patient).toMatchObject({ type: 'PATIENT', next: 0 });
  const studyRecord = record(patient.lower);
  expect(studyRecord.type).toBe('STUDY');
  const seriesRecord = record(studyRecord.lower);
  expect(seriesRecord.type).toBe('SERIES');
  let image = record(seriesRecord.lower);
  let images = 1;
  while (image.next !== 0) {
    expect(image.type).toBe('IMAGE');
    image = record(image.next);
    images++;
  }
  expect(images).toBe(3);
});

test('errors: 406 for other media types, 404 for an unknown study, 400 for a bad flag', async () => {
  expect((await download(`${archive.dicomWebUrl}/studies/${study}/archive`, 'x.zip', 'application/dicom')).status).toBe(406);
  expect((await download(`${archive.dicomWebUrl}/studies/1.2.3.4/archive`, 'x.zip')).status).toBe(404);
  expect((await download(`${archive.dicomWebUrl}/studies/${study}/archive?dicomdir=yes`, 'x.zip')).status).toBe(400);
});

test('ZIP64 records when there are more than 65,535 entries (unzip lists them all)', async () => {
  async function* entries() {
    for (let i = 0; i < 70_000; i++) yield { name: `f${i}`, body: new Uint8Array([i & 0xff]) };
  }
  const chunks: Uint8Array[] = [];
  for await (const c of writeZip(entries(), new Date('2026-01-02T03:04:05Z'))) chunks.push(c);
  fs.writeFileSync(path.join(tmp.dir, 'many.zip'), Buffer.concat(chunks));
  execFileSync('unzip', ['-tq', path.join(tmp.dir, 'many.zip')]);
  const listing = execFileSync('unzip', ['-Z1', path.join(tmp.dir, 'many.zip')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  expect(listing.trim().split('\n')).toHaveLength(70_000);
});
