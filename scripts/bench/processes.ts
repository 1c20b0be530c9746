/**
 * Child processes of the benchmark: the embedded archive (bundled with
 * esbuild, run by plain node) and memory readings of any process from
 * /proc (Linux only).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';

export interface MemoryReading {
  /** resident set size now, bytes */
  rssBytes: number;
  /** peak resident set size since start or the last `resetPeakRss`, bytes */
  peakRssBytes: number;
}

/** VmRSS and VmHWM of a process (/proc/PID/status, kB). */
export function readMemory(pid: number): MemoryReading {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`no ${key} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
}

/**
 * Reset the peak RSS (VmHWM) of a process to its current RSS (writing 5 to
 * clear_refs, Linux ≥ 4.0; needs the right to write there — root or the
 * same user). Returns false when the kernel refuses.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Bundle the archive child once per harness run (into outDir, which should lie inside the checkout: external imports resolve from its node_modules). */
export async function bundleArchiveChild(outDir: string): Promise<string> {
  const outfile = path.join(outDir, 'archive-child.js');
  await build({
    entryPoints: [path.join(__dirname, 'archive-child.ts')],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    outfile,
    logLevel: 'error',
    // Optional/dev-only imports of the bundled modules that the embedded archive never loads;
    // and the codecs, required from node_modules on the first compressed frame (as under
    // `npm start`), so the idle archive does not carry their 1.3 MB of JavaScript.
    external: ['esbuild', 'playwright-core', 'dcmjs-codecs'],
    // In a bundle every module's `require.main === module` is true (one module): keep CLI blocks of bundled scripts from running.
    define: { 'require.main': 'undefined' },
  });
  return outfile;
}

export interface ArchiveProcess {
  pid: number;
  url: string;
  dicomWebUrl: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** Start the bundled embedded archive on a free loopback port over `dataDir`. */
export async function startArchiveProcess(bundle: string, dataDir: string, nodeBin = process.execPath): Promise<ArchiveProcess> {
  fs.mkdirSync(dataDir, { recursive: true });
  // BENCH_CPU_PROF=DIR: write a V8 CPU profile of each archive process there (open in Chrome DevTools) — where the time goes.
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`] : [];
  const child: ChildProcess = spawn(nodeBin, ['--no-warnings', ...profile, bundle, dataDir], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const started = await new Promise<{ url: string; dicomWebUrl: string }>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`archive did not start in 60 s: ${stderr}`)), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(out.slice(0, nl)) as { url: string; dicomWebUrl: string });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`archive exited (${code}) during start-up: ${stderr}`));
    });
  });
  return {
    pid: child.pid!,
    ...started,
    dataDir,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
