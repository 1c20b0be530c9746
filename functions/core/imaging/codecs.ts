/**
 * Frame decoding and encoding for every transfer syntax the archive renders or
 * transcodes (PS3.5 §8 and Annex A.4): native syntaxes here, compressed ones
 * through the WASM codecs of `dcmjs-codecs` (libjpeg-turbo 8/12/16-bit for
 * JPEG baseline/extended/lossless, CharLS for JPEG-LS, OpenJPEG for JPEG 2000,
 * OpenJPH for HTJ2K, and its RLE codec). The WASM module is loaded once, on the
 * first compressed frame, so a process that never decodes never pays for it;
 * so is the library's JavaScript (~17 MiB of a process's memory).
 *
 * Decoded frames are always little endian, interleaved (planar configuration 0),
 * one value per sample in `bitsAllocated` bits.
 */
import type * as Codecs from 'dcmjs-codecs';
import { TransferSyntax } from '../dicom/tags';
import { ImagingError } from './errors';
import { nativeFrameBytes, type PixelDescription } from './pixel-description';
import { swapBytesPerWord } from '../bytes';

type Context = Codecs.Context;
let codecsModule: typeof Codecs | undefined;

/** dcmjs-codecs, required on first use (an idle archive stays ~17 MiB smaller). */
function codecs(): typeof Codecs {
  return (codecsModule ??= require('dcmjs-codecs') as typeof Codecs);
}

export const TS = {
  ...TransferSyntax,
  RLELossless: '1.2.840.10008.1.2.5',
  JPEGBaseline8Bit: '1.2.840.10008.1.2.4.50',
  JPEGExtended12Bit: '1.2.840.10008.1.2.4.51',
  JPEGLossless: '1.2.840.10008.1.2.4.57',
  JPEGLosslessSV1: '1.2.840.10008.1.2.4.70',
  JPEGLSLossless: '1.2.840.10008.1.2.4.80',
  JPEGLSNearLossless: '1.2.840.10008.1.2.4.81',
  JPEG2000Lossless: '1.2.840.10008.1.2.4.90',
  JPEG2000: '1.2.840.10008.1.2.4.91',
  JPEG2000MCLossless: '1.2.840.10008.1.2.4.92',
  JPEG2000MC: '1.2.840.10008.1.2.4.93',
  HTJ2KLossless: '1.2.840.10008.1.2.4.201',
  HTJ2KLosslessRPCL: '1.2.840.10008.1.2.4.202',
  HTJ2K: '1.2.840.10008.1.2.4.203',
} as const;

type DecodeFn = 'decodeRle' | 'decodeJpeg' | 'decodeJpegLs' | 'decodeJpeg2000' | 'decodeHtJpeg2000';

const DECODERS: Record<string, DecodeFn> = {
  [TS.RLELossless]: 'decodeRle',
  [TS.JPEGBaseline8Bit]: 'decodeJpeg',
  [TS.JPEGExtended12Bit]: 'decodeJpeg',
  [TS.JPEGLossless]: 'decodeJpeg',
  [TS.JPEGLosslessSV1]: 'decodeJpeg',
  [TS.JPEGLSLossless]: 'decodeJpegLs',
  [TS.JPEGLSNearLossless]: 'decodeJpegLs',
  [TS.JPEG2000Lossless]: 'decodeJpeg2000',
  [TS.JPEG2000]: 'decodeJpeg2000',
  [TS.JPEG2000MCLossless]: 'decodeJpeg2000',
  [TS.JPEG2000MC]: 'decodeJpeg2000',
  [TS.HTJ2KLossless]: 'decodeHtJpeg2000',
  [TS.HTJ2KLosslessRPCL]: 'decodeHtJpeg2000',
  [TS.HTJ2K]: 'decodeHtJpeg2000',
};

/** Lossless targets a frame can be re-encoded into (WADO transcoding, PS3.18 §8.7.3.5). */
const ENCODERS: Record<string, (c: Context) => Context> = {
  [TS.RLELossless]: (c) => codecs().NativeCodecs.encodeRle(c, {}),
  [TS.JPEGLosslessSV1]: (c) => codecs().NativeCodecs.encodeJpeg(c, { lossy: false, predictor: 1, pointTransform: 0 }),
  [TS.JPEGLSLossless]: (c) => codecs().NativeCodecs.encodeJpegLs(c, { lossy: false }),
  [TS.JPEG2000Lossless]: (c) => codecs().NativeCodecs.encodeJpeg2000(c, { lossy: false }),
  [TS.HTJ2KLossless]: (c) => codecs().NativeCodecs.encodeHtJpeg2000(c, { lossy: false }),
  [TS.HTJ2KLosslessRPCL]: (c) => codecs().NativeCodecs.encodeHtJpeg2000(c, { lossy: false, progressionOrder: 2 }),
};

