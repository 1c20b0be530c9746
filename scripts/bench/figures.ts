/**
 * Figures 1–5 of the benchmark (issue 5), each ours vs Orthanc on the same
 * bytes. Every figure starts its systems fresh (own temp data dirs, free
 * ports) and stops them before the next one, so only one system works at a
 * time.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { embeddedGatewayConfig, startGateway } from '../../edge-gateway/src/gateway';
import { silentLogger } from '../../edge-gateway/src/ops/logger';
import { freePort } from '../../test/helpers/wait';
import { ingestSet, type Dataset } from './dataset';
import { getBytes, getJsonArray, stowFileStreamed, stowFiles, timed } from './http-ops';
import { ensureOrthancFill, ensureOurFill, familyPrefix, fillStudy, orthancStagingDir } from './index-fill';
import { startOrthancPeer, type OrthancPeer } from './orthanc-peer';
import { readMemory, resetPeakRss, startArchiveProcess, type ArchiveProcess } from './processes';
import type { BenchResults, Row } from './results';
import { mbPerSecond, percentile, summarize, type Better, type Target } from './stats';

export interface BenchContext {
  quick: boolean;
  runs: number;
  /** instances per study in the QIDO indexes (1 by default; 10 at 100k studies gives the 1M-instance index) */
  instancesPerStudy: number;
  /** runs of figure 5 (500 MB each way), if fewer than `runs` */
  memoryRuns?: number;
  dataset: Dataset;
  /** scratch space for the systems' data (deleted as we go) */
  workDir: string;
  /** generated data and pre-filled indexes, kept between runs of the harness */
  cacheDir: string;
  archiveBundle: string;
  orthancPlugin: string;
  log: (line: string) => void;
  rows: Row[];
  notes: string[];
  fills: BenchResults['fills'];
  versions: Record<string, string>;
}

let scratch = 0;
function scratchDir(ctx: BenchContext, name: string): string {
  const dir = path.join(ctx.workDir, `${name}-${++scratch}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

async function withOurs<T>(ctx: BenchContext, fn: (a: ArchiveProcess) => Promise<T>, dataDir = scratchDir(ctx, 'ours')): Promise<T> {
  const archive = await startArchiveProcess(ctx.archiveBundle, dataDir);
  try {
    return await fn(archive);
  } finally {
    await archive.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function withOrthanc<T>(ctx: BenchContext, fn: (o: OrthancPeer) => Promise<T>, dirs?: { storageDirectory: string; indexDirectory: string }): Promise<T> {
  const orthanc = await startOrthancPeer({ plugin: ctx.orthancPlugin, ...dirs });
  ctx.versions.Orthanc = orthanc.version;
  ctx.versions['Orthanc DICOMweb plugin'] = orthanc.dicomWebVersion;
  try {
    return await fn(orthanc);
  } finally {
    await orthanc.stop();
  }
}

interface Samples {
  ours: number[];
  orthanc: number[];
}
const samples = (): Samples => ({ ours: [], orthanc: [] });

function row(figure: number, id: string, name: string, unit: string, better: Better, s: Samples, extra: Partial<Row> = {}): Row {
  return {
    figure,
    id,
    name,
    unit,
    better,
    ...(s.ours.length ? { ours: summarize(s.ours) } : {}),
    ...(s.orthanc.length ? { orthanc: summarize(s.orthanc) } : {}),
    ...extra,
  };
}

const mib = (bytes: number) => bytes / 1048576;

// ---------------------------------------------------------------- 1. STOW

async function rawDiskCopy(ctx: BenchContext, files: readonly Uint8Array[], writers: number): Promise<number> {
  const dir = scratchDir(ctx, 'raw');
  let next = 0;
  try {
    return await timed(() =>
      Promise.all(
        Array.from({ length: writers }, async () => {
          for (;;) {
            const i = next++;
            if (i >= files.length) return;
            const handle = await fs.promises.open(path.join(dir, `${i}.dcm`), 'w');
            try {
              await handle.writeFile(files[i]!);
              await handle.sync();
            } finally {
              await handle.close();
            }
          }
        }),
      ),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A server in its own process that reads each request to the end and answers
 * 200 with an empty STOW response: what the benchmark's client and loopback
 * HTTP alone allow, the ceiling for any server measured with them.
 */
const NULL_SERVER = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => { res.writeHead(200, { 'Content-Type': 'application/dicom+json' }); res.end('{}'); });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

async function withNullServer<T>(fn: (base: string) => Promise<T>): Promise<T> {
  const child = spawn(process.execPath, ['-e', NULL_SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    });
    return await fn(`http://127.0.0.1:${port}`);
  } finally {
    child.stdin.end();
    child.kill('SIGTERM');
  }
}

