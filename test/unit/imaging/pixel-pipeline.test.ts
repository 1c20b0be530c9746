/**
 * The display pipeline on small hand-made frames whose expected 8-bit output
 * follows from PS3.3 C.11 / C.7.6.3 by hand.
 */
import { describePixels, toDisplay, windowFunction, applyViewport, parseWindow, parseViewport, parseQuality, type DecodedFrame, type PixelDescription } from '../../../functions/core/imaging';
import type { DicomJsonDataset } from '../../../functions/core/dicom';

const us = (v: number[]) => ({ vr: 'US', Value: v });
const ds = (v: (number | string)[]) => ({ vr: 'DS', Value: v.map(String) });
const cs = (v: string) => ({ vr: 'CS', Value: [v] });

function mono(extra: DicomJsonDataset = {}, bits = 16): DicomJsonDataset {
  return { '00280002': us([1]), '00280004': cs('MONOCHROME2'), '00280010': us([1]), '00280011': us([4]), '00280100': us([bits]), '00280101': us([bits === 16 ? 12 : 8]), '00280103': us([0]), ...extra };
}
function words(values: number[]): DecodedFrame {
  const b = new Uint8Array(values.length * 2);
  const v = new DataView(b.buffer);
  values.forEach((x, i) => v.setUint16(i * 2, x & 0xffff, true));
  return { data: b, bitsAllocated: 16, photometricInterpretation: 'MONOCHROME2' };
}

test('linear window (C.11.2.1.2.1): below → 0, above → 255, centre → middle', async () => {
  const d = await describePixels(mono({ '00281050': ds([100]), '00281051': ds([201]) }));
  const out = toDisplay(words([0, 100, 200, 4095]), d).pixels;
  // x=0 lies just inside the lower edge (c − 0.5 − (w − 1)/2 = −0.5): ((0 − 99.5)/200 + 0.5) × 255 ≈ 0.64
  expect(Array.from(out)).toEqual([1, 128, 255, 255]);
});

test('rescale slope/intercept apply before the window (CT Hounsfield units)', async () => {
  const d = await describePixels(mono({ '00281052': ds([-1024]), '00281053': ds([1]), '00281050': ds([40]), '00281051': ds([400]) }));
  // stored 1064 = 40 HU (centre); 824 = -200 HU (≤ lower edge -160); 1264 = 240 HU (above)
  expect(Array.from(toDisplay(words([1064, 824, 1264, 1024]), d).pixels)).toEqual([128, 0, 255, Math.round(((0 - 39.5) / 399 + 0.5) * 255)]);
});

test('Bits Stored masks the high bits; Pixel Representation 1 sign-extends', async () => {
  const d = await describePixels(mono({ '00280101': us([12]), '00280103': us([1]), '00281050': ds([0]), '00281051': ds([2]) }));
  // 0xF000 | 0x0FFF = stored -1 in 12 bits (the top nibble is overlay garbage and must be ignored); 0x0001 = +1
  const out = toDisplay(words([0xffff, 0x0001, 0xf000, 0]), d).pixels;
  expect(out[0]).toBe(0); // -1 ≤ c - 0.5 - (w-1)/2 = -1
  expect(out[1]).toBe(255); // +1 > c - 0.5 + (w-1)/2 = 0
  expect(out[2]).toBe(255); // 0xF000 masked = 0 → (0+0.5)/1+0.5 → 255
});

test('MONOCHROME1 inverts; without any window the frame range is used', async () => {
  const d = await describePixels(mono({ '00280004': cs('MONOCHROME1') }));
  expect(Array.from(toDisplay(words([0, 1000, 2000, 1000]), d).pixels)).toEqual([255, 127, 0, 127]);
});

test('sigmoid and linear-exact (C.11.2.1.3, C.11.2.1.3.2)', () => {
  const s = windowFunction({ center: 50, width: 20, function: 'SIGMOID' });
  expect(s(50)).toBeCloseTo(127.5);
  expect(s(70)).toBeCloseTo(255 / (1 + Math.exp(-4)));
  const e = windowFunction({ center: 50, width: 20, function: 'LINEAR_EXACT' });
  expect(e(40)).toBe(0);
  expect(e(55)).toBeCloseTo(0.75 * 255);
});

test('the request window overrides the object window', async () => {
  const d = await describePixels(mono({ '00281050': ds([100]), '00281051': ds([201]) }));
  expect(Array.from(toDisplay(words([0, 1000, 2000, 3000]), d, { center: 1000, width: 1 }).pixels)).toEqual([0, 255, 255, 255]);
});

test('VOI LUT Sequence is used when present (C.11.2.1.1)', async () => {
  const lut = new Uint16Array([0, 1000, 4095]);
  const d = await describePixels(mono({ '00283010': { vr: 'SQ', Value: [{ '00283002': us([3, 10, 12]), '00283006': { vr: 'OW', InlineBinary: Buffer.from(lut.buffer).toString('base64') } }] } }));
  expect(Array.from(toDisplay(words([5, 11, 12, 200]), d).pixels)).toEqual([0, Math.round((1000 / 4095) * 255), 255, 255]);
});

