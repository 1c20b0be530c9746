/**
 * The DirectUploads contract (direct-uploads.contract.ts) against both adapters
 * that have the capability: FsBlobStore (embedded mode, parts relayed by the
 * archive) and S3BlobStore (presigned URLs, through s3rver).
 */
import { S3Client } from '@aws-sdk/client-s3';
import { FsBlobStore } from '../../functions/adapters/local/fs-blob-store';
import { S3BlobStore } from '../../functions/adapters/aws/s3-blob-store';
import { startAwsLocal, type AwsLocal } from '../helpers/aws-local';
import { makeTempDir } from '../helpers/tmp';
import { directUploadsContract } from './direct-uploads.contract';

let aws: AwsLocal;
beforeAll(async () => {
  aws = await startAwsLocal();
});
afterAll(async () => {
  await aws?.stop();
});

directUploadsContract('FsBlobStore', 'relayed', async () => {
  const tmp = makeTempDir('fs-uploads-');
  return { store: new FsBlobStore(tmp.dir, { fsync: false }), cleanup: async () => tmp.cleanup() };
});

// s3rver 3.7 implements create/upload-part/complete but not ListParts or
// AbortMultipartUpload, and does not enforce the signed Content-Length.
directUploadsContract(
  'S3BlobStore (s3rver)',
  'presigned',
  async () => {
    const bucket = await aws.createBucket();
    return { store: new S3BlobStore(aws.s3, bucket), cleanup: async () => undefined };
  },
  { listParts: true, abort: true, signedLength: true, completeChecks: true },
);

/**
 * What s3rver cannot answer, S3 can: the adapter's handling of S3's own error
 * names (API reference: CompleteMultipartUpload, ListParts,
 * AbortMultipartUpload), injected in front of a real client.
 */