export async function figureStow(ctx: BenchContext): Promise<void> {
  const set = ingestSet(ctx.dataset);
  const files = set.map((f) => fs.readFileSync(f.file));
  const bytes = files.reduce((n, b) => n + b.length, 0);
  ctx.log(`1. STOW: ${files.length} instances, ${fmtMb(bytes)} per run`);
  for (const clients of [1, 4]) {
    const rate = samples();
    const mbs = samples();
    const raw: number[] = [];
    const rawRate: number[] = [];
    const ceiling: number[] = [];
    for (let r = 0; r < ctx.runs; r++) {
      const ours = await withOurs(ctx, (a) => stowFiles(a.dicomWebUrl, files, clients));
      const orthanc = await withOrthanc(ctx, (o) => stowFiles(o.dicomWebUrl, files, clients));
      const disk = await rawDiskCopy(ctx, files, clients);
      const client = await withNullServer((base) => stowFiles(base, files, clients));
      rate.ours.push(files.length / ours);
      rate.orthanc.push(files.length / orthanc);
      mbs.ours.push(mbPerSecond(bytes, ours));
      mbs.orthanc.push(mbPerSecond(bytes, orthanc));
      raw.push(mbPerSecond(bytes, disk));
      rawRate.push(files.length / disk);
      ceiling.push(files.length / client);
      ctx.log(`   ${clients} client(s) run ${r + 1}: ours ${ours.toFixed(2)} s, Orthanc ${orthanc.toFixed(2)} s, raw disk ${disk.toFixed(2)} s, client ceiling ${client.toFixed(2)} s`);
    }
    const target: Target = { kind: 'ratio', factor: 5, text: 'ingest ≥ 5× Orthanc' };
    const c = clients === 1 ? '1 client' : `${clients} concurrent clients`;
    ctx.rows.push(row(1, `stow-${clients}-rate`, `STOW, ${c}, one instance per request`, 'instances/s', 'higher', rate, { target }));
    ctx.rows.push(row(1, `stow-${clients}-mbs`, `STOW, ${c}`, 'MB/s', 'higher', mbs));
    ctx.rows.push(
      row(1, `stow-${clients}-raw-disk`, `raw-disk reference: the same files written + fsynced, ${clients} writer(s)`, 'MB/s', 'higher', samples(), {
        reference: { label: 'disk', value: summarize(raw) },
      }),
    );
    ctx.rows.push(
      row(1, `stow-${clients}-raw-disk-rate`, `raw-disk reference: files written + fsynced per second, ${clients} writer(s) (a durable archive stores at most this many)`, 'instances/s', 'higher', samples(), {
        reference: { label: 'disk', value: summarize(rawRate) },
      }),
    );
    ctx.rows.push(
      row(1, `stow-${clients}-client-ceiling`, `client ceiling: the same requests to a server that only reads and discards them, ${c}`, 'instances/s', 'higher', samples(), {
        reference: { label: 'client', value: summarize(ceiling) },
      }),
    );
  }
}

function fmtMb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

// ---------------------------------------------------------------- 2. QIDO

interface QidoQuery {
  id: string;
  name: string;
  query: (j: number) => string;
}

