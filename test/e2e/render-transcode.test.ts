/**
 * WADO-RS transcoding on Accept (PS3.18 §8.7.3.5): compressed instances served
 * decoded in Explicit VR Little Endian (the default syntax) and native ones
 * re-encoded in JPEG 2000 / HTJ2K lossless; pixels compared with the corpus
 * twins, files checked by dcmtk's dcmdump; conversions cached as derived objects.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestArchive, stow, getParts, type TestArchive } from '../helpers/archive';
import { PYDICOM_DIR } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';
import { parsePart10 } from '../../functions/core/dicom';
import { decodeFrame, describePixels } from '../../functions/core/imaging';
import { derivedPrefix } from '../../functions/core/archive/keys';
import { decodeCorpusFrame, maxDifference } from '../unit/imaging/corpus-helpers';

let archive: TestArchive;
let base: string;
let tmp: ReturnType<typeof makeTempDir>;
const corpus = (f: string) => new Uint8Array(fs.readFileSync(path.join(PYDICOM_DIR, f)));
const urls: Record<string, string> = {};

async function instanceUrl(file: string): Promise<string> {
  const p = parsePart10(corpus(file));
  const sop = p.dataset['00080018']!.Value![0] as string;
  return `${base}/studies/${p.dataset['0020000D']!.Value![0]}/series/${p.dataset['0020000E']!.Value![0]}/instances/${sop}`;
}

/** dcmdump must read the whole file without errors. */
function dcmdumpOk(bytes: Uint8Array, name: string): string {
  const file = path.join(tmp.dir, name);
  fs.writeFileSync(file, bytes);
  return execFileSync('dcmdump', ['+L', file], { encoding: 'latin1' });
}

async function pixelsOf(part10: Uint8Array, frame = 0) {
  const p = parsePart10(part10);
  const d = await describePixels(p.dataset);
  const ranges = p.pixelData!.frames[frame]!;
  const bytes = Buffer.concat(ranges.map((r) => part10.subarray(r.offset, r.offset + r.length)));
  return { parsed: p, frame: await decodeFrame(p.transferSyntaxUID, bytes, d) };
}

beforeAll(async () => {
  tmp = makeTempDir('render-transcode-');
  archive = await startTestArchive();
  base = archive.dicomWebUrl;
  const files = ['MR_small_jp2klossless.dcm', 'CT_small.dcm', 'SC_rgb_rle.dcm', 'JPEG-lossy.dcm', 'rtdose_rle.dcm'];
  expect((await stow(base, files.map(corpus))).status).toBe(200);
  for (const f of files) urls[f] = await instanceUrl(f);
});
afterAll(async () => {
  await archive?.stop();
  tmp?.cleanup();
});

