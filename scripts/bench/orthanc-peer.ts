/**
 * Debian's Orthanc with its DICOMweb plugin, as the benchmark's reference:
 * installed with apt-get when missing, started on loopback with free ports
 * and its own storage (test/helpers/orthanc.ts does the process handling).
 * Orthanc's defaults are kept (SyncStorageArea on, SQLite index, no
 * compression); only what loopback benchmarking needs is set.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { orthancAvailable, startOrthanc, type RunningOrthanc } from '../../test/helpers/orthanc';

const PLUGIN_DIRS = ['/usr/share/orthanc/plugins', '/usr/lib/orthanc'];

function dicomWebPlugin(): string | undefined {
  for (const dir of PLUGIN_DIRS) {
    const hit = fs.existsSync(dir) ? fs.readdirSync(dir).find((f) => /^libOrthancDicomWeb\.so/.test(f)) : undefined;
    if (hit) return `${dir}/${hit}`;
  }
  return undefined;
}

/** Install orthanc + orthanc-dicomweb from Debian when missing (needs root). */
export function ensureOrthancInstalled(log: (line: string) => void): string {
  if (!orthancAvailable() || !dicomWebPlugin()) {
    log('installing orthanc and orthanc-dicomweb (apt-get)…');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'orthanc', 'orthanc-dicomweb'], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`apt-get install orthanc orthanc-dicomweb failed: ${(r.stderr || r.stdout).slice(-2000)}`);
  }
  const plugin = dicomWebPlugin();
  if (!orthancAvailable() || !plugin) throw new Error('Orthanc or its DICOMweb plugin is still missing');
  return plugin;
}

export interface OrthancPeer extends RunningOrthanc {
  dicomWebUrl: string;
  version: string;
  dicomWebVersion: string;
}

export interface OrthancPeerOptions {
  plugin: string;
  /** Reuse a storage area + index (e.g. a pre-filled one) instead of the temp dir's. */
  storageDirectory?: string;
  indexDirectory?: string;
  config?: Record<string, unknown>;
}

export async function startOrthancPeer(options: OrthancPeerOptions): Promise<OrthancPeer> {
  const orthanc = await startOrthanc({
    aet: 'ORTHANC',
    startTimeoutMs: 120_000,
    // DCMTK (Orthanc's DICOM layer) leaves Nagle's algorithm on unless TCP_NODELAY=1 is in its
    // environment; each C-STORE response then waits for a delayed ACK (~40 ms). The gateway
    // disables Nagle on its sockets, so Orthanc gets the same: without it Orthanc's C-STORE SCP
    // measured 18 instead of 51-89 instances/s here, and every DIMSE ratio would flatter us.
    env: { TCP_NODELAY: '1' },
    config: {
      Name: 'bench',
      Plugins: [options.plugin],
      DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: false, Ssl: false },
      // A pre-filled index opened by the same Orthanc version needs no upgrade; allow it anyway.
      ...(options.storageDirectory ? { StorageDirectory: options.storageDirectory } : {}),
      ...(options.indexDirectory ? { IndexDirectory: options.indexDirectory } : {}),
      ...options.config,
    },
  });
  const system = await orthanc.rest<{ Version: string }>('GET', '/system');
  const plugin = await orthanc.rest<{ Version?: string }>('GET', '/plugins/dicom-web').catch(() => ({ Version: undefined }));
  return { ...orthanc, dicomWebUrl: `${orthanc.httpUrl}/dicom-web`, version: system.Version, dicomWebVersion: plugin.Version ?? 'unknown' };
}
