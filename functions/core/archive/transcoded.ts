/**
 * Instances in a transfer syntax other than the stored one (PS3.18 §8.7.3.5):
 * made from the stored bytes by core/imaging, and cached as derived objects
 * (keys.ts), because decoding or encoding a large multi-frame object costs
 * seconds and a viewer asks again. Conversions between native syntaxes stay
 * with transcodeNative (no cache: they are cheap).
 */
import type { ArchiveContext } from './context';
import { ArchiveError } from './errors';
import { derivedObject } from './derived';
import type { InstanceRecord } from './ports';
import { canTranscode, transcodePart10 } from '../imaging/transcode-part10';
import { canEncode, canEncodeBits, decodeFrame, encodableTransferSyntaxes, encodeFrameLossless } from '../imaging/codecs';
import { hasLocatableFrames, instanceDescription, rangeReader, storedFrame } from './stored-frames';
import { frameMediaType, isNative, type OutPart } from './retrieve';
import type { Offer } from '../dicomweb/accept';
import type { ResourceUrls } from '../dicomweb/urls';
import { TransferSyntax, UNCOMPRESSED_TRANSFER_SYNTAXES } from '../dicom/tags';

/** Syntaxes an instance can be served in through a codec (besides the stored one and native↔native). */
export function transcodableTransferSyntaxes(r: InstanceRecord): string[] {
  // Without locatable frames (video, unknown fragmentation) or pixel data there is nothing to convert.
  if (!hasLocatableFrames(r)) return [];
  const targets = [...UNCOMPRESSED_TRANSFER_SYNTAXES, ...encodableTransferSyntaxes()];
  const bitsValue = (r.metadata ?? r.instanceAttributes)['00280100']?.Value?.[0];
  const bits = typeof bitsValue === 'number' ? bitsValue : 16;
  return targets.filter((ts) => ts !== r.transferSyntaxUID && canTranscode(r.transferSyntaxUID, ts) && (!canEncode(ts) || canEncodeBits(ts, bits)));
}

export async function transcodedInstance(ctx: ArchiveContext, r: InstanceRecord, target: string): Promise<Uint8Array> {
  if (r.size > ctx.limits.maxTranscodeBytes) throw new ArchiveError('NOT_ACCEPTABLE', 'object too large to convert; ask for transfer-syntax=*');
  return derivedObject(ctx, r, `${target}.dcm`, 'application/dicom', async () => {
    const started = Date.now();
    const out = await transcodePart10(await ctx.blobs.getBytes(r.blobKey), target, { maxDecodedBytes: ctx.limits.maxTranscodeBytes });
    ctx.log.info('transcode.done', { from: r.transferSyntaxUID, to: target, ms: Date.now() - started, bytes: out.byteLength });
    return out;
  });
}

// ---------------------------------------------------------------- frames (PS3.18 §10.4.1.1.4, §8.7.3.5)

/** Default transfer syntax of a frame media type when the Accept names none (PS3.18 Table 8.7.3-5). */
const FRAME_DEFAULT: Record<string, string> = {
  'image/jp2': '1.2.840.10008.1.2.4.90',
  'image/jphc': '1.2.840.10008.1.2.4.201',
  'image/jls': '1.2.840.10008.1.2.4.80',
  'image/dicom-rle': '1.2.840.10008.1.2.5',
  'image/jpeg': '1.2.840.10008.1.2.4.50',
};

/**
 * Offers for frames in syntaxes other than the stored one: decoded
 * (application/octet-stream, Explicit VR LE) and re-encoded losslessly in each
 * media type's syntax. Listed after the stored representation, so they are
 * only chosen when the request asks for them.
 */
export function frameTranscodeOffers(r: InstanceRecord): Offer[] {
  const targets = transcodableTransferSyntaxes(r).filter((ts) => ts !== TransferSyntax.ImplicitVRLittleEndian && ts !== TransferSyntax.ExplicitVRBigEndian);
  return targets.map((ts) => {
    const type = isNative(ts) ? 'application/octet-stream' : frameMediaType(ts);
    return { mediaType: 'multipart/related', type, transferSyntaxes: [ts], defaultTransferSyntax: type === 'application/octet-stream' ? TransferSyntax.ExplicitVRLittleEndian : FRAME_DEFAULT[type] ?? ts };
  });
}

/** Frames decoded (native, little endian) or re-encoded in `target`, one part each. */
export async function* transcodedFrameParts(ctx: ArchiveContext, record: InstanceRecord, frames: number[], target: string, urls: ResourceUrls): AsyncGenerator<OutPart> {
  const r = record.metadata ? record : await ctx.index.getInstance({ studyInstanceUID: record.studyInstanceUID, seriesInstanceUID: record.seriesInstanceUID, sopInstanceUID: record.sopInstanceUID }, { withMetadata: true });
  if (!r) throw new ArchiveError('NOT_FOUND');
  const count = r.layout.pixelData?.frames.length ?? 0;
  for (const n of frames) if (n > count) throw new ArchiveError('FRAME_OUT_OF_RANGE');
  const read = rangeReader(ctx, r);
  const description = await instanceDescription(ctx, r, read);
  const base = urls.instance(r.studyInstanceUID, r.seriesInstanceUID, r.sopInstanceUID);
  const contentType = `${isNative(target) ? 'application/octet-stream' : frameMediaType(target)}; transfer-syntax=${target}`;
  for (const n of frames) {
    const f = await storedFrame(ctx, r, n, read, description);
    const decoded = await decodeFrame(f.transferSyntaxUID, f.bytes, description, f.bitOffset);
    let body = decoded.data;
    if (!isNative(target)) {
      // Lossless means lossless: the round trip is checked before sending.
      body = await encodeFrameLossless(target, decoded, description);
    }
    yield { contentType, headers: { 'Content-Location': `${base}/frames/${n}` }, body };
  }
}
