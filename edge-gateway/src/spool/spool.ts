/**
 * The durable on-disk queue between DIMSE (or the importer) and the uploader.
 *
 *   <dir>/incoming/<id>.<pid>/{instance.dcm, record.json}  being written by process <pid> (record empty until commit)
 *   <dir>/queued/<id>/{instance.dcm, record.json}     waiting for upload
 *   <dir>/inflight/<id>/{instance.dcm, record.json}   being uploaded
 *   <dir>/done/<id>/record.json                       uploaded (file deleted), kept doneRetentionMs
 *   <dir>/quarantine/<id>/{instance.dcm, record.json} refused by the archive; kept for an operator
 *   <dir>/spool.lock                                  pid of the owner (the one process that uploads)
 *
 * One entry is one directory, so a state transition is one atomic rename of
 * that directory: a kill -9 at any point leaves the entry in the old state or
 * the new one, never split. Records are written inside the entry before it
 * moves (updates tmp + rename). A new entry's commit point is its whole record
 * (with the file's size and CRC-32) synced together with the file and the entry
 * directory (config `spool.fsync`); see IncomingWriter.commit and recovery.
 * Ids sort by creation time (oldest first) and never derive
 * from UIDs, so nothing from the wire ever becomes a path.
 *
 * Roles: the owner (gateway, or an importer run alone) claims entries and runs
 * start-up recovery; producers (an importer beside a running gateway) only add
 * entries. The owner picks up their entries by rescanning queued/.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import type { SpoolConfig } from '../config-types';
import type { Metrics } from '../ops/metrics';
import { silentLogger, type Logger } from '../ops/logger';
import { MinHeap } from './heap';
import { DirSyncer, fsyncDir, isErrno, processAlive, renameDurable, writeFileAtomic } from './fs-durable';
import { mapLimit } from '../map-limit';

export type SpoolState = 'queued' | 'inflight' | 'done' | 'quarantine';

export interface SpoolRecord {
  id: string;
  sopInstanceUID: string;
  sopClassUID: string;
  studyInstanceUID?: string;
  seriesInstanceUID?: string;
  transferSyntaxUID: string;
  sizeBytes: number;
  callingAETitle?: string;
  receivedAt: string;
  state: SpoolState;
  attempts: number;
  reason?: string;
  /** Not before this time (ISO) is the entry retried (backoff). */
  notBefore?: string;
  /** When the entry reached done/ or quarantine/. */
  settledAt?: string;
  /** Forced upload route (e.g. 'upload' after STOW answered 413). */
  route?: 'stow' | 'upload';
  /** Status URL of a large-object upload in progress, so a later attempt resumes it. */
  uploadStatusUrl?: string;
  /** CRC-32 (zlib) of the file as committed: recovery checks it before promoting a committed incoming entry. */
  crc32?: number;
}

export type IncomingMeta = Omit<SpoolRecord, 'id' | 'state' | 'attempts' | 'receivedAt' | 'sizeBytes'>;

export interface IncomingWriter {
  readonly path: string;
  write(chunk: Uint8Array): Promise<void>;
  /** write the record, sync file + record + entry directory (per config), move to queued/; returns the queued record. */
  commit(meta: IncomingMeta): Promise<SpoolRecord>;
  /** delete the partial file; nothing is queued. */
  abort(): Promise<void>;
}

export type SpoolRole = 'owner' | 'producer' | 'auto';

export interface SpoolDeps {
  metrics?: Metrics;
  logger?: Logger;
  /** 'owner' (default): must hold the spool lock; 'producer': never claims; 'auto': owner if nobody else is. */
  role?: SpoolRole;
  now?: () => number;
}

export class SpoolError extends Error {
  constructor(
    readonly code: 'SPOOL_LOCKED' | 'SPOOL_CLOSED' | 'SPOOL_NOT_OWNER' | 'SPOOL_WRITER_DONE' | 'SPOOL_FULL',
    message: string,
  ) {
    super(message);
    this.name = 'SpoolError';
  }
}

export const SPOOL_STATES: readonly SpoolState[] = ['queued', 'inflight', 'done', 'quarantine'];
const FILE = 'instance.dcm';
/** Free space is checked again after every this many bytes written to one incoming file. */
const SPACE_CHECK_BYTES = 64 * 1024 * 1024;
const RECORD = 'record.json';
/** How long createIncoming trusts the last free-space answer (see recentFreeBytes). */
const FREE_SPACE_TTL_MS = 1000;
const LOCK = 'spool.lock';
const ID = /^[0-9a-z]{9}-[0-9a-z]{4}-[0-9a-f]{8}$/;
const INCOMING = /^([0-9a-z]{9}-[0-9a-z]{4}-[0-9a-f]{8})\.(\d{1,10})$/;