const NATIVE = new Set<string>([TS.ImplicitVRLittleEndian, TS.ExplicitVRLittleEndian, TS.ExplicitVRBigEndian, TS.DeflatedExplicitVRLittleEndian, TS.EncapsulatedUncompressedExplicitVRLittleEndian]);

export function canDecode(ts: string): boolean {
  return NATIVE.has(ts) || ts in DECODERS;
}

/** Syntaxes a decoded frame can be encoded into (besides the native ones). */
export function encodableTransferSyntaxes(): string[] {
  return Object.keys(ENCODERS);
}

export function canEncode(ts: string): boolean {
  return ts in ENCODERS;
}

/**
 * Most bits per sample each encoder keeps losslessly: JPEG lossless, JPEG-LS
 * and the JPEG 2000 family as built here take at most 16 (a 32-bit frame comes
 * back altered); RLE takes 32 (PS3.5 G.2: up to 15 byte segments).
 */
const ENCODER_MAX_BITS: Record<string, number> = { [TS.RLELossless]: 32 };

export function canEncodeBits(ts: string, bitsAllocated: number): boolean {
  return canEncode(ts) && bitsAllocated <= (ENCODER_MAX_BITS[ts] ?? 16);
}

export interface CodecOptions {
  /** Where the codecs' .wasm file is; default: beside the dcmjs-codecs module (or the bundle). */
  wasmPath?: string;
}

let ready: Promise<void> | undefined;
let wasmPath: string | undefined;

/** Point the codec loader at the .wasm file (Lambda bundles ship it beside index.js). */
export function configureCodecs(options: CodecOptions): void {
  wasmPath = options.wasmPath;
}

/** Load the WASM codecs once; concurrent callers share the load; a failed load is retried next time. */
export function loadCodecs(): Promise<void> {
  ready ??= codecs().NativeCodecs.initializeAsync({ webAssemblyModulePathOrUrl: wasmPath, logCodecsInfo: false, logCodecsTrace: false }).catch((error: unknown) => {
    ready = undefined;
    throw error;
  });
  return ready;
}

export interface DecodedFrame {
  /** little endian, interleaved samples of `bitsAllocated` bits (1-bit frames are unpacked to one byte per pixel) */
  data: Uint8Array;
  bitsAllocated: number;
  /**
   * The photometric interpretation of `data`: codecs that undo a colour transform
   * (JPEG YCbCr, JPEG 2000 ICT/RCT) return RGB, whatever the data set says
   * (PS3.5 §8.2.1, §8.2.4).
   */
  photometricInterpretation: string;
}

/** Planar (RRR…GGG…BBB…) to interleaved samples. */
function interleave(bytes: Uint8Array, pixels: number, bytesPerSample: number): Uint8Array {
  const out = new Uint8Array(pixels * 3 * bytesPerSample);
  const plane = pixels * bytesPerSample;
  for (let p = 0; p < pixels; p++) {
    for (let s = 0; s < 3; s++) {
      for (let b = 0; b < bytesPerSample; b++) out[(p * 3 + s) * bytesPerSample + b] = bytes[s * plane + p * bytesPerSample + b]!;
    }
  }
  return out;
}

/** Native 1-bit frames (PS3.5 §8.1.1: bit 0 of each byte first) to one byte per pixel. */
function unpackBits(bytes: Uint8Array, pixels: number, bitOffset: number): Uint8Array {
  const out = new Uint8Array(pixels);
  for (let i = 0; i < pixels; i++) {
    const bit = bitOffset + i;
    out[i] = ((bytes[bit >> 3] ?? 0) >> (bit & 7)) & 1;
  }
  return out;
}

/**
 * Width and height a compressed stream declares, read from its header before
 * any decoding: JPEG / JPEG-LS start-of-frame (ITU-T T.81 B.2.2, T.87 C.2.2),
 * JPEG 2000 / HTJ2K SIZ (ISO/IEC 15444-1 A.5.1). undefined when the header is
 * not found (RLE has none: its size comes from the data set).
 */
