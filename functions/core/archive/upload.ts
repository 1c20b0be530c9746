/**
 * Direct uploads of large objects (docs/upload-api.md). A STOW request goes
 * through a function, and Lambda carries 6 MB per call; a CT study is 500 MB
 * and a slide 10 GB. So the client asks for an upload, sends the bytes in parts
 * straight to the blob store (S3 presigned URLs; in embedded mode signed URLs
 * of the archive itself), completes it, and the object is then ingested where
 * it lies (ingest.ts) — only metadata ever passes through a function.
 *
 * Upload state lives in the blob store, as small immutable JSON records, one
 * per stage and writer (keys.ts `uploadStatusKey`): `created` (this module, at
 * creation), `completed` (this module, at completion) and `result` (ingest).
 * No writer rewrites another's record, so completion and an ingest that beats
 * it (S3 fires the event of a single PUT before the client calls complete)
 * cannot lose each other's update, and no new index port is needed.
 */
import type { ArchiveContext } from './context';
import type { DirectUploads, UploadedPart, UploadPartTarget } from './ports';
import { ArchiveError, errorCodeOf } from './errors';
import { isValidUploadId, uploadObjectKey, uploadStatusKey, type UploadStage } from './keys';
import { isValidUID } from '../dicom/uid';
import { collect, iterate } from '../bytes';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export interface UploadSettings {
  /** Largest object accepted (declared size). */
  maxUploadBytes: number;
  /** Smallest part (S3's minimum is 5 MiB for every part but the last). */
  minPartSize: number;
  /** Largest part (S3: 5 GiB). */
  maxPartSize: number;
  /** Most parts per upload (S3: 10,000). */
  maxParts: number;
  /** Lifetime of one part URL. */
  urlExpiresInSeconds: number;
  /** Time to finish an upload; matches the bucket's AbortIncompleteMultipartUpload rule (1 day). */
  uploadTtlSeconds: number;
  /** Part URLs per response (10,000 presigned URLs would not fit a 6 MB Lambda response). */
  maxTargetsPerResponse: number;
}

export const DEFAULT_UPLOAD_SETTINGS: UploadSettings = {
  maxUploadBytes: 50 * GiB,
  minPartSize: 8 * MiB,
  maxPartSize: 5 * GiB,
  maxParts: 10_000,
  urlExpiresInSeconds: 3600,
  uploadTtlSeconds: 24 * 3600,
  maxTargetsPerResponse: 1000,
};

export type UploadState = 'uploading' | 'ingesting' | 'stored' | 'failed';

/** `created` record. */
export interface UploadCreated {
  uploadId: string;
  /** Object key: uploads/<yyyy>/<mm>/<dd>/<uploadId>.dcm */
  key: string;
  size: number;
  partSize: number;
  partCount: number;
  /** The store's multipart upload id; absent for a single-part upload. */
  storeUploadId?: string;
  /** The object must belong to this study (like STOW to /studies/{study}). */
  studyInstanceUID?: string;
  createdAt: string;
  /** After this the upload can no longer be completed. */
  expiresAt: string;
}

/** `completed` record. */
export interface UploadCompleted {
  completedAt: string;
}

/** `result` record, written by ingest (or by abort). UIDs are those of the stored instance. */
export type UploadResult =
  | { state: 'stored'; at: string; studyInstanceUID: string; seriesInstanceUID: string; sopInstanceUID: string; sopClassUID: string }
  | {
      state: 'failed';
      at: string;
      /** Stable code: a reader error (TRUNCATED, NOT_PART10…), MISSING_OR_INVALID_UID, DUPLICATE_SOP_INSTANCE, SIZE_MISMATCH, ABORTED, … */
      reason: string;
      /** PS3.18 Table 10.5.3-2 FailureReason, when the object was judged as STOW would. */
      failureReason?: number;
      sopClassUID?: string;
      sopInstanceUID?: string;
    };