let lastMs = 0;
let seq = 0;
/** Time-ordered id: 9 base-36 digits of ms, a per-ms sequence, 32 random bits. */
export function newSpoolId(nowMs = Date.now()): string {
  if (nowMs <= lastMs) {
    nowMs = lastMs;
    seq++;
  } else {
    lastMs = nowMs;
    seq = 0;
  }
  return `${nowMs.toString(36).padStart(9, '0')}-${(seq % 36 ** 4).toString(36).padStart(4, '0')}-${randomBytes(4).toString('hex')}`;
}

/** Creation time of an id (ms since the epoch). */
export function spoolIdTime(id: string): number {
  return parseInt(id.slice(0, 9), 36);
}

export function isSpoolId(id: string): boolean {
  return ID.test(id);
}

/** Read a record, or undefined when absent or unreadable (a torn tmp is never read: records are renamed into place). */
async function readRecord(file: string): Promise<SpoolRecord | undefined> {
  try {
    const r = JSON.parse(await fsp.readFile(file, 'utf8')) as SpoolRecord;
    return typeof r === 'object' && r && typeof r.id === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The record of an incoming entry whose commit reached the disk (see IncomingWriter.commit): a
 * whole record (a torn or empty one does not parse) for this id, and a file of the recorded size
 * and CRC-32. Anything else was never acknowledged. Entries of the previous layout (record without
 * CRC) were acknowledged only after their rename, so an incoming one was never acknowledged either.
 */
async function committedIncoming(entry: string, id: string): Promise<SpoolRecord | undefined> {
  const record = await readRecord(path.join(entry, RECORD));
  if (!record || record.id !== id || record.state !== 'queued' || typeof record.crc32 !== 'number' || typeof record.sizeBytes !== 'number') return undefined;
  let crc = 0;
  let size = 0;
  try {
    for await (const chunk of fs.createReadStream(path.join(entry, FILE), { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
      crc = zlib.crc32(chunk, crc);
      size += chunk.length;
    }
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
  return size === record.sizeBytes && crc === record.crc32 ? record : undefined;
}

async function rmrf(p: string): Promise<void> {
  await fsp.rm(p, { recursive: true, force: true });
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  }
}

export class Spool {
  readonly dir: string;
  readonly events = new EventEmitter();
  private readonly log: Logger;
  private readonly now: () => number;
  private owner = false;
  private closed = false;
  /** Queued ids ready now, oldest first (owner only); the set guards against duplicates. */
  private readonly ready = new MinHeap<string>((a, b) => a < b);
  private readonly readyIds = new Set<string>();
  /** Queued ids waiting for their backoff → the time they become ready; the heap orders them (stale items skipped). */
  private readonly delayed = new Map<string, number>();
  private readonly delayedHeap = new MinHeap<{ at: number; id: string }>((a, b) => a.at < b.at);
  /** Where each SOP Instance UID is (the latest entry), for findDone and the importer's dedup. */
  private bySop = new Map<string, { id: string; state: SpoolState }>();
  /** Last statfs answer, and bytes written by this process since (createIncoming's free-space check). */
  private lastFree?: { at: number; free: number };
  private writtenSinceFree = 0;
  /** fsyncs of incoming/ shared by concurrent writers (new entries' names). */
  private readonly incomingSyncer: DirSyncer;

  private constructor(
    readonly config: SpoolConfig,
    deps: SpoolDeps,
  ) {
    this.dir = config.dir;
    this.incomingSyncer = new DirSyncer(path.join(config.dir, 'incoming'), config.fsync);
    this.log = deps.logger ?? silentLogger;
    this.now = deps.now ?? Date.now;
    this.events.setMaxListeners(0);
  }

  static async open(cfg: SpoolConfig, deps: SpoolDeps = {}): Promise<Spool> {
    const spool = new Spool(cfg, deps);
    for (const d of ['incoming', ...SPOOL_STATES]) await fsp.mkdir(path.join(cfg.dir, d), { recursive: true });
    await fsyncDir(cfg.dir, cfg.fsync);
    const role = deps.role ?? 'owner';
    if (role !== 'producer') {
      spool.owner = spool.tryLock();
      if (!spool.owner && role === 'owner') {
        throw new SpoolError('SPOOL_LOCKED', `the spool ${cfg.dir} is owned by another running process (pid ${spool.lockHolder()}); stop it or run as a producer`);
      }
    }
    if (spool.owner) await spool.recover();
    else await spool.rescan();
    spool.registerMetrics(deps.metrics);
    return spool;
  }

  /** Does this process upload from the spool (holds the lock)? */
  get isOwner(): boolean {
    return this.owner;
  }

  private lockPath(): string {
    return path.join(this.dir, LOCK);
  }

  lockHolder(): number | undefined {
    try {
      const pid = Number(fs.readFileSync(this.lockPath(), 'utf8').trim());
      return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Take the owner lock: created exclusively (O_EXCL); a lock left by a dead
   * process (kill -9) is taken over. Known gap: two processes taking over the
   * same stale lock in the same instant may both succeed.
   */
  private tryLock(): boolean {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = fs.openSync(this.lockPath(), 'wx', 0o600);
        fs.writeSync(fd, `${process.pid}\n`);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        return true;
      } catch (e) {
        if (!isErrno(e, 'EEXIST')) throw e;
        const holder = this.lockHolder();
        if (holder === process.pid) return true;
        if (holder !== undefined && processAlive(holder)) return false;
        // A stale lock (its process died) or an empty one (died while writing it).
        try {
          fs.unlinkSync(this.lockPath());
        } catch (err) {
          if (!isErrno(err, 'ENOENT')) throw err;
        }
      }
    }
    return false;
  }

  private entry(state: SpoolState, id: string): string {
    return path.join(this.dir, state, id);
  }

  /** Path of the Part 10 file of a record in its current state. */
  filePath(record: Pick<SpoolRecord, 'id' | 'state'>): string {
    return path.join(this.entry(record.state, record.id), FILE);
  }

  // ------------------------------------------------------------------ incoming

  /** Free bytes of the spool's file system (for the unprivileged user). */
  async freeBytes(): Promise<number> {
    const s = await fsp.statfs(this.dir);
    const free = s.bavail * s.bsize;
    // Real time, not the injectable clock (tests freeze that one).
    this.lastFree = { at: performance.now(), free };
    this.writtenSinceFree = 0;
    return free;
  }

  /**
   * The last statfs answer, less what this process wrote since, while younger than
   * FREE_SPACE_TTL_MS: a statfs per instance is a thread-pool round trip on the C-STORE path.
   * Other writers' bytes within that second are not seen; the floor has room for them.
   */
  private async recentFreeBytes(): Promise<number> {
    const last = this.lastFree;
    if (last && performance.now() - last.at < FREE_SPACE_TTL_MS) return last.free - this.writtenSinceFree;
    return this.freeBytes();
  }

  /** Is there room for new files (config spool.minFreeBytes)? */
  async hasRoom(): Promise<boolean> {
    const min = this.config.minFreeBytes ?? 0;
    return min <= 0 || (await this.freeBytes()) >= min;
  }

  async createIncoming(): Promise<IncomingWriter> {
    if (this.closed) throw new SpoolError('SPOOL_CLOSED', 'the spool is closed');
    // A long archive outage fills the disk: refuse new instances while they can still be refused
    // (C-STORE answers 0xA700 Out of Resources, PS3.4 Annex B.2.3) rather than fail half-written.
    const min = this.config.minFreeBytes ?? 0;
    if (min > 0 && (await this.recentFreeBytes()) < min) throw new SpoolError('SPOOL_FULL', `less than ${min} bytes free in the spool's file system`);
    const id = newSpoolId(this.now());
    const dir = path.join(this.dir, 'incoming', `${id}.${process.pid}`);
    await fsp.mkdir(dir);
    const file = path.join(dir, FILE);
    // The record's name exists from the start (empty: recovery reads that as "not committed"), so
    // the one fsync of the entry directory below covers both names and can run while data arrive.
    const opened = await Promise.allSettled([fsp.open(file, 'wx', 0o600), fsp.open(path.join(dir, RECORD), 'wx', 0o600)]);
    if (opened[0].status === 'rejected' || opened[1].status === 'rejected') {
      for (const o of opened) if (o.status === 'fulfilled') await o.value.close().catch(() => undefined);
      await rmrf(dir).catch(() => undefined);
      throw opened[0].status === 'rejected' ? opened[0].reason : (opened[1] as PromiseRejectedResult).reason;
    }
    const fileHandle = opened[0].value;
    const recHandle = opened[1].value;
    const cfg = this.config;
    // The entry directory's fsync makes the two names durable, incoming/'s the entry's own name
    // (shared by concurrent writers: group commit). Started now, awaited by commit(): off the
    // critical path of all but the smallest instances. Settles to the error (never rejects) so an
    // abort before commit leaves no unhandled rejection.
    const dirSynced: Promise<unknown> = Promise.all([fsyncDir(dir, cfg.fsync), this.incomingSyncer.sync()]).then(
      () => undefined,
      (e: unknown) => e ?? new Error('fsync of the entry directory failed'),
    );
    let size = 0;
    let crc = 0;
    let checkedAt = 0;
    let finished = false;
    const spool = this;
    const finish = () => {
      if (finished) throw new SpoolError('SPOOL_WRITER_DONE', 'this incoming file is already committed or aborted');
      finished = true;
    };
    const closeAll = () => Promise.all([fileHandle.close().catch(() => undefined), recHandle.close().catch(() => undefined)]);
    return {
      path: file,
      async write(chunk: Uint8Array) {
        if (finished) throw new SpoolError('SPOOL_WRITER_DONE', 'this incoming file is already committed or aborted');
        // One instance can be gigabytes (whole-slide images): keep an eye on the disk while it
        // arrives, with half the floor as margin so an instance that started can usually finish.
        if (size - checkedAt >= SPACE_CHECK_BYTES) {
          checkedAt = size;
          const min = cfg.minFreeBytes ?? 0;
          if (min > 0 && (await spool.freeBytes()) < min / 2) throw new SpoolError('SPOOL_FULL', 'the spool file system is running out of space');
        }
        await writeAll(fileHandle, chunk, size);
        spool.writtenSinceFree += chunk.byteLength;
        // The CRC lets recovery tell a whole file from a torn one (see commit); zlib's runs at GB/s.
        crc = zlib.crc32(chunk, crc);
        size += chunk.byteLength;
      },
      async commit(meta: IncomingMeta) {
        finish();
        try {
          const record: SpoolRecord = {
            ...stripUndefined(meta),
            id,
            state: 'queued',
            attempts: 0,
            receivedAt: new Date(spool.now()).toISOString(),
            sizeBytes: size,
            crc32: crc,
          };
          delete record.notBefore;
          delete record.settledAt;
          // The commit point is a whole record (size + CRC of the file) on disk, not the rename: the
          // file, the record and the entry directory (their names) are synced *in parallel* (one
          // journal commit on ext4/xfs where serial fsyncs cost one each), and a power loss between
          // them is told apart by recovery: a record that does not parse, or a file that does not
          // match its size and CRC, was never acknowledged and is deleted; a match is promoted to
          // queued/. So the C-STORE acknowledgement waits for exactly these syncs, and the rename
          // into queued/ needs no fsync of queued/ (a rename lost to a power failure is redone by
          // recovery). fdatasync: the file's size is synced with it, its timestamps are not needed.
          const json = Buffer.from(JSON.stringify(record));
          await writeAll(recHandle, json);
          if (cfg.fsync) {
            const [dirError] = await Promise.all([dirSynced, fileHandle.datasync(), recHandle.datasync()]);
            if (dirError) throw dirError;
          }
          await Promise.all([closeAll(), fsp.rename(dir, spool.entry('queued', id))]).catch(async (e: unknown) => {
            // Recovery in the owner promotes committed incoming entries of any writer; if it was
            // quicker than this rename, the entry is queued already (or further on).
            if (isErrno(e, 'ENOENT') && !fs.existsSync(dir)) return;
            throw e;
          });
          spool.addQueued(record);
          return record;
        } catch (e) {
          await closeAll();
          await rmrf(dir).catch(() => undefined);
          throw e;
        }
      },
      async abort() {
        if (finished) return;
        finished = true;
        await closeAll();
        await dirSynced;
        await rmrf(dir);
      },
    };
  }

  private addQueued(record: SpoolRecord): void {
    this.bySop.set(record.sopInstanceUID, { id: record.id, state: 'queued' });
    this.schedule(record.id, record.notBefore);
    this.events.emit('queued', record.id);
  }

  private schedule(id: string, notBefore: string | undefined): void {
    const at = notBefore ? Date.parse(notBefore) : 0;
    if (at > this.now()) {
      this.delayed.set(id, at);
      this.delayedHeap.push({ at, id });
    } else {
      this.delayed.delete(id);
      this.makeReady(id);
    }
  }

  private makeReady(id: string): void {
    if (this.readyIds.has(id)) return;
    this.readyIds.add(id);
    this.ready.push(id);
  }

  /** Drop heap items whose entry was rescheduled or claimed meanwhile. */
  private topDelayed(): { at: number; id: string } | undefined {
    for (;;) {
      const top = this.delayedHeap.peek();
      if (!top || this.delayed.get(top.id) === top.at) return top;
      this.delayedHeap.pop();
    }
  }

  // ------------------------------------------------------------------ owner operations

  private assertOwner(): void {
    if (this.closed) throw new SpoolError('SPOOL_CLOSED', 'the spool is closed');
    if (!this.owner) throw new SpoolError('SPOOL_NOT_OWNER', 'only the spool owner uploads');
  }

  /** Earliest time a delayed entry becomes ready (ms), if any. */
  nextDueAt(): number | undefined {
    return this.topDelayed()?.at;
  }

  /** Queued entries known to this process (ready + waiting for backoff). */
  get queuedCount(): number {
    return this.readyIds.size + this.delayed.size;
  }

  /** Move the oldest ready queued entry to inflight/ and return its record. */
  async claimNext(): Promise<SpoolRecord | undefined> {
    this.assertOwner();
    const now = this.now();
    for (let top = this.topDelayed(); top && top.at <= now; top = this.topDelayed()) {
      this.delayedHeap.pop();
      this.delayed.delete(top.id);
      this.makeReady(top.id);
    }
    while (this.ready.size > 0) {
      const id = this.ready.pop()!;
      this.readyIds.delete(id);
      if (this.delayed.has(id)) continue; // rescheduled into the future meanwhile
      try {
        // Not fsynced: a claim lost in a power failure leaves the entry queued, which is what recovery makes of it anyway.
        await fsp.rename(this.entry('queued', id), this.entry('inflight', id));
      } catch (e) {
        if (isErrno(e, 'ENOENT')) continue; // gone (pruned by an operator, or never completed)
        throw e;
      }
      const record = await readRecord(path.join(this.entry('inflight', id), RECORD));
      if (!record) {
        await this.quarantineOrphan('inflight', id, 'RECORD_UNREADABLE');
        continue;
      }
      record.state = 'inflight';
      this.bySop.set(record.sopInstanceUID, { id, state: 'inflight' });
      return record;
    }
    return undefined;
  }

  /**
   * Write the record into its (inflight) entry, then move the entry: the record
   * never lags the state. Atomic always; durable only when `durable`: after the
   * C-STORE acknowledgement, losing a later transition in a power failure only
   * means an upload is repeated (an identical duplicate is a success), so the
   * uploader's transitions skip the fsyncs except where noted.
   */
  private async transition(record: SpoolRecord, to: SpoolState, durable = false): Promise<SpoolRecord> {
    const from = record.state;
    const next: SpoolRecord = { ...record, state: to };
    await writeFileAtomic(path.join(this.entry(from, record.id), RECORD), JSON.stringify(next), durable && this.config.fsync);
    await renameDurable(this.entry(from, record.id), this.entry(to, record.id), durable && this.config.fsync);
    this.bySop.set(record.sopInstanceUID, { id: record.id, state: to });
    return next;
  }

  /** Update the record of an inflight entry in place (atomic, not fsynced: a hint for a later attempt). */
  async annotate(record: SpoolRecord, fields: Pick<SpoolRecord, 'uploadStatusUrl'>): Promise<SpoolRecord> {
    this.assertOwner();
    const next = { ...record, ...fields };
    await writeFileAtomic(path.join(this.entry(record.state, record.id), RECORD), JSON.stringify(next), false);
    return next;
  }

  /** Uploaded: record to done/, the file deleted (done/ keeps only the record). */
  async markDone(record: SpoolRecord, extra: { reason?: string } = {}): Promise<SpoolRecord> {
    this.assertOwner();
    const done = await this.transition({ ...record, ...extra, settledAt: new Date(this.now()).toISOString(), notBefore: undefined, uploadStatusUrl: undefined }, 'done');
    // The move to done/ must be durable before the file goes: otherwise a power failure could
    // leave an entry in inflight/ without its file, which recovery would have to quarantine.
    await fsyncDir(path.join(this.dir, 'done'), this.config.fsync);
    await fsp.rm(path.join(this.entry('done', record.id), FILE), { force: true });
    this.events.emit('settled', done);
    return done;
  }

  /** Refused by the archive: kept with the reason for an operator. */
  async quarantine(record: SpoolRecord, reason: string): Promise<SpoolRecord> {
    this.assertOwner();
    const q = await this.transition({ ...record, reason: reason.slice(0, 500), settledAt: new Date(this.now()).toISOString(), notBefore: undefined }, 'quarantine', true);
    this.events.emit('settled', q);
    return q;
  }

  /** Back to queued/ (transient failure, or the uploader paused), ready at `notBefore`. */
  async requeue(record: SpoolRecord, update: { attempts?: number; reason?: string; notBefore?: number; route?: 'stow' | 'upload' } = {}): Promise<SpoolRecord> {
    this.assertOwner();
    const q = await this.transition(
      {
        ...record,
        ...(update.attempts !== undefined ? { attempts: update.attempts } : {}),
        ...(update.reason !== undefined ? { reason: update.reason.slice(0, 500) } : {}),
        ...(update.route !== undefined ? { route: update.route } : {}),
        notBefore: update.notBefore !== undefined ? new Date(update.notBefore).toISOString() : undefined,
      },
      'queued',
    );
    this.schedule(q.id, q.notBefore);
    this.events.emit('queued', q.id);
    return q;
  }

  /**
   * Operator action: send quarantined entries again (after fixing the cause,
   * e.g. a study deleted in the archive or a permission granted). Attempts are
   * reset; the old reason is kept as `previously …`. Works from a producer too:
   * the owner finds the entries by its rescan. Entries without their file are
   * left where they are. Returns the ids moved.
   */
  async requeueQuarantined(ids?: string[]): Promise<string[]> {
    if (this.closed) throw new SpoolError('SPOOL_CLOSED', 'the spool is closed');
    const candidates = ids ?? (await listDir(path.join(this.dir, 'quarantine'))).sort();
    const moved: string[] = [];
    for (const id of candidates) {
      if (!ID.test(id)) continue;
      const entry = this.entry('quarantine', id);
      const record = await readRecord(path.join(entry, RECORD));
      if (!record || !fs.existsSync(path.join(entry, FILE))) continue;
      const next: SpoolRecord = { ...record, state: 'queued', attempts: 0, reason: `previously ${record.reason ?? 'quarantined'}`.slice(0, 500) };
      delete next.notBefore;
      delete next.settledAt;
      delete next.route;
      delete next.uploadStatusUrl;
      await writeFileAtomic(path.join(entry, RECORD), JSON.stringify(next), this.config.fsync);
      try {
        await fsp.rename(entry, this.entry('queued', id));
      } catch (e) {
        if (isErrno(e, 'ENOENT')) continue; // someone else moved it
        throw e;
      }
      moved.push(id);
      if (this.owner) this.addQueued(next);
      else this.bySop.set(next.sopInstanceUID, { id, state: 'queued' });
    }
    // One directory sync for all the renames: durable when this returns, as one renameDurable per entry was.
    if (moved.length > 0) await fsyncDir(path.join(this.dir, 'queued'), this.config.fsync);
    return moved;
  }

  /** A record in any state, by id. */
  async get(id: string): Promise<SpoolRecord | undefined> {
    if (!isSpoolId(id)) return undefined;
    for (const state of SPOOL_STATES) {
      const r = await readRecord(path.join(this.entry(state, id), RECORD));
      if (r) return { ...r, state };
    }
    return undefined;
  }

  /** The done/ record of an instance (storage commitment, PS3.4 J.3). */
  async findDone(sopInstanceUID: string): Promise<SpoolRecord | undefined> {
    const at = this.bySop.get(sopInstanceUID);
    if (at?.state === 'done') {
      const r = await readRecord(path.join(this.entry('done', at.id), RECORD));
      if (r) return { ...r, state: 'done' };
    }
    // Only the owner moves entries to done/, so its index is complete; a producer looks on disk.
    if (this.owner) return undefined;
    for (const id of await listDir(path.join(this.dir, 'done'))) {
      const r = await readRecord(path.join(this.entry('done', id), RECORD));
      if (r?.sopInstanceUID === sopInstanceUID) return { ...r, state: 'done' };
    }
    return undefined;
  }

  /** Where the spool holds this SOP Instance (as last seen by this process). */
  stateOf(sopInstanceUID: string): SpoolState | undefined {
    return this.bySop.get(sopInstanceUID)?.state;
  }

  async stats(): Promise<{ incoming: number; queued: number; inflight: number; done: number; quarantine: number }> {
    const count = async (d: string) => (await listDir(path.join(this.dir, d))).filter((n) => !n.startsWith('.') && !n.endsWith('.tmp')).length;
    return {
      incoming: await count('incoming'),
      queued: await count('queued'),
      inflight: await count('inflight'),
      done: await count('done'),
      quarantine: await count('quarantine'),
    };
  }

  /** Records of one state (status command; reads every record: not for hot paths). */
  async list(state: SpoolState): Promise<SpoolRecord[]> {
    const out: SpoolRecord[] = [];
    for (const id of (await listDir(path.join(this.dir, state))).sort()) {
      const r = await readRecord(path.join(this.entry(state, id), RECORD));
      if (r) out.push({ ...r, state });
    }
    return out;
  }

  /** Can we create a file in the spool? (/healthz) */
  async checkWritable(): Promise<boolean> {
    const probe = path.join(this.dir, 'incoming', `.probe-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await fsp.writeFile(probe, 'ok');
      await fsp.unlink(probe);
      return true;
    } catch {
      return false;
    }
  }

  /** Pick up queued entries written by producers (other processes). */
  async rescan(): Promise<number> {
    if (this.closed) return 0;
    const known = new Set([...this.readyIds, ...this.delayed.keys()]);
    let added = 0;
    for (const id of await listDir(path.join(this.dir, 'queued'))) {
      if (!ID.test(id) || known.has(id)) continue;
      const r = await readRecord(path.join(this.entry('queued', id), RECORD));
      if (!r) continue; // not ours to judge here; recovery handles broken entries
      this.bySop.set(r.sopInstanceUID, { id, state: 'queued' });
      if (this.owner) {
        this.schedule(id, r.notBefore);
        added++;
      }
    }
    if (!this.owner) {
      for (const state of ['inflight', 'done'] as const) {
        for (const id of await listDir(path.join(this.dir, state))) {
          const r = await readRecord(path.join(this.entry(state, id), RECORD));
          if (r) this.bySop.set(r.sopInstanceUID, { id, state });
        }
      }
    }
    if (added) this.events.emit('queued');
    return added;
  }

  /** Delete done/ entries older than doneRetentionMs. */
  async pruneDone(): Promise<number> {
    const cutoff = this.now() - this.config.doneRetentionMs;
    let pruned = 0;
    for (const id of (await listDir(path.join(this.dir, 'done'))).sort()) {
      // An entry settles after it was created: ids (oldest first) past the cutoff end the walk unread.
      if (ID.test(id) && spoolIdTime(id) > cutoff) break;
      const entry = this.entry('done', id);
      const r = await readRecord(path.join(entry, RECORD));
      const settled = r?.settledAt ? Date.parse(r.settledAt) : ID.test(id) ? spoolIdTime(id) : 0;
      if (settled <= cutoff) {
        // A crash mid-delete leaves a done entry without record: removed by recovery or the next prune.
        await rmrf(entry);
        if (r && this.bySop.get(r.sopInstanceUID)?.id === id) this.bySop.delete(r.sopInstanceUID);
        pruned++;
      }
    }
    return pruned;
  }

  /**
   * Start-up recovery (owner only): after a crash the spool holds only whole
   * states, but some are not final: inflight → queued (the upload may or may
   * not have reached the archive; sending it again is safe, an identical
   * duplicate is a success); incoming files of dead writers → deleted (their
   * C-STORE was never acknowledged); leftovers of interrupted steps reconciled.
   */
  private async recover(): Promise<void> {
    const counts = { recovered: 0, committed: 0, deleted: 0, quarantine: 0 };
    for (const name of await listDir(path.join(this.dir, 'incoming'))) {
      const m = INCOMING.exec(name);
      const entry = path.join(this.dir, 'incoming', name);
      // Committed (its C-STORE may have been acknowledged) but not yet renamed: queued, whoever wrote it.
      // Checked before the pid: after a power loss a dead writer's pid can belong to a new process.
      const record = m ? await committedIncoming(entry, m[1]!) : undefined;
      if (record) {
        try {
          await fsp.rename(entry, this.entry('queued', record.id)); // scheduled by the walk of queued/ below
          counts.committed++;
        } catch (e) {
          if (!isErrno(e, 'ENOENT')) throw e; // its writer renamed it meanwhile: found in queued/ below
        }
        continue;
      }
      const pid = m ? Number(m[2]) : undefined;
      if (pid !== undefined && pid !== process.pid && processAlive(pid)) continue; // a producer still writing
      await rmrf(entry);
      counts.deleted++;
    }
    // Entries are independent: looked at in parallel (a backlog after a long outage is tens of
    // thousands), and the renames made durable with one fsync at the end, not one each.
    const visit = async (state: SpoolState, id: string): Promise<void> => {
      const entry = this.entry(state, id);
      if (!ID.test(id)) {
        // Not an entry we made (an operator's file): leave it, but say so.
        this.log.warn('spool: unexpected name in a state directory', { state, id: id.slice(0, 40).replace(/[^A-Za-z0-9._-]/g, '?') });
        return;
      }
      const names = new Set(await listDir(entry));
      if (names.has(`${RECORD}.tmp`)) await fsp.rm(path.join(entry, `${RECORD}.tmp`), { force: true });
      const record = names.has(RECORD) ? await readRecord(path.join(entry, RECORD)) : undefined;
      const hasFile = names.has(FILE);
      if (state === 'done') {
        if (!record) {
          await rmrf(entry);
          counts.deleted++;
          return;
        }
        if (hasFile) await fsp.rm(path.join(entry, FILE), { force: true });
        this.bySop.set(record.sopInstanceUID, { id, state });
        return;
      }
      if (!record || !hasFile) {
        await this.quarantineOrphan(state, id, record ? 'FILE_MISSING' : 'RECORD_MISSING');
        counts.quarantine++;
        return;
      }
      if (state === 'inflight') {
        await fsp.rename(entry, this.entry('queued', id));
        counts.recovered++;
        state = 'queued';
      }
      this.bySop.set(record.sopInstanceUID, { id, state });
      this.schedule(id, record.notBefore);
    };
    // quarantine/ is the operator's: nothing to recover there.
    for (const state of ['queued', 'inflight', 'done'] as const) {
      await mapLimit(await listDir(path.join(this.dir, state)), 32, (id) => visit(state, id));
    }
    if (counts.recovered || counts.committed) await fsyncDir(path.join(this.dir, 'queued'), this.config.fsync);
    if (counts.recovered || counts.committed || counts.deleted || counts.quarantine) this.log.info('spool: recovered after restart', counts);
  }

  /** An entry missing its record or its file cannot be uploaded: moved aside for an operator. */
  private async quarantineOrphan(state: SpoolState, id: string, reason: string): Promise<void> {
    const entry = this.entry(state, id);
    const hasFile = fs.existsSync(path.join(entry, FILE));
    const old = await readRecord(path.join(entry, RECORD));
    const record: SpoolRecord = {
      ...(old ?? { id, sopInstanceUID: '', sopClassUID: '', transferSyntaxUID: '', sizeBytes: hasFile ? fs.statSync(path.join(entry, FILE)).size : 0, receivedAt: new Date(spoolIdTime(id)).toISOString(), attempts: 0 }),
      state: 'quarantine',
      reason,
      settledAt: new Date(this.now()).toISOString(),
    };
    await writeFileAtomic(path.join(entry, RECORD), JSON.stringify(record), this.config.fsync);
    await renameDurable(entry, this.entry('quarantine', id), this.config.fsync);
    this.log.warn('spool: entry quarantined', { id, reason });
  }

  private registerMetrics(metrics: Metrics | undefined): void {
    if (!metrics) return;
    metrics.gauge('gateway_spool_entries', 'Spool entries per state (incoming, queued, inflight, done, quarantine).', () =>
      ['incoming', ...SPOOL_STATES].map((state) => ({ labels: { state }, value: this.closed ? 0 : safeCount(path.join(this.dir, state)) })),
    );
    metrics.gauge('gateway_spool_free_bytes', "Free bytes of the spool's file system.", () => {
      const st = fs.statfsSync(this.dir);
      return st.bavail * st.bsize;
    });
    metrics.gauge('gateway_spool_oldest_queued_age_seconds', 'Age of the oldest queued entry (0 when none).', () => {
      const ids = safeList(path.join(this.dir, 'queued')).filter((n) => ID.test(n));
      if (ids.length === 0) return 0;
      const oldest = ids.reduce((a, b) => (a < b ? a : b));
      return Math.max(0, (this.now() - spoolIdTime(oldest)) / 1000);
    });
  }

  /** Release the lock. Entries stay where they are. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.owner && this.lockHolder() === process.pid) await fsp.rm(this.lockPath(), { force: true });
    this.owner = false;
  }
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function safeCount(dir: string): number {
  return safeList(dir).filter((n) => !n.startsWith('.')).length;
}

/** Write all of `bytes` at file offset `position` (a write may take fewer bytes than asked). */
async function writeAll(handle: fsp.FileHandle, bytes: Uint8Array, position = 0): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) off += (await handle.write(bytes, off, bytes.byteLength - off, position + off)).bytesWritten;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
