/**
 * Contract of the BlobStore port (functions/core/archive/ports.ts), run
 * against every adapter (local disk, S3 through s3rver). Only what the port
 * promises is tested here; adapter specifics live in the adapter's own tests.
 *
 * The factory is called once per test and must return an EMPTY store; the
 * suite calls `cleanup` after each test.
 */
import { createHash } from 'node:crypto';
import type { BlobStore } from '../../functions/core/archive/ports';

export type BlobStoreFactory = () => Promise<{ store: BlobStore; cleanup: () => Promise<void> }>;

/** Deterministic pseudo-random bytes (xorshift), so failures are reproducible. */
export function patternBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function* chunksOf(bytes: Uint8Array, chunkSize: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += chunkSize) {
    // a copy, so the store cannot rely on chunks being views of one buffer
    yield bytes.slice(at, Math.min(at + chunkSize, bytes.byteLength));
    await Promise.resolve();
  }
}

async function collectAll(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of source) {
    chunks.push(chunk);
    total += chunk.byteLength;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

async function listAll(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of store.list(prefix)) keys.push(key);
  return keys;
}

/** Byte comparison without jest printing megabytes of diff. */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual).toBeInstanceOf(Uint8Array);
  expect(actual.byteLength).toBe(expected.byteLength);
  const same = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(
    Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
  );
  expect(same).toBe(true);
}

async function expectNotFound(promise: Promise<unknown>): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code: 'BLOB_NOT_FOUND' });
}

