/**
 * Derived objects (thumbnails, transcoded copies): caches of what can be made
 * again from an instance's bytes, named by its content hash (keys.ts), so one
 * left behind is never served for other bytes; DELETE removes them.
 */
import type { ArchiveContext } from './context';
import { errorCodeOf } from './errors';
import { derivedObjectKey } from './keys';
import type { InstanceRecord } from './ports';

/** The derived object `name` of `r`: read from the store, or made by `make` and stored (a failed store only costs making it again). */
export async function derivedObject(ctx: ArchiveContext, r: InstanceRecord, name: string, contentType: string, make: () => Promise<Uint8Array>): Promise<Uint8Array> {
  const key = derivedObjectKey(r.studyInstanceUID, r.seriesInstanceUID, r.sopInstanceUID, r.contentHash, name);
  const hit = await ctx.blobs.getBytes(key).catch((error: unknown) => {
    if (errorCodeOf(error) === 'BLOB_NOT_FOUND') return undefined;
    throw error;
  });
  if (hit) return hit;
  const bytes = await make();
  await ctx.blobs.put(key, bytes, { contentType }).catch(() => ctx.log.warn('derived.cache_write_failed', { contentType }));
  return bytes;
}
