/**
 * Ingest of one uploaded object (docs/upload-api.md): judge it exactly as STOW
 * judges an instance (store.ts: the same header checks, the same one pass of
 * hashing and pixel data scanning, the same record and commit), and index it
 * where it lies — the record's blobKey is the upload key, the bytes are never
 * copied.
 *
 * Memory is bounded whatever the object's size: the header is read with ranged
 * reads that start at 64 KiB and double (at most ctx.limits.maxHeaderBytes),
 * the rest is streamed once.
 *
 * Delivery is at least once (S3 event → SQS → Lambda; the in-process queue of
 * embedded mode), so every path is idempotent:
 * - the same object again → the index answers `identical` with this very key:
 *   stored, bytes kept (a redelivery of an ingested object is answered from
 *   the result record and the index, without reading the object again);
 * - the same content already stored from elsewhere → stored (pointing there),
 *   this copy deleted;
 * - another object under a stored SOP Instance UID → failed 0x0111, this copy
 *   deleted, nothing overwritten;
 * - a malformed object → failed with the FailureReason STOW would give, the
 *   object deleted. The result record is written before the delete, so a retry
 *   after a failed delete judges the object again.
 * Bytes the index references are never deleted: no index entry without bytes.
 *
 * Failures that are not the object's (store or index unavailable) throw: the
 * caller retries (SQS redelivery, then the dead-letter queue).
 */
import type { ArchiveContext } from './context';
import { errorCodeOf } from './errors';
import { UPLOAD_STATUS_PREFIX, uploadIdOfKey, uploadStatusOfKey } from './keys';
import { buildInstanceRecord, commitInstance, headerFailure, InstanceBytes, judgeHeader, readHeader, type Echo, type InstanceUIDs } from './store';
import { readUploadRecord, writeUploadRecord, type UploadResult } from './upload';
import { FailureReason } from '../dicomweb/stow-response';
import type { ParsedPart10 } from '../dicom/part10-types';

export type IngestOutcome =
  | { state: 'stored' | 'failed'; uploadId: string; result: UploadResult }
  /** Nothing to do: not an upload key, or the object is gone (ingested and deleted, or judged before). */
  | { state: 'skipped'; reason: 'NOT_AN_UPLOAD_KEY' | 'OBJECT_GONE' };

export interface IngestOptions {
  /** Refuse objects larger than this (the upload API's limit). */
  maxUploadBytes?: number;
}

const FIRST_READ = 64 * 1024;