export interface UploadStatus {
  uploadId: string;
  state: UploadState;
  size: number;
  partSize: number;
  partCount: number;
  createdAt: string;
  expiresAt: string;
  /** uploading: the parts the store holds (resume: send only the others). */
  uploadedParts?: UploadedPart[];
  /** uploading: fresh targets for parts not yet received, from `partNumberMarker` on, at most maxTargetsPerResponse. */
  parts?: UploadPartTarget[];
  /** uploading: ask again with ?partNumberMarker=<this> for the targets of later parts. */
  nextPartNumberMarker?: number;
  /** When the part URLs in `parts` expire. */
  urlsExpireAt?: string;
  result?: UploadResult;
}

export interface UploadServiceOptions {
  uploads: DirectUploads;
  settings?: Partial<UploadSettings>;
  /**
   * Key of the part URLs the archive signs itself (stores with `putPart`). A
   * fresh random one per process by default: URLs die with the process, and
   * clients ask the status for new ones.
   */
  relaySecret?: string;
  /** Called once an upload is complete: embedded mode ingests in-process; in AWS the bucket's event notification does it. */
  onCompleted?: (key: string) => void;
}

// ---------------------------------------------------------------- status records

export async function readUploadRecord<S extends UploadStage>(ctx: ArchiveContext, uploadId: string, stage: S): Promise<RecordOf<S> | undefined> {
  try {
    const bytes = await ctx.blobs.getBytes(uploadStatusKey(uploadId, stage));
    return JSON.parse(new TextDecoder().decode(bytes)) as RecordOf<S>;
  } catch (error) {
    if (errorCodeOf(error) === 'BLOB_NOT_FOUND') return undefined;
    throw error;
  }
}

export async function writeUploadRecord<S extends UploadStage>(ctx: ArchiveContext, uploadId: string, stage: S, value: RecordOf<S>): Promise<void> {
  await ctx.blobs.put(uploadStatusKey(uploadId, stage), new TextEncoder().encode(JSON.stringify(value)), { contentType: 'application/json' });
}

type RecordOf<S extends UploadStage> = S extends 'created' ? UploadCreated : S extends 'completed' ? UploadCompleted : UploadResult;

// ---------------------------------------------------------------- signed part URLs (stores the archive serves itself)

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** HMAC (RFC 2104) over the injected hash (SHA-256: 64-byte blocks), so the core needs no crypto module. */
export function hmacHex(createHash: ArchiveContext['createHash'], key: string, message: string): string {
  const enc = new TextEncoder();
  let k: Uint8Array = enc.encode(key);
  if (k.length > 64) {
    const h = createHash();
    h.update(k);
    k = hexToBytes(h.digest());
  }
  const ipad = new Uint8Array(64);
  const opad = new Uint8Array(64);
  for (let i = 0; i < 64; i++) {
    ipad[i] = (k[i] ?? 0) ^ 0x36;
    opad[i] = (k[i] ?? 0) ^ 0x5c;
  }
  const inner = createHash();
  inner.update(ipad);
  inner.update(enc.encode(message));
  const outer = createHash();
  outer.update(opad);
  outer.update(hexToBytes(inner.digest()));
  return outer.digest();
}

/** Compare without an early exit, so timing tells nothing about a signature. */
function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

// ---------------------------------------------------------------- the use cases

function expected(created: UploadCreated, partNumber: number): number {
  return partNumber < created.partCount ? created.partSize : created.size - (created.partCount - 1) * created.partSize;
}

function stateOf(ctx: ArchiveContext, created: UploadCreated, completed: UploadCompleted | undefined, result: UploadResult | undefined): { state: UploadState; result?: UploadResult } {
  if (result) return { state: result.state, result };
  if (completed) return { state: 'ingesting' };
  if (ctx.now().getTime() > Date.parse(created.expiresAt)) return { state: 'failed', result: { state: 'failed', at: created.expiresAt, reason: 'EXPIRED' } };
  return { state: 'uploading' };
}

