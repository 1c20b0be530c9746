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
import type { ArchiveContext } from './context';
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

/** Read a part until its header (everything before Pixel Data) is parsed; returns the parse and the bytes read so far. */
async function readHeader(
  it: AsyncIterator<Uint8Array>,
  maxHeaderBytes: number,
): Promise<{ parsed: ParsedPart10; prefix: Uint8Array; ended: boolean }> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let nextAttempt = 0;
  for (;;) {
    const { done, value } = await it.next();
    if (!done) {
      chunks.push(value);
      total += value.byteLength;
    }
    if (done || total >= nextAttempt) {
      const prefix = concatBytes(chunks, total);
      chunks.length = 0;
      chunks.push(prefix);
      try {
        const parsed = parsePart10(prefix, { stopAtPixelData: true, final: !!done });
        return { parsed, prefix, ended: !!done };
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

export async function storeInstance(
  ctx: ArchiveContext,
  body: AsyncIterable<Uint8Array>,
  request: StoreRequest,
): Promise<StoreOutcome> {
  const it = body[Symbol.asyncIterator]();
  const rest = { [Symbol.asyncIterator]: () => it };

  let header: Awaited<ReturnType<typeof readHeader>>;
  try {
    header = await readHeader(it, ctx.limits.maxHeaderBytes);
  } catch (error) {
    await drain(rest).catch(() => undefined);
    const code = errorCodeOf(error) ?? 'MALFORMED';
    if (!(code in PARSE_FAILURES) && !['NOT_PART10', 'MISSING_TRANSFER_SYNTAX', 'TRUNCATED', 'MALFORMED', 'LIMIT_EXCEEDED'].includes(code)) throw error;
    ctx.log.warn('stow.instance.rejected', { reason: code });
    return { kind: 'failed', failureReason: PARSE_FAILURES[code] ?? FailureReason.CannotUnderstand };
  }
  const { parsed, prefix } = header;
  const ds = parsed.dataset;
  const study = firstString(ds, Tag.StudyInstanceUID);
  const series = firstString(ds, Tag.SeriesInstanceUID);
  const sop = firstString(ds, Tag.SOPInstanceUID);
  const sopClass = firstString(ds, Tag.SOPClassUID);
  const echo = { sopClassUID: isValidUID(sopClass) ? sopClass : undefined, sopInstanceUID: isValidUID(sop) ? sop : undefined };

  const reject = async (failureReason: number, reason: string): Promise<StoreOutcome> => {
    await drain(rest);
    ctx.log.warn('stow.instance.rejected', { reason });
    return { kind: 'failed', ...echo, failureReason };
  };
  if (!isValidUID(study) || !isValidUID(series) || !isValidUID(sop) || !isValidUID(sopClass)) {
    return reject(FailureReason.DataSetDoesNotMatchSOPClass, 'MISSING_OR_INVALID_UID');
  }
  // PS3.10 §7.1 wants MediaStorageSOPInstanceUID = SOPInstanceUID; real files break this often.
  // The data set's UIDs are authoritative (they are what C-STORE would carry), so a mismatch is
  // tolerated and only logged (docs/conformance.md).
  if (firstString(parsed.fileMeta, Tag.MediaStorageSOPInstanceUID) !== sop) ctx.log.info('stow.instance.meta_sop_mismatch');
  if (request.studyInstanceUID !== undefined && request.studyInstanceUID !== study) {
    return reject(FailureReason.DataSetDoesNotMatchSOPClass, 'STUDY_UID_MISMATCH');
  }

  // Stream the bytes (the prefix already read, then the rest) to a fresh key, hashing and
  // validating the pixel data structure on the way.
  const blobKey = instanceBlobKey(study, series, sop, ctx.newObjectId());
  const hasher = ctx.createHash();
  const scanner = parsed.pixelData ? new PixelDataScanner(parsed) : undefined;
  let size = 0;
  async function* tee(): AsyncGenerator<Uint8Array> {
    for (const chunk of [prefix]) {
      hasher.update(chunk);
      scanner?.push(chunk, size);
      size += chunk.byteLength;
      yield chunk;
    }
    for await (const chunk of rest) {
      hasher.update(chunk);
      scanner?.push(chunk, size);
      size += chunk.byteLength;
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

  let pixelData: PixelDataLayout | undefined;
  try {
    pixelData = scanner?.finish(size);
  } catch (error) {
    await ctx.blobs.delete(blobKey).catch(() => undefined);
    ctx.log.warn('stow.instance.rejected', { reason: errorCodeOf(error) ?? 'MALFORMED' });
    return { kind: 'failed', ...echo, failureReason: FailureReason.CannotUnderstand };
  }

  const levels = splitAttributesByLevel(ds);
  const record: InstanceRecord = {
    studyInstanceUID: study,
    seriesInstanceUID: series,
    sopInstanceUID: sop,
    sopClassUID: sopClass,
    transferSyntaxUID: parsed.transferSyntaxUID,
    blobKey,
    size,
    contentHash: hasher.digest(),
    storedAt: ctx.now().toISOString(),
    studyAttributes: levels.study,
    seriesAttributes: levels.series,
    instanceAttributes: levels.instance,
    metadata: ds,
    layout: { datasetOffset: parsed.datasetOffset, deflated: parsed.deflated, pixelData, bulkData: parsed.bulkData },
  };

  let result;
  try {
    result = await ctx.index.putInstance(record);
  } catch (error) {
    await ctx.blobs.delete(blobKey).catch(() => undefined);
    ctx.log.error('stow.index.commit_failed', { code: errorCodeOf(error) });
    return { kind: 'failed', ...echo, failureReason: FailureReason.ProcessingFailure };
  }
  if (result.status !== 'created') {
    // Our copy is not referenced: the existing object stays as it was.
    if (result.existing.blobKey !== blobKey) await ctx.blobs.delete(blobKey).catch(() => undefined);
    if (result.status === 'conflict') {
      ctx.log.warn('stow.instance.rejected', { reason: 'DUPLICATE_SOP_INSTANCE_DIFFERENT_CONTENT' });
      return { kind: 'failed', ...echo, failureReason: FailureReason.DuplicateSOPInstance };
    }
    const e = result.existing;
    return { kind: 'stored', sopClassUID: sopClass, sopInstanceUID: sop, retrieveURL: request.instanceURL(e.studyInstanceUID, e.seriesInstanceUID, sop) };
  }
  return { kind: 'stored', sopClassUID: sopClass, sopInstanceUID: sop, retrieveURL: request.instanceURL(study, series, sop) };
}
