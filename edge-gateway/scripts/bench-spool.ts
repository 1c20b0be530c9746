/**
 * Measurements of the durable side (docs/edge-spool.md quotes them):
 *   1. spool commit rate (createIncoming + write + commit) with and without fsync;
 *   2. uploader throughput, STOW-RS into the embedded archive, small instances;
 *   3. uploader memory while streaming one large instance by STOW to a server that
 *      discards the body (the uploader's own footprint: no archive in the process);
 *   4. a large backlog: start-up (recovery) time and claim rate with --backlog entries.
 *
 *   tsx edge-gateway/scripts/bench-spool.ts [--count 500] [--large-mb 512] [--backlog 20000]
 * Synthetic data only.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import { ctSeries } from '../../test/fixtures/synthetic';
import { Spool } from '../src/spool/spool';
import { Uploader } from '../src/uploader/uploader';

const MiB = 1024 * 1024;

/** Commits per second with `writers` concurrent writers (as concurrent associations would). */
async function spoolRate(dir: string, fsync: boolean, bytes: Uint8Array, count: number, writers = 1): Promise<number> {
  const spool = await Spool.open({ dir, fsync, ackMode: 'spool', doneRetentionMs: 3600_000, minFreeBytes: 0 });
  const t0 = performance.now();
  let next = 0;
  const writer = async () => {
    while (next < count) {
      const i = next++;
      const w = await spool.createIncoming();
      await w.write(bytes);
      await w.commit({ sopInstanceUID: `1.2.826.0.1.3680043.10.1234.66.${i}`, sopClassUID: '1.2.840.10008.5.1.4.1.1.2', transferSyntaxUID: '1.2.840.10008.1.2.1' });
    }
  };
  await Promise.all(Array.from({ length: writers }, writer));
  const s = (performance.now() - t0) / 1000;
  await spool.close();
  return count / s;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { count: { type: 'string', default: '500' }, 'large-mb': { type: 'string', default: '512' }, backlog: { type: 'string', default: '20000' } } });
  const backlog = Number(values.backlog);
  const count = Number(values.count);
  const largeMb = Number(values['large-mb']);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-spool-'));
  try {
    const series = ctSeries({ count, rows: 64, columns: 64 });
    const sample = series[0]!.bytes;
    console.log(`instances: ${count} × ${sample.length} bytes`);
    console.log(`spool commit, fsync on, 1 writer:  ${(await spoolRate(path.join(tmp, 'a'), true, sample, count)).toFixed(0)} /s`);
    console.log(`spool commit, fsync on, 8 writers: ${(await spoolRate(path.join(tmp, 'a8'), true, sample, count, 8)).toFixed(0)} /s`);
    console.log(`spool commit, fsync off: ${(await spoolRate(path.join(tmp, 'b'), false, sample, count)).toFixed(0)} /s`);

    // 2. STOW into the embedded archive (same process: the archive's work is included).
    const archive = await startEmbeddedArchive({ dataDir: path.join(tmp, 'archive'), port: 0, log: silentLogger });
    for (const concurrency of [1, 4]) {
      const spool = await Spool.open({ dir: path.join(tmp, `up-${concurrency}`), fsync: true, ackMode: 'spool', doneRetentionMs: 3600_000, minFreeBytes: 0 });
      const fresh = ctSeries({ count, rows: 64, columns: 64 });
      const ids: string[] = [];
      for (const inst of fresh) {
        const w = await spool.createIncoming();
        await w.write(inst.bytes);
        ids.push((await w.commit({ sopInstanceUID: inst.sopInstanceUID, sopClassUID: inst.sopClassUID, transferSyntaxUID: inst.transferSyntaxUID })).id);
      }
      const uploader = new Uploader(spool, {
        uploader: { concurrency, largeObjectThresholdBytes: 32 * MiB, retry: { initialDelayMs: 100, maxDelayMs: 1000, maxAttempts: 0 } },
        cloud: { dicomWebUrl: archive.dicomWebUrl, auth: { kind: 'none' }, requestTimeoutMs: 30_000 },
      });
      const t0 = performance.now();
      uploader.start();
      await Promise.all(ids.map((id) => uploader.settled(id)));
      const s = (performance.now() - t0) / 1000;
      console.log(`STOW into the embedded archive, concurrency ${concurrency}: ${(count / s).toFixed(0)} instances/s`);
      await uploader.stop();
      await spool.close();
    }
    await archive.close();

    // 3. Memory while streaming a large instance: a discard server answering a STOW success.
    let received = 0;
    const server = http.createServer((req, res) => {
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'application/dicom+json' });
        res.end(JSON.stringify({ '00081199': { vr: 'SQ', Value: [{ '00081155': { vr: 'UI', Value: ['1.2.826.0.1.3680043.10.1234.66.999999'] } }] } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const spool = await Spool.open({ dir: path.join(tmp, 'large'), fsync: false, ackMode: 'spool', doneRetentionMs: 3600_000, minFreeBytes: 0 });
    const w = await spool.createIncoming();
    const chunk = new Uint8Array(4 * MiB);
    for (let i = 0; i < largeMb / 4; i++) await w.write(chunk);
    const rec = await w.commit({ sopInstanceUID: '1.2.826.0.1.3680043.10.1234.66.999999', sopClassUID: '1.2.840.10008.5.1.4.1.1.2', transferSyntaxUID: '1.2.840.10008.1.2.1' });
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const uploader = new Uploader(spool, {
      uploader: { concurrency: 1, largeObjectThresholdBytes: Number.MAX_SAFE_INTEGER, retry: { initialDelayMs: 100, maxDelayMs: 1000, maxAttempts: 1 } },
      cloud: { dicomWebUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web`, auth: { kind: 'none' }, requestTimeoutMs: 600_000 },
    });
    const t0 = performance.now();
    uploader.start();
    const settled = await uploader.settled(rec.id);
    const s = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    console.log(`STOW of one ${largeMb} MiB instance (${settled.state}, ${received} bytes received): ${(largeMb / s).toFixed(0)} MiB/s, peak RSS growth ${((peak - before) / MiB).toFixed(1)} MiB`);
    await uploader.stop();
    await spool.close();
    server.close();

    // 4. A backlog (a long outage): recovery at start-up, then claims oldest first.
    const dir = path.join(tmp, 'backlog');
    const filler = new Uint8Array(2048);
    await spoolRate(dir, false, filler, backlog, 8);
    let t0b = performance.now();
    const big = await Spool.open({ dir, fsync: true, ackMode: 'spool', doneRetentionMs: 3600_000, minFreeBytes: 0 });
    const openMs = performance.now() - t0b;
    t0b = performance.now();
    let claimed = 0;
    while (await big.claimNext()) claimed++;
    const claimS = (performance.now() - t0b) / 1000;
    await big.close();
    t0b = performance.now();
    const again = await Spool.open({ dir, fsync: true, ackMode: 'spool', doneRetentionMs: 3600_000, minFreeBytes: 0 });
    const recoverMs = performance.now() - t0b;
    await again.close();
    console.log(`backlog of ${backlog}: open ${openMs.toFixed(0)} ms, ${(claimed / claimS).toFixed(0)} claims/s, restart with all ${claimed} inflight → queued: ${recoverMs.toFixed(0)} ms`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

void main();