/** Code-unit order, which equals byte order for the ASCII keys the archive builds. */
function sorted(keys: string[]): string[] {
  return [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

const KEY = 'studies/1.2.826.0.1.3680043.10.1234.1/series/1.2.826.0.1.3680043.10.1234.2/instances/1.2.826.0.1.3680043.10.1234.3/0123456789abcdef.dcm';

export function blobStoreContract(name: string, factory: BlobStoreFactory): void {
  describe(`BlobStore contract: ${name}`, () => {
    let store: BlobStore;
    let cleanup: (() => Promise<void>) | undefined;

    beforeEach(async () => {
      const made = await factory();
      store = made.store;
      cleanup = made.cleanup;
    });

    afterEach(async () => {
      await cleanup?.();
      cleanup = undefined;
    });

    describe('put / get', () => {
      it('stores bytes and returns their size; get, getBytes and head see them', async () => {
        const bytes = patternBytes(10_000, 7);
        await expect(store.put(KEY, bytes, { contentType: 'application/dicom' })).resolves.toEqual({ size: 10_000 });
        expectSameBytes(await store.getBytes(KEY), bytes);
        expectSameBytes(await collectAll(await store.get(KEY)), bytes);
        await expect(store.head(KEY)).resolves.toEqual({ size: 10_000 });
      });

      it('stores an async-iterable stream of chunks', async () => {
        const bytes = patternBytes(300_001, 11);
        await expect(store.put('a/stream.bin', chunksOf(bytes, 4096))).resolves.toEqual({ size: 300_001 });
        expectSameBytes(await store.getBytes('a/stream.bin'), bytes);
        await expect(store.head('a/stream.bin')).resolves.toEqual({ size: 300_001 });
      });

      it('stores an empty object', async () => {
        await expect(store.put('a/empty.bin', new Uint8Array(0))).resolves.toEqual({ size: 0 });
        await expect(store.head('a/empty.bin')).resolves.toEqual({ size: 0 });
        expectSameBytes(await store.getBytes('a/empty.bin'), new Uint8Array(0));
        expectSameBytes(await collectAll(await store.get('a/empty.bin')), new Uint8Array(0));
      });

      it('stores an empty stream', async () => {
        await expect(store.put('a/empty-stream.bin', chunksOf(new Uint8Array(0), 10))).resolves.toEqual({ size: 0 });
        await expect(store.head('a/empty-stream.bin')).resolves.toEqual({ size: 0 });
      });

      it('keeps objects with distinct keys apart', async () => {
        const one = patternBytes(1000, 1);
        const two = patternBytes(2000, 2);
        await store.put('x/1.bin', one);
        await store.put('x/2.bin', two);
        expectSameBytes(await store.getBytes('x/1.bin'), one);
        expectSameBytes(await store.getBytes('x/2.bin'), two);
      });
    });

    describe('byte ranges (start..end inclusive)', () => {
      const bytes = patternBytes(100_000, 3);
      beforeEach(async () => {
        await store.put(KEY, bytes);
      });

      it('serves start..end inclusive through get and getBytes', async () => {
        expectSameBytes(await collectAll(await store.get(KEY, { start: 10, end: 19 })), bytes.subarray(10, 20));
        expectSameBytes(await store.getBytes(KEY, { start: 10, end: 19 }), bytes.subarray(10, 20));
      });

      it('serves a single byte (start = end)', async () => {
        expectSameBytes(await store.getBytes(KEY, { start: 0, end: 0 }), bytes.subarray(0, 1));
        expectSameBytes(await store.getBytes(KEY, { start: 99_999, end: 99_999 }), bytes.subarray(99_999));
      });

      it('serves an open-ended range to the end', async () => {
        expectSameBytes(await collectAll(await store.get(KEY, { start: 99_000 })), bytes.subarray(99_000));
        expectSameBytes(await store.getBytes(KEY, { start: 99_000 }), bytes.subarray(99_000));
        expectSameBytes(await store.getBytes(KEY, { start: 0 }), bytes);
      });

      it('serves a range ending at the last byte', async () => {
        expectSameBytes(await store.getBytes(KEY, { start: 50_000, end: 99_999 }), bytes.subarray(50_000));
      });
    });

    describe('missing keys', () => {
      it('get and getBytes reject with code BLOB_NOT_FOUND; head is undefined', async () => {
        await expectNotFound(store.get('no/such/key.dcm'));
        await expectNotFound(store.getBytes('no/such/key.dcm'));
        await expectNotFound(store.get('no/such/key.dcm', { start: 0, end: 10 }));
        await expectNotFound(store.getBytes('no/such/key.dcm', { start: 5 }));
        await expect(store.head('no/such/key.dcm')).resolves.toBeUndefined();
      });

      it('a key that is only a prefix of stored keys is not an object', async () => {
        await store.put('dir/sub/object.bin', patternBytes(10));
        await expect(store.head('dir/sub')).resolves.toBeUndefined();
        await expect(store.head('dir')).resolves.toBeUndefined();
        await expectNotFound(store.getBytes('dir/sub'));
      });
    });

    describe('delete', () => {
      it('removes the object', async () => {
        await store.put(KEY, patternBytes(100));
        await store.delete(KEY);
        await expect(store.head(KEY)).resolves.toBeUndefined();
        await expectNotFound(store.getBytes(KEY));
        await expect(listAll(store, '')).resolves.toEqual([]);
      });

      it('is idempotent: deleting twice, or a key never stored, succeeds', async () => {
        await store.put(KEY, patternBytes(100));
        await store.delete(KEY);
        await expect(store.delete(KEY)).resolves.toBeUndefined();
        await expect(store.delete('never/stored.bin')).resolves.toBeUndefined();
      });

      it('leaves sibling objects alone, and the key can be written again', async () => {
        await store.put('s/1/a.bin', patternBytes(10, 1));
        await store.put('s/1/b.bin', patternBytes(10, 2));
        await store.delete('s/1/a.bin');
        await expect(listAll(store, 's/')).resolves.toEqual(['s/1/b.bin']);
        await store.put('s/1/a.bin', patternBytes(20, 3));
        expectSameBytes(await store.getBytes('s/1/a.bin'), patternBytes(20, 3));
      });
    });

    describe('list(prefix)', () => {
      // Chosen so that directory-walk order and key order differ: '-' (2D) and '.' (2E) sort before '/' (2F).
      const keys = [
        'p/b/x.bin',
        'p/b-c.bin',
        'p/b.d',
        'p/a',
        'p/bb/y.bin',
        'p/b/z/deep.bin',
        'p/b/a.bin',
        'q/other.bin',
        'p2/z.bin',
        'studies/1.2.826.0.1.3680043.10.1234.10/x.dcm',
        'studies/1.2.826.0.1.3680043.10.1234.1/x.dcm',
        'studies/1.2.826.0.1.3680043.10.1234.1.5/x.dcm',
      ];

      beforeEach(async () => {
        for (const key of keys) await store.put(key, patternBytes(3));
      });

      it('lists every key in lexicographic order for the empty prefix', async () => {
        await expect(listAll(store, '')).resolves.toEqual(sorted(keys));
      });

      it('is a plain string prefix, not a directory match', async () => {
        await expect(listAll(store, 'p/b')).resolves.toEqual(sorted(keys.filter((k) => k.startsWith('p/b'))));
        await expect(listAll(store, 'p/b/')).resolves.toEqual(['p/b/a.bin', 'p/b/x.bin', 'p/b/z/deep.bin']);
        await expect(listAll(store, 'p')).resolves.toEqual(sorted(keys.filter((k) => k.startsWith('p'))));
        await expect(listAll(store, 'p/')).resolves.toEqual(sorted(keys.filter((k) => k.startsWith('p/'))));
      });

      it('does not confuse UID prefixes (study 1 vs 10 vs 1.5)', async () => {
        await expect(listAll(store, 'studies/1.2.826.0.1.3680043.10.1234.1/')).resolves.toEqual([
          'studies/1.2.826.0.1.3680043.10.1234.1/x.dcm',
        ]);
        await expect(listAll(store, 'studies/1.2.826.0.1.3680043.10.1234.1')).resolves.toEqual([
          'studies/1.2.826.0.1.3680043.10.1234.1.5/x.dcm',
          'studies/1.2.826.0.1.3680043.10.1234.1/x.dcm',
          'studies/1.2.826.0.1.3680043.10.1234.10/x.dcm',
        ]);
      });

      it('matches a full key exactly, and nothing for unknown prefixes', async () => {
        await expect(listAll(store, 'p/b/x.bin')).resolves.toEqual(['p/b/x.bin']);
        await expect(listAll(store, 'nothing/')).resolves.toEqual([]);
        await expect(listAll(store, 'p/c')).resolves.toEqual([]);
        await expect(listAll(store, 'p/b/x.bin.more')).resolves.toEqual([]);
      });

      it('no longer lists deleted keys', async () => {
        await store.delete('p/b/z/deep.bin');
        await expect(listAll(store, 'p/b/')).resolves.toEqual(['p/b/a.bin', 'p/b/x.bin']);
      });
    });

    describe('atomic put', () => {
      it('an aborted stream leaves no object and nothing visible through list or head', async () => {
        await store.put('keep/me.bin', patternBytes(5));
        const failure = new Error('client went away');
        async function* aborted(): AsyncGenerator<Uint8Array> {
          yield patternBytes(256 * 1024, 1);
          yield patternBytes(256 * 1024, 2);
          throw failure;
        }
        await expect(store.put('abort/me.bin', aborted())).rejects.toBeDefined();
        await expect(store.head('abort/me.bin')).resolves.toBeUndefined();
        await expectNotFound(store.getBytes('abort/me.bin'));
        await expect(listAll(store, '')).resolves.toEqual(['keep/me.bin']);
      });

      it('an aborted stream does not disturb an object already stored under the key', async () => {
        const original = patternBytes(1000, 9);
        await store.put('over/write.bin', original);
        async function* aborted(): AsyncGenerator<Uint8Array> {
          yield patternBytes(64 * 1024, 1);
          throw new Error('boom');
        }
        await expect(store.put('over/write.bin', aborted())).rejects.toBeDefined();
        expectSameBytes(await store.getBytes('over/write.bin'), original);
      });

      it('an object being written is not visible until put resolves', async () => {
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        let firstChunkTaken!: () => void;
        const started = new Promise<void>((resolve) => (firstChunkTaken = resolve));
        const bytes = patternBytes(128 * 1024, 5);
        async function* slow(): AsyncGenerator<Uint8Array> {
          yield bytes.slice(0, 64 * 1024);
          firstChunkTaken();
          await gate;
          yield bytes.slice(64 * 1024);
        }
        const pending = store.put('slow/object.bin', slow());
        await started;
        await expect(store.head('slow/object.bin')).resolves.toBeUndefined();
        await expect(listAll(store, '')).resolves.toEqual([]);
        release();
        await expect(pending).resolves.toEqual({ size: bytes.byteLength });
        expectSameBytes(await store.getBytes('slow/object.bin'), bytes);
      });
    });

    describe('large objects', () => {
      it('round-trips 20 MB streamed in 64 KB chunks', async () => {
        const size = 20 * 1024 * 1024;
        const bytes = patternBytes(size, 42);
        const expectedHash = createHash('sha256').update(bytes).digest('hex');
        await expect(store.put('large/object.bin', chunksOf(bytes, 64 * 1024))).resolves.toEqual({ size });
        await expect(store.head('large/object.bin')).resolves.toEqual({ size });

        const hash = createHash('sha256');
        let total = 0;
        for await (const chunk of await store.get('large/object.bin')) {
          hash.update(chunk);
          total += chunk.byteLength;
        }
        expect(total).toBe(size);
        expect(hash.digest('hex')).toBe(expectedHash);

        // a range crossing chunk boundaries, deep inside the object
        const start = 5 * 1024 * 1024 + 12_345;
        const end = start + 300_000;
        expectSameBytes(await collectAll(await store.get('large/object.bin', { start, end })), bytes.subarray(start, end + 1));
        expectSameBytes(await store.getBytes('large/object.bin', { start: size - 10 }), bytes.subarray(size - 10));
      });
    });

    describe('concurrency', () => {
      it('16 concurrent puts of distinct keys all land', async () => {
        const items = Array.from({ length: 16 }, (_, i) => ({ key: `c/${String(i).padStart(2, '0')}.bin`, bytes: patternBytes(50_000 + i, i + 1) }));
        await Promise.all(items.map((item) => store.put(item.key, chunksOf(item.bytes, 8192))));
        await expect(listAll(store, 'c/')).resolves.toEqual(items.map((i) => i.key));
        for (const item of items) expectSameBytes(await store.getBytes(item.key), item.bytes);
      });
    });
  });
}
