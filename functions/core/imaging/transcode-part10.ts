/**
 * Whole-object transcoding for WADO (PS3.18 §8.7.3.5): a Part 10 object in
 * any decodable syntax rewritten in a native syntax (frames decoded) or a
 * lossless compressed one (frames decoded and re-encoded, one fragment per
 * frame with a Basic Offset Table, PS3.5 A.4). Attributes that describe the
 * pixel encoding follow the new pixels (Photometric Interpretation, Planar
 * Configuration; the Extended Offset Table is dropped, it described the old
 * fragments); everything else is written as parsed. Lossy Image Compression
 * (0028,2110) stays as it was: decoding lossy data does not make it lossless.
 */
import { parsePart10, inflatePart10 } from '../dicom/part10';
import { writePart10 } from '../dicom/writer';
import type { DicomJsonDataset } from '../dicom/json-model';
import { TransferSyntax, UNCOMPRESSED_TRANSFER_SYNTAXES } from '../dicom/tags';
import { canDecode, canEncode, decodeFrame, encodeFrameLossless, encodedPhotometric, type DecodedFrame } from './codecs';
import { ImagingError } from './errors';
import { describePixels } from './pixel-description';
import { swapBytesPerWord } from '../bytes';

const BIG_ENDIAN = TransferSyntax.ExplicitVRBigEndian;

/** Bytes per word of a VR whose values are byte-swapped in big endian (PS3.5 §7.3). */
const WORD: Record<string, number> = { OW: 2, US: 2, SS: 2, AT: 2, OL: 4, OF: 4, UL: 4, SL: 4, FL: 4, OD: 8, OV: 8, FD: 8, SV: 8, UV: 8 };


/** Whether `source` can be rewritten as `target` by this module (besides identical syntaxes). */
export function canTranscode(source: string, target: string): boolean {
  if (source === target) return true;
  if (!canDecode(source)) return false;
  return UNCOMPRESSED_TRANSFER_SYNTAXES.includes(target) || canEncode(target);
}

export interface TranscodeLimits {
  /** Most bytes of decoded pixel data held at once (all frames). */
  maxDecodedBytes: number;
}

/**
 * Rewrite `original` (a whole Part 10 file) in `target`. Throws ImagingError
 * (→ 406) when a frame cannot be decoded or encoded, or limits are exceeded.
 */
export async function transcodePart10(original: Uint8Array, target: string, limits: TranscodeLimits): Promise<Uint8Array> {
  const head = parsePart10(original);
  const bytes = head.deflated ? inflatePart10(original, head.datasetOffset, { limits: { maxInflatedBytes: limits.maxDecodedBytes } }) : original;
  const parsed = head;
  const source = parsed.transferSyntaxUID;
  if (!canTranscode(source, target)) throw new ImagingError('UNSUPPORTED_TRANSFER_SYNTAX', `cannot convert ${source} to ${target}`);
  const bulk = (path: string, vr?: string): Uint8Array => {
    const ref = parsed.bulkData.find((b) => b.path === path);
    if (!ref) throw new ImagingError('DECODE_FAILED', `bulk data ${path} is missing`);
    const value = bytes.subarray(ref.offset, ref.offset + ref.length);
    return source === BIG_ENDIAN ? swapBytesPerWord(value, WORD[vr ?? ref.vr] ?? 1) : value;
  };
  const dataset: DicomJsonDataset = { ...parsed.dataset };
  delete dataset['7FE00001'];
  delete dataset['7FE00002'];
  delete dataset['7FE00010'];
  const write = (pixelData: Uint8Array | { fragments: Uint8Array[]; offsetTable: boolean } | undefined) =>
    writePart10(dataset, {
      transferSyntaxUID: target,
      pixelData,
      resolveBulkData: (uri, vr) => bulk(uri, vr),
      mediaStorageSOPClassUID: typeof parsed.fileMeta['00020002']?.Value?.[0] === 'string' ? (parsed.fileMeta['00020002'].Value[0] as string) : undefined,
      mediaStorageSOPInstanceUID: typeof parsed.fileMeta['00020003']?.Value?.[0] === 'string' ? (parsed.fileMeta['00020003'].Value[0] as string) : undefined,
    });
  const layout = parsed.pixelData;
  if (!layout) return write(undefined);
  if (layout.framesUnknown) throw new ImagingError('UNSUPPORTED_IMAGE', 'the frames of this object cannot be told apart');
  const d = await describePixels(parsed.dataset, async (p) => bulk(p));
  if (d.samplesPerPixel === 3 && /_422$/.test(d.photometricInterpretation) && UNCOMPRESSED_TRANSFER_SYNTAXES.includes(source)) {
    throw new ImagingError('UNSUPPORTED_IMAGE', 'native YBR 4:2:2 pixel data is only served uncompressed');
  }
  const frameSize = d.rows * d.columns * d.samplesPerPixel * Math.max(1, d.bitsAllocated / 8);
  if (frameSize * layout.frames.length > limits.maxDecodedBytes) throw new ImagingError('UNSUPPORTED_IMAGE', 'the decoded object would be too large to convert');

  const decoded: DecodedFrame[] = [];
  for (let i = 0; i < layout.frames.length; i++) {
    const ranges = layout.frames[i]!;
    const total = ranges.reduce((n, r) => n + r.length, 0);
    const frame = new Uint8Array(total);
    let o = 0;
    for (const r of ranges) {
      frame.set(bytes.subarray(r.offset, r.offset + r.length), o);
      o += r.length;
    }
    decoded.push(await decodeFrame(source, frame, d, layout.bitOffsets?.[i] ?? 0));
  }
  const photometric = decoded[0]?.photometricInterpretation ?? d.photometricInterpretation;
  if (d.samplesPerPixel === 3) dataset['00280006'] = { vr: 'US', Value: [0] };
  if (UNCOMPRESSED_TRANSFER_SYNTAXES.includes(target)) {
    if (d.bitsAllocated === 1) throw new ImagingError('UNSUPPORTED_IMAGE', '1-bit pixel data is converted between native syntaxes only');
    dataset['00280004'] = { vr: 'CS', Value: [photometric] };
    const total = decoded.reduce((n, f) => n + f.data.byteLength, 0);
    const pixels = new Uint8Array(total);
    let o = 0;
    for (const f of decoded) {
      pixels.set(f.data, o);
      o += f.data.byteLength;
    }
    return write(pixels);
  }
  const fragments: Uint8Array[] = [];
  const encodedPI = encodedPhotometric(target, photometric);
  for (const f of decoded) {
    // The target is lossless: proven for every frame before anyone gets the bytes.
    fragments.push(await encodeFrameLossless(target, f, d));
  }
  dataset['00280004'] = { vr: 'CS', Value: [encodedPI] };
  return write({ fragments, offsetTable: true });
}
