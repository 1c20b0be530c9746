/**
 * A real Orthanc (Debian package `orthanc`, `apt-get install -y orthanc`) as
 * a PACS peer for edge-gateway tests: own temp storage and index, free
 * loopback ports, no plugins, REST without authentication (loopback only).
 *
 *   const orthanc = await startOrthanc({ aet: 'PACS' });
 *   await orthanc.addModality('gateway', { aet: 'EDGE', host: '127.0.0.1', port: gw.dimsePort });
 *   await orthanc.rest('POST', '/modalities/gateway/echo', {});
 *   await orthanc.stop();
 *
 * `orthancAvailable()` tells whether the binary is installed, so a suite can
 * skip (with a message) instead of failing on a machine without it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTempDir } from './tmp';
import { freePort } from './wait';

export interface OrthancModality {
  aet: string;
  host: string;
  port: number;
  /** Orthanc's manufacturer quirks setting; 'Generic' by default. */
  manufacturer?: string;
}

export interface OrthancOptions {
  /** Orthanc's own AE title (default ORTHANC). */
  aet?: string;
  /** Known DICOM peers by symbolic name (can also be added later with addModality). */
  modalities?: Record<string, OrthancModality>;
  /** Merged into the generated configuration last (e.g. { DicomScpTimeout: 10 }). */
  config?: Record<string, unknown>;
  /** Most time allowed for Orthanc to come up (default 30 s). */
  startTimeoutMs?: number;
  /** Extra environment for the Orthanc process (e.g. TCP_NODELAY for its DCMTK sockets). */
  env?: Record<string, string>;
}

export interface RunningOrthanc {
  aet: string;
  dicomPort: number;
  httpUrl: string;
  dir: string;
  /** Process id of the Orthanc server (e.g. to read its memory use from /proc). */
  pid: number;
  /** Orthanc's REST API; throws on a non-2xx answer (with Orthanc's message). */
  rest<T = unknown>(method: string, urlPath: string, body?: unknown): Promise<T>;
  addModality(id: string, modality: OrthancModality): Promise<void>;
  /** Everything Orthanc wrote to stdout/stderr so far (for failure messages; synthetic data only). */
  log(): string;
  stop(): Promise<void>;
}

const ORTHANC_BIN = process.env.ORTHANC_BIN ?? 'Orthanc';

export function orthancAvailable(): boolean {
  const r = spawnSync(ORTHANC_BIN, ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

function modalityEntry(m: OrthancModality): Record<string, unknown> {
  return { AET: m.aet, Host: m.host, Port: m.port, Manufacturer: m.manufacturer ?? 'Generic' };
}

export async function startOrthanc(options: OrthancOptions = {}): Promise<RunningOrthanc> {
  const tmp = makeTempDir('orthanc-');
  const aet = options.aet ?? 'ORTHANC';
  const [httpPort, dicomPort] = [await freePort(), await freePort()];
  const config = {
    Name: 'edge-gateway-test',
    StorageDirectory: path.join(tmp.dir, 'storage'),
    IndexDirectory: path.join(tmp.dir, 'index'),
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: aet,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    HttpServerEnabled: true,
    DicomServerEnabled: true,
    Plugins: [],
    DicomCheckCalledAet: false,
    DicomAlwaysAllowEcho: true,
    DicomAlwaysAllowStore: true,
    DicomCheckModalityHost: false,
    DicomModalities: Object.fromEntries(Object.entries(options.modalities ?? {}).map(([id, m]) => [id, modalityEntry(m)])),
    DicomModalitiesInDatabase: false,
    StableAge: 1,
    ...options.config,
  };
  const configFile = path.join(tmp.dir, 'orthanc.json');
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));

  let output = '';
  const child: ChildProcess = spawn(ORTHANC_BIN, [configFile], { cwd: tmp.dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-200_000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-200_000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let alive = true;
  void exited.then(() => (alive = false));

  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const rest = async <T>(method: string, urlPath: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${httpUrl}${urlPath}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Orthanc ${method} ${urlPath}: ${res.status} ${text.slice(0, 2000)}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };

  const stop = async (): Promise<void> => {
    if (alive && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    tmp.cleanup();
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (!alive) {
      tmp.cleanup();
      throw new Error(`Orthanc exited during start-up:\n${output.slice(-4000)}`);
    }
    try {
      await rest('GET', '/system');
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`Orthanc did not answer on ${httpUrl} in time:\n${output.slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  return {
    aet,
    dicomPort,
    httpUrl,
    dir: tmp.dir,
    pid: child.pid ?? -1,
    rest,
    addModality: async (id, m) => {
      await rest('PUT', `/modalities/${encodeURIComponent(id)}`, modalityEntry(m));
    },
    log: () => output,
    stop,
  };
}
