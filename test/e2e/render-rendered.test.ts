/**
 * WADO-RS rendered resources and thumbnails over HTTP against the embedded
 * archive (PS3.18 §10.4.1.1.3, §10.4.1.1.6): media type negotiation, window /
 * viewport / quality, multipart answers for series and frame lists, errors,
 * thumbnail choice and its cache as derived objects (removed by DELETE).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestArchive, stow, parseMultipart, type TestArchive } from '../helpers/archive';
import { PYDICOM_DIR } from '../helpers/paths';
import { mrInstance, uid } from '../fixtures/synthetic';
import { readPng } from '../unit/imaging/image-files';
import { derivedPrefix } from '../../functions/core/archive/keys';

let archive: TestArchive;
let base: string;
const corpus = (f: string) => new Uint8Array(fs.readFileSync(path.join(PYDICOM_DIR, f)));

const CT = { study: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322', sop: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322' };
const study = uid();
const series = uid();
const mrs = [3, 1, 2].map((n) => mrInstance({ studyInstanceUID: study, seriesInstanceUID: series, instanceNumber: n, rows: 64, columns: 64, extra: { '00281050': { vr: 'DS', Value: [String(200 * n)] }, '00281051': { vr: 'DS', Value: ['400'] } } }));
let ctSeries = '';
let doseUrl = '';

async function get(url: string, accept?: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers: { ...(accept ? { Accept: accept } : {}), ...headers } });
  return { status: res.status, type: res.headers.get('content-type') ?? '', headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

beforeAll(async () => {
  archive = await startTestArchive();
  base = archive.dicomWebUrl;
  const r = await stow(base, [corpus('CT_small.dcm'), corpus('rtdose.dcm'), corpus('test-SR.dcm'), ...mrs.map((m) => m.bytes)]);
  expect(r.status).toBe(200);
  const ct = await (await fetch(`${base}/studies/${CT.study}/series`, { headers: { Accept: 'application/dicom+json' } })).json();
  ctSeries = ct[0]['0020000E'].Value[0];
  const dose = await (await fetch(`${base}/instances?SOPInstanceUID=1.9.999.999.99.9.9999.9999.20030818153516&includefield=0020000E`, { headers: { Accept: 'application/dicom+json' } })).json();
  doseUrl = `${base}/studies/${dose[0]['0020000D'].Value[0]}/series/${dose[0]['0020000E'].Value[0]}/instances/1.9.999.999.99.9.9999.9999.20030818153516`;
});
afterAll(async () => archive?.stop());

const ctUrl = () => `${base}/studies/${CT.study}/series/${ctSeries}/instances/${CT.sop}`;

test('an instance renders as JPEG by default and for */*, as PNG when asked', async () => {
  for (const accept of [undefined, '*/*', 'image/*', 'image/jpeg']) {
    const r = await get(`${ctUrl()}/rendered`, accept);
    expect(r.status).toBe(200);
    expect(r.type).toBe('image/jpeg');
    expect([...r.body.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
  }
  const png = await get(`${ctUrl()}/rendered`, 'image/png');
  expect(png.type).toBe('image/png');
  const img = readPng(png.body);
  expect([img.width, img.height, img.channels]).toEqual([128, 128, 1]);
  // The accept query parameter wins over the header (PS3.18 §8.3.3.1).
  expect((await get(`${ctUrl()}/rendered?accept=image/png`, 'image/jpeg')).type).toBe('image/png');
});

test('window, viewport and quality change the image', async () => {
  const narrow = readPng((await get(`${ctUrl()}/rendered?window=40,80`, 'image/png')).body);
  const wide = readPng((await get(`${ctUrl()}/rendered?window=40,2000`, 'image/png')).body);
  expect(Buffer.compare(Buffer.from(narrow.pixels), Buffer.from(wide.pixels))).not.toBe(0);
  const small = readPng((await get(`${ctUrl()}/rendered?viewport=64,32`, 'image/png')).body);
  expect([small.width, small.height]).toEqual([32, 32]); // aspect ratio kept inside the 64×32 viewport
  const q10 = await get(`${ctUrl()}/rendered?quality=10`, 'image/jpeg');
  const q95 = await get(`${ctUrl()}/rendered?quality=95`, 'image/jpeg');
  expect(q10.body.length).toBeLessThan(q95.body.length);
});