describe('S3BlobStore direct uploads: answers of real S3 s3rver lacks (injected)', () => {
  let s3: S3Client;
  let bucket: string;
  let inject: Record<string, string | ((input: Record<string, unknown>) => unknown)>;
  beforeEach(async () => {
    s3 = new S3Client(aws.s3Config);
    inject = {};
    // Answers (or S3 error names) per command, before the request is sent.
    (s3.middlewareStack as any).add(
      (next: any, context: any) => async (args: any) => {
        const answer = inject[context.commandName as string];
        if (typeof answer === 'string') throw Object.assign(new Error(`injected ${answer}`), { name: answer, $metadata: { httpStatusCode: 400 } });
        if (typeof answer === 'function') return { output: { $metadata: {}, ...(answer(args.input) as object) }, response: {} };
        return next(args);
      },
      { step: 'initialize', name: 'injectAnswers' },
    );
    bucket = await aws.createBucket();
  });
  afterEach(() => s3.destroy());
  const key = 'uploads/2026/12/03/0123456789abcdef0123456789abcdef01234567.dcm';

  it('complete → NoSuchUpload: UPLOAD_NOT_FOUND, unless the object is there (a retried completion succeeds)', async () => {
    const store = new S3BlobStore(s3, bucket);
    inject.CompleteMultipartUploadCommand = 'NoSuchUpload';
    await expect(store.completeUpload(key, 'abc', [{ partNumber: 1, etag: '"e"' }])).rejects.toMatchObject({ code: 'UPLOAD_NOT_FOUND' });
    await store.put(key, new Uint8Array([1, 2, 3]));
    await expect(store.completeUpload(key, 'abc', [{ partNumber: 1, etag: '"e"' }])).resolves.toBeUndefined();
  });

  it.each(['InvalidPart', 'InvalidPartOrder', 'EntityTooSmall', 'PreconditionFailed'])('complete → %s: UPLOAD_INVALID', async (name) => {
    inject.CompleteMultipartUploadCommand = name;
    await expect(new S3BlobStore(s3, bucket).completeUpload(key, 'abc', [{ partNumber: 1, etag: '"e"' }])).rejects.toMatchObject({ code: 'UPLOAD_INVALID' });
  });

  it('complete → a server fault stays a server fault (retried by the caller, not blamed on the client)', async () => {
    inject.CompleteMultipartUploadCommand = 'InternalError';
    const error = await new S3BlobStore(s3, bucket).completeUpload(key, 'abc', [{ partNumber: 1, etag: '"e"' }]).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBeUndefined();
    expect((error as Error).name).toBe('InternalError');
  });

  it('listParts pages through ListParts and sorts; NoSuchUpload (aborted or completed) lists nothing', async () => {
    const pages = [
      { Parts: [{ PartNumber: 3, ETag: '"c"', Size: 7 }, { PartNumber: 1, ETag: '"a"', Size: 5 }], IsTruncated: true, NextPartNumberMarker: '3' },
      { Parts: [{ PartNumber: 2, ETag: '"b"', Size: 5 }], IsTruncated: false },
    ];
    const markers: unknown[] = [];
    inject.ListPartsCommand = (input) => {
      markers.push(input.PartNumberMarker);
      return pages[markers.length - 1]!;
    };
    const store = new S3BlobStore(s3, bucket);
    expect(await store.listParts(key, 'abc')).toEqual([
      { partNumber: 1, etag: '"a"', size: 5 },
      { partNumber: 2, etag: '"b"', size: 5 },
      { partNumber: 3, etag: '"c"', size: 7 },
    ]);
    expect(markers).toEqual([undefined, '3']);
    inject.ListPartsCommand = 'NoSuchUpload';
    expect(await store.listParts(key, 'abc')).toEqual([]);
  });

  it('abort is idempotent: NoSuchUpload is success; other errors surface', async () => {
    const store = new S3BlobStore(s3, bucket);
    inject.AbortMultipartUploadCommand = 'NoSuchUpload';
    await expect(store.abortUpload(key, 'abc')).resolves.toBeUndefined();
    inject.AbortMultipartUploadCommand = 'AccessDenied';
    await expect(store.abortUpload(key, 'abc')).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('a single-part upload lists its object as part 1 once it is there, and has nothing to abort', async () => {
    const store = new S3BlobStore(s3, bucket);
    expect(await store.listParts(key, undefined)).toEqual([]);
    await store.put(key, new Uint8Array(10));
    expect(await store.listParts(key, undefined)).toEqual([expect.objectContaining({ partNumber: 1, size: 10 })]);
    await store.abortUpload(key, undefined);
    expect(await store.head(key)).toEqual({ size: 10 });
  });
});

/** DirectDownloads (presigned GET) of the S3 adapter: the URL serves the object, names only its key, and expires. */
describe('S3BlobStore direct downloads (s3rver)', () => {
  const key = 'studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5/0123456789abcdef.dcm';
  it('a presigned GET serves the object with the signed Content-Type; it carries the key and the signature, nothing else', async () => {
    const bucket = await aws.createBucket();
    const store = new S3BlobStore(aws.s3, bucket);
    await store.put(key, new Uint8Array([1, 2, 3, 4]));
    const url = new URL(await store.presignGet(key, { expiresInSeconds: 60, contentType: 'application/dicom' }));
    expect(url.pathname).toBe(`/${bucket}/${key}`);
    expect([...url.searchParams.keys()].filter((k) => !k.startsWith('X-Amz-')).sort()).toEqual(['response-content-type', 'x-id']);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('60');
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/dicom');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(Buffer.from([1, 2, 3, 4]));
    await expect(store.presignGet(key, { expiresInSeconds: 0 })).rejects.toThrow();
  });

  it('an expired URL is refused (signed an hour ago for 60 s; only Date is faked)', async () => {
    const bucket = await aws.createBucket();
    const store = new S3BlobStore(aws.s3, bucket);
    await store.put(key, new Uint8Array([1]));
    jest.useFakeTimers({ now: Date.now() - 3600_000, doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'queueMicrotask', 'hrtime', 'performance'] });
    let url: string;
    try {
      url = await store.presignGet(key, { expiresInSeconds: 60 });
    } finally {
      jest.useRealTimers();
    }
    const res = await fetch(url);
    await res.arrayBuffer();
    expect(res.status).toBe(403);
  });
});
