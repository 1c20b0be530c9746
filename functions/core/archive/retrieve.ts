/**
 * WADO-RS (PS3.18 §10.4): instances as Part 10 (streamed from the stored
 * bytes, preamble zeroed), metadata (pre-rendered DICOM JSON from the index),
 * frames and bulk data (byte ranges of the stored bytes, found by the layout
 * recorded at STOW time: no re-parse).
 */
import type { ArchiveContext } from './context';
import type { InstanceRecord } from './ports';
import { ArchiveError } from './errors';
import { concatBytes, swapBytesPerWord, zeroPreamble } from '../bytes';
import { Tag, TransferSyntax, UNCOMPRESSED_TRANSFER_SYNTAXES } from '../dicom/tags';
import { transcodeNative } from '../dicom/transcode';
import { transcodableTransferSyntaxes, transcodedInstance } from './transcoded';
import type { ResourceUrls } from '../dicomweb/urls';

export interface OutPart {
  contentType: string;
  headers?: Record<string, string>;
  body: Uint8Array | AsyncIterable<Uint8Array>;
}

export function isNative(ts: string): boolean {
  return UNCOMPRESSED_TRANSFER_SYNTAXES.includes(ts);
}

/**
 * Transfer syntaxes an instance can be served in: as stored, between native
 * syntaxes, and through a codec (decoded, or re-encoded losslessly: transcoded.ts).
 */
export function servableTransferSyntaxes(record: InstanceRecord): string[] {
  const plain = isNative(record.transferSyntaxUID) ? [...UNCOMPRESSED_TRANSFER_SYNTAXES] : [record.transferSyntaxUID];
  return [...plain, ...transcodableTransferSyntaxes(record).filter((ts) => !plain.includes(ts))];
}

/** The syntaxes every one of `records` can be served in (for one multipart answer). */
export function commonTransferSyntaxes(records: InstanceRecord[]): string[] {
  let common: string[] | undefined;
  for (const r of records) {
    const mine = servableTransferSyntaxes(r);
    common = common ? common.filter((ts) => mine.includes(ts)) : mine;
  }
  return common ?? [];
}

/** Part 10 parts for each record, in `ts` ('*' = as stored). */
export async function* instanceParts(ctx: ArchiveContext, records: InstanceRecord[], ts: string, urls: ResourceUrls): AsyncGenerator<OutPart> {
  for (const r of records) {
    const target = ts === '*' ? r.transferSyntaxUID : ts;
    const location = urls.instance(r.studyInstanceUID, r.seriesInstanceUID, r.sopInstanceUID);
    const headers = { 'Content-Location': location };
    const contentType = `application/dicom; transfer-syntax=${target}`;
    if (target === r.transferSyntaxUID) {
      yield { contentType, headers, body: zeroPreamble(await ctx.blobs.get(r.blobKey)) };
    } else {
      if (!isNative(target) || !isNative(r.transferSyntaxUID)) {
        yield { contentType, headers, body: await transcodedInstance(ctx, r, target) };
        continue;
      }
      if (r.size > ctx.limits.maxTranscodeBytes) throw new ArchiveError('NOT_ACCEPTABLE', 'object too large to convert; ask for transfer-syntax=*');
      const bytes = await ctx.blobs.getBytes(r.blobKey);
      yield { contentType, headers, body: transcodeNative(bytes, target) };
    }
  }
}

/** Parse "1,3,5" (PS3.18 §10.4.1.1.4): positive integers, no duplicates check needed. */
export function parseFrameList(text: string): number[] {
  const parts = text.split(',');
  if (parts.length === 0 || parts.length > 10_000) throw new ArchiveError('INVALID_FRAME_LIST');
  return parts.map((p) => {
    if (!/^[1-9][0-9]{0,8}$/.test(p.trim())) throw new ArchiveError('INVALID_FRAME_LIST');
    return Number(p);
  });
}

/** Media type of a compressed frame in its own syntax (PS3.18 Table 8.7.3-5). */
export function frameMediaType(ts: string): string {
  if (isNative(ts)) return 'application/octet-stream';
  if (/^1\.2\.840\.10008\.1\.2\.4\.(50|51|57|70)$/.test(ts)) return 'image/jpeg';
  if (/^1\.2\.840\.10008\.1\.2\.4\.(80|81)$/.test(ts)) return 'image/jls';
  if (/^1\.2\.840\.10008\.1\.2\.4\.(90|91|92|93)$/.test(ts)) return 'image/jp2';
  if (/^1\.2\.840\.10008\.1\.2\.4\.(201|202|203)$/.test(ts)) return 'image/jphc';
  if (ts === '1.2.840.10008.1.2.5') return 'image/dicom-rle';
  if (/^1\.2\.840\.10008\.1\.2\.4\.(100|101|102|103|104|105|106)/.test(ts)) return 'video/mpeg';
  return 'application/octet-stream';
}