export async function ingestUploadedObject(ctx: ArchiveContext, key: string, options: IngestOptions = {}): Promise<IngestOutcome> {
  const uploadId = uploadIdOfKey(key);
  if (!uploadId) return { state: 'skipped', reason: 'NOT_AN_UPLOAD_KEY' };
  const started = Date.now();

  const gone = async (): Promise<IngestOutcome> => {
    // Gone without a result: deleted by hand, or a crash between a conflict's delete and its record.
    const [created, result] = await Promise.all([readUploadRecord(ctx, uploadId, 'created'), readUploadRecord(ctx, uploadId, 'result')]);
    if (created && !result) await writeUploadRecord(ctx, uploadId, 'result', { state: 'failed', at: ctx.now().toISOString(), reason: 'OBJECT_GONE' });
    ctx.log.info('upload.ingest.skipped', { uploadId, reason: 'OBJECT_GONE' });
    return { state: 'skipped', reason: 'OBJECT_GONE' };
  };

  const info = await ctx.blobs.head(key);
  if (!info) return gone();
  const [created, previous] = await Promise.all([readUploadRecord(ctx, uploadId, 'created'), readUploadRecord(ctx, uploadId, 'result')]);

  // A redelivery after success: objects under uploads/ are never replaced, so the index's word suffices.
  if (previous?.state === 'stored') {
    const existing = await ctx.index.getInstance({ studyInstanceUID: previous.studyInstanceUID, seriesInstanceUID: previous.seriesInstanceUID, sopInstanceUID: previous.sopInstanceUID });
    if (existing?.blobKey === key) return { state: 'stored', uploadId, result: previous };
  }

  const fail = async (failureReason: number | undefined, reason: string, echo: Echo, uids?: InstanceUIDs): Promise<IngestOutcome> => {
    if (uids) {
      const existing = await ctx.index.getInstance({ studyInstanceUID: uids.study, seriesInstanceUID: uids.series, sopInstanceUID: uids.sop });
      if (existing?.blobKey === key) return succeed(uids, existing.studyInstanceUID, existing.seriesInstanceUID);
    }
    const result: UploadResult = { state: 'failed', at: ctx.now().toISOString(), reason, failureReason, ...echo };
    await writeUploadRecord(ctx, uploadId, 'result', result);
    await ctx.blobs.delete(key);
    ctx.log.warn('upload.ingest.rejected', { uploadId, reason, failureReason, ms: Date.now() - started });
    return { state: 'failed', uploadId, result };
  };

  const succeed = async (uids: InstanceUIDs, study: string, series: string): Promise<IngestOutcome> => {
    const result: UploadResult = { state: 'stored', at: ctx.now().toISOString(), studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: uids.sop, sopClassUID: uids.sopClass };
    await writeUploadRecord(ctx, uploadId, 'result', result);
    ctx.log.info('upload.ingest.stored', { uploadId, size: info.size, ms: Date.now() - started });
    return { state: 'stored', uploadId, result };
  };

  // 1. The header, by ranged reads: 64 KiB, then doubling (the parse is retried as the prefix doubles).
  let offset = 0;
  const pull = async (): Promise<Uint8Array | undefined> => {
    if (offset >= info.size) return undefined;
    const want = Math.max(FIRST_READ, offset);
    const bytes = await ctx.blobs.getBytes(key, { start: offset, end: Math.min(info.size, offset + want) - 1 });
    if (bytes.byteLength === 0) return undefined;
    offset += bytes.byteLength;
    return bytes;
  };
  let parsed: ParsedPart10;
  let prefix: Uint8Array;
  try {
    ({ parsed, prefix } = await readHeader(pull, ctx.limits.maxHeaderBytes));
  } catch (error) {
    if (errorCodeOf(error) === 'BLOB_NOT_FOUND') return gone();
    const failure = headerFailure(error);
    if (!failure) throw error;
    return fail(failure.failureReason, failure.reason, {});
  }

  // 2. The same judgement as STOW (and the size the upload announced).
  const verdict = judgeHeader(ctx, parsed, created?.studyInstanceUID);
  if (verdict.kind === 'rejected') return fail(verdict.failureReason, verdict.reason, verdict.echo);
  const { uids, echo } = verdict;
  if (created && info.size !== created.size) return fail(FailureReason.CannotUnderstand, 'SIZE_MISMATCH', echo, uids);
  if (options.maxUploadBytes !== undefined && info.size > options.maxUploadBytes) return fail(FailureReason.CannotUnderstand, 'TOO_LARGE', echo, uids);

  // 3. One pass over the bytes: hash and pixel data structure (the prefix is not read twice).
  const bytes = new InstanceBytes(ctx, parsed);
  bytes.push(prefix);
  if (prefix.byteLength < info.size) {
    try {
      for await (const chunk of await ctx.blobs.get(key, { start: prefix.byteLength })) bytes.push(chunk);
    } catch (error) {
      if (errorCodeOf(error) === 'BLOB_NOT_FOUND') return gone();
      throw error;
    }
  }
  let stored: ReturnType<InstanceBytes['finish']>;
  try {
    stored = bytes.finish();
  } catch (error) {
    return fail(FailureReason.CannotUnderstand, errorCodeOf(error) ?? 'MALFORMED', echo, uids);
  }

  // 4. Index it where it lies. Index errors propagate (transient: retried).
  const record = buildInstanceRecord(ctx, parsed, uids, { blobKey: key, ...stored });
  let where = { study: uids.study, series: uids.series };
  const outcome = await commitInstance(ctx, record, (study, series) => {
    where = { study, series };
    return '';
  });
  if (outcome.kind === 'failed') {
    // commitInstance removed this copy already (the existing instance keeps its own bytes).
    const result: UploadResult = { state: 'failed', at: ctx.now().toISOString(), reason: 'DUPLICATE_SOP_INSTANCE', failureReason: outcome.failureReason, ...echo };
    await writeUploadRecord(ctx, uploadId, 'result', result);
    ctx.log.warn('upload.ingest.rejected', { uploadId, reason: result.reason, failureReason: outcome.failureReason });
    return { state: 'failed', uploadId, result };
  }
  return succeed(uids, where.study, where.series);
}

