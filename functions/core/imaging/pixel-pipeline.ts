/**
 * From decoded samples to 8-bit display values — the grayscale and colour
 * pipelines of PS3.4 Annex N (N.2) without presentation states:
 *
 *   grey:   stored value (Bits Stored, High Bit, sign; PS3.5 §8.1.1)
 *           → Modality LUT or Rescale Slope/Intercept (PS3.3 C.11.1)
 *           → VOI: a window from the request, else the VOI LUT Sequence, else
 *             Window Center/Width, else the value range of the frame (C.11.2)
 *           → MONOCHROME1 inverted (C.7.6.3.1.2)
 *   colour: RGB as is; YBR_FULL / YBR_FULL_422 / YBR_PARTIAL_422 converted to
 *           RGB (C.7.6.3.1.2); PALETTE COLOR through its LUTs (C.7.6.3.1.5);
 *           more than 8 bits scaled down.
 */
import type { DecodedFrame } from './codecs';
import { ImagingError } from './errors';
import type { LookupTable, PixelDescription, VoiLutFunction } from './pixel-description';

export interface WindowRequest {
  center: number;
  width: number;
  function?: VoiLutFunction;
}

export interface DisplayImage {
  width: number;
  height: number;
  channels: 1 | 3;
  /** 8-bit samples, interleaved */
  pixels: Uint8Array;
}

/** Stored values of a grey frame as numbers (masked to Bits Stored, sign-extended). */
function storedValues(frame: DecodedFrame, d: PixelDescription): Int32Array | Float64Array {
  const n = d.rows * d.columns;
  const bits = frame.bitsAllocated;
  const view = new DataView(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength);
  const stored = frame.bitsAllocated === d.bitsAllocated ? d.bitsStored : Math.min(d.bitsStored, bits);
  // High Bit other than Bits Stored − 1 shifts the value inside the word (PS3.5 §8.1.1, rare).
  const shift = frame.bitsAllocated === d.bitsAllocated ? d.highBit + 1 - d.bitsStored : 0;
  const signed = d.pixelRepresentation === 1;
  if (bits === 32) {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const raw = view.getUint32(i * 4, true) >>> shift;
      const v = stored >= 32 ? raw : raw & (2 ** stored - 1);
      out[i] = signed && stored < 32 && v >= 2 ** (stored - 1) ? v - 2 ** stored : signed && stored >= 32 ? v | 0 : v;
    }
    return out;
  }
  const out = new Int32Array(n);
  const mask = (1 << stored) - 1;
  const signBit = 1 << (stored - 1);
  for (let i = 0; i < n; i++) {
    const raw = bits === 16 ? view.getUint16(i * 2, true) : frame.data[i]!;
    let v = (raw >> shift) & mask;
    if (signed && v & signBit) v -= 1 << stored;
    out[i] = v;
  }
  return out;
}

function lutValue(lut: LookupTable, x: number): number {
  const i = Math.round(x) - lut.firstMapped;
  return lut.data[i < 0 ? 0 : i >= lut.data.length ? lut.data.length - 1 : i]!;
}

/** PS3.3 C.11.2.1.2: the VOI function of a window, output 0…255. */
export function windowFunction(w: { center: number; width: number; function?: VoiLutFunction }): (x: number) => number {
  const c = w.center;
  const width = w.width;
  if (w.function === 'SIGMOID') return (x) => 255 / (1 + Math.exp((-4 * (x - c)) / width));
  if (w.function === 'LINEAR_EXACT') {
    return (x) => (x <= c - width / 2 ? 0 : x > c + width / 2 ? 255 : ((x - c) / width + 0.5) * 255);
  }
  // LINEAR (C.11.2.1.2.1): width ≥ 1.
  const wl = Math.max(width, 1);
  return (x) => (x <= c - 0.5 - (wl - 1) / 2 ? 0 : x > c - 0.5 + (wl - 1) / 2 ? 255 : ((x - (c - 0.5)) / (wl - 1) + 0.5) * 255);
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

function renderGrey(frame: DecodedFrame, d: PixelDescription, window: WindowRequest | undefined): Uint8Array {
  const values = storedValues(frame, d);
  const n = values.length;
  const modality = (x: number) => (d.modalityLut ? lutValue(d.modalityLut, x) : x * d.rescaleSlope + d.rescaleIntercept);
  // VOI choice, PS3.3 C.11.2: the request's window wins; then the object's VOI LUT, then its first window.
  let voi: (x: number) => number;
  if (window) {
    voi = windowFunction(window);
  } else if (d.voiLut) {
    const lut = d.voiLut;
    const max = 2 ** lut.bits - 1;
    voi = (x) => (lutValue(lut, x) / max) * 255;
  } else if (d.windows.length > 0) {
    voi = windowFunction({ ...d.windows[0]!, function: d.voiLutFunction });
  } else {
    // No VOI in the object: the full range of this frame's modality values.
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = modality(values[i]!);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!Number.isFinite(lo)) lo = hi = 0;
    const width = Math.max(hi - lo, 1);
    voi = (x) => ((x - lo) / width) * 255;
  }
  const invert = d.photometricInterpretation === 'MONOCHROME1';
  const out = new Uint8Array(n);
  const stored = values instanceof Int32Array ? Math.min(d.bitsStored, frame.bitsAllocated) : 32;
  if (stored <= 16) {
    // One table over every possible stored value: each pixel is then one lookup.
    const min = d.pixelRepresentation === 1 ? -(2 ** (stored - 1)) : 0;
    const size = 2 ** stored;
    const table = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      const y = clampByte(voi(modality(min + i)));
      table[i] = invert ? 255 - y : y;
    }
    for (let i = 0; i < n; i++) out[i] = table[values[i]! - min]!;
  } else {
    for (let i = 0; i < n; i++) {
      const y = clampByte(voi(modality(values[i]!)));
      out[i] = invert ? 255 - y : y;
    }
  }
  return out;
}

