/**
 * BlobStore over S3. Objects are immutable and written atomically: a single
 * PutObject, or a multipart upload that becomes visible only at
 * CompleteMultipartUpload and is aborted on any failure (so an aborted request
 * body leaves neither an object nor billable parts behind).
 *
 * The client is built once per cold start by the caller (region, endpoint,
 * forcePathStyle are its concern); this adapter reads no environment.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { BlobInfo, BlobStore, ByteRangeRequest, DirectDownloads, DirectUploads, UploadedPart, UploadPartTarget } from '../../core/archive/ports';
import { concatBytes } from '../../core/bytes';

export interface S3BlobStoreOptions {
  /**
   * Bytes buffered per multipart part (S3: ≥ 5 MiB except the last part,
   * ≤ 10,000 parts, so 8 MiB parts allow objects up to ~78 GiB). Streams
   * shorter than one part are sent with a single PutObject.
   */
  partSize?: number;
  /** Parts uploaded concurrently while the stream is still being read (memory ≈ partSize × (queueSize + 1)). */
  queueSize?: number;
}

const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;

function blobNotFound(key: string, cause: unknown): Error {
  // The key is a storage path built from UIDs: no PHI.
  return Object.assign(new Error(`blob not found: ${key}`, { cause }), { code: 'BLOB_NOT_FOUND' });
}

function rangeNotSatisfiable(cause?: unknown): Error {
  return Object.assign(new Error('byte range not satisfiable', { cause }), { code: 'RANGE_NOT_SATISFIABLE' });
}

/** Errors of a direct upload: UPLOAD_INVALID (the client sent wrong parts, etags, sizes), UPLOAD_NOT_FOUND (no such open upload). */
function uploadError(code: 'UPLOAD_INVALID' | 'UPLOAD_NOT_FOUND', message: string, cause?: unknown): Error {
  return Object.assign(new Error(message, { cause }), { code });
}

function s3ErrorName(error: unknown): string | undefined {
  return (error as { name?: string } | undefined)?.name;
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function isNotFound(error: unknown): boolean {
  const name = s3ErrorName(error);
  return name === 'NoSuchKey' || name === 'NotFound' || (httpStatus(error) === 404 && name !== 'NoSuchBucket');
}

/** HTTP Range header (RFC 9110 §14.1.2; end inclusive like ours). S3 ignores a malformed Range and sends the whole object, so ours is validated. */
function rangeHeader(range: ByteRangeRequest | undefined): string | undefined {
  if (!range) return undefined;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0) throw rangeNotSatisfiable();
  if (end === undefined) return `bytes=${start}-`;
  if (!Number.isSafeInteger(end) || end < start) throw rangeNotSatisfiable();
  return `bytes=${start}-${end}`;
}


