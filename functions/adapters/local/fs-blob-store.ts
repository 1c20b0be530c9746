/**
 * BlobStore on the local file system (embedded mode, `npm start`). One file
 * per key under `rootDir`; the key's '/' separated segments are directories.
 *
 * Atomic put: bytes go to a temporary file in `rootDir/.tmp` (same file
 * system, so rename is atomic), are fsynced, then renamed into place. A
 * reader, or a crash, sees the whole object or none of it; a crash can leave
 * only a stray temporary file, which is swept at start-up. Like Orthanc's
 * default (`SyncStorageArea`), the file is fsynced but not its directory.
 *
 * Memory is bounded: get streams with a read stream (64 KiB chunks), put
 * writes chunk by chunk.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { BlobInfo, BlobStore, ByteRangeRequest, DirectUploads, UploadedPart } from '../../core/archive/ports';

const TMP_DIR = '.tmp';
/** Staging of direct uploads: one directory per open upload (parts + upload.json). */
const UPLOADS_DIR = '.uploads';
/** Staged uploads untouched for this long at start-up are abandoned (the S3 lifecycle rule's counterpart). */
const STALE_UPLOAD_MS = 7 * 24 * 60 * 60 * 1000;
/** Temporary files older than this at start-up are leftovers of a crash. */
const STALE_TMP_MS = 60 * 60 * 1000;
const READ_CHUNK = 256 * 1024;
/** Objects (or ranges) up to this size are read with one read instead of a stream. */
const READ_WHOLE = 1024 * 1024;
/** Bytes gathered before one write while an object streams in (bounds memory per concurrent put). */
const WRITE_BATCH = 1024 * 1024;

const SEGMENT = /^[A-Za-z0-9._-]+$/;

function codeOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function notFound(): Error {
  return Object.assign(new Error('blob not found'), { code: 'BLOB_NOT_FOUND' });
}

function invalidKey(what: string): Error {
  // Keys are built by core/archive/keys.ts; reaching here is a programming error, never user input.
  return Object.assign(new Error(`invalid blob ${what}`), { code: 'INVALID_BLOB_KEY' });
}

function badRange(): Error {
  return Object.assign(new Error('invalid byte range'), { code: 'RANGE_NOT_SATISFIABLE' });
}

/** Segments of a key: each [A-Za-z0-9._-]+, not '.' or '..', and not the temp directory. */
function segmentsOf(key: string, what = 'key'): string[] {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024) throw invalidKey(what);
  const segments = key.split('/');
  for (const s of segments) {
    if (!SEGMENT.test(s) || s === '.' || s === '..') throw invalidKey(what);
  }
  if (segments[0] === TMP_DIR || segments[0] === UPLOADS_DIR) throw invalidKey(what);
  return segments;
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface FsBlobStoreOptions {
  /** fsync each object before it becomes visible (default true). Off only for throw-away stores. */
  fsync?: boolean;
}

export class FsBlobStore implements BlobStore, DirectUploads {
  readonly rootDir: string;
  private readonly tmpDir: string;
  private readonly fsync: boolean;
  private ready: Promise<void> | undefined;

  constructor(rootDir: string, options: FsBlobStoreOptions = {}) {
    this.rootDir = path.resolve(rootDir);
    this.tmpDir = path.join(this.rootDir, TMP_DIR);
    this.fsync = options.fsync ?? true;
  }