export function declaredDimensions(ts: string, bytes: Uint8Array): { width: number; height: number } | undefined {
  const fn = DECODERS[ts];
  if (fn === 'decodeJpeg' || fn === 'decodeJpegLs') {
    let i = 2;
    while (i + 9 < bytes.length) {
      if (bytes[i] !== 0xff) {
        i++;
        continue;
      }
      const m = bytes[i + 1]!;
      if (m === 0xff || m === 0x00 || (m >= 0xd0 && m <= 0xd8) || m === 0x01) {
        i += m === 0xff ? 1 : 2;
        continue;
      }
      const length = (bytes[i + 2]! << 8) | bytes[i + 3]!;
      const sof = (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) || m === 0xf7;
      if (sof) return { height: (bytes[i + 5]! << 8) | bytes[i + 6]!, width: (bytes[i + 7]! << 8) | bytes[i + 8]! };
      if (m === 0xda) return undefined; // scan data before any frame header
      i += 2 + length;
    }
    return undefined;
  }
  if (fn === 'decodeJpeg2000' || fn === 'decodeHtJpeg2000') {
    // The codestream may sit in a JP2 box: look for SOC + SIZ in the first bytes.
    const limit = Math.min(bytes.length - 20, 4096);
    for (let i = 0; i < limit; i++) {
      if (bytes[i] === 0xff && bytes[i + 1] === 0x4f && bytes[i + 2] === 0xff && bytes[i + 3] === 0x51) {
        const v = new DataView(bytes.buffer, bytes.byteOffset + i + 4);
        const xsiz = v.getUint32(4);
        const ysiz = v.getUint32(8);
        const x0 = v.getUint32(12);
        const y0 = v.getUint32(16);
        return { width: xsiz - x0, height: ysiz - y0 };
      }
    }
  }
  return undefined;
}

/**
 * One frame's pixels from its bytes as stored: a native frame (bit offset for
 * 1-bit data), or the concatenated fragments of an encapsulated one.
 */
export async function decodeFrame(ts: string, frame: Uint8Array, d: PixelDescription, bitOffset = 0): Promise<DecodedFrame> {
  const pixels = d.rows * d.columns;
  if (NATIVE.has(ts)) {
    if (d.bitsAllocated === 1) return { data: unpackBits(frame, pixels, bitOffset), bitsAllocated: 8, photometricInterpretation: d.photometricInterpretation };
    const expected = nativeFrameBytes(d);
    if (frame.byteLength < expected) throw new ImagingError('DECODE_FAILED', `the frame has ${frame.byteLength} bytes, ${expected} expected`);
    let data = frame.subarray(0, expected);
    if (ts === TS.ExplicitVRBigEndian && d.bitsAllocated > 8) data = swapBytesPerWord(data, d.bitsAllocated / 8);
    if (d.samplesPerPixel === 3 && d.planarConfiguration === 1 && !d.photometricInterpretation.endsWith('_422')) data = interleave(data, pixels, d.bitsAllocated / 8);
    return { data, bitsAllocated: d.bitsAllocated, photometricInterpretation: d.photometricInterpretation };
  }
  const fn = DECODERS[ts];
  if (!fn) throw new ImagingError('UNSUPPORTED_TRANSFER_SYNTAX', `no decoder for transfer syntax ${ts}`);
  // Never let a stream's own header size the decoder's buffers: it must match the data set,
  // whose size was bounded by describePixels (a 3 kB JPEG may declare 65535 × 65535).
  const declared = declaredDimensions(ts, frame);
  if (declared && (declared.width !== d.columns || declared.height !== d.rows)) {
    throw new ImagingError('DECODE_FAILED', `the ${ts} stream is ${declared.width}×${declared.height}, the data set says ${d.columns}×${d.rows}`);
  }
  if (!declared && fn !== 'decodeRle') throw new ImagingError('DECODE_FAILED', `the ${ts} frame has no readable header`);
  await loadCodecs();
  const context = new (codecs().Context)({
    width: d.columns,
    height: d.rows,
    bitsAllocated: d.bitsAllocated,
    bitsStored: d.bitsStored,
    samplesPerPixel: d.samplesPerPixel,
    pixelRepresentation: d.pixelRepresentation,
    planarConfiguration: d.planarConfiguration,
    photometricInterpretation: d.photometricInterpretation,
    encodedBuffer: frame,
  });
  let out: Context;
  try {
    out = codecs().NativeCodecs[fn](context, { convertColorspaceToRgb: true });
  } catch (error) {
    throw new ImagingError('DECODE_FAILED', `the ${ts} frame could not be decoded`, { cause: error });
  }
  const data = out.getDecodedBuffer();
  const bytesPerSample = d.bitsAllocated <= 8 ? 1 : d.bitsAllocated / 8;
  const expected = pixels * d.samplesPerPixel * bytesPerSample;
  if (!data || data.byteLength < expected) throw new ImagingError('DECODE_FAILED', `the ${ts} frame decoded to ${data?.byteLength ?? 0} bytes, ${expected} expected`);
  let result = data.subarray(0, expected);
  // RLE keeps the colour space and the planar configuration of the data set (PS3.5 G.2).
  if (d.samplesPerPixel === 3 && out.getPlanarConfiguration() === 1) result = interleave(result, pixels, bytesPerSample);
  let photometricInterpretation = out.getPhotometricInterpretation() ?? d.photometricInterpretation;
  // JPEG 2000 decoders undo the ICT/RCT component transform (PS3.5 §8.2.4): the samples are RGB.
  if (photometricInterpretation === 'YBR_ICT' || photometricInterpretation === 'YBR_RCT') photometricInterpretation = 'RGB';
  // JPEG decoders upsample 4:2:2 and convert YCbCr to RGB when asked (PS3.5 §8.2.1).
  return { data: new Uint8Array(result), bitsAllocated: bytesPerSample * 8, photometricInterpretation };
}

