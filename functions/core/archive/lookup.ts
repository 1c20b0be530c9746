/**
 * The index reads every resource route starts with: the instances of a study
 * or series, one instance, or their stored metadata, with 404 when there are
 * none. One place, so WADO-RS, rendered/thumbnail and ZIP routes answer a
 * missing resource alike.
 */
import type { ArchiveContext } from './context';
import { ArchiveError } from './errors';
import type { InstanceRecord, StoredMetadata } from './ports';

/** Everything `items` yields; 404 when it yields nothing (a study or series with no instances). */
async function allOrNotFound<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  if (out.length === 0) throw new ArchiveError('NOT_FOUND');
  return out;
}

/** The instances of a study (or one series), in index order. */
export function allRecords(ctx: ArchiveContext, study: string, series?: string, withMetadata = false): Promise<InstanceRecord[]> {
  return allOrNotFound(ctx.index.listInstances(study, series, { withMetadata }));
}

/** The stored metadata of a study (or one series). */
export function allMetadata(ctx: ArchiveContext, study: string, series?: string): Promise<StoredMetadata[]> {
  return allOrNotFound(ctx.index.listMetadata(study, series));
}

/** The instance named by the route's {study}, {series} (if any) and {instance}. */
export async function oneRecord(ctx: ArchiveContext, p: Record<string, string>, withMetadata = false): Promise<InstanceRecord> {
  const r = await ctx.index.getInstance({ studyInstanceUID: p.study!, seriesInstanceUID: p.series, sopInstanceUID: p.instance! }, { withMetadata });
  if (!r) throw new ArchiveError('NOT_FOUND');
  return r;
}