/** YCbCr (full range, ITU-R BT.601) to RGB, PS3.3 C.7.6.3.1.2. */
function ybrToRgb(y: number, cb: number, cr: number, out: Uint8Array, o: number): void {
  out[o] = clampByte(y + 1.402 * (cr - 128));
  out[o + 1] = clampByte(y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128));
  out[o + 2] = clampByte(y + 1.772 * (cb - 128));
}

/** YCbCr partial range (16…235 / 16…240) to RGB (PS3.3 C.7.6.3.1.2 YBR_PARTIAL_422). */
function ybrPartialToRgb(y: number, cb: number, cr: number, out: Uint8Array, o: number): void {
  const yy = 1.1644 * (y - 16);
  out[o] = clampByte(yy + 1.5960 * (cr - 128));
  out[o + 1] = clampByte(yy - 0.3918 * (cb - 128) - 0.8130 * (cr - 128));
  out[o + 2] = clampByte(yy + 2.0172 * (cb - 128));
}

function renderColour(frame: DecodedFrame, d: PixelDescription): Uint8Array {
  const n = d.rows * d.columns;
  const out = new Uint8Array(n * 3);
  const pi = frame.photometricInterpretation;
  const bytes = frame.bitsAllocated / 8;
  const view = new DataView(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength);
  const shift = Math.max(0, Math.min(d.bitsStored, frame.bitsAllocated) - 8);
  const sample = bytes === 1 ? (i: number) => frame.data[i]! : bytes === 2 ? (i: number) => view.getUint16(i * 2, true) >> shift : (i: number) => view.getUint32(i * 4, true) >>> shift;
  if (pi === 'YBR_FULL_422' || pi === 'YBR_PARTIAL_422') {
    if (frame.data.byteLength >= n * 3 * bytes) {
      // A codec already gave three samples per pixel (still YCbCr).
      const convert = pi === 'YBR_FULL_422' ? ybrToRgb : ybrPartialToRgb;
      for (let p = 0; p < n; p++) convert(sample(p * 3), sample(p * 3 + 1), sample(p * 3 + 2), out, p * 3);
      return out;
    }
    // Native 4:2:2: Y1 Y2 Cb Cr for each pair of pixels in a row (PS3.3 C.7.6.3.1.2).
    const convert = pi === 'YBR_FULL_422' ? ybrToRgb : ybrPartialToRgb;
    for (let p = 0; p + 1 < n; p += 2) {
      const base = p * 2;
      const cb = sample(base + 2);
      const cr = sample(base + 3);
      convert(sample(base), cb, cr, out, p * 3);
      convert(sample(base + 1), cb, cr, out, (p + 1) * 3);
    }
    return out;
  }
  if (pi === 'YBR_FULL') {
    for (let p = 0; p < n; p++) ybrToRgb(sample(p * 3), sample(p * 3 + 1), sample(p * 3 + 2), out, p * 3);
    return out;
  }
  if (pi === 'RGB' || pi === 'YBR_ICT' || pi === 'YBR_RCT') {
    if (bytes === 1) return frame.data.subarray(0, n * 3);
    for (let i = 0; i < n * 3; i++) out[i] = Math.min(255, sample(i));
    return out;
  }
  throw new ImagingError('UNSUPPORTED_IMAGE', `Photometric Interpretation ${pi} is not rendered`);
}

function renderPalette(frame: DecodedFrame, d: PixelDescription): Uint8Array {
  const palette = d.palette!;
  const values = storedValues(frame, { ...d, pixelRepresentation: 0 });
  const n = values.length;
  const out = new Uint8Array(n * 3);
  const luts = [palette.red, palette.green, palette.blue];
  for (let p = 0; p < n; p++) {
    for (let s = 0; s < 3; s++) {
      const lut = luts[s]!;
      const v = lutValue(lut, values[p]!);
      out[p * 3 + s] = lut.bits > 8 ? v >> (lut.bits - 8) : v;
    }
  }
  return out;
}

/** The displayable 8-bit image of one decoded frame. */
export function toDisplay(frame: DecodedFrame, d: PixelDescription, window?: WindowRequest): DisplayImage {
  const base = { width: d.columns, height: d.rows };
  if (d.photometricInterpretation === 'PALETTE COLOR') return { ...base, channels: 3, pixels: renderPalette(frame, d) };
  if (d.samplesPerPixel === 1) return { ...base, channels: 1, pixels: renderGrey(frame, d, window) };
  return { ...base, channels: 3, pixels: renderColour(frame, d) };
}