  async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, _options?: { contentType?: string }): Promise<BlobInfo> {
    const target = this.pathOf(key);
    await this.init();
    const tmp = path.join(this.tmpDir, `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`);
    let handle: FileHandle | undefined;
    let size = 0;
    try {
      handle = await fs.open(tmp, 'wx', 0o644);
      if (body instanceof Uint8Array) {
        await writeAll(handle, [body]);
        size = body.byteLength;
      } else {
        // Request bodies arrive in chunks of 16-64 KiB; each write is a trip
        // through libuv's thread pool, which under load costs more than the
        // write itself. Gather up to WRITE_BATCH bytes and write them at once
        // (a typical CT slice: one writev instead of ~10 writes).
        let batch: Uint8Array[] = [];
        let batched = 0;
        for await (const chunk of body) {
          batch.push(chunk);
          batched += chunk.byteLength;
          size += chunk.byteLength;
          if (batched >= WRITE_BATCH) {
            await writeAll(handle, batch);
            batch = [];
            batched = 0;
          }
        }
        if (batched > 0) await writeAll(handle, batch);
      }
      if (this.fsync) await handle.sync();
      await handle.close();
      handle = undefined;
      await this.renameIntoPlace(tmp, target);
      return { size };
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw error;
    }
  }

  async get(key: string, range?: ByteRangeRequest): Promise<AsyncIterable<Uint8Array>> {
    const { handle, start, end } = await this.openForRead(key, range);
    if (end < start) {
      // empty object (or empty tail): nothing to stream
      await handle.close();
      return (async function* () {})();
    }
    if (end - start + 1 <= READ_WHOLE) {
      // A small object (a CT slice) in one read: a study retrieve reads hundreds of them, and a
      // read stream's machinery per object cost more than the read itself.
      let bytes: Uint8Array;
      try {
        bytes = await readFully(handle, start, end - start + 1);
      } finally {
        await handle.close();
      }
      return (async function* () {
        yield bytes;
      })();
    }
    // The stream owns the handle from here and closes it on end, error or destroy.
    return handle.createReadStream({ start, end, highWaterMark: READ_CHUNK, autoClose: true });
  }

  async getBytes(key: string, range?: ByteRangeRequest): Promise<Uint8Array> {
    const { handle, start, end } = await this.openForRead(key, range);
    try {
      return await readFully(handle, start, Math.max(0, end - start + 1));
    } finally {
      await handle.close();
    }
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    const file = this.pathOf(key);
    try {
      const stat = await fs.stat(file);
      return stat.isFile() ? { size: stat.size } : undefined;
    } catch (error) {
      if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR') return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    try {
      await fs.unlink(file);
    } catch (error) {
      const code = codeOf(error);
      // missing, or a directory (a prefix, not an object): nothing to delete
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EPERM') return;
      throw error;
    }
    await this.pruneEmptyParents(path.dirname(file));
  }

  async *list(prefix: string): AsyncIterable<string> {
    // Walk only the directory that holds the prefix: "studies/1.2.3/" walks
    // studies/1.2.3, "studies/1.2" walks studies/ and keeps names starting "1.2".
    const slash = prefix.lastIndexOf('/');
    const dirPart = slash >= 0 ? prefix.slice(0, slash) : '';
    const namePrefix = prefix.slice(slash + 1);
    if (dirPart !== '') segmentsOf(dirPart, 'prefix');
    if (namePrefix !== '' && !/^[A-Za-z0-9._-]+$/.test(namePrefix)) throw invalidKey('prefix');
    const start = dirPart === '' ? this.rootDir : path.join(this.rootDir, ...dirPart.split('/'));
    yield* this.walk(start, dirPart === '' ? '' : `${dirPart}/`, namePrefix, dirPart === '');
  }

  /** Keys in lexicographic order: a directory sorts as "name/", since every key below it starts so. */
  private async *walk(dir: string, keyPrefix: string, namePrefix: string, atRoot: boolean): AsyncGenerator<string> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR') return;
      throw error;
    }
    const items: { sortName: string; name: string; isDir: boolean }[] = [];
    for (const e of entries) {
      if (atRoot && (e.name === TMP_DIR || e.name === UPLOADS_DIR)) continue;
      if (namePrefix && !e.name.startsWith(namePrefix)) continue;
      if (e.isDirectory()) items.push({ sortName: `${e.name}/`, name: e.name, isDir: true });
      else if (e.isFile()) items.push({ sortName: e.name, name: e.name, isDir: false });
    }
    items.sort((a, b) => compareKeys(a.sortName, b.sortName));
    for (const item of items) {
      if (item.isDir) yield* this.walk(path.join(dir, item.name), `${keyPrefix}${item.name}/`, '', false);
      else yield `${keyPrefix}${item.name}`;
    }
  }

  // ---------------------------------------------------------------- direct uploads (DirectUploads)
  //
  // The embedded counterpart of S3 multipart uploads. The archive serves the part
  // URLs itself (signed, see core/archive/upload.ts) and relays each part here:
  // parts are staged under rootDir/.uploads/<uploadId>/ (same file system), each
  // written to a temporary name, fsynced and renamed, so a re-sent part replaces
  // the old one whole. Completion streams the parts, in order, through `put`
  // (atomic, as for any object) and drops the staging directory.

  async createUpload(key: string, options: { size: number; partSize: number }): Promise<{ uploadId?: string }> {
    segmentsOf(key);
    if (!Number.isSafeInteger(options.size) || options.size < 1 || !Number.isSafeInteger(options.partSize) || options.partSize < 1) {
      throw uploadError('UPLOAD_INVALID', 'invalid upload size or part size');
    }
    await this.init();
    const uploadId = randomBytes(16).toString('hex');
    const dir = path.join(this.rootDir, UPLOADS_DIR, uploadId);
    await fs.mkdir(dir, { recursive: true });
    const staged: StagedUpload = { key, size: options.size, partSize: options.partSize, partCount: Math.ceil(options.size / options.partSize) };
    await fs.writeFile(path.join(dir, 'upload.json'), JSON.stringify(staged));
    return { uploadId };
  }

  async putPart(key: string, uploadId: string | undefined, partNumber: number, body: AsyncIterable<Uint8Array>, size: number): Promise<{ etag: string }> {
    const { dir, staged } = await this.stagedUpload(key, uploadId);
    const expected = partLength(staged, partNumber);
    if (expected === undefined || size !== expected) throw uploadError('UPLOAD_INVALID', `part ${partNumber} must be ${expected ?? 0} bytes`);
    const tmp = path.join(dir, `.${randomBytes(8).toString('hex')}.tmp`);
    const md5 = createHash('md5');
    let written = 0;
    let handle: FileHandle | undefined;
    try {
      handle = await fs.open(tmp, 'wx', 0o644);
      for await (const chunk of body) {
        written += chunk.byteLength;
        // Stop at the first byte too many: the body is not read (nor stored) further.
        if (written > expected) throw uploadError('UPLOAD_INVALID', `part ${partNumber} is longer than ${expected} bytes`);
        md5.update(chunk);
        await writeAll(handle, [chunk]);
      }
      if (written !== expected) throw uploadError('UPLOAD_INVALID', `part ${partNumber} is ${written} bytes, not ${expected}`);
      if (this.fsync) await handle.sync();
      await handle.close();
      handle = undefined;
      const etag = md5.digest('hex');
      // Replace any earlier copy of this part: the newest rename wins, older names are removed after.
      const name = `${partNumber}-${etag}.part`;
      await fs.rename(tmp, path.join(dir, name));
      for (const other of await fs.readdir(dir)) {
        if (other !== name && other.startsWith(`${partNumber}-`) && other.endsWith('.part')) await fs.rm(path.join(dir, other), { force: true });
      }
      return { etag: `"${etag}"` };
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      if (codeOf(error) === 'ENOENT') throw uploadError('UPLOAD_NOT_FOUND', 'no such upload'); // aborted or completed meanwhile
      throw error;
    }
  }

  async listParts(key: string, uploadId: string | undefined): Promise<UploadedPart[]> {
    let found: { dir: string; staged: StagedUpload };
    try {
      found = await this.stagedUpload(key, uploadId);
    } catch (error) {
      if (codeOf(error) === 'UPLOAD_NOT_FOUND') return [];
      throw error;
    }
    const parts: UploadedPart[] = [];
    for (const name of await fs.readdir(found.dir).catch(() => [] as string[])) {
      const m = /^(\d{1,5})-([0-9a-f]{32})\.part$/.exec(name);
      if (!m) continue;
      const stat = await fs.stat(path.join(found.dir, name)).catch(() => undefined);
      if (stat) parts.push({ partNumber: Number(m[1]), etag: `"${m[2]}"`, size: stat.size });
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  async completeUpload(key: string, uploadId: string | undefined, parts: { partNumber: number; etag: string }[]): Promise<void> {
    let found: { dir: string; staged: StagedUpload };
    try {
      found = await this.stagedUpload(key, uploadId);
    } catch (error) {
      // Completed before (a retried call): the object is there.
      if (codeOf(error) === 'UPLOAD_NOT_FOUND' && (await this.head(key))) return;
      throw error;
    }
    const { dir, staged } = found;
    const have = new Map((await this.listParts(key, uploadId)).map((p) => [p.partNumber, p]));
    const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
    // Like S3 (InvalidPart), every part named must be there with the entity tag it was given; unlike S3, all parts are required (the object has a declared size).
    if (sorted.length !== staged.partCount || sorted.some((p, i) => p.partNumber !== i + 1)) {
      throw uploadError('UPLOAD_INVALID', `parts 1..${staged.partCount} must each be listed once`);
    }
    for (const p of sorted) {
      const got = have.get(p.partNumber);
      if (!got || got.etag.replace(/"/g, '') !== p.etag.replace(/"/g, '')) throw uploadError('UPLOAD_INVALID', `part ${p.partNumber} is missing or has another entity tag`);
      if (got.size !== partLength(staged, p.partNumber)) throw uploadError('UPLOAD_INVALID', `part ${p.partNumber} has the wrong size`);
    }
    const files = sorted.map((p) => path.join(dir, `${p.partNumber}-${have.get(p.partNumber)!.etag.replace(/"/g, '')}.part`));
    async function* concatenated(): AsyncGenerator<Uint8Array> {
      for (const file of files) yield* createReadStream(file, { highWaterMark: READ_CHUNK }) as AsyncIterable<Uint8Array>;
    }
    await this.put(key, concatenated());
    await fs.rm(dir, { recursive: true, force: true });
  }

  async abortUpload(key: string, uploadId: string | undefined): Promise<void> {
    try {
      const { dir } = await this.stagedUpload(key, uploadId);
      await fs.rm(dir, { recursive: true, force: true });
    } catch (error) {
      if (codeOf(error) !== 'UPLOAD_NOT_FOUND') throw error;
    }
  }

  private async stagedUpload(key: string, uploadId: string | undefined): Promise<{ dir: string; staged: StagedUpload }> {
    segmentsOf(key);
    if (uploadId === undefined || !/^[0-9a-f]{32}$/.test(uploadId)) throw uploadError('UPLOAD_NOT_FOUND', 'no such upload');
    const dir = path.join(this.rootDir, UPLOADS_DIR, uploadId);
    let staged: StagedUpload;
    try {
      staged = JSON.parse(await fs.readFile(path.join(dir, 'upload.json'), 'utf8')) as StagedUpload;
    } catch (error) {
      if (codeOf(error) === 'ENOENT') throw uploadError('UPLOAD_NOT_FOUND', 'no such upload');
      throw error;
    }
    if (staged.key !== key) throw uploadError('UPLOAD_NOT_FOUND', 'no such upload');
    return { dir, staged };
  }

  private pathOf(key: string): string {
    return path.join(this.rootDir, ...segmentsOf(key));
  }

  private async openForRead(key: string, range: ByteRangeRequest | undefined): Promise<{ handle: FileHandle; start: number; end: number }> {
    const file = this.pathOf(key);
    let handle: FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (error) {
      if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR') throw notFound();
      throw error;
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw notFound();
      const size = stat.size;
      if (!range) return { handle, start: 0, end: size - 1 };
      const { start } = range;
      if (!Number.isSafeInteger(start) || start < 0) throw badRange();
      if (range.end !== undefined && (!Number.isSafeInteger(range.end) || range.end < start)) throw badRange();
      if (start >= size && !(start === 0 && size === 0)) throw badRange();
      // like HTTP and S3, an end past the object is clamped to its last byte
      const end = Math.min(range.end ?? size - 1, size - 1);
      return { handle, start, end };
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  private async renameIntoPlace(tmp: string, target: string): Promise<void> {
    // A concurrent delete may prune the freshly made parent directory before
    // the rename: make it again and retry.
    for (let attempt = 0; ; attempt++) {
      await fs.mkdir(path.dirname(target), { recursive: true });
      try {
        await fs.rename(tmp, target);
        return;
      } catch (error) {
        if (codeOf(error) !== 'ENOENT' || attempt >= 5) throw error;
      }
    }
  }

  /** Best effort: remove now-empty directories up to (not including) the root. */
  private async pruneEmptyParents(dir: string): Promise<void> {
    while (dir.startsWith(this.rootDir + path.sep) && dir !== this.tmpDir) {
      try {
        await fs.rmdir(dir);
      } catch {
        return; // not empty (ENOTEMPTY/EEXIST), already gone, or in use: stop
      }
      dir = path.dirname(dir);
    }
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await fs.mkdir(this.tmpDir, { recursive: true });
      await this.sweepStaleTmp();
    })().catch((error) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  private async sweepStaleTmp(): Promise<void> {
    const now = Date.now();
    const uploads = path.join(this.rootDir, UPLOADS_DIR);
    for (const name of await fs.readdir(uploads).catch(() => [] as string[])) {
      const stat = await fs.stat(path.join(uploads, name, 'upload.json')).catch(() => undefined);
      if (!stat || now - stat.mtimeMs > STALE_UPLOAD_MS) await fs.rm(path.join(uploads, name), { recursive: true, force: true }).catch(() => undefined);
    }
    for (const name of await fs.readdir(this.tmpDir).catch(() => [] as string[])) {
      const file = path.join(this.tmpDir, name);
      try {
        const stat = await fs.stat(file);
        if (now - stat.mtimeMs > STALE_TMP_MS) await fs.rm(file, { force: true });
      } catch {
        // raced with another process: fine
      }
    }
  }
}

interface StagedUpload {
  key: string;
  size: number;
  partSize: number;
  partCount: number;
}

/** Bytes of part n (1-based): partSize, the remainder for the last; undefined outside 1..partCount. */
function partLength(u: StagedUpload, partNumber: number): number | undefined {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > u.partCount) return undefined;
  return partNumber < u.partCount ? u.partSize : u.size - (u.partCount - 1) * u.partSize;
}

/** Errors of a direct upload: UPLOAD_INVALID (the client sent wrong parts), UPLOAD_NOT_FOUND (no such open upload). */
function uploadError(code: 'UPLOAD_INVALID' | 'UPLOAD_NOT_FOUND', message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** `length` bytes from `start` (fewer only if the file was truncated underneath us: never for immutable objects). */
async function readFully(handle: FileHandle, start: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let at = 0;
  while (at < length) {
    const { bytesRead } = await handle.read(out, at, length - at, start + at);
    if (bytesRead === 0) break;
    at += bytesRead;
  }
  return at === length ? out : out.subarray(0, at);
}

/** Write every byte of `chunks` in order (writev may write less than asked: go on from there). */
async function writeAll(handle: FileHandle, chunks: Uint8Array[]): Promise<void> {
  let pending = chunks.filter((c) => c.byteLength > 0);
  while (pending.length > 0) {
    let { bytesWritten } = await handle.writev(pending);
    while (pending.length > 0 && bytesWritten >= pending[0]!.byteLength) {
      bytesWritten -= pending[0]!.byteLength;
      pending = pending.slice(1);
    }
    if (bytesWritten > 0) pending[0] = pending[0]!.subarray(bytesWritten);
  }
}
