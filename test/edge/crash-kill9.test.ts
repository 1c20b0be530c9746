/**
 * Crash safety, the acceptance test of the edge gateway's durable side: a
 * child process running spool + uploader (`cli.ts drain`) is killed with
 * SIGKILL at random points, again and again, while an importer process (itself
 * killed once) feeds 500 generated instances into the spool and the archive is
 * taken away for a while. Afterwards every instance is in the archive exactly
 * once (QIDO: each SOP Instance UID once, counts per study; WADO bytes of a
 * sample identical), and the spool holds nothing unfinished: no incoming,
 * queued, inflight or quarantined entry.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import { ctSeries, createRng, type SyntheticInstance } from '../fixtures/synthetic';
import { getJson, getParts, withZeroPreamble } from '../helpers/archive';
import { PROJECT_ROOT } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';
import { entries, kill9, waitFor } from './crash-helpers';

const CLI = path.join(PROJECT_ROOT, 'edge-gateway', 'src', 'cli.ts');
const STUDIES = 5;
const PER_STUDY = 100;
const KILLS = 12;

jest.setTimeout(180_000);

interface Child {
  proc: ChildProcess;
  stderr: string[];
  exited: Promise<number | null>;
}

function startCli(args: string[]): Child {
  // node itself with the tsx loader, not the tsx wrapper: a SIGKILL must hit the process that holds the spool.
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, stderr, exited };
}

test('kill -9 at random points while instances flow and the archive goes away: every instance in the archive exactly once, the spool empty', async () => {
  const tmp = makeTempDir('crash-');
  const children: Child[] = [];
  let archive: Awaited<ReturnType<typeof startEmbeddedArchive>> | undefined;
  try {
    // 500 synthetic instances in 5 studies, as files on a "medium".
    const media = path.join(tmp.dir, 'media');
    const all: SyntheticInstance[] = [];
    for (let s = 0; s < STUDIES; s++) {
      const series = ctSeries({ count: PER_STUDY, rows: 16, columns: 16 });
      series.forEach((inst, i) => {
        const file = path.join(media, `study${s}`, `${String(i).padStart(3, '0')}.dcm`);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, inst.bytes);
      });
      all.push(...series);
    }
    const dataDir = path.join(tmp.dir, 'archive');
    archive = await startEmbeddedArchive({ dataDir, port: 0, log: silentLogger });
    const port = Number(new URL(archive.url).port);
    const spoolDir = path.join(tmp.dir, 'spool');
    const configFile = path.join(tmp.dir, 'gateway.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        dimse: { aeTitle: 'EDGE', port: 0 },
        cloud: { dicomWebUrl: archive.dicomWebUrl, requestTimeoutMs: 10_000 },
        spool: { dir: spoolDir, fsync: true },
        uploader: { concurrency: 2, retry: { initialDelayMs: 50, maxDelayMs: 400 } },
        http: { port: 0 },
      }),
    );

    const rng = createRng(20261203);
    let importer = startCli(['import', '--config', configFile, media]);
    children.push(importer);
    let importerKilled = false;
    let killsWhileFlowing = 0;
    let archiveTakenAway = false;
    for (let round = 0; round < KILLS; round++) {
      const worker = startCli(['drain', '--config', configFile]);
      children.push(worker);
      await waitFor('the worker to start', () => worker.stderr.join('').includes('upload pipeline started')).catch((e: Error) => {
        throw new Error(`${e.message} (round ${round}, exit ${worker.proc.exitCode}): ${worker.stderr.join('').slice(-2000)}`);
      });
      // Let some instances through (or not: sometimes it dies at once), then SIGKILL at a random point.
      await new Promise((r) => setTimeout(r, Math.floor(rng() * 400)));
      if (round === 4) {
        // The archive goes away for a while (the worker keeps retrying), then comes back on the same port and data.
        await archive.close();
        archiveTakenAway = true;
        await new Promise((r) => setTimeout(r, 1_500));
        archive = await startEmbeddedArchive({ dataDir, port, log: silentLogger });
      }
      if (round === 2 && !importerKilled) {
        // The feeder dies too, mid-copy; a new run skips what the spool already holds.
        await kill9(importer);
        importerKilled = true;
        importer = startCli(['import', '--config', configFile, media]);
        children.push(importer);
      }
      const pending = entries(spoolDir, 'queued').length + entries(spoolDir, 'inflight').length;
      await kill9(worker);
      if (pending > 0) killsWhileFlowing++;
    }
    expect(importerKilled && archiveTakenAway).toBe(true);
    expect(killsWhileFlowing).toBeGreaterThanOrEqual(10);
    const importCode = await importer.exited;
    expect(importCode).toBe(0);

    // A last worker drains what is left and exits when the spool is empty.
    const last = startCli(['drain', '--config', configFile, '--until-empty']);
    children.push(last);
    expect(await last.exited).toBe(0);

    // Every instance exactly once in the archive.
    const studies = [...new Set(all.map((i) => i.studyInstanceUID))];
    const stored: string[] = [];
    for (const study of studies) {
      const r = await getJson(`${archive.dicomWebUrl}/studies/${study}/instances?limit=1000`);
      expect(r.status).toBe(200);
      expect(r.json).toHaveLength(PER_STUDY);
      for (const ds of r.json) stored.push(ds['00080018'].Value[0]);
    }
    expect(stored).toHaveLength(STUDIES * PER_STUDY);
    expect(new Set(stored)).toEqual(new Set(all.map((i) => i.sopInstanceUID)));
    for (let k = 0; k < 20; k++) {
      const inst = all[Math.floor(rng() * all.length)]!;
      const r = await getParts(`${archive.dicomWebUrl}/studies/${inst.studyInstanceUID}/series/${inst.seriesInstanceUID}/instances/${inst.sopInstanceUID}`, 'multipart/related; type="application/dicom"; transfer-syntax=*');
      expect(Buffer.compare(r.parts[0]!.body, withZeroPreamble(inst.bytes))).toBe(0);
    }

    // Nothing unfinished in the spool; every entry done.
    expect(entries(spoolDir, 'incoming')).toEqual([]);
    expect(entries(spoolDir, 'queued')).toEqual([]);
    expect(entries(spoolDir, 'inflight')).toEqual([]);
    expect(entries(spoolDir, 'quarantine')).toEqual([]);
    expect(entries(spoolDir, 'done').length).toBeGreaterThanOrEqual(STUDIES * PER_STUDY);

    // The workers logged, and no patient attribute reached those logs.
    const logs = children.map((c) => c.stderr.join('')).join('');
    expect(logs).toContain('recovered after restart');
    const phi = new Set<string>();
    for (const i of all) {
      const name = (i.dataset['00100010']?.Value?.[0] as { Alphabetic?: string } | undefined)?.Alphabetic ?? '';
      for (const part of name.split('^')) if (part.length >= 4) phi.add(part);
      const id = i.dataset['00100020']?.Value?.[0];
      if (typeof id === 'string' && id.length >= 4) phi.add(id);
    }
    expect(phi.size).toBeGreaterThan(0);
    for (const p of phi) expect(logs).not.toContain(p);
  } finally {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) await kill9(c);
    await archive?.close();
    tmp.cleanup();
  }
});
