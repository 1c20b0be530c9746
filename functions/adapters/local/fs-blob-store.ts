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
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { BlobInfo, BlobStore, ByteRangeRequest } from '../../core/archive/ports';

const TMP_DIR = '.tmp';
/** Temporary files older than this at start-up are leftovers of a crash. */
const STALE_TMP_MS = 60 * 60 * 1000;
const READ_CHUNK = 64 * 1024;

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
  if (segments[0] === TMP_DIR) throw invalidKey(what);
  return segments;
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface FsBlobStoreOptions {
  /** fsync each object before it becomes visible (default true). Off only for throw-away stores. */
  fsync?: boolean;
}

export class FsBlobStore implements BlobStore {
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
        await writeAll(handle, body);
        size = body.byteLength;
      } else {
        for await (const chunk of body) {
          await writeAll(handle, chunk);
          size += chunk.byteLength;
        }
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
    // The stream owns the handle from here and closes it on end, error or destroy.
    return handle.createReadStream({ start, end, highWaterMark: READ_CHUNK, autoClose: true });
  }

  async getBytes(key: string, range?: ByteRangeRequest): Promise<Uint8Array> {
    const { handle, start, end } = await this.openForRead(key, range);
    try {
      const length = Math.max(0, end - start + 1);
      const out = new Uint8Array(length);
      let at = 0;
      while (at < length) {
        const { bytesRead } = await handle.read(out, at, length - at, start + at);
        if (bytesRead === 0) break; // truncated underneath us: never for immutable objects
        at += bytesRead;
      }
      return at === length ? out : out.subarray(0, at);
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
      if (atRoot && e.name === TMP_DIR) continue;
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

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, at, bytes.byteLength - at);
    at += bytesWritten;
  }
}
