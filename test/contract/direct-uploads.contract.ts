/**
 * Contract of the DirectUploads port (functions/core/archive/ports.ts): large
 * objects sent by the client in parts straight to the store, S3 multipart
 * semantics. Run against every adapter that has the capability (local disk,
 * S3 through s3rver).
 *
 * Parts travel the way the store says: through a presigned URL the client
 * PUTs to (presignPart: S3), or relayed by the archive (putPart: embedded).
 * `sendPart` below does whichever the store offers, as the upload API does.
 *
 * `gaps` names what a stand-in server lacks (s3rver has no ListParts, no
 * AbortMultipartUpload, checks neither the signed Content-Length nor the parts
 * named at completion); those assertions are skipped for it and nothing else,
 * and the adapter's handling of the real S3 answers is tested by injecting them
 * (direct-uploads.test.ts).
 */
import type { BlobStore, DirectUploads } from '../../functions/core/archive/ports';
import { directUploadsOf } from '../../functions/core/archive/ports';
import { uploadObjectKey } from '../../functions/core/archive/keys';
import { newObjectId } from '../../functions/adapters/node-runtime';
import { patternBytes } from './blob-store.contract';

export type DirectUploadsFactory = () => Promise<{ store: BlobStore; cleanup: () => Promise<void> }>;

export interface StandInGaps {
  /** ListParts is missing (listParts then rejects). */
  listParts?: boolean;
  /** AbortMultipartUpload is missing. */
  abort?: boolean;
  /** A presigned part URL accepts a body of another length than it signed. */
  signedLength?: boolean;
  /**
   * CompleteMultipartUpload does not check the parts (missing parts, entity
   * tags) nor answer NoSuchUpload for an upload it does not know or completed.
   */
  completeChecks?: boolean;
}

const MiB = 1024 * 1024;
/** S3's smallest part (all but the last). */
const PART = 5 * MiB;

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Fields of an error that the contract may compare (stores attach `code`). */
function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | undefined)?.code;
}

/** How the store takes parts: presigned URLs the client PUTs to, or bytes the archive relays (putPart). */
export type PartTransport = 'presigned' | 'relayed';

