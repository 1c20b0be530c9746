/**
 * STOW-RS, one instance at a time (PS3.18 §10.5). Write order that cannot
 * corrupt: the bytes go to a fresh blob key first (a random object id, so a
 * write never overwrites another object), the index commit second. A crash in
 * between leaves only unreferenced bytes, never an index entry without bytes.
 *
 * Duplicates (docs/conformance.md): the identical object again → success,
 * nothing changes (retries are safe); a different object under an existing
 * SOP Instance UID → failure 0x0111 for that instance, nothing overwritten.
 */
import type { ArchiveContext, Hasher } from './context';
import type { InstanceRecord } from './ports';
import { instanceBlobKey } from './keys';
import { concatBytes, drain } from '../bytes';
import { errorCodeOf } from './errors';
import { parsePart10, PixelDataScanner } from '../dicom/part10';
import type { ParsedPart10, PixelDataLayout } from '../dicom/part10-types';
import { firstString } from '../dicom/json-model';
import { Tag } from '../dicom/tags';
import { isValidUID } from '../dicom/uid';
import { splitAttributesByLevel } from '../dicomweb/qido-attributes';
import { metadataAsServed } from './metadata';
import { FailureReason, type StoreOutcome } from '../dicomweb/stow-response';

export interface StoreRequest {
  /** Study Instance UID from the URL (`POST /studies/{study}`), if any. */
  studyInstanceUID?: string;
  /** Builds the RetrieveURL of a stored instance. */
  instanceURL: (study: string, series: string, sop: string) => string;
}

const PARSE_FAILURES: Record<string, number> = {
  UNSUPPORTED_TRANSFER_SYNTAX: FailureReason.TransferSyntaxNotSupported,
};
/** Reader errors that are about the object itself (→ a per-instance failure, never an exception). */
const OBJECT_ERRORS = new Set(['NOT_PART10', 'MISSING_TRANSFER_SYNTAX', 'TRUNCATED', 'MALFORMED', 'LIMIT_EXCEEDED', ...Object.keys(PARSE_FAILURES)]);

// ---------------------------------------------------------------- shared with ingest (ingest.ts)

/** The failure an error of the header read stands for; undefined when it is not about the object (rethrow it). */
export function headerFailure(error: unknown): { failureReason: number; reason: string } | undefined {
  const code = errorCodeOf(error) ?? 'MALFORMED';
  if (!OBJECT_ERRORS.has(code)) return undefined;
  return { failureReason: PARSE_FAILURES[code] ?? FailureReason.CannotUnderstand, reason: code };
}

/**
 * Read until the header (everything before Pixel Data) parses. `pull` gives the
 * next bytes of the object, undefined at its end (a stream's next chunk, or the
 * next ranged read). Returns the parse and the bytes read so far.
 */
export async function readHeader(
  pull: () => Promise<Uint8Array | undefined>,
  maxHeaderBytes: number,
): Promise<{ parsed: ParsedPart10; prefix: Uint8Array; ended: boolean }> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let nextAttempt = 0;
  for (;;) {
    const value = await pull();
    const done = value === undefined;
    if (!done) {
      chunks.push(value);
      total += value.byteLength;
    }
    if (done || total >= nextAttempt) {
      const prefix = concatBytes(chunks, total);
      chunks.length = 0;
      chunks.push(prefix);
      try {
        const parsed = parsePart10(prefix, { stopAtPixelData: true, final: done });
        return { parsed, prefix, ended: done };
      } catch (error) {
        if (errorCodeOf(error) !== 'NEED_MORE_DATA' || done) throw error;
        if (total > maxHeaderBytes) {
          throw Object.assign(new Error('header too large'), { code: 'LIMIT_EXCEEDED' });
        }
        // Re-parse only after the buffer has doubled, so a big header costs O(n), not O(n²).
        nextAttempt = Math.max(total * 2, 64 * 1024);
      }
    }
  }
}

export interface InstanceUIDs {
  study: string;
  series: string;
  sop: string;
  sopClass: string;
}

/** The UIDs a failure response may echo (only valid ones). */
export type Echo = { sopClassUID?: string; sopInstanceUID?: string };

export type HeaderVerdict =
  | { kind: 'accepted'; uids: InstanceUIDs; echo: Echo }
  | { kind: 'rejected'; failureReason: number; reason: string; echo: Echo };