function bitsAllocated(r: InstanceRecord): number {
  const v = r.metadata?.[Tag.BitsAllocated]?.Value?.[0] ?? r.instanceAttributes[Tag.BitsAllocated]?.Value?.[0];
  return typeof v === 'number' ? v : 16;
}

/** Native pixel bytes of a big-endian object, as little endian. */
function pixelsToLittleEndian(r: InstanceRecord, bytes: Uint8Array): Uint8Array {
  return r.transferSyntaxUID === TransferSyntax.ExplicitVRBigEndian ? swapBytesPerWord(bytes, bitsAllocated(r) / 8) : bytes;
}

/**
 * Frame bytes by byte range. Native frames come as little endian (frames of a
 * big-endian object are byte-swapped); encapsulated frames as stored.
 * Deflated objects have no ranges into the stored bytes: those are inflated once (bounded).
 */
export async function* frameParts(ctx: ArchiveContext, r: InstanceRecord, frames: number[], urls: ResourceUrls): AsyncGenerator<OutPart> {
  const layout = r.layout.pixelData;
  if (!layout) throw new ArchiveError('NOT_FOUND', 'the instance has no pixel data');
  for (const n of frames) if (n > layout.frames.length) throw new ArchiveError('FRAME_OUT_OF_RANGE');
  if (r.layout.deflated) throw new ArchiveError('NOT_ACCEPTABLE', 'frames of deflated objects: retrieve the instance');
  const native = isNative(r.transferSyntaxUID);
  const outTs = native ? TransferSyntax.ExplicitVRLittleEndian : r.transferSyntaxUID;
  const contentType = `${frameMediaType(outTs)}; transfer-syntax=${outTs}`;
  const base = urls.instance(r.studyInstanceUID, r.seriesInstanceUID, r.sopInstanceUID);
  for (const n of frames) {
    const ranges = layout.frames[n - 1]!;
    const pieces = await Promise.all(ranges.map((g) => (g.length === 0 ? new Uint8Array(0) : ctx.blobs.getBytes(r.blobKey, { start: g.offset, end: g.offset + g.length - 1 }))));
    let bytes = concatBytes(pieces);
    if (native) bytes = pixelsToLittleEndian(r, bytes);
    yield { contentType, headers: { 'Content-Location': `${base}/frames/${n}` }, body: bytes };
  }
}

/** Transfer syntax frames of this instance come in (for negotiation). */
export function frameTransferSyntax(r: InstanceRecord): string {
  return isNative(r.transferSyntaxUID) ? TransferSyntax.ExplicitVRLittleEndian : r.transferSyntaxUID;
}

/** One bulk data value by its path ("7FE00010" = pixel data). */
export async function* bulkDataParts(ctx: ArchiveContext, r: InstanceRecord, path: string, urls: ResourceUrls): AsyncGenerator<OutPart> {
  const base = urls.instance(r.studyInstanceUID, r.seriesInstanceUID, r.sopInstanceUID);
  const headers = { 'Content-Location': `${base}/bulkdata/${path}` };
  const pixel = r.layout.pixelData;
  if (pixel && path === pixel.tag) {
    if (pixel.encapsulated) {
      yield* frameParts(ctx, r, pixel.frames.map((_, i) => i + 1), urls);
      return;
    }
    if (r.layout.deflated) throw new ArchiveError('NOT_ACCEPTABLE', 'bulk data of deflated objects: retrieve the instance');
    const end = pixel.valueOffset + (pixel.valueLength ?? 0) - 1;
    const bytes = end >= pixel.valueOffset ? pixelsToLittleEndian(r, await ctx.blobs.getBytes(r.blobKey, { start: pixel.valueOffset, end })) : new Uint8Array(0);
    yield { contentType: 'application/octet-stream', headers, body: bytes };
    return;
  }
  const ref = r.layout.bulkData.find((b) => b.path === path);
  if (!ref) throw new ArchiveError('NOT_FOUND');
  if (r.layout.deflated) throw new ArchiveError('NOT_ACCEPTABLE', 'bulk data of deflated objects: retrieve the instance');
  const bytes = ref.length > 0 ? await ctx.blobs.getBytes(r.blobKey, { start: ref.offset, end: ref.offset + ref.length - 1 }) : new Uint8Array(0);
  yield { contentType: 'application/octet-stream', headers, body: bytes };
}