export function directUploadsContract(name: string, transport: PartTransport, factory: DirectUploadsFactory, gaps: StandInGaps = {}): void {
  describe(`DirectUploads contract: ${name}`, () => {
    let store: BlobStore & DirectUploads;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      const made = await factory();
      const uploads = directUploadsOf(made.store);
      if (!uploads) throw new Error(`${name} has no direct-upload capability`);
      store = made.store as BlobStore & DirectUploads;
      cleanup = made.cleanup;
      expect(typeof store.presignPart === 'function').toBe(transport === 'presigned');
    });
    afterEach(async () => cleanup());

    const newKey = () => uploadObjectKey(newObjectId(), new Date());

    /**
     * Send one part as a client would; `declared` is the part's size as the
     * upload knows it, `bytes` what is actually sent. Resolves to the part's
     * entity tag; rejects with { status } (URL) or the store's error (relay).
     */
    async function sendPart(key: string, uploadId: string | undefined, partNumber: number, bytes: Uint8Array, declared = bytes.byteLength): Promise<string> {
      if (store.presignPart) {
        const target = await store.presignPart!(key, uploadId, { partNumber, size: declared }, 300);
        expect(target).toMatchObject({ partNumber, size: declared, method: 'PUT' });
        expect(new URL(target.url).protocol).toMatch(/^https?:$/);
        const res = await fetch(target.url, { method: 'PUT', headers: target.headers, body: bytes as unknown as BodyInit });
        await res.arrayBuffer();
        if (!res.ok) throw Object.assign(new Error(`part ${partNumber}: HTTP ${res.status}`), { status: res.status });
        const etag = res.headers.get('etag');
        expect(etag).toBeTruthy();
        return etag!;
      }
      return (await store.putPart!(key, uploadId, partNumber, once(bytes), declared)).etag;
    }

    function partsOf(bytes: Uint8Array, partSize: number): Uint8Array[] {
      const out: Uint8Array[] = [];
      for (let at = 0; at < bytes.byteLength; at += partSize) out.push(bytes.subarray(at, Math.min(at + partSize, bytes.byteLength)));
      return out;
    }

    it('single part: one PUT, then complete; the object holds exactly the bytes', async () => {
      const key = newKey();
      const bytes = patternBytes(300_000, 7);
      const { uploadId } = await store.createUpload(key, { size: bytes.byteLength, partSize: PART, contentType: 'application/dicom' });
      const etag = await sendPart(key, uploadId, 1, bytes);
      if (!gaps.listParts) expect(await store.listParts(key, uploadId)).toEqual([expect.objectContaining({ partNumber: 1, size: bytes.byteLength })]);
      await store.completeUpload(key, uploadId, [{ partNumber: 1, etag }]);
      expect(await store.head(key)).toEqual({ size: bytes.byteLength });
      expect(Buffer.from(await store.getBytes(key)).equals(Buffer.from(bytes))).toBe(true);
    });

    it('multipart: parts sent in parallel and out of order; the object appears only at completion, parts in part-number order', async () => {
      const key = newKey();
      const bytes = patternBytes(2 * PART + 12_345, 11);
      const { uploadId } = await store.createUpload(key, { size: bytes.byteLength, partSize: PART });
      expect(uploadId).toEqual(expect.any(String));
      const parts = partsOf(bytes, PART);
      const etags = await Promise.all([3, 1, 2].map(async (n) => ({ partNumber: n, etag: await sendPart(key, uploadId, n, parts[n - 1]!) })));
      expect(await store.head(key)).toBeUndefined();
      if (!gaps.listParts) {
        const listed = await store.listParts(key, uploadId);
        expect(listed.map((p) => [p.partNumber, p.size])).toEqual([
          [1, PART],
          [2, PART],
          [3, 12_345],
        ]);
        // The entity tags listed are the ones the PUTs returned (what a resuming client sends back).
        for (const p of listed) expect(p.etag.replace(/"/g, '')).toBe(etags.find((e) => e.partNumber === p.partNumber)!.etag.replace(/"/g, ''));
      }
      await store.completeUpload(key, uploadId, etags);
      expect(await store.head(key)).toEqual({ size: bytes.byteLength });
      expect(Buffer.from(await store.getBytes(key)).equals(Buffer.from(bytes))).toBe(true);
      // Ranged reads work on an assembled object across part boundaries.
      expect(Buffer.from(await store.getBytes(key, { start: PART - 10, end: PART + 9 })).equals(Buffer.from(bytes.subarray(PART - 10, PART + 10)))).toBe(true);
      if (!gaps.listParts) expect(await store.listParts(key, uploadId)).toEqual([]);
    });

    it('a re-sent part replaces the earlier copy (resume); completion uses the newest entity tag', async () => {
      const key = newKey();
      const bytes = patternBytes(PART + 1000, 13);
      const [first, second] = partsOf(bytes, PART);
      const { uploadId } = await store.createUpload(key, { size: bytes.byteLength, partSize: PART });
      await sendPart(key, uploadId, 1, patternBytes(PART, 99)); // wrong content, right size
      const etag1 = await sendPart(key, uploadId, 1, first!);
      const etag2 = await sendPart(key, uploadId, 2, second!);
      await store.completeUpload(key, uploadId, [
        { partNumber: 2, etag: etag2 },
        { partNumber: 1, etag: etag1 },
      ]);
      expect(Buffer.from(await store.getBytes(key)).equals(Buffer.from(bytes))).toBe(true);
    });

    (gaps.completeChecks ? it.skip : it)('completing again (a retried call) succeeds and leaves the object as it is', async () => {
      const key = newKey();
      const bytes = patternBytes(PART + 10, 17);
      const { uploadId } = await store.createUpload(key, { size: bytes.byteLength, partSize: PART });
      const parts = partsOf(bytes, PART);
      const etags = [{ partNumber: 1, etag: await sendPart(key, uploadId, 1, parts[0]!) }, { partNumber: 2, etag: await sendPart(key, uploadId, 2, parts[1]!) }];
      await store.completeUpload(key, uploadId, etags);
      await expect(store.completeUpload(key, uploadId, etags)).resolves.toBeUndefined();
      expect(Buffer.from(await store.getBytes(key)).equals(Buffer.from(bytes))).toBe(true);
    });

    (gaps.completeChecks ? it.skip : it)('completion with a missing part is refused (UPLOAD_INVALID) and the upload stays open', async () => {
      const key = newKey();
      const bytes = patternBytes(PART + 10, 19);
      const [first, second] = partsOf(bytes, PART);
      const { uploadId } = await store.createUpload(key, { size: bytes.byteLength, partSize: PART });
      const etag1 = await sendPart(key, uploadId, 1, first!);
      await expect(store.completeUpload(key, uploadId, [{ partNumber: 1, etag: etag1 }, { partNumber: 2, etag: '"0123456789abcdef0123456789abcdef"' }])).rejects.toMatchObject({ code: 'UPLOAD_INVALID' });
      expect(await store.head(key)).toBeUndefined();
      const etag2 = await sendPart(key, uploadId, 2, second!);
      await store.completeUpload(key, uploadId, [{ partNumber: 1, etag: etag1 }, { partNumber: 2, etag: etag2 }]);
      expect(Buffer.from(await store.getBytes(key)).equals(Buffer.from(bytes))).toBe(true);
    });

    (gaps.completeChecks ? it.skip : it)('completion with an entity tag the store did not give is refused (UPLOAD_INVALID)', async () => {
      const key = newKey();
      const bytes = patternBytes(PART + 10, 23);
      const [first, second] = partsOf(bytes, PART);
      const { uploadId } = await store.createUpload(key, { size: bytes.byteLength, partSize: PART });
      const etag1 = await sendPart(key, uploadId, 1, first!);
      await sendPart(key, uploadId, 2, second!);
      await expect(store.completeUpload(key, uploadId, [{ partNumber: 1, etag: etag1 }, { partNumber: 2, etag: etag1 }])).rejects.toMatchObject({ code: 'UPLOAD_INVALID' });
      expect(await store.head(key)).toBeUndefined();
    });

    (gaps.signedLength ? it.skip : it)('a part of another length than its size is not accepted', async () => {
      const key = newKey();
      const { uploadId } = await store.createUpload(key, { size: PART + 10, partSize: PART });
      await expect(sendPart(key, uploadId, 2, patternBytes(11, 3), 10)).rejects.toBeDefined();
      await expect(sendPart(key, uploadId, 2, patternBytes(9, 3), 10)).rejects.toBeDefined();
      if (!gaps.listParts) expect(await store.listParts(key, uploadId)).toEqual([]);
    });

    it('a part number outside the upload is refused (UPLOAD_INVALID)', async () => {
      const key = newKey();
      const { uploadId } = await store.createUpload(key, { size: PART + 10, partSize: PART });
      for (const n of [0, 10_001]) {
        const attempt = store.presignPart ? store.presignPart(key, uploadId, { partNumber: n, size: 10 }, 60) : store.putPart!(key, uploadId, n, once(patternBytes(10)), 10);
        await expect(attempt).rejects.toMatchObject({ code: 'UPLOAD_INVALID' });
      }
    });

    (gaps.abort ? it.skip : it)('abort drops the received parts, is idempotent, and the upload can no longer be completed', async () => {
      const key = newKey();
      const bytes = patternBytes(PART + 10, 29);
      const { uploadId } = await store.createUpload(key, { size: bytes.byteLength, partSize: PART });
      const etag1 = await sendPart(key, uploadId, 1, bytes.subarray(0, PART));
      await store.abortUpload(key, uploadId);
      await store.abortUpload(key, uploadId);
      if (!gaps.listParts) expect(await store.listParts(key, uploadId)).toEqual([]);
      const error = await store.completeUpload(key, uploadId, [{ partNumber: 1, etag: etag1 }]).catch((e: unknown) => e);
      expect(codeOf(error)).toBe('UPLOAD_NOT_FOUND');
      expect(await store.head(key)).toBeUndefined();
    });

    (gaps.abort ? it.skip : it)('abort after completion never removes the completed object', async () => {
      const key = newKey();
      const bytes = patternBytes(PART + 10, 31);
      const parts = partsOf(bytes, PART);
      const { uploadId } = await store.createUpload(key, { size: bytes.byteLength, partSize: PART });
      const etags = [{ partNumber: 1, etag: await sendPart(key, uploadId, 1, parts[0]!) }, { partNumber: 2, etag: await sendPart(key, uploadId, 2, parts[1]!) }];
      await store.completeUpload(key, uploadId, etags);
      await store.abortUpload(key, uploadId);
      expect(await store.head(key)).toEqual({ size: bytes.byteLength });
    });

    (gaps.completeChecks ? it.skip : it)('an upload id the store never gave cannot be completed (UPLOAD_NOT_FOUND), and lists no parts', async () => {
      const key = newKey();
      const bogus = '0123456789abcdef0123456789abcdef';
      await expect(store.completeUpload(key, bogus, [{ partNumber: 1, etag: '"x"' }])).rejects.toMatchObject({ code: 'UPLOAD_NOT_FOUND' });
      if (!gaps.listParts) expect(await store.listParts(key, bogus)).toEqual([]);
    });

    if (gaps.listParts) {
      it('(stand-in gap) listParts is not available here: it rejects rather than inventing parts', async () => {
        const key = newKey();
        const { uploadId } = await store.createUpload(key, { size: PART + 10, partSize: PART });
        await expect(store.listParts(key, uploadId)).rejects.toBeDefined();
      });
    }

    // Relayed parts: the archive's own signed URLs expire (core/archive/upload.ts), tested in test/e2e/upload-ingest.test.ts.
    (transport === 'presigned' ? it : it.skip)('presigned part URLs expire: a URL signed in the past is refused by the store', async () => {
      const key = newKey();
      const { uploadId } = await store.createUpload(key, { size: PART + 10, partSize: PART });
      // Sign an hour ago with a 60 s lifetime: only Date is faked, nothing waits.
      jest.useFakeTimers({ now: Date.now() - 3600_000, doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'queueMicrotask', 'hrtime', 'performance'] });
      let target;
      try {
        target = await store.presignPart!(key, uploadId, { partNumber: 2, size: 10 }, 60);
      } finally {
        jest.useRealTimers();
      }
      const res = await fetch(target.url, { method: 'PUT', headers: target.headers, body: patternBytes(10) as unknown as BodyInit });
      await res.arrayBuffer();
      expect(res.status).toBe(403);
    });
  });
}
