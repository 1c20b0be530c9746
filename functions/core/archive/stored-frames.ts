/**
 * One frame of a stored instance as its stored bytes (byte ranges of the
 * original object, or of its inflated data set when deflated), with the pixel
 * description needed to decode it: shared by rendering, WADO-URI and frame
 * transcoding.
 */
import type { ArchiveContext } from './context';
import { ArchiveError } from './errors';
import type { InstanceRecord } from './ports';
import { concatBytes, swapBytesPerWord } from '../bytes';
import { inflatePart10 } from '../dicom/part10';
import { describePixels, type PixelDescription } from '../imaging';

/** One frame's stored bytes and what is needed to decode it. */
export interface StoredFrame {
  transferSyntaxUID: string;
  bytes: Uint8Array;
  bitOffset: number;
  description: PixelDescription;
}

/** Deflated objects have no byte ranges into the stored bytes: inflated once per request (bounded). */
async function inflatedBytes(ctx: ArchiveContext, r: InstanceRecord): Promise<Uint8Array> {
  if (r.size > ctx.limits.maxTranscodeBytes) throw new ArchiveError('NOT_ACCEPTABLE', 'object too large to inflate for rendering');
  return inflatePart10(await ctx.blobs.getBytes(r.blobKey), r.layout.datasetOffset, { limits: { maxInflatedBytes: ctx.limits.maxTranscodeBytes } });
}

/** Reads byte ranges of an instance's stored bytes (or of its inflated data set when deflated). */
export function rangeReader(ctx: ArchiveContext, r: InstanceRecord): (offset: number, length: number) => Promise<Uint8Array> {
  let inflated: Promise<Uint8Array> | undefined;
  return async (offset, length) => {
    if (length === 0) return new Uint8Array(0);
    if (r.layout.deflated) {
      inflated ??= inflatedBytes(ctx, r);
      return (await inflated).subarray(offset, offset + length);
    }
    return ctx.blobs.getBytes(r.blobKey, { start: offset, end: offset + length - 1 });
  };
}

/** The pixel description of an instance (metadata from the index, LUT bulk data read by range). */
export async function instanceDescription(ctx: ArchiveContext, r: InstanceRecord, read = rangeReader(ctx, r)): Promise<PixelDescription> {
  if (!r.metadata) throw new Error('instance metadata is required');
  return describePixels(r.metadata, async (path) => {
    const ref = r.layout.bulkData.find((b) => b.path === path);
    if (!ref) throw new ArchiveError('NOT_ACCEPTABLE', 'a lookup table of the image is missing');
    if (ref.length > 256 * 1024) throw new ArchiveError('NOT_ACCEPTABLE', 'a lookup table of the image is too large');
    const bytes = await read(ref.offset, ref.length);
    // OW lookup tables of a big-endian object are swapped per word (PS3.5 §7.3).
    return r.transferSyntaxUID === '1.2.840.10008.1.2.2' ? swapBytesPerWord(bytes, 2) : bytes;
  });
}

/** Frames that can be located in the stored bytes (not video, not an unknown fragmentation, not zero). */
export function hasLocatableFrames(r: InstanceRecord): boolean {
  const p = r.layout.pixelData;
  return !!p && !p.framesUnknown && p.frames.length > 0;
}

/** An image the rendered, thumbnail and WADO-URI routes can draw: locatable frames and Rows in its metadata. */
export function isRenderable(r: InstanceRecord): boolean {
  return hasLocatableFrames(r) && r.metadata?.['00280010'] !== undefined;
}

/** Frame `n` (1-based) as stored. */
export async function storedFrame(ctx: ArchiveContext, r: InstanceRecord, n: number, read = rangeReader(ctx, r), description?: PixelDescription): Promise<StoredFrame> {
  const layout = r.layout.pixelData;
  if (!layout || !hasLocatableFrames(r)) throw new ArchiveError('NOT_ACCEPTABLE', 'the instance has no frames that can be rendered');
  if (n < 1 || n > layout.frames.length) throw new ArchiveError('FRAME_OUT_OF_RANGE');
  const d = description ?? (await instanceDescription(ctx, r, read));
  const pieces = await Promise.all(layout.frames[n - 1]!.map((g) => read(g.offset, g.length)));
  return { transferSyntaxUID: r.transferSyntaxUID, bytes: concatBytes(pieces), bitOffset: layout.bitOffsets?.[n - 1] ?? 0, description: d };
}
