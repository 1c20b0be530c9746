/**
 * WADO-URI (PS3.18 §9) on the embedded archive: application/dicom in the
 * requested transfer syntax (one Part 10 body), rendered JPEG/PNG with frame,
 * window, rows/columns and region, and clear refusals.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startTestArchive, stow, type TestArchive } from '../helpers/archive';
import { PYDICOM_DIR } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';
import { parsePart10 } from '../../functions/core/dicom';
import { readPng, readPnm, maxPixelDifference } from '../unit/imaging/image-files';

let archive: TestArchive;
let tmp: ReturnType<typeof makeTempDir>;
const corpus = (f: string) => new Uint8Array(fs.readFileSync(path.join(PYDICOM_DIR, f)));
function uidsOf(f: string) {
  const p = parsePart10(corpus(f));
  const v = (k: string) => p.dataset[k]!.Value![0] as string;
  return `studyUID=${v('0020000D')}&seriesUID=${v('0020000E')}&objectUID=${v('00080018')}`;
}
const wado = (query: string) => `${archive.dicomWebUrl}/wado?${query}`;
async function get(url: string) {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: Buffer.from(await res.arrayBuffer()) };
}

beforeAll(async () => {
  tmp = makeTempDir('wado-uri-');
  archive = await startTestArchive();
  expect((await stow(archive.dicomWebUrl, ['CT_small.dcm', 'MR_small_RLE.dcm', 'rtdose.dcm', 'test-SR.dcm'].map(corpus))).status).toBe(200);
});
afterAll(async () => {
  await archive?.stop();
  tmp?.cleanup();
});

test('an image defaults to image/jpeg', async () => {
  const r = await get(wado(`requestType=WADO&${uidsOf('CT_small.dcm')}`));
  expect(r.status).toBe(200);
  expect(r.type).toBe('image/jpeg');
  expect([...r.body.subarray(0, 2)]).toEqual([0xff, 0xd8]);
});

test('image/png with a window renders like dcmj2pnm', async () => {
  const r = await get(wado(`requestType=WADO&${uidsOf('CT_small.dcm')}&contentType=image/png&windowCenter=40&windowWidth=400`));
  expect(r.type).toBe('image/png');
  const out = path.join(tmp.dir, 'ct.pgm');
  execFileSync('dcmj2pnm', ['+Ww', '40', '400', path.join(PYDICOM_DIR, 'CT_small.dcm'), out]);
  expect(maxPixelDifference(readPng(r.body), readPnm(new Uint8Array(fs.readFileSync(out))))).toBeLessThanOrEqual(1);
});

test('rows/columns bound the size keeping the aspect ratio; region crops; frameNumber picks the frame', async () => {
  const small = readPng((await get(wado(`requestType=WADO&${uidsOf('CT_small.dcm')}&contentType=image/png&rows=32`))).body);
  expect([small.width, small.height]).toEqual([32, 32]);
  const region = readPng((await get(wado(`requestType=WADO&${uidsOf('CT_small.dcm')}&contentType=image/png&region=0,0,0.5,0.25`))).body);
  expect([region.width, region.height]).toEqual([64, 32]);
  const f1 = await get(wado(`requestType=WADO&${uidsOf('rtdose.dcm')}&contentType=image/png&frameNumber=1`));
  const f9 = await get(wado(`requestType=WADO&${uidsOf('rtdose.dcm')}&contentType=image/png&frameNumber=9`));
  expect(f9.status).toBe(200);
  expect(Buffer.compare(f1.body, f9.body)).not.toBe(0);
  expect((await get(wado(`requestType=WADO&${uidsOf('rtdose.dcm')}&contentType=image/png&frameNumber=99`))).status).toBe(404);
});

test('application/dicom: Explicit VR LE by default (decoded), the stored bytes for transferSyntax=* or the stored UID', async () => {
  const le = await get(wado(`requestType=WADO&${uidsOf('MR_small_RLE.dcm')}&contentType=application/dicom`));
  expect(le.status).toBe(200);
  expect(le.type).toBe('application/dicom');
  expect(parsePart10(new Uint8Array(le.body)).transferSyntaxUID).toBe('1.2.840.10008.1.2.1');
  const stored = corpus('MR_small_RLE.dcm');
  for (const ts of ['*', '1.2.840.10008.1.2.5']) {
    const r = await get(wado(`requestType=WADO&${uidsOf('MR_small_RLE.dcm')}&contentType=application/dicom&transferSyntax=${ts}`));
    expect(Buffer.compare(r.body.subarray(128), Buffer.from(stored.subarray(128)))).toBe(0);
  }
  const htj2k = await get(wado(`requestType=WADO&${uidsOf('MR_small_RLE.dcm')}&contentType=application/dicom&transferSyntax=1.2.840.10008.1.2.4.201`));
  expect(parsePart10(new Uint8Array(htj2k.body)).transferSyntaxUID).toBe('1.2.840.10008.1.2.4.201');
  // A non-image defaults to application/dicom, and cannot be rendered.
  const sr = await get(wado(`requestType=WADO&${uidsOf('test-SR.dcm')}`));
  expect(sr.type).toBe('application/dicom');
  expect((await get(wado(`requestType=WADO&${uidsOf('test-SR.dcm')}&contentType=image/jpeg`))).status).toBe(406);
  // contentType lists: the first we can produce wins.
  expect((await get(wado(`requestType=WADO&${uidsOf('CT_small.dcm')}&contentType=image/gif,image/png`))).type).toBe('image/png');
});

test('malformed or unsupported requests are refused with a reason', async () => {
  const ct = uidsOf('CT_small.dcm');
  const cases: [string, number][] = [
    [ct, 400], // no requestType
    [`requestType=WADO&studyUID=1.2.3`, 400],
    [`requestType=WADO&${ct.replace(/objectUID=[^&]+/, 'objectUID=../../etc')}`, 400],
    [`requestType=WADO&${ct}&anonymize=yes`, 400],
    [`requestType=WADO&${ct}&annotation=patient`, 400],
    [`requestType=WADO&${ct}&windowCenter=40`, 400],
    [`requestType=WADO&${ct}&rows=0`, 400],
    [`requestType=WADO&${ct}&region=0.5,0,0.2,1`, 400],
    [`requestType=WADO&${ct}&contentType=application/dicom&rows=10`, 400],
    [`requestType=WADO&${ct}&contentType=application/dicom&transferSyntax=1.2.840.10008.1.2.4.50`, 406],
    [`requestType=WADO&${ct}&contentType=image/gif`, 406],
    [`requestType=WADO&${ct.replace(/objectUID=[^&]+/, 'objectUID=1.2.3.4')}`, 404],
  ];
  for (const [q, status] of cases) expect([q, (await get(wado(q))).status]).toEqual([q, status]);
});