/** Judge a parsed header: the four UIDs must be valid, and the study must be the one the request names (if any). */
export function judgeHeader(ctx: ArchiveContext, parsed: ParsedPart10, expectedStudyInstanceUID: string | undefined): HeaderVerdict {
  const ds = parsed.dataset;
  const study = firstString(ds, Tag.StudyInstanceUID);
  const series = firstString(ds, Tag.SeriesInstanceUID);
  const sop = firstString(ds, Tag.SOPInstanceUID);
  const sopClass = firstString(ds, Tag.SOPClassUID);
  const echo: Echo = { sopClassUID: isValidUID(sopClass) ? sopClass : undefined, sopInstanceUID: isValidUID(sop) ? sop : undefined };
  if (!isValidUID(study) || !isValidUID(series) || !isValidUID(sop) || !isValidUID(sopClass)) {
    return { kind: 'rejected', failureReason: FailureReason.DataSetDoesNotMatchSOPClass, reason: 'MISSING_OR_INVALID_UID', echo };
  }
  // PS3.10 §7.1 wants MediaStorageSOPInstanceUID = SOPInstanceUID; real files break this often.
  // The data set's UIDs are authoritative (they are what C-STORE would carry), so a mismatch is
  // tolerated and only logged (docs/conformance.md).
  if (firstString(parsed.fileMeta, Tag.MediaStorageSOPInstanceUID) !== sop) ctx.log.info('stow.instance.meta_sop_mismatch');
  if (expectedStudyInstanceUID !== undefined && expectedStudyInstanceUID !== study) {
    return { kind: 'rejected', failureReason: FailureReason.DataSetDoesNotMatchSOPClass, reason: 'STUDY_UID_MISMATCH', echo };
  }
  return { kind: 'accepted', uids: { study, series, sop, sopClass }, echo };
}

/**
 * Everything learnt from one pass over the stored bytes: size, content hash,
 * and the pixel data structure (frames, fragments). Chunks are pushed in order
 * from offset 0 (bytes the header parse already saw may be pushed again).
 */
export class InstanceBytes {
  private readonly hasher: Hasher;
  private readonly scanner: PixelDataScanner | undefined;
  size = 0;

  constructor(ctx: ArchiveContext, parsed: ParsedPart10) {
    this.hasher = ctx.createHash();
    this.scanner = parsed.pixelData ? new PixelDataScanner(parsed) : undefined;
  }

  push(chunk: Uint8Array): void {
    this.hasher.update(chunk);
    this.scanner?.push(chunk, this.size);
    this.size += chunk.byteLength;
  }

  /** Throws the reader's errors (e.g. TRUNCATED) when the pixel data is incomplete. */
  finish(): { size: number; contentHash: string; pixelData: PixelDataLayout | undefined } {
    return { size: this.size, contentHash: this.hasher.digest(), pixelData: this.scanner?.finish(this.size) };
  }
}

/** The index record of an instance whose bytes lie at `blobKey`. */
export function buildInstanceRecord(
  ctx: ArchiveContext,
  parsed: ParsedPart10,
  uids: InstanceUIDs,
  stored: { blobKey: string; size: number; contentHash: string; pixelData: PixelDataLayout | undefined },
): InstanceRecord {
  const levels = splitAttributesByLevel(parsed.dataset);
  return {
    studyInstanceUID: uids.study,
    seriesInstanceUID: uids.series,
    sopInstanceUID: uids.sop,
    sopClassUID: uids.sopClass,
    transferSyntaxUID: parsed.transferSyntaxUID,
    blobKey: stored.blobKey,
    size: stored.size,
    contentHash: stored.contentHash,
    storedAt: ctx.now().toISOString(),
    studyAttributes: levels.study,
    seriesAttributes: levels.series,
    instanceAttributes: levels.instance,
    metadata: metadataAsServed(parsed.dataset, parsed.transferSyntaxUID),
    layout: { datasetOffset: parsed.datasetOffset, deflated: parsed.deflated, pixelData: stored.pixelData, bulkData: parsed.bulkData },
  };
}

/**
 * Commit a record whose bytes are stored. Duplicates (docs/conformance.md): the
 * same content again → stored (pointing at the existing instance); other content
 * under a claimed SOP Instance UID → failure 0x0111. The record's own bytes are
 * deleted whenever the index does not reference them. Index errors propagate
 * (the caller decides: STOW fails the instance, ingest retries).
 */