// ---------------------------------------------------------------- start-up recovery (embedded mode)

/**
 * Upload objects whose bytes are all there but whose ingest never finished:
 * the process died after the parts were assembled (before or after the
 * `completed` record) and before ingest wrote the `result`. In AWS nothing is
 * lost this way (the bucket's event sits in SQS until a function deletes it);
 * the embedded in-process queue dies with the process, so the embedded archive
 * asks this at start-up and queues what it finds. Re-ingesting is safe
 * (idempotent, see above), so an upload caught mid-ingest is simply judged again.
 *
 * Cost: one listing of the status records (three small keys per upload ever
 * created) and one read per upload without a result; uploads still being sent
 * (no object yet) are left alone.
 */
export async function* unfinishedUploads(ctx: ArchiveContext): AsyncGenerator<string> {
  let current: string | undefined;
  let stages = new Set<string>();
  async function* settle(uploadId: string | undefined, seen: Set<string>): AsyncGenerator<string> {
    if (!uploadId || !seen.has('created') || seen.has('result')) return;
    const created = await readUploadRecord(ctx, uploadId, 'created');
    if (created && (await ctx.blobs.head(created.key))) yield created.key;
  }
  // Keys come in lexicographic order, so each upload's records are adjacent.
  for await (const key of ctx.blobs.list(UPLOAD_STATUS_PREFIX)) {
    const parsed = uploadStatusOfKey(key);
    if (!parsed) continue;
    if (parsed.uploadId !== current) {
      yield* settle(current, stages);
      current = parsed.uploadId;
      stages = new Set();
    }
    stages.add(parsed.stage);
  }
  yield* settle(current, stages);
}

// ---------------------------------------------------------------- in-process queue (embedded mode)

export interface IngestQueue {
  enqueue(key: string): void;
  /** Resolves when nothing is queued or running. */
  idle(): Promise<void>;
}

/**
 * Embedded mode's stand-in for S3 event → SQS → Lambda: ingests one object at
 * a time (bounded memory and disk bandwidth), retrying failures that are not
 * the object's with backoff; when retries are exhausted the upload is marked
 * failed (0x0110) and its bytes are kept.
 */
export function createIngestQueue(ctx: ArchiveContext, options: IngestOptions & { retries?: number; backoffMs?: number } = {}): IngestQueue {
  const retries = options.retries ?? 3;
  const backoffMs = options.backoffMs ?? 200;
  let tail: Promise<void> = Promise.resolve();
  let pending = 0;

  async function run(key: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await ingestUploadedObject(ctx, key, options);
        return;
      } catch (error) {
        ctx.log.error('upload.ingest.failed', { attempt, code: errorCodeOf(error), error: (error as Error | undefined)?.name });
        if (attempt >= retries) break;
        await new Promise((r) => setTimeout(r, backoffMs * 4 ** attempt));
      }
    }
    const uploadId = uploadIdOfKey(key);
    if (uploadId) {
      await writeUploadRecord(ctx, uploadId, 'result', { state: 'failed', at: ctx.now().toISOString(), reason: 'INGEST_FAILED', failureReason: FailureReason.ProcessingFailure }).catch(() => undefined);
    }
  }

  return {
    enqueue(key) {
      pending += 1;
      tail = tail.then(() => run(key)).finally(() => void (pending -= 1));
    },
    async idle() {
      while (pending > 0) await tail;
    },
  };
}