export function createUploadService(ctx: ArchiveContext, options: UploadServiceOptions) {
  const uploads = options.uploads;
  const settings: UploadSettings = { ...DEFAULT_UPLOAD_SETTINGS, ...options.settings };
  const secret = options.relaySecret ?? `${ctx.newObjectId()}${ctx.newObjectId()}`;

  const partMessage = (uploadId: string, partNumber: number, expires: number) => `PUT\n${uploadId}\n${partNumber}\n${expires}`;

  function choosePartSize(size: number, requested: unknown): number {
    if (requested !== undefined) {
      if (typeof requested !== 'number' || !Number.isSafeInteger(requested) || requested < settings.minPartSize || requested > settings.maxPartSize) {
        throw new ArchiveError('BAD_REQUEST', `partSize must be an integer from ${settings.minPartSize} to ${settings.maxPartSize}`);
      }
      if (Math.ceil(size / requested) > settings.maxParts) throw new ArchiveError('BAD_REQUEST', `that partSize needs more than ${settings.maxParts} parts`);
      return requested;
    }
    // The smallest whole-MiB part size that keeps within maxParts.
    const min = Math.max(settings.minPartSize, Math.ceil(size / settings.maxParts));
    return Math.ceil(min / MiB) * MiB;
  }

  /** Targets for some parts, resolved against the DICOMweb base URL of the request. */
  async function targets(created: UploadCreated, partNumbers: number[], base: string): Promise<{ parts: UploadPartTarget[]; expiresAt: Date }> {
    const now = ctx.now().getTime();
    const expiresAtMs = Math.min(now + settings.urlExpiresInSeconds * 1000, Date.parse(created.expiresAt));
    const expiresIn = Math.max(1, Math.floor((expiresAtMs - now) / 1000));
    const expires = Math.floor(expiresAtMs / 1000);
    const parts = await Promise.all(
      partNumbers.map(async (partNumber): Promise<UploadPartTarget> => {
        const size = expected(created, partNumber);
        if (uploads.presignPart) return uploads.presignPart(created.key, created.storeUploadId, { partNumber, size }, expiresIn);
        const signature = hmacHex(ctx.createHash, secret, partMessage(created.uploadId, partNumber, expires));
        return { partNumber, size, url: `uploads/${created.uploadId}/parts/${partNumber}?expires=${expires}&signature=${signature}`, method: 'PUT', headers: {} };
      }),
    );
    for (const p of parts) p.url = new URL(p.url, `${base}/`).toString();
    return { parts, expiresAt: new Date(expires * 1000) };
  }

  async function load(uploadId: string): Promise<UploadCreated> {
    if (!isValidUploadId(uploadId)) throw new ArchiveError('NOT_FOUND', 'no such upload');
    const created = await readUploadRecord(ctx, uploadId, 'created');
    if (!created) throw new ArchiveError('NOT_FOUND', 'no such upload');
    return created;
  }

  function storeError(error: unknown): never {
    const code = errorCodeOf(error);
    if (code === 'UPLOAD_INVALID') throw new ArchiveError('BAD_REQUEST', (error as Error).message, { cause: error });
    if (code === 'UPLOAD_NOT_FOUND') throw new ArchiveError('BAD_REQUEST', 'the upload is no longer open (aborted or completed)', { cause: error });
    throw error;
  }

  /** POST /uploads */
  async function create(input: { size?: unknown; studyInstanceUID?: unknown; partSize?: unknown }, base: string) {
    const { size, studyInstanceUID } = input;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1) throw new ArchiveError('BAD_REQUEST', 'size must be a positive integer (bytes)');
    if (size > settings.maxUploadBytes) throw new ArchiveError('PAYLOAD_TOO_LARGE', `an upload may be at most ${settings.maxUploadBytes} bytes`);
    if (studyInstanceUID !== undefined && (typeof studyInstanceUID !== 'string' || !isValidUID(studyInstanceUID))) {
      throw new ArchiveError('INVALID_UID', 'studyInstanceUID is not a valid UID');
    }
    const partSize = choosePartSize(size, input.partSize);
    const partCount = Math.ceil(size / partSize);
    const uploadId = ctx.newObjectId();
    const now = ctx.now();
    const key = uploadObjectKey(uploadId, now);
    const { uploadId: storeUploadId } = await uploads.createUpload(key, { size, partSize, contentType: 'application/dicom' });
    const created: UploadCreated = {
      uploadId,
      key,
      size,
      partSize,
      partCount,
      storeUploadId,
      studyInstanceUID,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + settings.uploadTtlSeconds * 1000).toISOString(),
    };
    await writeUploadRecord(ctx, uploadId, 'created', created);
    const first = Array.from({ length: Math.min(partCount, settings.maxTargetsPerResponse) }, (_, i) => i + 1);
    const t = await targets(created, first, base);
    ctx.log.info('upload.created', { uploadId, size, parts: partCount });
    return {
      created,
      parts: t.parts,
      urlsExpireAt: t.expiresAt.toISOString(),
      nextPartNumberMarker: partCount > first.length ? first.length : undefined,
    };
  }

  /** GET /uploads/{id} (resume: fresh targets for the parts the store does not hold). */
  async function status(uploadId: string, base: string, partNumberMarker = 0): Promise<UploadStatus> {
    const created = await load(uploadId);
    const [completed, result] = await Promise.all([readUploadRecord(ctx, uploadId, 'completed'), readUploadRecord(ctx, uploadId, 'result')]);
    const s = stateOf(ctx, created, completed, result);
    const out: UploadStatus = {
      uploadId,
      state: s.state,
      size: created.size,
      partSize: created.partSize,
      partCount: created.partCount,
      createdAt: created.createdAt,
      expiresAt: created.expiresAt,
    };
    if (s.result) out.result = s.result;
    if (s.state !== 'uploading') return out;
    let uploaded: UploadedPart[] | undefined;
    try {
      uploaded = await uploads.listParts(created.key, created.storeUploadId);
    } catch (error) {
      // Some S3 stand-ins lack ListParts: then every part is offered again (re-sending a part is harmless).
      ctx.log.warn('upload.list_parts_failed', { code: errorCodeOf(error), error: (error as Error | undefined)?.name });
    }
    const good = new Set((uploaded ?? []).filter((p) => p.size === expected(created, p.partNumber)).map((p) => p.partNumber));
    const missing: number[] = [];
    for (let n = Math.max(1, partNumberMarker + 1); n <= created.partCount && missing.length < settings.maxTargetsPerResponse; n++) if (!good.has(n)) missing.push(n);
    const last = missing.at(-1);
    if (uploaded) out.uploadedParts = uploaded;
    const t = await targets(created, missing, base);
    out.parts = t.parts;
    out.urlsExpireAt = t.expiresAt.toISOString();
    if (last !== undefined && last < created.partCount && missing.length === settings.maxTargetsPerResponse) out.nextPartNumberMarker = last;
    return out;
  }

  /** POST /uploads/{id}/complete. Idempotent: completing a completed upload answers its status. */
  async function complete(uploadId: string, body: { parts?: unknown }, base: string): Promise<UploadStatus> {
    const created = await load(uploadId);
    const [completed, result] = await Promise.all([readUploadRecord(ctx, uploadId, 'completed'), readUploadRecord(ctx, uploadId, 'result')]);
    if (completed || result) return status(uploadId, base);
    if (ctx.now().getTime() > Date.parse(created.expiresAt)) throw new ArchiveError('BAD_REQUEST', 'the upload has expired: start a new one');
    const parts = parseParts(body.parts, created);
    try {
      await uploads.completeUpload(created.key, created.storeUploadId, parts);
    } catch (error) {
      storeError(error);
    }
    await writeUploadRecord(ctx, uploadId, 'completed', { completedAt: ctx.now().toISOString() });
    ctx.log.info('upload.completed', { uploadId, size: created.size, parts: created.partCount });
    options.onCompleted?.(created.key);
    return status(uploadId, base);
  }

  /** DELETE /uploads/{id}: drop received parts; an upload already completed stays (delete the instance instead). */
  async function abort(uploadId: string): Promise<void> {
    const created = await load(uploadId);
    const [completed, result] = await Promise.all([readUploadRecord(ctx, uploadId, 'completed'), readUploadRecord(ctx, uploadId, 'result')]);
    if (completed || result) throw new ArchiveError('BAD_REQUEST', 'the upload is already complete');
    await uploads.abortUpload(created.key, created.storeUploadId);
    await writeUploadRecord(ctx, uploadId, 'result', { state: 'failed', at: ctx.now().toISOString(), reason: 'ABORTED' });
    ctx.log.info('upload.aborted', { uploadId });
  }

  /**
   * PUT /uploads/{id}/parts/{n}?expires=…&signature=… — the part URLs of stores
   * the archive serves itself. The URL is the credential (like a presigned S3
   * URL): HMAC-SHA256 of (upload, part, expiry) under the process's key.
   */
  async function receivePart(uploadId: string, partNumberText: string, query: URLSearchParams, body: AsyncIterable<Uint8Array>, contentLength: string | null): Promise<{ partNumber: number; etag: string }> {
    if (!uploads.putPart) throw new ArchiveError('ROUTE_NOT_FOUND');
    const partNumber = Number(partNumberText);
    const expires = Number(query.get('expires'));
    const signature = query.get('signature') ?? '';
    if (!isValidUploadId(uploadId) || !/^\d{1,5}$/.test(partNumberText) || !Number.isSafeInteger(expires)) throw new ArchiveError('FORBIDDEN', 'the part URL is not valid');
    if (!sameText(signature, hmacHex(ctx.createHash, secret, partMessage(uploadId, partNumber, expires)))) throw new ArchiveError('FORBIDDEN', 'the part URL signature is not valid');
    if (ctx.now().getTime() > expires * 1000) throw new ArchiveError('FORBIDDEN', 'the part URL has expired: GET the upload for fresh URLs');
    const created = await load(uploadId);
    if (partNumber < 1 || partNumber > created.partCount) throw new ArchiveError('BAD_REQUEST', `part numbers are 1..${created.partCount}`);
    const size = expected(created, partNumber);
    if (contentLength !== null && Number(contentLength) !== size) throw new ArchiveError('BAD_REQUEST', `part ${partNumber} must be ${size} bytes`);
    try {
      const { etag } = await uploads.putPart(created.key, created.storeUploadId, partNumber, body, size);
      return { partNumber, etag };
    } catch (error) {
      return storeError(error);
    }
  }

  return { settings, relays: typeof uploads.putPart === 'function', create, status, complete, abort, receivePart };
}

