/**
 * DELETE of a study, series or instance (non-standard but common: Orthanc,
 * dcm4chee, Google and Azure offer it). Order: index entries first, bytes
 * second, so a crash can leave only unreferenced bytes — never an index entry
 * whose bytes are gone.
 */
import type { ArchiveContext } from './context';
import { ArchiveError } from './errors';
import { derivedPrefix } from './keys';

export async function deleteResources(ctx: ArchiveContext, study: string, series?: string, sop?: string): Promise<number> {
  const removed = await ctx.index.deleteInstances(study, series, sop);
  if (removed.length === 0) throw new ArchiveError('NOT_FOUND');
  // Bounded parallelism: a 2,000-instance study must not open 2,000 requests at once.
  const queue = removed.map((r) => r.blobKey);
  const workers = Array.from({ length: Math.min(16, queue.length) }, async () => {
    for (let key = queue.pop(); key !== undefined; key = queue.pop()) {
      await ctx.blobs.delete(key).catch((error: unknown) => {
        // Unreferenced bytes are harmless for reads; log (no PHI) and continue.
        ctx.log.warn('delete.blob_failed', { code: (error as { code?: string })?.code });
      });
    }
  });
  await Promise.all(workers);
  // Derived objects (thumbnails, transcoded copies; keys.ts) go with the instances they were made from.
  // They are caches named by content hash: one left behind is never served for other bytes.
  try {
    const derived: string[] = [];
    for await (const key of ctx.blobs.list(derivedPrefix(study, series, series === undefined ? undefined : sop))) derived.push(key);
    for (const key of derived) await ctx.blobs.delete(key);
  } catch (error) {
    ctx.log.warn('delete.derived_failed', { code: (error as { code?: string })?.code });
  }
  ctx.log.info('delete.done', { instances: removed.length });
  return removed.length;
}