function qidoQueries(scale: number): QidoQuery[] {
  const study = (j: number) => fillStudy(scale, (j * 7919) % scale);
  const modalities = ['MR', 'CT', 'CR', 'DX', 'US'];
  return [
    { id: 'name', name: 'PatientName wildcard (family-name prefix*)', query: (j) => `PatientName=${familyPrefix(study(j).patient)}*&limit=100` },
    { id: 'pid', name: 'PatientID', query: (j) => `PatientID=${study(j).patientID}&limit=100` },
    {
      id: 'date',
      name: 'StudyDate range (31 days)',
      query: (j) => {
        const from = study(j).studyDate;
        const d = new Date(Date.UTC(+from.slice(0, 4), +from.slice(4, 6) - 1, +from.slice(6, 8) + 30));
        return `StudyDate=${from}-${d.toISOString().slice(0, 10).replace(/-/g, '')}&limit=100`;
      },
    },
    { id: 'mods', name: 'ModalitiesInStudy', query: (j) => `ModalitiesInStudy=${modalities[j % modalities.length]}&limit=100` },
    { id: 'all', name: 'unfiltered, limit=100', query: () => 'limit=100' },
  ];
}

async function qidoLatencies(base: string, q: QidoQuery, count: number, offset: number): Promise<{ ms: number[]; firstMatches: number }> {
  let firstMatches = -1;
  for (let w = 0; w < 3; w++) await getJsonArray(`${base}/studies?${q.query(offset + 1000 + w)}`);
  const ms: number[] = [];
  for (let j = 0; j < count; j++) {
    let n = 0;
    const s = await timed(async () => (n = (await getJsonArray(`${base}/studies?${q.query(offset + j)}`)).length));
    if (j === 0) firstMatches = n;
    ms.push(s * 1000);
  }
  return { ms, firstMatches };
}

export async function figureQido(ctx: BenchContext, scales: number[]): Promise<void> {
  const perRun = ctx.quick ? 5 : 20;
  for (const scale of scales) {
    const fill = { studies: scale, instancesPerStudy: ctx.instancesPerStudy };
    ctx.log(`2. QIDO at ${scale.toLocaleString('en-US')} studies: filling (or reusing) both indexes…`);
    const ours = await ensureOurFill(ctx.cacheDir, { ...fill, progress: (n) => ctx.log(`   ours: ${n} studies`) });
    const orthancFill = await ensureOrthancFill(
      ctx.cacheDir,
      // ~5 KiB per instance staged (a tmpfs page per ≈1 KB file, plus the index), and as much again to spare
      { ...fill, concurrency: 4, stagingDir: orthancStagingDir(scale * ctx.instancesPerStudy * 5 * 1024 * 2), progress: (n) => ctx.log(`   Orthanc: ${n} studies`) },
      (storageDirectory, indexDirectory) => startOrthancPeer({ plugin: ctx.orthancPlugin, storageDirectory, indexDirectory }),
    );
    ctx.fills.push(
      { system: 'ours', studies: scale, instances: scale * ctx.instancesPerStudy, seconds: ours.fillSeconds, cached: ours.cached, how: 'SqliteIndex.putInstance of records built by the core from the Part 10 bytes (no HTTP, no blobs)' },
      { system: 'Orthanc', studies: scale, instances: scale * ctx.instancesPerStudy, seconds: orthancFill.fillSeconds, cached: orthancFill.cached, how: `REST POST /instances of the same Part 10 bytes, 4 in flight${orthancFill.staged ? ', on tmpfs, then copied to disk' : ''}` },
    );
    const queries = qidoQueries(scale);
    const p50 = new Map(queries.map((q) => [q.id, samples()]));
    const p95 = new Map(queries.map((q) => [q.id, samples()]));
    const matches = new Map<string, string>();
    const dataDir = scratchDir(ctx, 'ours-qido');
    fs.copyFileSync(path.join(ours.dir, 'index.sqlite'), path.join(dataDir, 'index.sqlite'));
    await withOurs(
      ctx,
      async (a) => {
        await withOrthanc(
          ctx,
          async (o) => {
            for (let r = 0; r < ctx.runs; r++) {
              for (const q of queries) {
                const mine = await qidoLatencies(a.dicomWebUrl, q, perRun, r * perRun);
                const theirs = await qidoLatencies(o.dicomWebUrl, q, perRun, r * perRun);
                p50.get(q.id)!.ours.push(percentile(mine.ms, 50));
                p95.get(q.id)!.ours.push(percentile(mine.ms, 95));
                p50.get(q.id)!.orthanc.push(percentile(theirs.ms, 50));
                p95.get(q.id)!.orthanc.push(percentile(theirs.ms, 95));
                if (r === 0) matches.set(q.id, `first query matched ${mine.firstMatches} (ours) / ${theirs.firstMatches} (Orthanc) studies`);
              }
              ctx.log(`   run ${r + 1} done`);
            }
          },
          { storageDirectory: path.join(orthancFill.dir, 'storage'), indexDirectory: path.join(orthancFill.dir, 'index') },
        );
      },
      dataDir,
    );
    // One instance per study keeps the plain ids of the first runs; bigger studies say their instance count.
    const perStudy = ctx.instancesPerStudy;
    const size = perStudy === 1 ? String(scale) : `${scale}x${perStudy}`;
    const scaleText = `${scale.toLocaleString('en-US')} studies${perStudy === 1 ? '' : ` / ${(scale * perStudy).toLocaleString('en-US')} instances`}`;
    const isTargetScale = scale >= 100_000;
    if (perStudy !== 1) ctx.notes.push(`Figure 2 at ${scaleText}: the same studies as at ${scale.toLocaleString('en-US')} studies, each with one series of ${perStudy} instances (--instances-per-study ${perStudy}).`);
    for (const q of queries) {
      ctx.rows.push(row(2, `qido-${size}-${q.id}-p50`, `${q.name}, p50, ${scaleText}`, 'ms', 'lower', p50.get(q.id)!, { note: matches.get(q.id) }));
      ctx.rows.push(
        row(2, `qido-${size}-${q.id}-p95`, `${q.name}, p95, ${scaleText}`, 'ms', 'lower', p95.get(q.id)!, {
          ...(isTargetScale ? { target: { kind: 'ratio', factor: 10, text: 'QIDO p95 ≤ 1/10 of Orthanc at 100k studies' } as Target } : {}),
        }),
      );
    }
  }
}