test('RGB planar configuration 1 and YBR_FULL are converted (C.7.6.3.1.2)', async () => {
  const rgbDs: DicomJsonDataset = { '00280002': us([3]), '00280004': cs('YBR_FULL'), '00280010': us([1]), '00280011': us([2]), '00280100': us([8]), '00280101': us([8]), '00280006': us([0]) };
  const d = await describePixels(rgbDs);
  // Y=76,Cb=85,Cr=255 ≈ pure red; Y=128,Cb=128,Cr=128 = grey
  const out = toDisplay({ data: new Uint8Array([76, 85, 255, 128, 128, 128]), bitsAllocated: 8, photometricInterpretation: 'YBR_FULL' }, d).pixels;
  expect(out[0]).toBeGreaterThan(250);
  expect(out[1]).toBeLessThan(5);
  expect(out[2]).toBeLessThan(5);
  expect(Array.from(out.subarray(3))).toEqual([128, 128, 128]);
});

test('PALETTE COLOR maps through its three LUTs, 16-bit entries scaled to 8 (C.7.6.3.1.5)', async () => {
  const entries = (v: number[]) => ({ vr: 'OW', InlineBinary: Buffer.from(new Uint16Array(v).buffer).toString('base64') });
  const d = await describePixels({
    '00280002': us([1]), '00280004': cs('PALETTE COLOR'), '00280010': us([1]), '00280011': us([3]), '00280100': us([8]), '00280101': us([8]),
    '00281101': us([2, 1, 16]), '00281102': us([2, 1, 16]), '00281103': us([2, 1, 16]),
    '00281201': entries([0xffff, 0x0000]), '00281202': entries([0x0000, 0xffff]), '00281203': entries([0x8000, 0x8000]),
  });
  const out = toDisplay({ data: new Uint8Array([1, 2, 0]), bitsAllocated: 8, photometricInterpretation: 'PALETTE COLOR' }, d).pixels;
  expect(Array.from(out)).toEqual([255, 0, 128, 0, 255, 128, 255, 0, 128]); // 0 is below first mapped → first entry
});

test('untrusted module values are refused before any allocation', async () => {
  await expect(describePixels({})).rejects.toMatchObject({ reason: 'NOT_AN_IMAGE' });
  await expect(describePixels(mono({ '00280010': us([65535]), '00280011': us([65535]), '00280002': us([3]), '00280004': cs('RGB') }))).rejects.toMatchObject({ reason: 'UNSUPPORTED_IMAGE' });
  await expect(describePixels(mono({ '00280100': us([12]) }))).rejects.toMatchObject({ reason: 'UNSUPPORTED_IMAGE' });
  await expect(describePixels(mono({ '00280004': cs('CMYK') }))).rejects.toMatchObject({ reason: 'UNSUPPORTED_IMAGE' });
});

describe('viewport and parameters (PS3.18 §8.3.5.1)', () => {
  const img = { width: 4, height: 2, channels: 1 as const, pixels: new Uint8Array([0, 10, 20, 30, 40, 50, 60, 70]) };
  test('scales to fit keeping the aspect ratio, box-averaging when shrinking', () => {
    const out = applyViewport(img, { vw: 2, vh: 2 });
    expect([out.width, out.height]).toEqual([2, 1]);
    expect(Array.from(out.pixels)).toEqual([25, 45]);
  });
  test('source region with negative width flips horizontally', () => {
    const out = applyViewport(img, { vw: 4, vh: 2, sx: 4, sy: 0, sw: -4, sh: 2 });
    expect(Array.from(out.pixels)).toEqual([30, 20, 10, 0, 70, 60, 50, 40]);
  });
  test('a region outside the image is a parameter error', () => {
    expect(() => applyViewport(img, { vw: 4, vh: 2, sx: 10, sy: 10, sw: 2, sh: 2 })).toThrow(expect.objectContaining({ reason: 'INVALID_PARAMETER' }));
  });
  test('parsers refuse malformed values', () => {
    expect(parseWindow('40,400')).toEqual({ center: 40, width: 400, function: 'LINEAR' });
    expect(parseWindow('40,400,sigmoid').function).toBe('SIGMOID');
    for (const bad of ['40', '40,0', 'a,b', '1,2,cubic']) expect(() => parseWindow(bad)).toThrow(expect.objectContaining({ code: 'INVALID_QUERY' }));
    expect(parseViewport('512,512')).toEqual({ vw: 512, vh: 512 });
    for (const bad of ['0,10', '99999,10', '10,10,1', '1.5,3']) expect(() => parseViewport(bad)).toThrow(expect.objectContaining({ code: 'INVALID_QUERY' }));
    expect(parseQuality('75')).toBe(75);
    for (const bad of ['0', '101', 'x']) expect(() => parseQuality(bad)).toThrow(expect.objectContaining({ code: 'INVALID_QUERY' }));
  });
});
