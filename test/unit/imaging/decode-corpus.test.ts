/**
 * Every transfer syntax of the pydicom corpus decodes to the pixels of a
 * reference: the uncompressed twin in the corpus, or dcmtk's decompression
 * (dcmdjpeg / dcmdrle / dcmdjpls). Exact for lossless syntaxes; lossy JPEG
 * within a small tolerance (two IDCT implementations may round differently).
 */
import { makeTempDir } from '../../helpers/tmp';
import { dcmtkDecompress, decodeCorpusFrame, maxDifference, loadImage, frameBytes } from './corpus-helpers';
import { encodeFrame, decodeFrame, TS } from '../../../functions/core/imaging';

let tmp: ReturnType<typeof makeTempDir>;
beforeAll(() => (tmp = makeTempDir('render-decode-')));
afterAll(() => tmp.cleanup());

describe('decoding against the corpus twins', () => {
  test.each([
    ['MR_small_RLE.dcm', 'MR_small.dcm'],
    ['MR_small_jp2klossless.dcm', 'MR_small.dcm'],
    ['MR_small_jpeg_ls_lossless.dcm', 'MR_small.dcm'],
    ['MR_small_bigendian.dcm', 'MR_small.dcm'],
    ['MR_small_implicit.dcm', 'MR_small.dcm'],
    ['rtdose_rle_1frame.dcm', 'rtdose_1frame.dcm'],
    ['liver_expb_1frame.dcm', 'liver_1frame.dcm'],
  ])('%s decodes to the pixels of %s', async (file, twin) => {
    const a = await decodeCorpusFrame(file);
    const b = await decodeCorpusFrame(twin);
    expect(a.frame.data.byteLength).toBe(b.frame.data.byteLength);
    expect(maxDifference(a.frame.data, b.frame.data, a.frame.bitsAllocated)).toBe(0);
  });

  test('all frames of a multi-frame RLE object match their native twin', async () => {
    for (let i = 0; i < 15; i += 7) {
      const a = await decodeCorpusFrame('rtdose_rle.dcm', i);
      const b = await decodeCorpusFrame('rtdose.dcm', i);
      expect(maxDifference(a.frame.data, b.frame.data, 16)).toBe(0);
    }
  });
});

describe('decoding against dcmtk', () => {
  test.each([
    ['SC_rgb_rle.dcm', 0],
    ['SC_rgb_rle_16bit.dcm', 0],
    ['SC_rgb_rle_32bit_2frame.dcm', 0],
    ['MR_small_jpeg_ls_lossless.dcm', 0],
    ['SC_rgb_jpeg_gdcm.dcm', 0],
    ['JPEG-lossy.dcm', 2],
    ['JPGExtended.dcm', 2],
    ['SC_rgb_jpeg_dcmtk.dcm', 3],
    ['SC_rgb_dcmtk_+eb+cy+np.dcm', 3],
    ['SC_rgb_dcmtk_+eb+cr.dcm', 3],
    ['SC_rgb_small_odd_jpeg.dcm', 3],
  ])('%s matches dcmtk within %d', async (file, tolerance) => {
    const ours = await decodeCorpusFrame(file);
    const reference = await decodeCorpusFrame(dcmtkDecompress(file, tmp.dir));
    expect(ours.frame.photometricInterpretation).toBe(reference.frame.photometricInterpretation === 'YBR_FULL' && ours.frame.photometricInterpretation === 'RGB' ? 'RGB' : reference.frame.photometricInterpretation);
    expect(maxDifference(ours.frame.data, reference.frame.data, ours.frame.bitsAllocated)).toBeLessThanOrEqual(tolerance);
  });
});

test('an RGB JPEG without colour transform (Adobe APP14 transform 0) is not converted', async () => {
  // dcmtk converts by the data set's Photometric Interpretation unless told to trust the JPEG stream (+cg);
  // libjpeg-turbo reads the Adobe marker, and so do we.
  const ours = await decodeCorpusFrame('SC_jpeg_no_color_transform.dcm');
  const reference = await decodeCorpusFrame(dcmtkDecompress('SC_jpeg_no_color_transform.dcm', tmp.dir, ['+cg']));
  expect(maxDifference(ours.frame.data, reference.frame.data, 8)).toBe(0);
});

describe('encoders round-trip exactly (lossless targets)', () => {
  test.each([TS.JPEG2000Lossless, TS.HTJ2KLossless, TS.HTJ2KLosslessRPCL, TS.JPEGLSLossless, TS.RLELossless, TS.JPEGLosslessSV1])('MR_small (16-bit signed) through %s', async (ts) => {
    const { img, frame } = await decodeCorpusFrame('MR_small.dcm');
    const encoded = await encodeFrame(ts, frame, img.description);
    expect(encoded.byteLength).toBeLessThan(frame.data.byteLength);
    const back = await decodeFrame(ts, encoded, img.description);
    expect(maxDifference(back.data, frame.data, 16)).toBe(0);
  });

  test.each([TS.JPEG2000Lossless, TS.HTJ2KLossless, TS.RLELossless, TS.JPEGLSLossless])('an RGB image through %s', async (ts) => {
    const { img, frame } = await decodeCorpusFrame('SC_rgb_rle.dcm');
    const encoded = await encodeFrame(ts, frame, img.description);
    const back = await decodeFrame(ts, encoded, { ...img.description, photometricInterpretation: ts === TS.RLELossless || ts === TS.JPEGLSLossless ? 'RGB' : 'YBR_RCT' });
    expect(back.photometricInterpretation).toBe('RGB');
    expect(maxDifference(back.data, frame.data, 8)).toBe(0);
  });
});

test('a corrupt compressed frame is a DECODE_FAILED error, not a crash', async () => {
  const { img } = await decodeCorpusFrame('MR_small_jp2klossless.dcm');
  await expect(decodeFrame(TS.JPEG2000Lossless, new Uint8Array([0xff, 0x4f, 0xff, 0x51, 1, 2, 3]), img.description)).rejects.toMatchObject({ reason: 'DECODE_FAILED', code: 'NOT_ACCEPTABLE' });
  await expect(decodeFrame('1.2.840.10008.1.2.4.100', new Uint8Array(10), img.description)).rejects.toMatchObject({ reason: 'UNSUPPORTED_TRANSFER_SYNTAX' });
});

test('a stream whose header declares another size than the data set is refused before decoding', async () => {
  for (const [file, ts, marker] of [
    ['JPEG-lossy.dcm', TS.JPEGExtended12Bit, [0xff, 0xc1]],
    ['MR_small_jp2klossless.dcm', TS.JPEG2000Lossless, [0xff, 0x51]],
    ['MR_small_jpeg_ls_lossless.dcm', TS.JPEGLSLossless, [0xff, 0xf7]],
  ] as const) {
    const img = await loadImage(file);
    const bytes = new Uint8Array(frameBytes(img, 0));
    const at = Buffer.from(bytes).indexOf(Buffer.from(marker));
    expect(at).toBeGreaterThan(0);
    // A "bomb": 60000 × 60000 declared by a frame of a few kilobytes.
    if (marker[1] === 0x51) new DataView(bytes.buffer).setUint32(at + 4 + 4, 60000);
    else new DataView(bytes.buffer).setUint16(at + 5, 60000);
    await expect(decodeFrame(ts, bytes, img.description)).rejects.toMatchObject({ reason: 'DECODE_FAILED' });
    // The codecs keep working.
    expect((await decodeFrame(ts, frameBytes(img, 0), img.description)).data.byteLength).toBeGreaterThan(0);
  }
});
