/**
 * The malformed-input battery: broken multipart framing, broken or hostile
 * DICOM, bad UIDs (incl. path traversal), wrong Study UID for the URL, bad
 * query parameters. Each gets its expected status (and FailureReason), and
 * after each the archive holds exactly what it held before — no index entry,
 * no bytes, no temp file — and keeps serving.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { malformedFiles, mrInstance, uid, wrongStudyInstance } from '../fixtures/synthetic';
import { getJson, multipartBody, startTestArchive, stow, type TestArchive } from '../helpers/archive';

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

const C000 = 0xc000;
const A900 = 0xa900;
const EXPECTED_REASON: Record<string, number> = {
  TRUNCATED: C000,
  LIMIT_EXCEEDED: C000,
  NOT_PART10: C000,
  MISSING_TRANSFER_SYNTAX: C000,
  INVALID_UID: A900,
};

describe('malformed input', () => {
  let archive: TestArchive;
  let base: string;
  let baseline: { files: string[]; instances: number };
  const keeper = mrInstance({ rows: 16, columns: 16 });

  async function snapshot() {
    const q = await getJson(`${base}/instances?limit=1000`);
    expect(q.status).toBe(200);
    return { files: filesUnder(archive.dataDir).filter((f) => !f.endsWith('-wal') && !f.endsWith('-shm') && !f.endsWith('.sqlite')).sort(), instances: q.json.length };
  }

  beforeAll(async () => {
    archive = await startTestArchive({ maxRequestBytes: 32 * 1024 * 1024 });
    base = archive.dicomWebUrl;
    expect((await stow(base, [keeper.bytes])).status).toBe(200);
    baseline = await snapshot();
    expect(baseline.instances).toBe(1);
  });
  afterEach(async () => {
    // nothing half-written, and the server still serves
    expect(await snapshot()).toEqual(baseline);
  });
  afterAll(async () => archive.stop());

  describe('hostile or broken DICOM: 409 with the FailureReason', () => {
    it.each(malformedFiles().map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const res = await stow(base, [c.bytes()]);
      expect(res.status).toBe(409);
      expect(res.json['00081198'].Value[0]['00081197'].Value[0]).toBe(EXPECTED_REASON[c.expectedCode]);
      expect(res.json['00081199']).toBeUndefined();
    });

    it('random garbage', async () => {
      const garbage = Buffer.alloc(4096);
      for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 2654435761) >>> 24;
      const res = await stow(base, [garbage]);
      expect(res.status).toBe(409);
      expect(res.json['00081198'].Value[0]['00081197'].Value[0]).toBe(C000);
    });

    it('an empty part', async () => {
      const res = await stow(base, [new Uint8Array(0)]);
      expect(res.status).toBe(409);
    });

    it('a Study Instance UID that differs from the URL', async () => {
      const study = uid();
      const res = await stow(base, [wrongStudyInstance(study).bytes], study);
      expect(res.status).toBe(409);
      expect(res.json['00081198'].Value[0]['00081197'].Value[0]).toBe(A900);
    });

    it('a different object under an existing SOP Instance UID fails and overwrites nothing', async () => {
      const impostor = mrInstance({ rows: 16, columns: 16, sopInstanceUID: keeper.sopInstanceUID, studyInstanceUID: uid() });
      const res = await stow(base, [impostor.bytes]);
      expect(res.status).toBe(409);
      expect(res.json['00081198'].Value[0]['00081197'].Value[0]).toBe(0x0111);
      const back = await fetch(`${base}/studies/${keeper.studyInstanceUID}/series/${keeper.seriesInstanceUID}/instances/${keeper.sopInstanceUID}`, {
        headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
      });
      const body = Buffer.from(await back.arrayBuffer());
      expect(body.includes(Buffer.from(keeper.bytes.subarray(132)))).toBe(true);
    });

    it('a good and a bad instance in one request: 202, and only the good one is there', async () => {
      const good = mrInstance({ rows: 16, columns: 16 });
      const res = await stow(base, [good.bytes, malformedFiles()[0]!.bytes()]);
      expect(res.status).toBe(202);
      expect(res.json['00081199'].Value).toHaveLength(1);
      expect(res.json['00081198'].Value).toHaveLength(1);
      expect((await getJson(`${base}/instances?SOPInstanceUID=${good.sopInstanceUID}`)).json).toHaveLength(1);
      // restore the baseline
      expect((await fetch(`${base}/studies/${good.studyInstanceUID}`, { method: 'DELETE' })).status).toBe(204);
    });
  });

  describe('request framing', () => {
    const dicom = () => mrInstance({ rows: 8, columns: 8 }).bytes;
    const post = (body: Uint8Array | string, contentType?: string, extra: Record<string, string> = {}) =>
      fetch(`${base}/studies`, { method: 'POST', body: body as unknown as BodyInit, headers: { ...(contentType ? { 'Content-Type': contentType } : {}), ...extra } });

    const cases: [string, () => Promise<Response>, number][] = [
      ['no Content-Type', () => post(Buffer.from(dicom()), undefined), 415],
      ['text/plain', () => post('hello', 'text/plain'), 415],
      ['multipart/form-data', () => post('--x\r\n\r\n--x--', 'multipart/form-data; boundary=x'), 415],
      ['type=application/dicom+json', () => post('--x\r\nContent-Type: application/dicom+json\r\n\r\n[]\r\n--x--', 'multipart/related; type="application/dicom+json"; boundary=x'), 415],
      ['no boundary parameter', () => post('--x\r\n\r\n--x--', 'multipart/related; type="application/dicom"'), 400],
      ['boundary longer than 70 characters', () => post('x', `multipart/related; type="application/dicom"; boundary=${'b'.repeat(71)}`), 400],
      ['no opening boundary', () => post('just some bytes', 'multipart/related; type="application/dicom"; boundary=x'), 400],
      ['empty body', () => post('', 'multipart/related; type="application/dicom"; boundary=x'), 400],
      ['no parts, only the close delimiter', () => post('--x--\r\n', 'multipart/related; type="application/dicom"; boundary=x'), 400],
      [
        'truncated: no closing boundary',
        () => {
          const { body, contentType } = multipartBody([dicom()]);
          return post(body.subarray(0, body.length - 30), contentType);
        },
        400,
      ],
      ['part headers without the blank line', () => post('--x\r\nContent-Type: application/dicom\r\n', 'multipart/related; type="application/dicom"; boundary=x'), 400],
      ['declared Content-Length over the limit', () => post(Buffer.alloc(33 * 1024 * 1024), 'application/dicom'), 413],
      ['a garbage Content-Type', () => post('x', ';;;=='), 415],
    ];
    it.each(cases)('%s → %i', async (_name, send, status) => {
      const res = await send();
      expect(res.status).toBe(status);
      const body = await res.json();
      expect(typeof body.code).toBe('string');
    });
  });

  describe('bad URLs and query parameters', () => {
    const cases: [string, string, string, number][] = [
      ['path traversal in a study UID', 'GET', '/studies/..%2F..%2Fetc%2Fpasswd/metadata', 400],
      ['letters in a series UID', 'GET', '/studies/1.2.3/series/abc/metadata', 400],
      ['65-character UID', 'DELETE', `/studies/1.${'2'.repeat(63)}`, 400],
      ['unknown query key', 'GET', '/studies?NoSuchAttribute=1', 400],
      ['negative limit', 'GET', '/studies?limit=-1', 400],
      ['non-numeric offset', 'GET', '/studies?offset=abc', 400],
      ['bad date', 'GET', '/studies?StudyDate=2020-13-45x', 400],
      ['bad UID in a UID list', 'GET', '/studies?StudyInstanceUID=1.2.3\\1.2.abc', 400],
      ['series key at study level', 'GET', '/studies?Modality=CT', 400],
      ['frame list with zero', 'GET', `/studies/1.2.3/series/1.2.4/instances/1.2.5/frames/0`, 400],
      ['frame list with text', 'GET', `/studies/1.2.3/series/1.2.4/instances/1.2.5/frames/1,a`, 400],
      ['unknown study', 'GET', '/studies/1.2.3.999/metadata', 404],
      ['DELETE of an unknown study', 'DELETE', '/studies/1.2.3.999', 404],
      ['PUT is not allowed', 'PUT', '/studies', 405],
      ['unknown route', 'GET', '/nothing-here', 404],
    ];
    it.each(cases)('%s → %i', async (_name, method, pathAndQuery, status) => {
      const res = await fetch(`${base}${pathAndQuery}`, { method, headers: { Accept: 'application/dicom+json' } });
      expect(res.status).toBe(status);
      expect(typeof (await res.json()).code).toBe('string');
    });

    it('a malformed Accept header → 400', async () => {
      const res = await fetch(`${base}/studies/${keeper.studyInstanceUID}`, { headers: { Accept: 'multipart/related; type=' } });
      expect(res.status).toBe(400);
      await res.arrayBuffer();
    });
  });
});