export async function commitInstance(
  ctx: ArchiveContext,
  record: InstanceRecord,
  instanceURL: (study: string, series: string, sop: string) => string,
): Promise<StoreOutcome> {
  const result = await ctx.index.putInstance(record);
  const { sopClassUID, sopInstanceUID } = record;
  if (result.status === 'created') {
    return { kind: 'stored', sopClassUID, sopInstanceUID, retrieveURL: instanceURL(record.studyInstanceUID, record.seriesInstanceUID, sopInstanceUID) };
  }
  // Our copy is not referenced: the existing object stays as it was.
  if (result.existing.blobKey !== record.blobKey) await ctx.blobs.delete(record.blobKey).catch(() => undefined);
  if (result.status === 'conflict') {
    ctx.log.warn('stow.instance.rejected', { reason: 'DUPLICATE_SOP_INSTANCE_DIFFERENT_CONTENT' });
    return { kind: 'failed', sopClassUID, sopInstanceUID, failureReason: FailureReason.DuplicateSOPInstance };
  }
  const e = result.existing;
  return { kind: 'stored', sopClassUID, sopInstanceUID, retrieveURL: instanceURL(e.studyInstanceUID, e.seriesInstanceUID, sopInstanceUID) };
}

// ---------------------------------------------------------------- STOW of one instance

export async function storeInstance(
  ctx: ArchiveContext,
  body: AsyncIterable<Uint8Array>,
  request: StoreRequest,
): Promise<StoreOutcome> {
  const it = body[Symbol.asyncIterator]();
  const rest = { [Symbol.asyncIterator]: () => it };
  const pull = async () => {
    const r = await it.next();
    return r.done ? undefined : r.value;
  };

  let header: Awaited<ReturnType<typeof readHeader>>;
  try {
    header = await readHeader(pull, ctx.limits.maxHeaderBytes);
  } catch (error) {
    await drain(rest).catch(() => undefined);
    const failure = headerFailure(error);
    if (!failure) throw error;
    ctx.log.warn('stow.instance.rejected', { reason: failure.reason });
    return { kind: 'failed', failureReason: failure.failureReason };
  }
  const { parsed, prefix } = header;
  const verdict = judgeHeader(ctx, parsed, request.studyInstanceUID);
  const { echo } = verdict;
  if (verdict.kind === 'rejected') {
    await drain(rest);
    ctx.log.warn('stow.instance.rejected', { reason: verdict.reason });
    return { kind: 'failed', ...echo, failureReason: verdict.failureReason };
  }
  const { uids } = verdict;

  // Stream the bytes (the prefix already read, then the rest) to a fresh key, hashing and
  // validating the pixel data structure on the way.
  const blobKey = instanceBlobKey(uids.study, uids.series, uids.sop, ctx.newObjectId());
  const bytes = new InstanceBytes(ctx, parsed);
  async function* tee(): AsyncGenerator<Uint8Array> {
    bytes.push(prefix);
    yield prefix;
    for await (const chunk of rest) {
      bytes.push(chunk);
      yield chunk;
    }
  }
  try {
    await ctx.blobs.put(blobKey, tee(), { contentType: 'application/dicom' });
  } catch (error) {
    await drain(rest).catch(() => undefined);
    await ctx.blobs.delete(blobKey).catch(() => undefined);
    // A broken request body is the client's problem; let the caller turn it into a 400.
    if (errorCodeOf(error)?.startsWith('MULTIPART')) throw error;
    ctx.log.error('stow.blob.put_failed', { code: errorCodeOf(error), error: (error as Error | undefined)?.name });
    return { kind: 'failed', ...echo, failureReason: FailureReason.OutOfResources };
  }

  let stored: ReturnType<InstanceBytes['finish']>;
  try {
    stored = bytes.finish();
  } catch (error) {
    await ctx.blobs.delete(blobKey).catch(() => undefined);
    ctx.log.warn('stow.instance.rejected', { reason: errorCodeOf(error) ?? 'MALFORMED' });
    return { kind: 'failed', ...echo, failureReason: FailureReason.CannotUnderstand };
  }

  const record = buildInstanceRecord(ctx, parsed, uids, { blobKey, ...stored });
  try {
    return await commitInstance(ctx, record, request.instanceURL);
  } catch (error) {
    await ctx.blobs.delete(blobKey).catch(() => undefined);
    ctx.log.error('stow.index.commit_failed', { code: errorCodeOf(error) });
    return { kind: 'failed', ...echo, failureReason: FailureReason.ProcessingFailure };
  }
}