/** Photometric interpretation of frames re-encoded from decoded `RGB`/`MONOCHROME*` samples (PS3.5 §8.2). */
export function encodedPhotometric(ts: string, decoded: string): string {
  if (decoded !== 'RGB') return decoded;
  // Lossless JPEG 2000 with the reversible colour transform (PS3.5 §8.2.4).
  if (ts === TS.JPEG2000Lossless || ts === TS.HTJ2KLossless || ts === TS.HTJ2KLosslessRPCL) return 'YBR_RCT';
  return 'RGB';
}

/** Encode decoded samples (little endian, interleaved) into a lossless compressed syntax. */
export async function encodeFrame(ts: string, frame: DecodedFrame, d: PixelDescription): Promise<Uint8Array> {
  const encode = ENCODERS[ts];
  if (!encode) throw new ImagingError('UNSUPPORTED_TRANSFER_SYNTAX', `no encoder for transfer syntax ${ts}`);
  if (!canEncodeBits(ts, frame.bitsAllocated)) throw new ImagingError('UNSUPPORTED_TRANSFER_SYNTAX', `${ts} does not hold ${frame.bitsAllocated}-bit samples losslessly`);
  await loadCodecs();
  const context = new (codecs().Context)({
    width: d.columns,
    height: d.rows,
    bitsAllocated: frame.bitsAllocated,
    bitsStored: frame.bitsAllocated === d.bitsAllocated ? d.bitsStored : frame.bitsAllocated,
    samplesPerPixel: d.samplesPerPixel,
    pixelRepresentation: d.pixelRepresentation,
    planarConfiguration: 0,
    photometricInterpretation: frame.photometricInterpretation,
    decodedBuffer: frame.data,
  });
  try {
    const encoded = encode(context).getEncodedBuffer();
    if (!encoded) throw new Error('no output');
    return new Uint8Array(encoded);
  } catch (error) {
    throw new ImagingError('DECODE_FAILED', `the frame could not be encoded as ${ts}`, { cause: error });
  }
}

/**
 * encodeFrame into a lossless syntax, proven: the result is decoded again and
 * compared sample for sample before anyone gets it. A codec that silently
 * truncates samples must cost a 406, never altered pixels.
 */
export async function encodeFrameLossless(ts: string, frame: DecodedFrame, d: PixelDescription): Promise<Uint8Array> {
  const encoded = await encodeFrame(ts, frame, d);
  const back = await decodeFrame(ts, encoded, { ...d, photometricInterpretation: encodedPhotometric(ts, frame.photometricInterpretation), planarConfiguration: 0 });
  if (!sameBytes(back.data, frame.data)) throw new ImagingError('UNSUPPORTED_IMAGE', `${ts} would not keep these pixels unchanged`);
  return encoded;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Encode an 8-bit grey or RGB raster as a baseline JPEG (JFIF) of the given quality (1–100). */
export async function encodeJpegImage(pixels: Uint8Array, width: number, height: number, channels: 1 | 3, quality: number): Promise<Uint8Array> {
  await loadCodecs();
  const context = new (codecs().Context)({
    width,
    height,
    bitsAllocated: 8,
    bitsStored: 8,
    samplesPerPixel: channels,
    pixelRepresentation: 0,
    planarConfiguration: 0,
    // RGB input: the encoder converts to YCbCr and writes a JFIF header (what browsers expect).
    photometricInterpretation: channels === 3 ? 'RGB' : 'MONOCHROME2',
    decodedBuffer: pixels,
  });
  const encoded = codecs().NativeCodecs.encodeJpeg(context, { lossy: true, quality }).getEncodedBuffer();
  if (!encoded) throw new ImagingError('DECODE_FAILED', 'JPEG encoding failed');
  return new Uint8Array(encoded);
}