test('frames render one by one, several as multipart/related', async () => {
  const one = await get(`${doseUrl}/frames/2/rendered`, 'image/png');
  expect(one.status).toBe(200);
  const many = await get(`${doseUrl}/frames/1,3,5/rendered`, 'multipart/related; type="image/png"');
  expect(many.status).toBe(200);
  expect(many.type).toMatch(/^multipart\/related;.*type="?image\/png/);
  const parts = parseMultipart(many.body, many.type);
  expect(parts).toHaveLength(3);
  expect(parts[2]!.headers['content-location']).toMatch(/\/frames\/5\/rendered$/);
  for (const p of parts) expect(readPng(p.body).width).toBeGreaterThan(0);
  expect(Buffer.compare(parts[1]!.body, (await get(`${doseUrl}/frames/3/rendered`, 'image/png')).body)).toBe(0);
  expect((await get(`${doseUrl}/frames/99/rendered`, 'image/png')).status).toBe(404);
  // Several frames cannot be one image.
  expect((await get(`${doseUrl}/frames/1,2/rendered`, 'image/png')).status).toBe(406);
});

test('a series renders as multipart/related of its images in InstanceNumber order', async () => {
  const r = await get(`${base}/studies/${study}/series/${series}/rendered`, 'multipart/related; type="image/jpeg"');
  expect(r.status).toBe(200);
  const parts = parseMultipart(r.body, r.type);
  expect(parts.map((p) => p.headers['content-location']!.split('/instances/')[1])).toEqual([1, 2, 3].map((n) => `${mrs.find((m) => m.instanceNumber === n)!.sopInstanceUID}/rendered`));
  const single = await get(`${base}/studies/${study}/rendered`, 'image/jpeg');
  expect(single.type).toBe('image/jpeg');
});

test('bad parameters, non-images and unknown resources are refused clearly', async () => {
  for (const q of ['annotation=patient', 'window=40', 'window=40,0', 'viewport=0,10', 'viewport=100000,100000', 'quality=0']) {
    const r = await get(`${ctUrl()}/rendered?${q}`);
    expect([q, r.status]).toEqual([q, 400]);
    expect(JSON.parse(r.body.toString()).code).toBe('INVALID_QUERY');
  }
  expect((await get(`${ctUrl()}/rendered`, 'application/dicom')).status).toBe(406);
  const sr = await (await fetch(`${base}/instances?Modality=SR&includefield=0020000E`, { headers: { Accept: 'application/dicom+json' } })).json();
  const srUrl = `${base}/studies/${sr[0]['0020000D'].Value[0]}/series/${sr[0]['0020000E'].Value[0]}/instances/${sr[0]['00080018'].Value[0]}`;
  const notImage = await get(`${srUrl}/rendered`);
  expect(notImage.status).toBe(406);
  expect((await get(`${base}/studies/${CT.study}/series/${ctSeries}/instances/1.2.3.4/rendered`)).status).toBe(404);
  // Still serving.
  expect((await get(`${ctUrl()}/rendered`)).status).toBe(200);
});

test('validators: the same rendering is 304 with If-None-Match', async () => {
  const first = await get(`${ctUrl()}/rendered?window=40,400`, 'image/png');
  const etag = first.headers.get('etag')!;
  expect(first.headers.get('cache-control')).toMatch(/private/);
  expect((await get(`${ctUrl()}/rendered?window=40,400`, 'image/png', { 'If-None-Match': etag })).status).toBe(304);
  expect((await get(`${ctUrl()}/rendered?window=40,401`, 'image/png', { 'If-None-Match': etag })).status).toBe(200);
});

describe('thumbnails', () => {
  const instanceUrl = (n: number) => {
    const m = mrs.find((x) => x.instanceNumber === n)!;
    return `${base}/studies/${study}/series/${series}/instances/${m.sopInstanceUID}`;
  };

  test('series and study thumbnails show the middle instance; they are cached as derived objects', async () => {
    const seriesThumb = await get(`${base}/studies/${study}/series/${series}/thumbnail`, 'image/png');
    expect(seriesThumb.status).toBe(200);
    const middle = await get(`${instanceUrl(2)}/thumbnail`, 'image/png');
    const first = await get(`${instanceUrl(1)}/thumbnail`, 'image/png');
    expect(Buffer.compare(seriesThumb.body, middle.body)).toBe(0);
    expect(Buffer.compare(seriesThumb.body, first.body)).not.toBe(0);
    expect(Buffer.compare((await get(`${base}/studies/${study}/thumbnail`, 'image/png')).body, middle.body)).toBe(0);
    const img = readPng(middle.body);
    expect(Math.max(img.width, img.height)).toBe(128);
    // Cached: one PNG object per thumbnailed instance, under the study's derived prefix.
    const keys: string[] = [];
    for await (const k of archive.ctx.blobs.list(derivedPrefix(study))) keys.push(k);
    expect(keys.filter((k) => k.endsWith('.png'))).toHaveLength(2);
    // Served from the cache: identical bytes.
    expect(Buffer.compare((await get(`${instanceUrl(2)}/thumbnail`, 'image/png')).body, middle.body)).toBe(0);
    // JPEG by default; viewport overrides the size and is not cached.
    const jpeg = await get(`${instanceUrl(2)}/thumbnail`);
    expect(jpeg.type).toBe('image/jpeg');
    expect(readPng((await get(`${instanceUrl(2)}/thumbnail?viewport=32,32`, 'image/png')).body).width).toBe(32);
    const after: string[] = [];
    for await (const k of archive.ctx.blobs.list(derivedPrefix(study))) after.push(k);
    expect(after).toHaveLength(3); // 2 PNG + 1 JPEG
    // The default size spelled out (as the web UI asks) is the default thumbnail: the same bytes, and cached.
    expect(Buffer.compare((await get(`${instanceUrl(2)}/thumbnail?viewport=128,128`, 'image/png')).body, middle.body)).toBe(0);
    await get(`${instanceUrl(3)}/thumbnail?viewport=128,128`, 'image/png');
    const spelled: string[] = [];
    for await (const k of archive.ctx.blobs.list(derivedPrefix(study))) spelled.push(k);
    expect(spelled).toHaveLength(4);
  });

  test('a multi-frame thumbnail shows its middle frame; frame thumbnails exist too', async () => {
    const t = await get(`${doseUrl}/thumbnail`, 'image/png');
    const middle = await get(`${doseUrl}/frames/8/thumbnail`, 'image/png');
    expect(t.status).toBe(200);
    expect(Buffer.compare(t.body, middle.body)).toBe(0);
    expect((await get(`${doseUrl}/frames/1,2/thumbnail`, 'image/png')).status).toBe(400);
    expect((await get(`${doseUrl}/thumbnail`, 'multipart/related; type="image/png"')).status).toBe(406);
  });

  test('DELETE removes the derived objects with the instances', async () => {
    const r = await fetch(`${base}/studies/${study}/series/${series}`, { method: 'DELETE' });
    expect(r.status).toBe(204);
    const left: string[] = [];
    for await (const k of archive.ctx.blobs.list(derivedPrefix(study))) left.push(k);
    expect(left).toEqual([]);
    expect((await get(`${base}/studies/${study}/thumbnail`)).status).toBe(404);
  });
});
