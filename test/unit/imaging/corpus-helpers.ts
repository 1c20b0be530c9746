/** Reading frames of the pydicom corpus and reference decodes made by dcmtk, for the imaging tests. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parsePart10, inflatePart10, type ParsedPart10 } from '../../../functions/core/dicom';
import { describePixels, decodeFrame, type DecodedFrame, type PixelDescription } from '../../../functions/core/imaging';
import { PYDICOM_DIR } from '../../helpers/paths';

export interface CorpusImage {
  parsed: ParsedPart10;
  bytes: Uint8Array;
  description: PixelDescription;
}

export async function loadImage(file: string): Promise<CorpusImage> {
  let bytes: Uint8Array = new Uint8Array(fs.readFileSync(path.isAbsolute(file) ? file : path.join(PYDICOM_DIR, file)));
  const parsed = parsePart10(bytes);
  if (parsed.deflated) bytes = inflatePart10(bytes, parsed.datasetOffset);
  const description = await describePixels(parsed.dataset, async (p) => {
    const ref = parsed.bulkData.find((b) => b.path === p)!;
    return bytes.subarray(ref.offset, ref.offset + ref.length);
  });
  return { parsed, bytes, description };
}

/** The stored bytes of frame `index` (0-based): a native frame or its fragments concatenated. */
export function frameBytes(img: CorpusImage, index = 0): Uint8Array {
  const ranges = img.parsed.pixelData!.frames[index]!;
  const total = ranges.reduce((n, r) => n + r.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const r of ranges) {
    out.set(img.bytes.subarray(r.offset, r.offset + r.length), o);
    o += r.length;
  }
  return out;
}

export async function decodeCorpusFrame(file: string, index = 0): Promise<{ img: CorpusImage; frame: DecodedFrame }> {
  const img = await loadImage(file);
  return { img, frame: await decodeFrame(img.parsed.transferSyntaxUID, frameBytes(img, index), img.description, img.parsed.pixelData!.bitOffsets?.[index] ?? 0) };
}

/** dcmtk's decompression of a corpus file to Explicit VR Little Endian, written into `dir`. */
export function dcmtkDecompress(file: string, dir: string, extra: string[] = []): string {
  const ts = parsePart10(new Uint8Array(fs.readFileSync(path.join(PYDICOM_DIR, file)))).transferSyntaxUID;
  const tool = ts === '1.2.840.10008.1.2.5' ? 'dcmdrle' : /^1\.2\.840\.10008\.1\.2\.4\.8[01]$/.test(ts) ? 'dcmdjpls' : 'dcmdjpeg';
  const out = path.join(dir, `${path.basename(file, '.dcm')}-${tool}.dcm`);
  // +te: explicit VR little endian output; dcmdjpeg converts YCbCr to RGB by default (as our decoder does).
  execFileSync(tool, [...extra, '+te', path.join(PYDICOM_DIR, file), out], { stdio: 'pipe' });
  return out;
}

/** Largest absolute difference between two sample buffers read as `bits`-bit little-endian words. */
export function maxDifference(a: Uint8Array, b: Uint8Array, bits: number): number {
  const wa = bits === 16 ? new Uint16Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)) : a;
  const wb = bits === 16 ? new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) : b;
  if (wa.length !== wb.length) return Infinity;
  let max = 0;
  for (let i = 0; i < wa.length; i++) max = Math.max(max, Math.abs(wa[i]! - wb[i]!));
  return max;
}
