/**
 * C-MOVE through the edge gateway vs Orthanc's own C-MOVE, as in the
 * benchmark's figure 4 (scripts/bench/figures.ts figureWadoAndMove) but
 * alone and quick to repeat: the cached bench CT series (600 × 512×512×16-bit,
 * ~315 MB) is stored into the bundled embedded archive (a child process, as
 * in the benchmark) and, with --orthanc, into Orthanc; `movescu` asks the
 * gateway (fetching over DICOMweb) and Orthanc to move the study to a dcmtk
 * `storescp` (TCP_NODELAY=1 on both tools). Prints each run's seconds, the
 * gateway's RSS growth, and the medians.
 *
 *   npx tsx scripts/measure-gateway-move.ts [--runs 3] [--count 600] [--orthanc]
 *
 * --cpu-prof FILE writes a V8 CPU profile of this process (the gateway)
 * covering the moves only; BENCH_CPU_PROF=DIR profiles the archive child.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as inspector from 'node:inspector/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { embeddedGatewayConfig, startGateway } from '../edge-gateway/src/gateway';
import { silentLogger } from '../edge-gateway/src/ops/logger';
import { ensureDataset, FULL_SIZES } from './bench/dataset';
import { stowFiles, timed } from './bench/http-ops';
import { ensureOrthancInstalled, startOrthancPeer } from './bench/orthanc-peer';
import { bundleArchiveChild, readMemory, resetPeakRss, startArchiveProcess } from './bench/processes';
import { freePort } from '../test/helpers/wait';

const ROOT = path.resolve(__dirname, '..');

function exec(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${cmd} failed: ${String(stderr).slice(-1500)}`));
      else resolve(String(stdout) + String(stderr));
    });
  });
}

/** utime + stime of a process (/proc/PID/stat, clock ticks of 10 ms): where the CPU of a run went. */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      count: { type: 'string', default: '600' },
      orthanc: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
    },
  });
  const runs = Number(values.runs);
  const log = (line: string) => console.log(line);
  const dataset = ensureDataset(path.join(ROOT, 'data', 'bench', 'cache'), FULL_SIZES, log);
  const files = dataset.ct.files.slice(0, Number(values.count)).map((f) => fs.readFileSync(f.file));
  const bytes = files.reduce((n, b) => n + b.length, 0);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'measure-move-'));
  const sinkDir = path.join(work, 'sink');
  fs.mkdirSync(sinkDir);
  const received = (): number => {
    const names = fs.readdirSync(sinkDir);
    for (const f of names) fs.rmSync(path.join(sinkDir, f), { force: true });
    return names.length;
  };

  const sinkPort = await freePort();
  const sink = spawn('storescp', ['-aet', 'BENCHDEST', '-od', sinkDir, String(sinkPort)], { stdio: 'ignore', env: { ...process.env, TCP_NODELAY: '1' } });
  const archive = await startArchiveProcess(await bundleArchiveChild(path.join(ROOT, 'data', 'bench', 'build')), path.join(work, 'archive'));
  const orthanc = values.orthanc ? await startOrthancPeer({ plugin: ensureOrthancInstalled(log) }) : undefined;
  const config = embeddedGatewayConfig({ dicomWebUrl: archive.dicomWebUrl, dataDir: path.join(work, 'gateway'), port: 0 });
  config.dimse.destinations = { BENCHDEST: { host: '127.0.0.1', port: sinkPort } };
  const gateway = await startGateway(config, { logger: silentLogger, closeGraceMs: 1000 });
  try {
    for (let i = 0; ; i++) {
      try {
        await exec('echoscu', ['-aec', 'BENCHDEST', '127.0.0.1', String(sinkPort)]);
        break;
      } catch (error) {
        if (i > 200) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    log(`storing ${files.length} CT instances (${(bytes / 1e6).toFixed(0)} MB)`);
    await stowFiles(archive.dicomWebUrl, files, 4);
    if (orthanc) {
      await stowFiles(orthanc.dicomWebUrl, files, 4);
      await orthanc.addModality('dest', { aet: 'BENCHDEST', host: '127.0.0.1', port: sinkPort });
      await orthanc.addModality('scu', { aet: 'BENCHSCU', host: '127.0.0.1', port: 104 });
    }
    const movescu = (aec: string, port: number) =>
      timed(() =>
        exec('movescu', ['-S', '-aet', 'BENCHSCU', '-aec', aec, '-aem', 'BENCHDEST', '-k', '0008,0052=STUDY', '-k', `0020,000D=${dataset.ct.studyInstanceUID}`, '127.0.0.1', String(port)], {
          TCP_NODELAY: '1',
        }),
      );
    const ours: number[] = [];
    const theirs: number[] = [];
    const rssBefore = readMemory(process.pid).rssBytes;
    // --cpu-prof FILE: a V8 CPU profile of this process (the gateway) during the moves only, not the loading.
    const session = values['cpu-prof'] ? new inspector.Session() : undefined;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    for (let r = 0; r < runs; r++) {
      received();
      const pids = [process.pid, archive.pid, sink.pid];
      const cpu0 = pids.map(cpuSeconds);
      const rss0 = readMemory(process.pid).rssBytes;
      const peakKnown = resetPeakRss(process.pid);
      const g = await movescu(config.dimse.aeTitle, gateway.dimsePort);
      const cpu = pids.map((p, i) => (cpuSeconds(p) - cpu0[i]!).toFixed(2));
      const ng = received();
      ours.push(g);
      let line = `run ${r + 1}: gateway ${g.toFixed(2)} s (${ng} received, ${(bytes / 1e6 / g).toFixed(0)} MB/s, RSS ${((readMemory(process.pid).rssBytes - rssBefore) / 2 ** 20).toFixed(0)} MiB over start${peakKnown ? `, peak +${((readMemory(process.pid).peakRssBytes - rss0) / 2 ** 20).toFixed(0)} MiB during the move` : ''}; CPU s gateway/archive/storescp ${cpu.join('/')})`;
      if (orthanc) {
        const opids = [orthanc.pid, sink.pid];
        const ocpu0 = opids.map(cpuSeconds);
        const o = await movescu(orthanc.aet, orthanc.dicomPort);
        line += ` [CPU s Orthanc/storescp ${opids.map((p, i) => (cpuSeconds(p) - ocpu0[i]!).toFixed(2)).join('/')}]`;
        const no = received();
        theirs.push(o);
        line += `, Orthanc ${o.toFixed(2)} s (${no} received)`;
      }
      log(line);
    }
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      fs.writeFileSync(values['cpu-prof']!, JSON.stringify(profile));
      session.disconnect();
    }
    log(`median: gateway ${median(ours).toFixed(2)} s${orthanc ? `, Orthanc ${median(theirs).toFixed(2)} s, ratio ${(median(theirs) / median(ours)).toFixed(2)}× (Orthanc / ours)` : ''}`);
  } finally {
    await gateway.close();
    await orthanc?.stop();
    await archive.stop();
    sink.kill('SIGTERM');
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