export class S3BlobStore implements BlobStore, DirectUploads, DirectDownloads {
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    options: S3BlobStoreOptions = {},
  ) {
    this.partSize = Math.max(MIN_PART_SIZE, options.partSize ?? 8 * 1024 * 1024);
    this.queueSize = Math.max(1, options.queueSize ?? 4);
  }

  async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, options: { contentType?: string } = {}): Promise<BlobInfo> {
    if (body instanceof Uint8Array) return this.putObject(key, body, options.contentType);

    const it = body[Symbol.asyncIterator]();
    // Buffer the first part: most DICOM objects are smaller and go out in one PutObject.
    const first = await this.readPart(it);
    if (first.done) return this.putObject(key, first.bytes, options.contentType);
    return this.putMultipart(key, it, first.bytes, options.contentType);
  }

  async get(key: string, range?: ByteRangeRequest): Promise<AsyncIterable<Uint8Array>> {
    const { body, skip, length } = await this.getObject(key, range);
    return (async function* () {
      let toSkip = skip;
      let left = length;
      for await (const raw of body as AsyncIterable<Uint8Array>) {
        let chunk = raw instanceof Uint8Array ? raw : new Uint8Array(raw);
        if (toSkip > 0) {
          const n = Math.min(toSkip, chunk.byteLength);
          toSkip -= n;
          chunk = chunk.subarray(n);
        }
        if (chunk.byteLength > left) chunk = chunk.subarray(0, left);
        left -= chunk.byteLength;
        if (chunk.byteLength > 0) yield chunk;
        if (left === 0) break;
      }
    })();
  }

  async getBytes(key: string, range?: ByteRangeRequest): Promise<Uint8Array> {
    const { body, skip, length } = await this.getObject(key, range);
    const bytes = await body.transformToByteArray();
    const end = Math.min(bytes.byteLength, skip + length);
    // A plain Uint8Array (not a Buffer), like the other adapters.
    return new Uint8Array(bytes.buffer, bytes.byteOffset + Math.min(skip, end), Math.max(0, end - skip));
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: out.ContentLength ?? 0 };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    // S3 DeleteObject succeeds for a missing key: idempotent as the port requires.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async *list(prefix: string): AsyncIterable<string> {
    // S3 (general purpose buckets) lists in UTF-8 byte order, which is code-unit order for our
    // ASCII keys. Each page is sorted anyway: a no-op on S3, and it orders the listing of
    // stand-ins that walk directories (s3rver) as long as it fits one page (1,000 keys).
    let token: string | undefined;
    do {
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix || undefined, ContinuationToken: token }),
      );
      const keys = (out.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [o.Key]));
      keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      yield* keys;
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  // ---------------------------------------------------------------- direct uploads (DirectUploads)
  //
  // Presigned URLs (SigV4 query authentication): the client PUTs straight to S3.
  // One PutObject for an object that fits one part, else a multipart upload whose
  // parts may go in parallel and be re-sent. Each URL signs the part's
  // Content-Length, so a part of another size is refused by S3; the single PUT
  // also signs `If-None-Match: *`, so an uploaded object cannot be replaced through
  // a URL that is still valid (objects under uploads/ stay where they are indexed).
  // URLs are valid for `expiresInSeconds`, and never beyond the signing
  // credentials (a Lambda role's session token): clients ask for fresh ones.

  async createUpload(key: string, options: { size: number; partSize: number; contentType?: string }): Promise<{ uploadId?: string }> {
    if (options.size <= options.partSize) return {};
    const out = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: options.contentType }));
    if (!out.UploadId) throw new Error('S3 returned no UploadId');
    return { uploadId: out.UploadId };
  }

  async presignPart(key: string, uploadId: string | undefined, part: { partNumber: number; size: number }, expiresInSeconds: number): Promise<UploadPartTarget> {
    // S3 numbers parts 1..10,000 and caps a part at 5 GiB; a single PUT is part 1.
    if (!Number.isInteger(part.partNumber) || part.partNumber < 1 || part.partNumber > (uploadId === undefined ? 1 : MAX_PARTS)) throw uploadError('UPLOAD_INVALID', `no part ${part.partNumber} in this upload`);
    if (!Number.isSafeInteger(part.size) || part.size < 0 || part.size > 5 * 1024 ** 3) throw uploadError('UPLOAD_INVALID', 'invalid part size');
    const options = { expiresIn: expiresInSeconds, signableHeaders: new Set(['content-length']) };
    const signer = this.presignClient();
    const url =
      uploadId === undefined
        ? await getSignedUrl(signer, new PutObjectCommand({ Bucket: this.bucket, Key: key, ContentLength: part.size, IfNoneMatch: '*' }), options)
        : await getSignedUrl(signer, new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: part.partNumber, ContentLength: part.size }), options);
    // Signed headers the client must send as given (host and Content-Length are set by any HTTP client).
    const signed = new URL(url).searchParams.get('X-Amz-SignedHeaders')?.split(';') ?? [];
    const headers: Record<string, string> = {};
    if (signed.includes('if-none-match')) headers['If-None-Match'] = '*';
    return { partNumber: part.partNumber, size: part.size, url, method: 'PUT', headers };
  }

  /**
   * The client as the presigner sees it, with flexible checksums only when an
   * operation requires them. SDK ≥ 3.729 otherwise signs the CRC32 of the (empty)
   * body it has at signing time into the URL (x-amz-checksum-crc32=AAAAAA==), and
   * S3 refuses every real upload through it (aws-sdk-js-v3#6994). getSignedUrl
   * reads only `config` and `middlewareStack`.
   */
  private presignClient(): S3Client {
    const config = {
      ...this.client.config,
      requestChecksumCalculation: () => Promise.resolve('WHEN_REQUIRED' as const),
      // Nor x-amz-checksum-mode in download URLs: the client is a browser or a viewer, not the SDK.
      responseChecksumValidation: () => Promise.resolve('WHEN_REQUIRED' as const),
    };
    return { config, middlewareStack: this.client.middlewareStack } as unknown as S3Client;
  }

  async listParts(key: string, uploadId: string | undefined): Promise<UploadedPart[]> {
    if (uploadId === undefined) {
      try {
        const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
        return [{ partNumber: 1, etag: out.ETag ?? '', size: out.ContentLength ?? 0 }];
      } catch (error) {
        if (isNotFound(error)) return [];
        throw error;
      }
    }
    const parts: UploadedPart[] = [];
    let marker: string | undefined;
    try {
      do {
        const out = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
        for (const p of out.Parts ?? []) parts.push({ partNumber: p.PartNumber ?? 0, etag: p.ETag ?? '', size: p.Size ?? 0 });
        marker = out.IsTruncated ? out.NextPartNumberMarker : undefined;
      } while (marker);
    } catch (error) {
      if (s3ErrorName(error) === 'NoSuchUpload') return [];
      throw error;
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  async completeUpload(key: string, uploadId: string | undefined, parts: { partNumber: number; etag: string }[]): Promise<void> {
    if (uploadId === undefined) {
      if (!(await this.head(key))) throw uploadError('UPLOAD_INVALID', 'the object has not been uploaded');
      return;
    }
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          IfNoneMatch: '*',
          MultipartUpload: { Parts: [...parts].sort((a, b) => a.partNumber - b.partNumber).map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      );
    } catch (error) {
      const name = s3ErrorName(error);
      // Completed before (a retried call): the object is there.
      if (name === 'NoSuchUpload') {
        if (await this.head(key)) return;
        throw uploadError('UPLOAD_NOT_FOUND', 'no such upload (aborted, or never created)', error);
      }
      if (name && ['InvalidPart', 'InvalidPartOrder', 'EntityTooSmall', 'PreconditionFailed', 'InvalidRequest'].includes(name)) {
        throw uploadError('UPLOAD_INVALID', `S3 refused to complete the upload (${name})`, error);
      }
      throw error;
    }
  }

  async abortUpload(key: string, uploadId: string | undefined): Promise<void> {
    // A single PUT has nothing to abort: once sent, it is the object.
    if (uploadId === undefined) return;
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (error) {
      if (s3ErrorName(error) !== 'NoSuchUpload') throw error;
    }
  }

  // ---------------------------------------------------------------- direct downloads (DirectDownloads)

  /**
   * A presigned GetObject URL (SigV4 query authentication): the client reads the
   * object straight from S3 (answers too large for a Lambda response). The URL
   * holds the bucket, the key (UIDs only) and the signature; it expires after
   * `expiresInSeconds` or with the signing role's session, whichever is first.
   * The response's Content-Type is set by a signed override (the object may have
   * been uploaded without one).
   */
  async presignGet(key: string, options: { expiresInSeconds: number; contentType?: string }): Promise<string> {
    if (!Number.isInteger(options.expiresInSeconds) || options.expiresInSeconds < 1 || options.expiresInSeconds > 7 * 24 * 3600) throw new Error('invalid URL lifetime');
    return getSignedUrl(this.presignClient(), new GetObjectCommand({ Bucket: this.bucket, Key: key, ResponseContentType: options.contentType }), { expiresIn: options.expiresInSeconds });
  }

  // ---------------------------------------------------------------- internals

  private async putObject(key: string, bytes: Uint8Array, contentType: string | undefined): Promise<BlobInfo> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength, ContentType: contentType }),
    );
    return { size: bytes.byteLength };
  }

  /** Reads until one part's worth of bytes is buffered, or the stream ends. */
  private async readPart(it: AsyncIterator<Uint8Array>): Promise<{ bytes: Uint8Array; done: boolean }> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    while (total < this.partSize) {
      const { done, value } = await it.next();
      if (done) return { bytes: concatBytes(chunks, total), done: true };
      if (value.byteLength === 0) continue;
      chunks.push(value);
      total += value.byteLength;
    }
    return { bytes: concatBytes(chunks, total), done: false };
  }

  private async putMultipart(
    key: string,
    it: AsyncIterator<Uint8Array>,
    firstPart: Uint8Array,
    contentType: string | undefined,
  ): Promise<BlobInfo> {
    const created = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }),
    );
    const uploadId = created.UploadId!;
    const parts: CompletedPart[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    // Read through a function: TS would otherwise keep `failure` narrowed to undefined across awaits.
    const throwIfFailed = () => {
      if (failure) throw failure.error;
    };
    let size = 0;

    const upload = (partNumber: number, bytes: Uint8Array) => {
      const p: Promise<void> = this.client
        .send(new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: bytes, ContentLength: bytes.byteLength }))
        .then(
          (out) => {
            // Carry any checksum S3 computed into Complete, as lib-storage does.
            parts.push({
              PartNumber: partNumber,
              ETag: out.ETag,
              ChecksumCRC32: out.ChecksumCRC32,
              ChecksumCRC32C: out.ChecksumCRC32C,
              ChecksumSHA1: out.ChecksumSHA1,
              ChecksumSHA256: out.ChecksumSHA256,
            });
          },
          (error: unknown) => {
            failure ??= { error };
          },
        )
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    };

    try {
      let partNumber = 1;
      let next: { bytes: Uint8Array; done: boolean } = { bytes: firstPart, done: false };
      for (;;) {
        if (next.bytes.byteLength > 0 || partNumber === 1) {
          if (partNumber > MAX_PARTS) throw Object.assign(new Error('object exceeds the multipart part limit'), { code: 'PAYLOAD_TOO_LARGE' });
          size += next.bytes.byteLength;
          upload(partNumber++, next.bytes);
        }
        while (inFlight.size >= this.queueSize) await Promise.race(inFlight);
        throwIfFailed();
        if (next.done) break;
        next = await this.readPart(it);
      }
      await Promise.all(inFlight);
      throwIfFailed();
      parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
      await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
      return { size };
    } catch (error) {
      // Let running part uploads settle first: a part finishing after the abort would be kept (and billed).
      await Promise.allSettled(inFlight);
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
        .catch(() => undefined /* the bucket's AbortIncompleteMultipartUpload lifecycle rule is the backstop */);
      throw error;
    }
  }

  /**
   * GetObject, plus how many bytes of the body to skip and keep. On S3 that is
   * (0, body length); it guards against servers that answer a Range with more
   * than asked (s3rver ignores an end of 0 and sends the whole object).
   */
  private async getObject(key: string, range: ByteRangeRequest | undefined) {
    const Range = rangeHeader(range);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range }));
      if (!out.Body) throw new Error('S3 returned no body');
      const served = /^bytes (\d+)-(\d+)\//.exec(out.ContentRange ?? '');
      const servedStart = served ? Number(served[1]) : 0;
      const skip = range ? Math.max(0, range.start - servedStart) : 0;
      const length = range?.end !== undefined ? range.end - range.start + 1 : Number.MAX_SAFE_INTEGER;
      return { body: out.Body, skip, length };
    } catch (error) {
      if (isNotFound(error)) throw blobNotFound(key, error);
      if (s3ErrorName(error) === 'InvalidRange' || httpStatus(error) === 416) throw rangeNotSatisfiable(error);
      throw error;
    }
  }
}
