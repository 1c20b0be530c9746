/**
 * The on-disk spool: entries move incoming → queued → inflight → done |
 * quarantine by atomic renames; start-up recovery after a crash (states left
 * on disk as a kill -9 would leave them); the owner lock; producers beside an
 * owner; done/ pruning; storage-commitment lookups.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { Spool, SpoolError, newSpoolId, spoolIdTime, type SpoolRecord } from '../../edge-gateway/src/spool/spool';
import { DirSyncer } from '../../edge-gateway/src/spool/fs-durable';
import type { SpoolConfig } from '../../edge-gateway/src/config-types';
import { Metrics } from '../../edge-gateway/src/ops/metrics';
import { makeTempDir } from '../helpers/tmp';

const meta = (n: number) => ({
  sopInstanceUID: `1.2.826.0.1.3680043.10.1234.99.${n}`,
  sopClassUID: '1.2.840.10008.5.1.4.1.1.2',
  studyInstanceUID: '1.2.826.0.1.3680043.10.1234.98.1',
  transferSyntaxUID: '1.2.840.10008.1.2.1',
  callingAETitle: 'MODALITY',
});

function ls(dir: string, sub: string): string[] {
  return fs.readdirSync(path.join(dir, sub)).sort();
}

async function spoolFile(spool: Spool, n: number, bytes = Buffer.from(`instance ${n}`)): Promise<SpoolRecord> {
  const w = await spool.createIncoming();
  await w.write(bytes.subarray(0, 3));
  await w.write(bytes.subarray(3));
  return w.commit(meta(n));
}

/** A pid that is certainly not running (a child that has exited). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

describe('spool', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  let cfg: SpoolConfig;
  const open: Spool[] = [];
  const openSpool = async (deps: Parameters<typeof Spool.open>[1] = {}, c = cfg) => {
    const s = await Spool.open(c, deps);
    open.push(s);
    return s;
  };

  beforeEach(() => {
    tmp = makeTempDir('spool-');
    cfg = { dir: path.join(tmp.dir, 'spool'), fsync: true, ackMode: 'spool', doneRetentionMs: 60_000 };
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    tmp.cleanup();
  });

  test('ids sort by creation time', () => {
    const ids = Array.from({ length: 1000 }, () => newSpoolId(1_700_000_000_000));
    expect([...ids].sort()).toEqual(ids);
    expect(spoolIdTime(ids[0]!)).toBe(1_700_000_000_000);
    const later = newSpoolId(1_700_000_000_001);
    expect(later > ids[999]!).toBe(true);
  });

  test('an entry moves through the states; the file is written whole and the record travels with it', async () => {
    const spool = await openSpool();
    const w = await spool.createIncoming();
    expect(w.path.startsWith(path.join(cfg.dir, 'incoming'))).toBe(true);
    await w.write(Buffer.from('DICM-ish '));
    await w.write(Buffer.from('bytes'));
    expect(await spool.stats()).toMatchObject({ incoming: 1, queued: 0 });
    const rec = await w.commit(meta(1));
    expect(rec).toMatchObject({ state: 'queued', attempts: 0, sizeBytes: 14, sopInstanceUID: meta(1).sopInstanceUID, callingAETitle: 'MODALITY' });
    expect(ls(cfg.dir, 'incoming')).toEqual([]);
    expect(ls(cfg.dir, 'queued')).toEqual([rec.id]);
    expect(ls(cfg.dir, `queued/${rec.id}`)).toEqual(['instance.dcm', 'record.json']);
    expect(fs.readFileSync(spool.filePath(rec), 'utf8')).toBe('DICM-ish bytes');
    await expect(w.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'SPOOL_WRITER_DONE' });

    const claimed = (await spool.claimNext())!;
    expect(claimed).toMatchObject({ id: rec.id, state: 'inflight' });
    expect(await spool.claimNext()).toBeUndefined();
    expect(await spool.stats()).toEqual({ incoming: 0, queued: 0, inflight: 1, done: 0, quarantine: 0 });

    const done = await spool.markDone({ ...claimed, attempts: 1 });
    expect(done.state).toBe('done');
    // done/ keeps the record only: the bytes are in the archive now.
    expect(ls(cfg.dir, `done/${rec.id}`)).toEqual(['record.json']);
    expect(await spool.findDone(meta(1).sopInstanceUID)).toMatchObject({ id: rec.id, state: 'done', attempts: 1 });
    expect(await spool.findDone('1.2.3.4')).toBeUndefined();
    expect(await spool.get(rec.id)).toMatchObject({ state: 'done' });
  });

  test('abort leaves nothing behind', async () => {
    const spool = await openSpool();
    const w = await spool.createIncoming();
    await w.write(Buffer.from('partial'));
    await w.abort();
    await w.abort();
    expect(await spool.stats()).toEqual({ incoming: 0, queued: 0, inflight: 0, done: 0, quarantine: 0 });
  });

  test('oldest first; requeue with backoff; quarantine keeps the file and the reason', async () => {
    const spool = await openSpool();
    const a = await spoolFile(spool, 1);
    const b = await spoolFile(spool, 2);
    const c = await spoolFile(spool, 3);
    const first = (await spool.claimNext())!;
    expect(first.id).toBe(a.id);
    await spool.requeue(first, { attempts: 1, reason: 'HTTP 503', notBefore: Date.now() + 60_000 });
    // a waits for its backoff: b and c come first.
    expect((await spool.claimNext())!.id).toBe(b.id);
    const third = (await spool.claimNext())!;
    expect(third.id).toBe(c.id);
    expect(await spool.claimNext()).toBeUndefined();
    expect(spool.nextDueAt()).toBeGreaterThan(Date.now() + 50_000);
    const q = await spool.quarantine(third, 'STOW FailureReason 0xC000');
    expect(q).toMatchObject({ state: 'quarantine', reason: 'STOW FailureReason 0xC000' });
    expect(ls(cfg.dir, `quarantine/${c.id}`)).toEqual(['instance.dcm', 'record.json']);
    const onDisk = JSON.parse(fs.readFileSync(path.join(cfg.dir, 'queued', a.id, 'record.json'), 'utf8'));
    expect(onDisk).toMatchObject({ attempts: 1, reason: 'HTTP 503' });
    expect(Date.parse(onDisk.notBefore)).toBeGreaterThan(Date.now());
  });

  test('quarantined entries can be sent again (operator action), also from a producer', async () => {
    const owner = await openSpool();
    const a = await spoolFile(owner, 1);
    const b = await spoolFile(owner, 2);
    await owner.quarantine((await owner.claimNext())!, 'HTTP 403 FORBIDDEN');
    await owner.quarantine((await owner.claimNext())!, 'STOW FailureReason 0xA900');
    const producer = await openSpool({ role: 'producer' });
    expect(await producer.requeueQuarantined([b.id, 'not-an-id'])).toEqual([b.id]);
    expect(ls(cfg.dir, 'quarantine')).toEqual([a.id]);
    expect(await owner.get(b.id)).toMatchObject({ state: 'queued', attempts: 0, reason: 'previously STOW FailureReason 0xA900' });
    await owner.rescan();
    expect((await owner.claimNext())!.id).toBe(b.id);
    expect(await owner.requeueQuarantined()).toEqual([a.id]);
    expect((await owner.claimNext())!.id).toBe(a.id);
  });

  test('recovery after a crash: inflight → queued, dead writers’ incoming deleted, leftovers reconciled', async () => {
    let spool = await openSpool();
    const a = await spoolFile(spool, 1);
    const b = await spoolFile(spool, 2);
    const c = await spoolFile(spool, 3);
    const d = await spoolFile(spool, 4);
    await spool.claimNext(); // a inflight
    const bIn = (await spool.claimNext())!;
    await spool.markDone(bIn);
    await spool.close();
    open.pop();

    const dead = await deadPid();
    // States a kill -9 could leave behind:
    // 1. an incoming file of a dead writer, and one of a live producer (this process stands in for it);
    const deadIncoming = path.join(cfg.dir, 'incoming', `${newSpoolId()}.${dead}`);
    fs.mkdirSync(deadIncoming);
    fs.writeFileSync(path.join(deadIncoming, 'instance.dcm'), 'half');
    const liveIncoming = path.join(cfg.dir, 'incoming', `${newSpoolId()}.${process.pid}`);
    // (our own pid is treated as dead at start-up: an owner restarted in-process has no writers yet)
    fs.mkdirSync(liveIncoming);
    // 2. a torn record tmp next to a good record;
    fs.writeFileSync(path.join(cfg.dir, 'queued', c.id, 'record.json.tmp'), '{"id": "tor');
    // 3. a done entry whose file was not yet deleted, and one whose prune stopped half-way (no record);
    fs.writeFileSync(path.join(cfg.dir, 'done', b.id, 'instance.dcm'), 'left over');
    const halfPruned = newSpoolId();
    fs.mkdirSync(path.join(cfg.dir, 'done', halfPruned));
    // 4. a queued entry that lost its file (disk trouble): cannot be sent, moved aside.
    fs.rmSync(path.join(cfg.dir, 'queued', d.id, 'instance.dcm'));
    // 5. the lock of the dead owner.
    fs.writeFileSync(path.join(cfg.dir, 'spool.lock'), `${dead}\n`);

    spool = await openSpool();
    expect(spool.isOwner).toBe(true);
    expect(ls(cfg.dir, 'incoming')).toEqual([]);
    expect(ls(cfg.dir, 'inflight')).toEqual([]);
    expect(ls(cfg.dir, 'queued')).toEqual([a.id, c.id]);
    expect(ls(cfg.dir, `queued/${c.id}`)).toEqual(['instance.dcm', 'record.json']);
    expect(ls(cfg.dir, 'done')).toEqual([b.id]);
    expect(ls(cfg.dir, `done/${b.id}`)).toEqual(['record.json']);
    expect(ls(cfg.dir, 'quarantine')).toEqual([d.id]);
    expect(await spool.get(d.id)).toMatchObject({ state: 'quarantine', reason: 'FILE_MISSING' });
    // The recovered entries are claimable again, oldest first.
    expect((await spool.claimNext())!.id).toBe(a.id);
    expect((await spool.claimNext())!.id).toBe(c.id);
    expect(fs.readFileSync(path.join(cfg.dir, 'spool.lock'), 'utf8').trim()).toBe(String(process.pid));
  });

  test('recovery: a commit that reached the disk but not its rename into queued/ is queued; torn or unfinished ones are deleted', async () => {
    let spool = await openSpool();
    const recs = [];
    for (let n = 1; n <= 5; n++) recs.push(await spoolFile(spool, n, Buffer.from(`instance ${n} `.repeat(1000))));
    await spool.close();
    open.pop();
    const dead = await deadPid();
    // The commit point is a whole record (size + CRC) beside a matching file: a crash (or a power
    // loss) after it and before the rename leaves the entry in incoming/. Made here by moving queued entries back.
    const back = (rec: SpoolRecord, pid: number) => {
      const to = path.join(cfg.dir, 'incoming', `${rec.id}.${pid}`);
      fs.renameSync(path.join(cfg.dir, 'queued', rec.id), to);
      return to;
    };
    const [committed, committedLivePid, torn, unfinished, oldLayout] = recs as [SpoolRecord, SpoolRecord, SpoolRecord, SpoolRecord, SpoolRecord];
    back(committed, dead);
    // After a power loss the writer's pid may belong to another process: committed is committed.
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      back(committedLivePid, child.pid!);
      // Data blocks lost in a power failure (synced in parallel with the record): the CRC differs.
      const tornDir = back(torn, dead);
      const bytes = fs.readFileSync(path.join(tornDir, 'instance.dcm'));
      bytes.fill(0, 4096, 8192);
      fs.writeFileSync(path.join(tornDir, 'instance.dcm'), bytes);
      // The record is created empty with the file and written at commit.
      fs.writeFileSync(path.join(back(unfinished, dead), 'record.json'), '');
      // A record of the previous layout (no CRC) in incoming/ was never acknowledged.
      const oldDir = back(oldLayout, dead);
      const { crc32: _crc, ...old } = JSON.parse(fs.readFileSync(path.join(oldDir, 'record.json'), 'utf8')) as SpoolRecord;
      fs.writeFileSync(path.join(oldDir, 'record.json'), JSON.stringify(old));

      spool = await openSpool();
      expect(ls(cfg.dir, 'incoming')).toEqual([]);
      expect(ls(cfg.dir, 'queued')).toEqual([committed.id, committedLivePid.id].sort());
      expect(ls(cfg.dir, 'quarantine')).toEqual([]);
      const first = (await spool.claimNext())!;
      expect(first).toMatchObject({ id: committed.id, sizeBytes: committed.sizeBytes, crc32: committed.crc32, state: 'inflight' });
      expect(fs.readFileSync(spool.filePath(first), 'utf8')).toBe('instance 1 '.repeat(1000));
      expect((await spool.claimNext())!.id).toBe(committedLivePid.id);
      expect(await spool.claimNext()).toBeUndefined();
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
    }
  });

  test('concurrent writers share the fsyncs of incoming/ (group commit); each waits for one begun after its call', async () => {
    fs.mkdirSync(path.join(tmp.dir, 'd'));
    const syncer = new DirSyncer(path.join(tmp.dir, 'd'), true);
    const opened = jest.spyOn(fs.promises, 'open'); // the module object itself (a namespace import is sealed)
    try {
      const first = syncer.sync();
      // While the first runs, later callers (whose changes it may miss) share the next one.
      const later = Array.from({ length: 8 }, () => syncer.sync());
      expect(new Set(later).size).toBe(1);
      expect(later[0]).not.toBe(first);
      await Promise.all([first, ...later]);
      expect(opened.mock.calls.filter(([p]) => p === path.join(tmp.dir, 'd'))).toHaveLength(2);
    } finally {
      opened.mockRestore();
    }
    await expect(new DirSyncer(path.join(tmp.dir, 'missing'), true).sync()).rejects.toMatchObject({ code: 'ENOENT' });
    await new DirSyncer(path.join(tmp.dir, 'missing'), false).sync();
  });

  test('one owner at a time; producers add entries the owner picks up', async () => {
    const owner = await openSpool();
    // A second owner in another process is refused (its lock file names a live pid).
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await owner.close();
      open.pop();
      fs.writeFileSync(path.join(cfg.dir, 'spool.lock'), `${child.pid}\n`);
      await expect(Spool.open(cfg)).rejects.toBeInstanceOf(SpoolError);
      await expect(Spool.open(cfg)).rejects.toMatchObject({ code: 'SPOOL_LOCKED' });
      const auto = await openSpool({ role: 'auto' });
      expect(auto.isOwner).toBe(false);
      await expect(auto.claimNext()).rejects.toMatchObject({ code: 'SPOOL_NOT_OWNER' });
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
    }
    fs.rmSync(path.join(cfg.dir, 'spool.lock'));
    const realOwner = await openSpool();
    const producer = await openSpool({ role: 'producer' });
    expect(producer.isOwner).toBe(false);
    const rec = await spoolFile(producer, 7);
    // The owner does not know it yet; a rescan finds it.
    expect(await realOwner.claimNext()).toBeUndefined();
    expect(await realOwner.rescan()).toBe(1);
    expect((await realOwner.claimNext())!.id).toBe(rec.id);
  });

  test('a live producer’s incoming entry is not deleted by recovery', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      fs.mkdirSync(path.join(cfg.dir, 'incoming'), { recursive: true });
      const name = `${newSpoolId()}.${child.pid}`;
      fs.mkdirSync(path.join(cfg.dir, 'incoming', name));
      await openSpool();
      expect(ls(cfg.dir, 'incoming')).toEqual([name]);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
    }
  });

  test('done/ entries are pruned after doneRetentionMs', async () => {
    let now = Date.now();
    const spool = await openSpool({ now: () => now }, { ...cfg, doneRetentionMs: 1000 });
    await spoolFile(spool, 1);
    await spool.markDone((await spool.claimNext())!);
    expect(await spool.pruneDone()).toBe(0);
    now += 1001;
    expect(await spool.pruneDone()).toBe(1);
    expect(ls(cfg.dir, 'done')).toEqual([]);
    expect(await spool.findDone(meta(1).sopInstanceUID)).toBeUndefined();
  });

  test('metrics: entries per state and oldest queued age', async () => {
    const metrics = new Metrics();
    const spool = await openSpool({ metrics });
    await spoolFile(spool, 1);
    await spoolFile(spool, 2);
    await spool.claimNext();
    const text = metrics.render();
    expect(text).toContain('gateway_spool_entries{state="queued"} 1');
    expect(text).toContain('gateway_spool_entries{state="inflight"} 1');
    expect(text).toMatch(/gateway_spool_oldest_queued_age_seconds \d/);
  });

  test('a spool short of free space refuses new files (nothing half-written) and says so', async () => {
    const metrics = new Metrics();
    const spool = await openSpool({ metrics }, { ...cfg, minFreeBytes: Number.MAX_SAFE_INTEGER });
    expect(await spool.hasRoom()).toBe(false);
    await expect(spool.createIncoming()).rejects.toMatchObject({ code: 'SPOOL_FULL' });
    expect(await spool.stats()).toEqual({ incoming: 0, queued: 0, inflight: 0, done: 0, quarantine: 0 });
    expect(metrics.render()).toMatch(/gateway_spool_free_bytes [1-9]\d*/);
    const roomy = await openSpool({ role: 'producer' }, { ...cfg, minFreeBytes: 1 });
    expect(await roomy.hasRoom()).toBe(true);
    expect((await spoolFile(roomy, 1)).state).toBe('queued');
  });

  test('a large instance that would fill the disk is refused while it arrives; the writer can abort cleanly', async () => {
    const spool = await openSpool({}, { ...cfg, fsync: false, minFreeBytes: 1024 * 1024 });
    let free = 10 * 1024 * 1024 * 1024;
    jest.spyOn(spool, 'freeBytes').mockImplementation(async () => free);
    const w = await spool.createIncoming();
    const chunk = new Uint8Array(16 * 1024 * 1024);
    for (let i = 0; i < 4; i++) await w.write(chunk);
    free = 100 * 1024; // the disk filled up meanwhile (other writers)
    await expect(w.write(chunk)).rejects.toMatchObject({ code: 'SPOOL_FULL' });
    await w.abort();
    expect(await spool.stats()).toEqual({ incoming: 0, queued: 0, inflight: 0, done: 0, quarantine: 0 });
    await expect(spool.createIncoming()).rejects.toMatchObject({ code: 'SPOOL_FULL' });
  });

  test('without fsync the same transitions happen', async () => {
    const spool = await openSpool({}, { ...cfg, fsync: false });
    const r = await spoolFile(spool, 1);
    await spool.markDone((await spool.claimNext())!);
    expect(await spool.get(r.id)).toMatchObject({ state: 'done' });
  });
});