// ---------------------------------------------------------------- 3. WADO + 4b. C-MOVE

const FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"';
const DICOM_ACCEPT = 'multipart/related; type="application/dicom"';

function execTool(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${cmd} failed: ${String(stderr).slice(-1500)}`));
      else resolve(String(stdout) + String(stderr));
    });
  });
}

/** A C-MOVE destination writing what it receives into `dir` (counted after each move, then emptied). */
async function startStorescp(aet: string, dir: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort();
  // TCP_NODELAY=1: dcmtk leaves Nagle on otherwise, and every C-STORE then waits for a delayed ACK (~40 ms).
  const child = spawn('storescp', ['-aet', aet, '-od', dir, String(port)], { stdio: 'ignore', env: { ...process.env, TCP_NODELAY: '1' } });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Wait until it accepts an association (echoscu), at most 20 s.
  for (let i = 0; ; i++) {
    try {
      await execTool('echoscu', ['-aec', aet, '127.0.0.1', String(port)]);
      break;
    } catch (error) {
      if (i > 200) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Requests per run behind one latency sample of figure 3: a single request's time is mostly noise (a GC, a scheduler hiccup). */
const LATENCY_REQUESTS = 5;

/** The median of LATENCY_REQUESTS timed calls, in ms (both systems are measured the same way). */
async function medianLatencyMs(fn: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < LATENCY_REQUESTS; i++) ms.push((await timed(fn)) * 1000);
  return percentile(ms, 50);
}

export async function figureWadoAndMove(ctx: BenchContext): Promise<void> {
  const d = ctx.dataset;
  const ctFiles = d.ct.files.map((f) => fs.readFileSync(f.file));
  const ctBytes = ctFiles.reduce((n, b) => n + b.length, 0);
  const loadSet = [...ctFiles, fs.readFileSync(d.mf.file.file)];
  const frame = Math.ceil(d.mf.frames / 2);
  const seriesMeta = `/studies/${d.ct.studyInstanceUID}/series/${d.ct.seriesInstanceUID}/metadata`;
  const frameUrl = `/studies/${d.mf.studyInstanceUID}/series/${d.mf.seriesInstanceUID}/instances/${d.mf.sopInstanceUID}/frames/${frame}`;
  const studyUrl = `/studies/${d.ct.studyInstanceUID}`;
  const meta = samples();
  const frameMs = samples();
  const study = samples();
  const move = samples();
  const moveRate = samples();
  ctx.log(`3./4b. WADO and C-MOVE: loading the ${d.ct.files.length}-slice CT series and the ${d.mf.frames}-frame instance into both`);
  const sinkDir = scratchDir(ctx, 'move-sink');
  const sink = await startStorescp('BENCHDEST', sinkDir);
  // movescu exits 0 whatever the final status: count what arrived, then empty the sink.
  const received = (): number => {
    const files = fs.readdirSync(sinkDir);
    for (const f of files) fs.rmSync(path.join(sinkDir, f), { force: true });
    return files.length;
  };
  try {
    const checkSeries = async (base: string): Promise<void> => {
      const n = (await getJsonArray(`${base}${seriesMeta}`)).length;
      if (n !== d.ct.files.length) throw new Error(`series metadata of ${base} has ${n} instances, expected ${d.ct.files.length}`);
    };
    await withOurs(ctx, async (a) => {
      await withOrthanc(ctx, async (o) => {
        await stowFiles(a.dicomWebUrl, loadSet, 4);
        await stowFiles(o.dicomWebUrl, loadSet, 4);
        await checkSeries(a.dicomWebUrl);
        await checkSeries(o.dicomWebUrl);
        await o.addModality('dest', { aet: 'BENCHDEST', host: '127.0.0.1', port: sink.port });
        // Orthanc answers C-MOVE only for calling AEs it knows.
        await o.addModality('scu', { aet: 'BENCHSCU', host: '127.0.0.1', port: 104 });
        const gwDir = scratchDir(ctx, 'gateway-move');
        const config = embeddedGatewayConfig({ dicomWebUrl: a.dicomWebUrl, dataDir: gwDir, port: 0 });
        config.dimse.destinations = { BENCHDEST: { host: '127.0.0.1', port: sink.port } };
        const gateway = await startGateway(config, { logger: silentLogger, closeGraceMs: 1000 });
        const movescu = (aec: string, port: number) =>
          timed(() =>
            execTool('movescu', ['-S', '-aet', 'BENCHSCU', '-aec', aec, '-aem', 'BENCHDEST', '-k', '0008,0052=STUDY', '-k', `0020,000D=${d.ct.studyInstanceUID}`, '127.0.0.1', String(port)], { TCP_NODELAY: '1' }),
          );
        try {
          for (let r = 0; r < ctx.runs; r++) {
            for (const [side, base] of [['ours', a.dicomWebUrl], ['orthanc', o.dicomWebUrl]] as const) {
              meta[side].push(await medianLatencyMs(() => getBytes(`${base}${seriesMeta}`, 'application/dicom+json')));
              frameMs[side].push(await medianLatencyMs(() => getBytes(`${base}${frameUrl}`, FRAME_ACCEPT)));
              let n = 0;
              const s = await timed(async () => (n = await getBytes(`${base}${studyUrl}`, DICOM_ACCEPT)));
              if (n < ctBytes) throw new Error(`study retrieve from ${side} returned ${n} bytes, less than the ${ctBytes} stored`);
              study[side].push(mbPerSecond(ctBytes, s));
            }
            received();
            const mg = await movescu(config.dimse.aeTitle, gateway.dimsePort);
            const ng = received();
            const mo = await movescu(o.aet, o.dicomPort);
            const no = received();
            if (ng !== d.ct.files.length || no !== d.ct.files.length) throw new Error(`C-MOVE delivered ${ng} (gateway) / ${no} (Orthanc) of ${d.ct.files.length} instances`);
            move.ours.push(mg);
            move.orthanc.push(mo);
            moveRate.ours.push(mbPerSecond(ctBytes, mg));
            moveRate.orthanc.push(mbPerSecond(ctBytes, mo));
            ctx.log(`   run ${r + 1}: metadata ${meta.ours.at(-1)!.toFixed(0)} / ${meta.orthanc.at(-1)!.toFixed(0)} ms, C-MOVE ${mg.toFixed(2)} / ${mo.toFixed(2)} s (ours / Orthanc)`);
          }
        } finally {
          await gateway.close();
          fs.rmSync(gwDir, { recursive: true, force: true });
        }
      });
    });
  } finally {
    await sink.stop();
    fs.rmSync(sinkDir, { recursive: true, force: true });
  }
  const n = d.ct.files.length;
  ctx.rows.push(row(3, 'wado-series-metadata', `series metadata of a ${n}-instance CT series (each run: median of ${LATENCY_REQUESTS} requests)`, 'ms', 'lower', meta, { target: { kind: 'ratio', factor: 20, text: 'series metadata ≤ 1/20 of Orthanc' } }));
  ctx.rows.push(row(3, 'wado-frame', `one frame (512×512×16-bit) of a ${d.mf.frames}-frame instance (each run: median of ${LATENCY_REQUESTS} requests)`, 'ms', 'lower', frameMs));
  ctx.rows.push(row(3, 'wado-study', `whole-study retrieve (${n} CT instances, ${fmtMb(ctBytes)}, multipart)`, 'MB/s', 'higher', study));
  ctx.rows.push(
    row(4, 'cmove-study', `C-MOVE of the ${n}-instance CT study to a storescp (ours: gateway fetching from the embedded archive over DICOMweb)`, 's', 'lower', move),
  );
  ctx.rows.push(row(4, 'cmove-study-mbs', 'C-MOVE of the CT study', 'MB/s', 'higher', moveRate));
}

// ---------------------------------------------------------------- 4a. storescu into the gateway

export async function figureGatewayStore(ctx: BenchContext): Promise<void> {
  const count = Math.min(ctx.quick ? 50 : 500, ctx.dataset.ct.files.length);
  const dir = scratchDir(ctx, 'storescu-src');
  for (const f of ctx.dataset.ct.files.slice(0, count)) fs.symlinkSync(path.resolve(f.file), path.join(dir, path.basename(f.file)));
  const rate = samples();
  const storescu = (aet: string, port: number) => timed(() => execTool('storescu', ['-aec', aet, '+sd', '127.0.0.1', String(port), dir], { TCP_NODELAY: '1' }));
  ctx.log(`4a. storescu of ${count} CT instances over one association`);
  for (let r = 0; r < ctx.runs; r++) {
    const gwDir = scratchDir(ctx, 'gateway');
    // Only DIMSE + the fsynced spool are measured: the uploader points nowhere and never retries within the run.
    const config = embeddedGatewayConfig({ dicomWebUrl: 'http://127.0.0.1:1/dicom-web', dataDir: gwDir, port: 0 });
    config.uploader.retry = { initialDelayMs: 600_000, maxDelayMs: 600_000, maxAttempts: 0 };
    config.spool.fsync = true;
    const gateway = await startGateway(config, { logger: silentLogger, closeGraceMs: 1000 });
    let ours: number;
    try {
      ours = await storescu(config.dimse.aeTitle, gateway.dimsePort);
    } finally {
      await gateway.close();
      fs.rmSync(gwDir, { recursive: true, force: true });
    }
    const orthanc = await withOrthanc(ctx, (o) => storescu(o.aet, o.dicomPort));
    rate.ours.push(count / ours);
    rate.orthanc.push(count / orthanc);
    ctx.log(`   run ${r + 1}: gateway ${ours.toFixed(2)} s, Orthanc ${orthanc.toFixed(2)} s`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  ctx.rows.push(
    row(4, 'gateway-storescu', `storescu of ${count} CT instances (512×512) over one association; gateway spool fsync on vs Orthanc C-STORE SCP`, 'instances/s', 'higher', rate, {
      target: { kind: 'ratio', factor: 5, text: 'gateway ≥ 5× Orthanc' },
    }),
  );
}

// ---------------------------------------------------------------- 5. memory

export async function figureMemory(ctx: BenchContext): Promise<void> {
  const big = ctx.dataset.large;
  const url = `/studies/${big.studyInstanceUID}/series/${big.seriesInstanceUID}/instances/${big.sopInstanceUID}`;
  const store = samples();
  const retrieve = samples();
  const idle = samples();
  ctx.log(`5. memory: storing and retrieving a ${fmtMb(big.file.bytes)} instance`);
  const storeSeconds = samples();
  const retrieveSeconds = samples();
  const measure = async (side: 'ours' | 'orthanc', pid: number, base: string): Promise<void> => {
    idle[side].push(mib(readMemory(pid).rssBytes));
    if (!resetPeakRss(pid)) throw new Error('cannot reset the peak RSS (/proc/PID/clear_refs)');
    storeSeconds[side].push(await timed(() => stowFileStreamed(base, big.file.file)));
    store[side].push(mib(readMemory(pid).peakRssBytes));
    resetPeakRss(pid);
    let n = 0;
    retrieveSeconds[side].push(await timed(async () => (n = await getBytes(`${base}${url}`, DICOM_ACCEPT))));
    if (n < big.file.bytes) throw new Error(`${side} returned ${n} bytes for the ${big.file.bytes}-byte instance`);
    retrieve[side].push(mib(readMemory(pid).peakRssBytes));
  };
  // Each 500 MB round trip takes minutes on a loaded 2-vCPU machine: at most `memoryRuns` runs.
  const runs = Math.max(1, Math.min(ctx.runs, ctx.memoryRuns ?? ctx.runs));
  for (let r = 0; r < runs; r++) {
    await withOurs(ctx, (a) => measure('ours', a.pid, a.dicomWebUrl));
    try {
      await withOrthanc(ctx, (o) => measure('orthanc', o.pid, o.dicomWebUrl));
    } catch (error) {
      ctx.notes.push(`Figure 5, run ${r + 1}: Orthanc failed (${(error as Error).message.slice(0, 200)}).`);
    }
    ctx.log(
      `   run ${r + 1}: peak RSS storing ${store.ours.at(-1)?.toFixed(0)} / ${store.orthanc.at(-1)?.toFixed(0)} MiB, store ${storeSeconds.ours.at(-1)?.toFixed(1)} / ${storeSeconds.orthanc.at(-1)?.toFixed(1)} s, retrieve ${retrieveSeconds.ours.at(-1)?.toFixed(1)} / ${retrieveSeconds.orthanc.at(-1)?.toFixed(1)} s (ours / Orthanc)`,
    );
  }
  const size = fmtMb(big.file.bytes);
  if (runs < ctx.runs) ctx.notes.push(`Figure 5 (the ${size} instance) is the median of ${runs} runs, not ${ctx.runs}: each round trip takes minutes here.`);
  ctx.rows.push(row(5, 'rss-idle', 'RSS of the idle server before the transfer', 'MiB', 'lower', idle));
  ctx.rows.push(
    row(5, 'rss-store', `peak RSS while storing one ${size} instance (STOW-RS, streamed request)`, 'MiB', 'lower', store, {
      target: { kind: 'below', max: 256, text: 'peak RSS < 256 MB storing 500 MB' },
    }),
  );
  ctx.rows.push(row(5, 'rss-retrieve', `peak RSS while retrieving it (WADO-RS instance, multipart)`, 'MiB', 'lower', retrieve));
  ctx.rows.push(row(5, 'large-store-mbs', `STOW of the ${size} instance`, 'MB/s', 'higher', { ours: storeSeconds.ours.map((s) => mbPerSecond(big.file.bytes, s)), orthanc: storeSeconds.orthanc.map((s) => mbPerSecond(big.file.bytes, s)) }));
  ctx.rows.push(row(5, 'large-retrieve-mbs', `WADO-RS retrieve of the ${size} instance`, 'MB/s', 'higher', { ours: retrieveSeconds.ours.map((s) => mbPerSecond(big.file.bytes, s)), orthanc: retrieveSeconds.orthanc.map((s) => mbPerSecond(big.file.bytes, s)) }));
}