test('a JPEG 2000 instance is served decoded in Explicit VR Little Endian by default', async () => {
  const r = await getParts(urls['MR_small_jp2klossless.dcm']!, 'multipart/related; type="application/dicom"');
  expect(r.status).toBe(200);
  expect(r.parts[0]!.headers['content-type']).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
  const out = new Uint8Array(r.parts[0]!.body);
  const { parsed, frame } = await pixelsOf(out);
  expect(parsed.transferSyntaxUID).toBe('1.2.840.10008.1.2.1');
  const twin = await decodeCorpusFrame('MR_small.dcm');
  expect(maxDifference(frame.data, twin.frame.data, 16)).toBe(0);
  expect(parsed.dataset['00100010']).toEqual(parsePart10(corpus('MR_small_jp2klossless.dcm')).dataset['00100010']);
  expect(dcmdumpOk(out, 'mr-le.dcm')).toMatch(/=LittleEndianExplicit\s+#.*TransferSyntaxUID/);
});

test.each([
  ['1.2.840.10008.1.2.4.201', 'HTJ2K lossless'],
  ['1.2.840.10008.1.2.4.90', 'JPEG 2000 lossless'],
  ['1.2.840.10008.1.2.4.80', 'JPEG-LS lossless'],
  ['1.2.840.10008.1.2.5', 'RLE'],
])('a native CT is served as %s (%s), pixels unchanged', async (ts) => {
  const r = await getParts(urls['CT_small.dcm']!, `multipart/related; type="application/dicom"; transfer-syntax=${ts}`);
  expect(r.status).toBe(200);
  expect(r.parts[0]!.headers['content-type']).toBe(`application/dicom; transfer-syntax=${ts}`);
  const out = new Uint8Array(r.parts[0]!.body);
  const { parsed, frame } = await pixelsOf(out);
  expect(parsed.transferSyntaxUID).toBe(ts);
  expect(parsed.pixelData!.encapsulated).toBe(true);
  const original = await decodeCorpusFrame('CT_small.dcm');
  expect(maxDifference(frame.data, original.frame.data, 16)).toBe(0);
  expect(out.byteLength).toBeLessThan(corpus('CT_small.dcm').byteLength);
  dcmdumpOk(out, `ct-${ts}.dcm`);
});

test('RGB to JPEG 2000 lossless uses the reversible colour transform and says YBR_RCT (PS3.5 §8.2.4)', async () => {
  const r = await getParts(urls['SC_rgb_rle.dcm']!, 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.90');
  const out = new Uint8Array(r.parts[0]!.body);
  const { parsed, frame } = await pixelsOf(out);
  expect(parsed.dataset['00280004']!.Value).toEqual(['YBR_RCT']);
  // COD marker segment: SGcod's fourth byte is the multiple component transformation (ISO/IEC 15444-1 A.6.1).
  const ranges = parsed.pixelData!.frames[0]!;
  const code = out.subarray(ranges[0]!.offset, ranges[0]!.offset + ranges[0]!.length);
  const cod = Buffer.from(code).indexOf(Buffer.from([0xff, 0x52]));
  expect(code[cod + 4 + 1 + 3]).toBe(1);
  expect(maxDifference(frame.data, (await decodeCorpusFrame('SC_rgb_rle.dcm')).frame.data, 8)).toBe(0);
});

test('every frame of a multi-frame object is converted; the conversion is cached', async () => {
  // 32-bit dose grid: RLE keeps 32-bit samples (PS3.5 G.2); the JPEG family here does not (406).
  const htj2k = await fetch(urls['rtdose_rle.dcm']!, { headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.201' } });
  expect(htj2k.status).toBe(406);
  const accept = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1';
  const first = await getParts(urls['rtdose_rle.dcm']!, accept);
  const out = new Uint8Array(first.parts[0]!.body);
  const parsed = parsePart10(out);
  expect(parsed.pixelData!.frames).toHaveLength(15);
  const last = await pixelsOf(out, 14);
  expect(maxDifference(last.frame.data, (await decodeCorpusFrame('rtdose_rle.dcm', 14)).frame.data, 8)).toBe(0);
  const study = parsed.dataset['0020000D']!.Value![0] as string;
  const keys: string[] = [];
  for await (const k of archive.ctx.blobs.list(derivedPrefix(study))) keys.push(k);
  expect(keys.some((k) => k.endsWith('1.2.840.10008.1.2.1.dcm'))).toBe(true);
  const again = await getParts(urls['rtdose_rle.dcm']!, accept);
  expect(Buffer.compare(again.parts[0]!.body, first.parts[0]!.body)).toBe(0);
});

test('lossy targets are not produced (406); transfer-syntax=* is the stored syntax', async () => {
  const lossy = await fetch(urls['CT_small.dcm']!, { headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50' } });
  expect(lossy.status).toBe(406);
  const stored = await getParts(urls['JPEG-lossy.dcm']!, 'multipart/related; type="application/dicom"; transfer-syntax=*');
  expect(stored.parts[0]!.headers['content-type']).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.4.51');
  // Decoding lossy JPEG is allowed (the default syntax), and keeps Lossy Image Compression.
  const decoded = await getParts(urls['JPEG-lossy.dcm']!, 'multipart/related; type="application/dicom"');
  const p = parsePart10(new Uint8Array(decoded.parts[0]!.body));
  expect(p.transferSyntaxUID).toBe('1.2.840.10008.1.2.1');
  expect(p.dataset['00282110']?.Value ?? ['01']).toEqual(['01']);
});

describe('frames in another syntax (PS3.18 §10.4.1.1.4)', () => {
  test('compressed frames decoded as application/octet-stream; native frames re-encoded as image/jphc and image/jp2', async () => {
    const dose = urls['rtdose_rle.dcm']!;
    const decoded = await getParts(`${dose}/frames/2,15`, 'multipart/related; type="application/octet-stream"');
    expect(decoded.status).toBe(200);
    expect(decoded.parts.map((p) => p.headers['content-type'])).toEqual(Array(2).fill('application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1'));
    const reference = await decodeCorpusFrame('rtdose_rle.dcm', 14);
    expect(maxDifference(new Uint8Array(decoded.parts[1]!.body), reference.frame.data, 8)).toBe(0);
    // The stored syntax stays the default for its own media type.
    const stored = await getParts(`${dose}/frames/1`, 'multipart/related; type="image/dicom-rle"');
    expect(stored.parts[0]!.headers['content-type']).toBe('image/dicom-rle; transfer-syntax=1.2.840.10008.1.2.5');

    const ct = urls['CT_small.dcm']!;
    const original = await decodeCorpusFrame('CT_small.dcm');
    for (const [type, ts] of [['image/jphc', '1.2.840.10008.1.2.4.201'], ['image/jp2', '1.2.840.10008.1.2.4.90'], ['image/jls', '1.2.840.10008.1.2.4.80']]) {
      const r = await getParts(`${ct}/frames/1`, `multipart/related; type="${type}"`);
      expect(r.status).toBe(200);
      expect(r.parts[0]!.headers['content-type']).toBe(`${type}; transfer-syntax=${ts}`);
      const back = await decodeFrame(ts!, new Uint8Array(r.parts[0]!.body), original.img.description);
      expect(maxDifference(back.data, original.frame.data, 16)).toBe(0);
    }
    // A lossy syntax is never produced.
    expect((await fetch(`${ct}/frames/1`, { headers: { Accept: 'multipart/related; type="image/jpeg"' } })).status).toBe(406);
  });
});
