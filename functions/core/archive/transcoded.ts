/**
 * Instances in a transfer syntax other than the stored one (PS3.18 §8.7.3.5):
 * made from the stored bytes by core/imaging, and cached as derived objects
 * (keys.ts), because decoding or encoding a large multi-frame object costs
 * seconds and a viewer asks again. Conversions between native syntaxes stay
 * with transcodeNative (no cache: they are cheap).
 */
import type { ArchiveContext } from './context';
import { ArchiveError } from './errors';
import { derivedObjectKey } from './keys';
import type { InstanceRecord } from './ports';
import { canTranscode, transcodePart10 } from '../imaging/transcode-part10';
import { canEncode, canEncodeBits, encodableTransferSyntaxes } from '../imaging/codecs';
import { UNCOMPRESSED_TRANSFER_SYNTAXES } from '../dicom/tags';

/** Syntaxes an instance can be served in through a codec (besides the stored one and native↔native). */
export function transcodableTransferSyntaxes(r: InstanceRecord): string[] {
  const p = r.layout.pixelData;
  // Without locatable frames (video, unknown fragmentation) or pixel data there is nothing to convert.
  if (!p || p.framesUnknown || p.frames.length === 0) return [];
  const targets = [...UNCOMPRESSED_TRANSFER_SYNTAXES, ...encodableTransferSyntaxes()];
  const bitsValue = (r.metadata ?? r.instanceAttributes)['00280100']?.Value?.[0];
  const bits = typeof bitsValue === 'number' ? bitsValue : 16;
  return targets.filter((ts) => ts !== r.transferSyntaxUID && canTranscode(r.transferSyntaxUID, ts) && (!canEncode(ts) || canEncodeBits(ts, bits)));
}

export async function transcodedInstance(ctx: ArchiveContext, r: InstanceRecord, target: string): Promise<Uint8Array> {
  if (r.size > ctx.limits.maxTranscodeBytes) throw new ArchiveError('NOT_ACCEPTABLE', 'object too large to convert; ask for transfer-syntax=*');
  const key = derivedObjectKey(r.studyInstanceUID, r.seriesInstanceUID, r.sopInstanceUID, r.contentHash, `${target}.dcm`);
  const hit = await ctx.blobs.getBytes(key).catch((error: unknown) => {
    if ((error as { code?: string })?.code === 'BLOB_NOT_FOUND') return undefined;
    throw error;
  });
  if (hit) return hit;
  const started = Date.now();
  const out = await transcodePart10(await ctx.blobs.getBytes(r.blobKey), target, { maxDecodedBytes: ctx.limits.maxTranscodeBytes });
  ctx.log.info('transcode.done', { from: r.transferSyntaxUID, to: target, ms: Date.now() - started, bytes: out.byteLength });
  // A cache: a failed write only costs a conversion next time.
  await ctx.blobs.put(key, out, { contentType: 'application/dicom' }).catch(() => ctx.log.warn('transcode.cache_write_failed', {}));
  return out;
}
