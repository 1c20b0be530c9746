/**
 * `npm run bench [-- --quick] [--runs N] [--only 1,2,3,4,5,7] [--scales 10000,100000] [--instances-per-study 1]`
 *
 * The 1M-instance index: `--only 2 --scales 100000 --instances-per-study 10`
 * (Orthanc's fill goes through its REST API at ~150–300 instances/s here,
 * so its first run takes one to two hours; the fills are cached).
 *
 * Benchmarks the archive side by side with Debian's Orthanc + DICOMweb
 * plugin (installed with apt-get when missing) on this machine, and writes
 * docs/benchmarks.md (the block between its bench markers; `--quick` writes to
 * data/bench/quick instead), the "Measured
 * per-operation counts" block of docs/cost-model.md and docs/benchmarks.json.
 * Generated data and pre-filled indexes are cached in data/bench/cache
 * (gitignored; delete it to regenerate). Not part of `npm test`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { figureCost } from './cost';
import { FULL_SIZES, QUICK_SIZES, ensureDataset, ingestSet } from './dataset';
import { figureGatewayStore, figureMemory, figureQido, figureStow, figureWadoAndMove, type BenchContext } from './figures';
import { ensureOrthancInstalled } from './orthanc-peer';
import { bundleArchiveChild } from './processes';
import { BENCH_MARKERS, COST_MARKERS, mergeResults, renderBenchBlock, renderCostBlock, replaceBlock } from './report';
import type { BenchResults } from './results';
import { summarize } from './stats';

const ROOT = path.resolve(__dirname, '..', '..');

function dcmtkVersion(): string {
  try {
    const out = execFileSync('storescu', ['--version'], { encoding: 'utf8' });
    return /\bv(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      only: { type: 'string' },
      scales: { type: 'string' },
      'instances-per-study': { type: 'string', default: '1' },
      'memory-runs': { type: 'string' },
      // docs/ for a full run; a quick (smoke) run writes beside its cache so it never replaces the published figures.
      'out-dir': { type: 'string' },
      'cache-dir': { type: 'string', default: path.join(ROOT, 'data', 'bench', 'cache') },
      note: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log('usage: npm run bench -- [--quick] [--runs N] [--only 1,2,3,4,5,7] [--scales 10000,100000] [--instances-per-study 1] [--memory-runs N] [--out-dir DIR] [--note TEXT]\n  --quick writes to data/bench/quick unless --out-dir is given; a full run writes docs/.');
    return;
  }
  const quick = values.quick!;
  const runs = Number(values.runs ?? (quick ? 2 : 5));
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  const only = new Set((values.only ?? '1,2,3,4,5,7').split(',').map((s) => Number(s.trim())));
  const scales = (values.scales ?? (quick ? '1000,3000' : '10000,100000')).split(',').map(Number);
  const started = Date.now();
  const log = (line: string) => console.log(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  const loadAtStart = os.loadavg();
  if (!quick && loadAtStart[0]! > 1.5) log(`warning: load average ${loadAtStart[0]!.toFixed(1)}; figures measured under load are noted as such`);

  const plugin = ensureOrthancInstalled(log);
  const cacheDir = values['cache-dir']!;
  fs.mkdirSync(cacheDir, { recursive: true });
  const dataset = ensureDataset(cacheDir, quick ? QUICK_SIZES : FULL_SIZES, log);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-'));
  const ctx: BenchContext = {
    quick,
    runs,
    instancesPerStudy: Number(values['instances-per-study']),
    ...(values['memory-runs'] ? { memoryRuns: Number(values['memory-runs']) } : {}),
    dataset,
    workDir,
    cacheDir,
    // Bundled inside the checkout so the bundle's external imports resolve from node_modules.
    archiveBundle: await bundleArchiveChild(path.join(ROOT, 'data', 'bench', 'build')),
    orthancPlugin: plugin,
    log,
    rows: [],
    notes: [...(values.note ?? [])],
    fills: [],
    versions: { ours: (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version, dcmtk: dcmtkVersion() },
  };
  let cost: BenchResults['cost'];
  const stopping = () => {
    fs.rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    stopping();
    process.exit(130);
  });
  try {
    // A figure that fails is reported in the notes; the others still run and are written.
    const attempt = async (label: string, fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (error) {
        log(`${label} failed: ${(error as Error).stack ?? String(error)}`);
        ctx.notes.push(`${label} failed in this run: ${(error as Error).message.slice(0, 300)}`);
      }
    };
    if (only.has(1)) await attempt('Figure 1', () => figureStow(ctx));
    if (only.has(2)) await attempt('Figure 2', () => figureQido(ctx, scales));
    if (only.has(3) || only.has(4)) await attempt('Figures 3/4b', () => figureWadoAndMove(ctx));
    if (only.has(4)) await attempt('Figure 4a', () => figureGatewayStore(ctx));
    if (only.has(5)) await attempt('Figure 5', () => figureMemory(ctx));
    if (only.has(7)) {
      cost = await figureCost(dataset, { instances: quick ? 10 : 50, repeats: quick ? 5 : 20, log });
      ctx.rows.push({
        figure: 7,
        id: 'cost-tb-month',
        name: '$ per TB-month stored, hot (Orthanc column: AWS HealthImaging Frequent Access list price)',
        unit: '$',
        better: 'lower',
        ours: summarize([cost.perTbMonth.ours]),
        orthanc: summarize([cost.perTbMonth.healthImaging]),
        target: { kind: 'ratio', factor: 3, text: '$/TB-month ≤ 1/3 of HealthImaging' },
      });
    }
  } finally {
    stopping();
  }
  const loadAtEnd = os.loadavg();
  if (!quick && Math.max(loadAtStart[0]!, loadAtEnd[0]!) > 1.5) {
    ctx.notes.push(`Measured under load: other work ran on this ${os.cpus().length}-vCPU machine during the run (load average ${loadAtStart[0]!.toFixed(1)} at start, ${loadAtEnd[0]!.toFixed(1)} at end); both systems suffered it alike, ratios are more trustworthy than absolute numbers.`);
  }
  const ingest = ingestSet(dataset);
  const results: BenchResults = {
    generatedAt: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    runs,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      memoryGiB: os.totalmem() / 2 ** 30,
      kernel: os.release(),
      node: process.versions.node,
      loadAtStart,
      loadAtEnd,
    },
    versions: ctx.versions,
    dataset: {
      description:
        `Synthetic (test/fixtures/synthetic.ts, scripts/bench/dataset.ts), cached in data/bench/cache: a CT series of ${dataset.sizes.ctSlices} slices 512×512×16-bit, ` +
        `${dataset.sizes.mrImages} MR 256×256, ${dataset.sizes.crImages} CR/DX 1024×880, a ${dataset.sizes.multiFrameFrames}-frame 512×512 multi-frame, ` +
        `${dataset.sizes.compressedSlices} CT slices each as RLE (dcmcrle) and JPEG Lossless SV1 (dcmcjpeg) with new UIDs, and a ${dataset.sizes.largeMb} MiB multi-frame. ` +
        `Figure 1 stores ${ingest.length} of them (${(ingest.reduce((n, f) => n + f.bytes, 0) / 1e6).toFixed(0)} MB: half the CT series and every other group but the large one) into a fresh archive / a fresh Orthanc each run. ` +
        `Figure 2 searches indexes of small synthetic studies (${ctx.instancesPerStudy} instance(s) each; patients, names, dates and modalities drawn per study, scripts/bench/index-fill.ts), ${scales.map((s) => s.toLocaleString('en-US')).join(' and ')} studies.`,
      bytes: ingest.reduce((n, f) => n + f.bytes, 0),
    },
    fills: ctx.fills,
    rows: ctx.rows,
    cost,
    notes: ctx.notes,
    durationSeconds: (Date.now() - started) / 1000,
  };
  const outDir = values['out-dir'] ?? (quick ? path.join(ROOT, 'data', 'bench', 'quick') : path.join(ROOT, 'docs'));
  fs.mkdirSync(outDir, { recursive: true });
  const jsonFile = path.join(outDir, 'benchmarks.json');
  const previous = fs.existsSync(jsonFile) ? (JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as Record<string, unknown>) : {};
  // A partial run (--only) updates its own rows and keeps the others from the last run.
  if (values.only && previous.sideBySide) Object.assign(results, mergeResults(previous.sideBySide as BenchResults, results, [...only]));
  fs.writeFileSync(jsonFile, `${JSON.stringify({ ...previous, sideBySide: results }, null, 2)}\n`);
  const md = path.join(outDir, 'benchmarks.md');
  fs.writeFileSync(md, replaceBlock(fs.existsSync(md) ? fs.readFileSync(md, 'utf8') : '# Benchmarks\n', BENCH_MARKERS, renderBenchBlock(results)));
  const costMd = path.join(outDir, 'cost-model.md');
  const costWritten = Boolean(cost) && fs.existsSync(costMd);
  if (costWritten) fs.writeFileSync(costMd, replaceBlock(fs.readFileSync(costMd, 'utf8'), COST_MARKERS, renderCostBlock(results)));
  log(`wrote ${path.relative(ROOT, md)}, ${path.relative(ROOT, jsonFile)}${costWritten ? `, ${path.relative(ROOT, costMd)}` : ''} in ${((Date.now() - started) / 60000).toFixed(1)} min`);
}

main().catch((error: unknown) => {
  console.error((error as Error).stack ?? String(error));
  process.exit(1);
});
