/**
 * `npm run measure:lambda`: builds every Lambda bundle (scripts/build-functions.ts),
 * measures what a cold start pays for the code, and rewrites the Lambda table
 * of docs/benchmarks.md (between its markers).
 *
 * Per function:
 * - bundle size: index.js raw, and zipped (deflate, as the deployment package
 *   stores it; the source map beside it is shipped too, and zipped separately);
 * - module init: a fresh `node` 22 process per sample requires the bundle with
 *   the environment the handler reads (no network happens at require time) and
 *   times the require alone; median (and range) of several cold processes.
 *   This is the init cost of our code on this machine, not Lambda's whole cold
 *   start (which adds the runtime's own start and the download of the package).
 *
 *   tsx scripts/measure-lambda.ts [--samples 7] [--out <dir>] [--no-write]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { deflateRawSync } from 'node:zlib';
import { buildFunctions, type BuiltFunction, type HandlerName } from './build-functions';

const ROOT = path.resolve(__dirname, '..');
const BENCHMARKS = path.join(ROOT, 'docs', 'benchmarks.md');
export const TABLE_START = '<!-- measure:lambda:start -->';
export const TABLE_END = '<!-- measure:lambda:end -->';

/** What the stack sets (infra/lib/stacks/stateless-stack.ts), with placeholder values: nothing is contacted at require time. */
const HANDLER_ENV: Record<string, string> = {
  BUCKET_NAME: 'measure-bucket',
  TABLE_NAME: 'measure-table',
  DICOMWEB_BASE_PATH: '/dicom-web',
  AUTH_MODE: 'jwt',
  AUTH_SCOPE_PREFIX: 'dicomweb/',
  DOWNLOAD_URL_EXPIRES_SECONDS: '300',
  MAX_UPLOAD_BYTES: String(50 * 1024 ** 3),
  AWS_REGION: 'eu-central-1',
  AWS_ACCESS_KEY_ID: 'AKIAMEASURE',
  AWS_SECRET_ACCESS_KEY: 'measure',
  POWERTOOLS_SERVICE_NAME: 'dicomweb-measure',
  LOG_LEVEL: 'INFO',
};

export interface LambdaMeasurement {
  name: HandlerName;
  bytes: number;
  zippedBytes: number;
  mapBytes: number;
  zippedMapBytes: number;
  /** require() of the bundle in a fresh process, ms, sorted. */
  initMs: number[];
}

/** The Node 22 this project runs (node_modules/.bin/node from the `node` devDependency), else the current one. */
function nodeBinary(): string {
  const local = path.join(ROOT, 'node_modules', '.bin', 'node');
  return fs.existsSync(local) ? local : process.execPath;
}

/** Zipped size of one file: local header + deflate + central directory (what `zip -9` would produce, ±1 %). */
function zippedSize(file: string): number {
  const name = path.basename(file);
  return deflateRawSync(fs.readFileSync(file), { level: 9 }).byteLength + 30 + 46 + 22 + 2 * name.length;
}

const HARNESS = `
const { performance } = require('node:perf_hooks');
const t = performance.now();
const mod = require(process.argv[1]);
const ms = performance.now() - t;
if (typeof mod.handler !== 'function') { console.error('no handler export'); process.exit(2); }
process.stdout.write(JSON.stringify({ ms }));
`;

/** One cold process: the require time of the bundle, ms. */
export function measureInit(file: string): number {
  const out = spawnSync(nodeBinary(), ['-e', HARNESS, file], { env: { PATH: process.env.PATH ?? '', ...HANDLER_ENV }, encoding: 'utf8', timeout: 60_000 });
  if (out.status !== 0) throw new Error(`requiring ${file} failed (${out.status}): ${out.stderr.slice(0, 500)}`);
  return (JSON.parse(out.stdout) as { ms: number }).ms;
}

export function median(sorted: number[]): number {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

export function measureBundle(b: BuiltFunction, samples: number): LambdaMeasurement {
  const map = `${b.file}.map`;
  const initMs: number[] = [];
  for (let i = 0; i < samples; i++) initMs.push(measureInit(b.file));
  initMs.sort((x, y) => x - y);
  return { name: b.name, bytes: b.bytes, zippedBytes: zippedSize(b.file), mapBytes: fs.statSync(map).size, zippedMapBytes: zippedSize(map), initMs };
}

const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;

export function renderTable(rows: LambdaMeasurement[], context: { date: string; machine: string; node: string; samples: number }): string {
  const lines = [
    `Measured ${context.date} on ${context.machine}, Node ${context.node}, ${context.samples} cold processes per function (\`npm run measure:lambda\`).`,
    '',
    '| Function | index.js | zipped | source map (zipped) | module init, median (range) |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${kib(r.bytes)} | ${kib(r.zippedBytes)} | ${kib(r.mapBytes)} (${kib(r.zippedMapBytes)}) | ${median(r.initMs).toFixed(0)} ms (${r.initMs[0]!.toFixed(0)}–${r.initMs.at(-1)!.toFixed(0)}) |`),
  ];
  return lines.join('\n');
}

/** The document with the text between the markers replaced (markers kept); throws when they are missing. */
export function replaceBetweenMarkers(doc: string, content: string): string {
  const start = doc.indexOf(TABLE_START);
  const end = doc.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`docs/benchmarks.md has no ${TABLE_START} … ${TABLE_END} block`);
  return `${doc.slice(0, start + TABLE_START.length)}\n${content}\n${doc.slice(end)}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { samples: { type: 'string', default: '7' }, out: { type: 'string' }, 'no-write': { type: 'boolean', default: false } } });
  const samples = Number(values.samples);
  if (!Number.isInteger(samples) || samples < 1 || samples > 101) throw new Error('--samples must be an integer from 1 to 101');
  const outDir = values.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'measure-lambda-'));
  const built = await buildFunctions(outDir);
  const rows: LambdaMeasurement[] = [];
  for (const b of built) {
    const m = measureBundle(b, samples);
    rows.push(m);
    console.log(`${m.name.padEnd(7)} ${kib(m.bytes).padStart(9)} raw ${kib(m.zippedBytes).padStart(9)} zipped  init median ${median(m.initMs).toFixed(1)} ms (${m.initMs.map((x) => x.toFixed(0)).join(', ')})`);
  }
  const node = spawnSync(nodeBinary(), ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/^v/, '');
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const table = renderTable(rows, { date: new Date().toISOString().slice(0, 10), machine: `${os.cpus().length} × ${cpu} (${os.platform()} ${os.arch()})`, node, samples });
  if (!values['no-write']) {
    fs.writeFileSync(BENCHMARKS, replaceBetweenMarkers(fs.readFileSync(BENCHMARKS, 'utf8'), table));
    console.log(`updated ${path.relative(process.cwd(), BENCHMARKS)}`);
  }
  if (!values.out) fs.rmSync(outDir, { recursive: true, force: true });
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
