/**
 * Crash safety end to end through DIMSE: the whole gateway (`cli.ts run`:
 * C-STORE SCP into the spool, uploader, ack mode 'spool') is killed with
 * SIGKILL at random points while dcmtk's storescu sends 500 generated
 * instances, and the archive is taken away for a while. An instance whose
 * C-STORE got a Success response is never sent again: the acknowledgement
 * alone must make it durable. Instances without a response are resent (as a
 * modality would). Afterwards every instance is in the archive exactly once,
 * with the data set byte-identical, and the spool holds nothing unfinished.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import { ctSeries, createRng, type SyntheticInstance } from '../fixtures/synthetic';
import { getJson, getParts } from '../helpers/archive';
import { datasetBytes } from './dimse-helpers';
import { PROJECT_ROOT } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';
import { entries, kill9, waitFor } from './crash-helpers';

const CLI = path.join(PROJECT_ROOT, 'edge-gateway', 'src', 'cli.ts');
const STUDIES = 5;
const PER_STUDY = 100;
const ROUNDS = 12;

jest.setTimeout(180_000);

interface Child {
  proc: ChildProcess;
  out: string[];
  exited: Promise<number | null>;
}

function start(cmd: string, args: string[]): Child {
  const proc = spawn(cmd, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  proc.stdout!.on('data', (d: Buffer) => out.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, out, exited };
}

/** The gateway itself (node with the tsx loader, so SIGKILL hits the process holding the spool and the port). */
function startGateway(configFile: string): Child {
  return start(process.execPath, ['--import', 'tsx', CLI, 'run', '--config', configFile]);
}

/** The DIMSE port from the gateway's start-up log line. */
function startedPort(child: Child): number | undefined {
  for (const line of child.out.join('').split('\n')) {
    if (!line.includes('"edge gateway started"')) continue;
    const port = JSON.parse(line).port;
    if (typeof port === 'number') return port;
  }
  return undefined;
}

function storescu(port: number, files: string[]): Child {
  return start('storescu', ['-v', '-aet', 'CRASHTEST', '-aec', 'EDGE', '-ta', '10', '-td', '10', '127.0.0.1', String(port), ...files]);
}

/** storescu sends files in order, one at a time: the first n Success responses acknowledge the first n files. */
function acknowledged(child: Child): number {
  return (child.out.join('').match(/Received Store Response \(Success\)/g) ?? []).length;
}

test('kill -9 of the gateway while storescu sends 500 instances: every acknowledged instance survives, all stored exactly once', async () => {
  const tmp = makeTempDir('crash-dimse-');
  const children: Child[] = [];
  let archive: Awaited<ReturnType<typeof startEmbeddedArchive>> | undefined;
  try {
    const media = path.join(tmp.dir, 'media');
    const all: SyntheticInstance[] = [];
    const files: string[] = [];
    for (let s = 0; s < STUDIES; s++) {
      for (const [i, inst] of ctSeries({ count: PER_STUDY, rows: 16, columns: 16 }).entries()) {
        const file = path.join(media, `s${s}`, `${String(i).padStart(3, '0')}.dcm`);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, inst.bytes);
        all.push(inst);
        files.push(file);
      }
    }
    const dataDir = path.join(tmp.dir, 'archive');
    archive = await startEmbeddedArchive({ dataDir, port: 0, log: silentLogger });
    const archivePort = Number(new URL(archive.url).port);
    const spoolDir = path.join(tmp.dir, 'spool');
    const configFile = path.join(tmp.dir, 'gateway.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        dimse: { aeTitle: 'EDGE', host: '127.0.0.1', port: 0 },
        cloud: { dicomWebUrl: archive.dicomWebUrl, requestTimeoutMs: 10_000 },
        spool: { dir: spoolDir, fsync: true, ackMode: 'spool' },
        uploader: { concurrency: 2, retry: { initialDelayMs: 50, maxDelayMs: 400 } },
        http: { port: 0 },
      }),
    );

    const rng = createRng(4242);
    const batch = Math.ceil(files.length / ROUNDS);
    let unacknowledged: string[] = [];
    let kills = 0;
    let acked = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const gateway = startGateway(configFile);
      children.push(gateway);
      const port = await waitFor('the gateway to listen', () => startedPort(gateway)).catch((e: Error) => {
        throw new Error(`${e.message}: ${gateway.out.join('').slice(-2000)}`);
      });
      // Files a previous round sent without an acknowledgement go again first, as a modality would resend them.
      const sending = [...unacknowledged, ...files.slice(round * batch, (round + 1) * batch)];
      const sender = storescu(port, sending);
      children.push(sender);
      await Promise.race([new Promise((r) => setTimeout(r, 50 + Math.floor(rng() * 500))), sender.exited]);
      if (round === 5) {
        // The archive goes away while the gateway keeps accepting into the spool.
        await archive.close();
        await new Promise((r) => setTimeout(r, 1_500));
        archive = await startEmbeddedArchive({ dataDir, port: archivePort, log: silentLogger });
      }
      const flowing = sender.proc.exitCode === null || entries(spoolDir, 'queued').length + entries(spoolDir, 'inflight').length > 0;
      await kill9(gateway);
      if (flowing) kills++;
      await sender.exited;
      const n = acknowledged(sender);
      acked += n;
      unacknowledged = sending.slice(n);
    }
    // Killed while instances were arriving or waiting for upload, not after everything had settled.
    expect(kills).toBeGreaterThanOrEqual(10);
    expect(acked).toBeGreaterThan(0);

    // The last run: resend what never got a response, let the uploader finish, stop gracefully.
    const gateway = startGateway(configFile);
    children.push(gateway);
    const port = await waitFor('the gateway to listen', () => startedPort(gateway));
    if (unacknowledged.length > 0) {
      const sender = storescu(port, unacknowledged);
      children.push(sender);
      await sender.exited;
      expect(acknowledged(sender)).toBe(unacknowledged.length);
    }
    await waitFor(
      'the spool to empty',
      () => ['incoming', 'queued', 'inflight'].every((s) => entries(spoolDir, s).length === 0) || undefined,
      90_000,
    );
    gateway.proc.kill('SIGTERM');
    expect(await gateway.exited).toBe(0);

    const stored: string[] = [];
    for (const study of [...new Set(all.map((i) => i.studyInstanceUID))]) {
      const r = await getJson(`${archive.dicomWebUrl}/studies/${study}/instances?limit=1000`);
      expect(r.status).toBe(200);
      expect(r.json).toHaveLength(PER_STUDY);
      for (const ds of r.json) stored.push(ds['00080018'].Value[0]);
    }
    expect(stored).toHaveLength(files.length);
    expect(new Set(stored)).toEqual(new Set(all.map((i) => i.sopInstanceUID)));
    for (let k = 0; k < 20; k++) {
      const inst = all[Math.floor(rng() * all.length)]!;
      const r = await getParts(`${archive.dicomWebUrl}/studies/${inst.studyInstanceUID}/series/${inst.seriesInstanceUID}/instances/${inst.sopInstanceUID}`, 'multipart/related; type="application/dicom"; transfer-syntax=*');
      // The gateway writes its own file meta (PS3.10 §7.1: this node's implementation); the data set is the modality's, byte for byte.
      expect(datasetBytes(r.parts[0]!.body).equals(datasetBytes(inst.bytes))).toBe(true);
    }
    expect(entries(spoolDir, 'quarantine')).toEqual([]);
    expect(entries(spoolDir, 'done').length).toBeGreaterThanOrEqual(files.length);
  } finally {
    for (const c of children) await kill9(c);
    await archive?.close();
    tmp.cleanup();
  }
});
