/**
 * Rendered output for each transfer syntax of the pydicom corpus against
 * dcmtk's dcmj2pnm with the same window (+Ww center width). dcmj2pnm has no
 * JPEG 2000 decoder: for those the reference is its rendering of the
 * uncompressed twin. HTJ2K has no corpus file: an HTJ2K copy of MR_small made
 * by our encoder (tested lossless in decode-corpus.test.ts) stands in. Nor
 * JPEG-LS: its reference is the uncompressed twin too.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTempDir } from '../../helpers/tmp';
import { PYDICOM_DIR } from '../../helpers/paths';
import { decodeCorpusFrame, frameBytes, loadImage } from './corpus-helpers';
import { readPng, readPnm, maxPixelDifference, meanPixelDifference } from './image-files';
import { renderFrame, encodeFrame, TS, decodeFrame } from '../../../functions/core/imaging';

let tmp: ReturnType<typeof makeTempDir>;
beforeAll(() => (tmp = makeTempDir('render-corpus-')));
afterAll(() => tmp.cleanup());

function dcmj2pnm(file: string, window?: [number, number], frame = 1): ReturnType<typeof readPnm> {
  const out = path.join(tmp.dir, `${path.basename(file)}-${window?.join('_') ?? 'default'}-${frame}.pnm`);
  const args = [...(window ? ['+Ww', String(window[0]), String(window[1])] : []), '+F', String(frame), path.join(PYDICOM_DIR, file), out];
  execFileSync('dcmj2pnm', args, { stdio: 'pipe' });
  return readPnm(new Uint8Array(fs.readFileSync(out)));
}

async function ours(file: string, window?: [number, number], frame = 0) {
  const img = await loadImage(file);
  const png = await renderFrame(img.parsed.transferSyntaxUID, frameBytes(img, frame), img.description, { mediaType: 'image/png', window: window ? { center: window[0], width: window[1] } : undefined });
  return readPng(png);
}

test.each([
  // file, reference file for dcmj2pnm, window, max tolerated difference (grey levels)
  ['CT_small.dcm', 'CT_small.dcm', [40, 400], 1],
  ['MR_small.dcm', 'MR_small.dcm', [600, 1200], 1],
  ['MR_small_implicit.dcm', 'MR_small.dcm', [600, 1200], 1],
  ['MR_small_bigendian.dcm', 'MR_small.dcm', [600, 1200], 1],
  ['MR_small_RLE.dcm', 'MR_small_RLE.dcm', [600, 1200], 1],
  ['MR_small_jpeg_ls_lossless.dcm', 'MR_small.dcm', [600, 1200], 1], // dcmj2pnm reads no JPEG-LS
  ['MR_small_jp2klossless.dcm', 'MR_small.dcm', [600, 1200], 1],
  ['JPEG-lossy.dcm', 'JPEG-lossy.dcm', [2000, 4000], 2],
  ['JPGExtended.dcm', 'JPGExtended.dcm', [2000, 4000], 2],
  ['rtdose_rle_1frame.dcm', 'rtdose_1frame.dcm', [2e6, 4e6], 1],
  ['image_dfl.dcm', 'image_dfl.dcm', [100, 200], 1],
  ['SC_rgb_rle.dcm', 'SC_rgb_rle.dcm', undefined, 1],
  ['SC_rgb_rle_16bit.dcm', 'SC_rgb_rle_16bit.dcm', undefined, 1],
  ['SC_rgb_jpeg_gdcm.dcm', 'SC_rgb_jpeg_gdcm.dcm', undefined, 1],
  ['SC_rgb_jpeg_dcmtk.dcm', 'SC_rgb_jpeg_dcmtk.dcm', undefined, 3],
  ['SC_rgb_dcmtk_+eb+cy+np.dcm', 'SC_rgb_dcmtk_+eb+cy+np.dcm', undefined, 3],
  ['SC_rgb_small_odd_jpeg.dcm', 'SC_rgb_small_odd_jpeg.dcm', undefined, 3],
  ['SC_ybr_full_422_uncompressed.dcm', 'SC_ybr_full_422_uncompressed.dcm', undefined, 2],
  ['ExplVR_BigEnd.dcm', 'ExplVR_BigEnd.dcm', undefined, 1],
  ['SC_rgb_gdcm_KY.dcm', 'SC_rgb_rle.dcm', undefined, 1],
] as [string, string, [number, number] | undefined, number][])('%s renders like dcmj2pnm renders %s', async (file, reference, window, tolerance) => {
  const a = await ours(file, window);
  const b = dcmj2pnm(reference, window);
  expect([a.width, a.height, a.channels]).toEqual([b.width, b.height, b.channels]);
  expect(maxPixelDifference(a, b)).toBeLessThanOrEqual(tolerance);
});

test('HTJ2K renders like dcmj2pnm renders the uncompressed original', async () => {
  const { img, frame } = await decodeCorpusFrame('MR_small.dcm');
  const htj2k = await encodeFrame(TS.HTJ2KLossless, frame, img.description);
  const png = readPng(await renderFrame(TS.HTJ2KLossless, htj2k, img.description, { mediaType: 'image/png', window: { center: 600, width: 1200 } }));
  expect(maxPixelDifference(png, dcmj2pnm('MR_small.dcm', [600, 1200]))).toBeLessThanOrEqual(1);
});

test('the default window is the first Window Center/Width of the object (dcmj2pnm +Wi 1)', async () => {
  const a = await ours('MR_small.dcm');
  const out = path.join(tmp.dir, 'mr-wi1.pgm');
  execFileSync('dcmj2pnm', ['+Wi', '1', path.join(PYDICOM_DIR, 'MR_small.dcm'), out], { stdio: 'pipe' });
  expect(maxPixelDifference(a, readPnm(new Uint8Array(fs.readFileSync(out))))).toBeLessThanOrEqual(1);
});

test('JPEG output is close to the PNG output (quality 95)', async () => {
  const img = await loadImage('CT_small.dcm');
  const options = { window: { center: 40, width: 400 } };
  const jpeg = await renderFrame(img.parsed.transferSyntaxUID, frameBytes(img, 0), img.description, { ...options, mediaType: 'image/jpeg', quality: 95 });
  expect(Array.from(jpeg.subarray(0, 3))).toEqual([0xff, 0xd8, 0xff]);
  // Decode the JPEG with the codec library (libjpeg-turbo) and compare.
  const back = await decodeFrame(TS.JPEGBaseline8Bit, jpeg, { ...img.description, bitsAllocated: 8, bitsStored: 8, highBit: 7, pixelRepresentation: 0 });
  const png = await ours('CT_small.dcm', [40, 400]);
  expect(meanPixelDifference({ ...png, pixels: back.data }, png)).toBeLessThan(2);
});