export type UploadService = ReturnType<typeof createUploadService>;

function parseParts(value: unknown, created: UploadCreated): { partNumber: number; etag: string }[] {
  // A single PUT (no store upload id) needs no list: the object is the one part.
  if (value === undefined && created.storeUploadId === undefined) return [];
  if (!Array.isArray(value)) throw new ArchiveError('BAD_REQUEST', 'parts must be an array of {partNumber, etag}');
  const seen = new Set<number>();
  const parts = value.map((p: unknown) => {
    const { partNumber, etag } = (p ?? {}) as { partNumber?: unknown; etag?: unknown };
    if (typeof partNumber !== 'number' || !Number.isInteger(partNumber) || partNumber < 1 || partNumber > created.partCount || seen.has(partNumber)) {
      throw new ArchiveError('BAD_REQUEST', `each partNumber must be one of 1..${created.partCount}, once`);
    }
    if (typeof etag !== 'string' || etag.length === 0 || etag.length > 256) throw new ArchiveError('BAD_REQUEST', 'each part needs the etag its upload returned');
    seen.add(partNumber);
    return { partNumber, etag };
  });
  if (parts.length !== created.partCount) throw new ArchiveError('BAD_REQUEST', `all ${created.partCount} parts must be listed`);
  return parts;
}

/** A JSON request body, bounded (the complete call of a 10,000-part upload is ~600 KB). */
export async function readJsonBody(request: Request, maxBytes = 2 * MiB): Promise<Record<string, unknown>> {
  if (!request.body) return {};
  let bytes: Uint8Array;
  try {
    bytes = await collect(iterate(request.body), maxBytes);
  } catch (error) {
    if (errorCodeOf(error) === 'PAYLOAD_TOO_LARGE') throw new ArchiveError('PAYLOAD_TOO_LARGE', `the JSON body may be at most ${maxBytes} bytes`);
    throw error;
  }
  if (bytes.byteLength === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new ArchiveError('BAD_REQUEST', 'the body is not valid JSON');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ArchiveError('BAD_REQUEST', 'the body must be a JSON object');
  return value as Record<string, unknown>;
}
