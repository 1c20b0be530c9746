/**
 * Shared by the dimse-/scp-/gateway- tests: running dcmtk tools without
 * blocking the event loop (the server under test lives in this process), a
 * minimal spool that writes to a temp dir, and Part 10 helpers.
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readFileMeta } from '../../functions/core/dicom/part10';
import { createDimseServer, type DimseServer } from '../../edge-gateway/src/dimse';
import type { DimseServices } from '../../edge-gateway/src/dimse/types';
import type { StoreSpool } from '../../edge-gateway/src/scp/store';
import { freePort } from '../helpers/wait';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run a dcmtk tool asynchronously; never throws on a non-zero exit.
 * TCP_NODELAY=1: dcmtk otherwise leaves Nagle on, and each C-STORE waits ~40 ms for a delayed ACK.
 */
export function run(cmd: string, args: string[], timeoutMs = 120_000, env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, TCP_NODELAY: '1', ...env } }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** The data set bytes of a Part 10 file (everything after the file meta). */
export function datasetBytes(bytes: Uint8Array): Buffer {
  const meta = readFileMeta(bytes);
  return Buffer.from(bytes.subarray(meta.datasetOffset));
}

export interface FakeRecord {
  id: string;
  sopInstanceUID: string;
  sopClassUID: string;
  transferSyntaxUID: string;
  callingAETitle?: string;
  file: string;
}

/**
 * A spool with the agreed IncomingWriter contract (write / commit / abort),
 * files in `<dir>/incoming` then `<dir>/queued`; `failAfterBytes` simulates a full disk.
 */
export class FakeSpool implements StoreSpool {
  readonly records: FakeRecord[] = [];
  failAfterBytes?: number;
  private n = 0;
  constructor(readonly dir: string) {
    fs.mkdirSync(path.join(dir, 'incoming'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'queued'), { recursive: true });
  }
  incomingFiles(): string[] {
    return fs.readdirSync(path.join(this.dir, 'incoming'));
  }
  async createIncoming() {
    const id = `r${++this.n}`;
    const file = path.join(this.dir, 'incoming', id);
    const fh = await fs.promises.open(file, 'w');
    let written = 0;
    let open = true;
    const close = async () => {
      if (open) {
        open = false;
        await fh.close();
      }
    };
    return {
      write: async (chunk: Uint8Array) => {
        if (this.failAfterBytes !== undefined && written + chunk.length > this.failAfterBytes) {
          throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        }
        await fh.write(chunk);
        written += chunk.length;
      },
      commit: async (meta: { sopInstanceUID: string; sopClassUID: string; transferSyntaxUID: string; callingAETitle?: string }) => {
        await fh.sync();
        await close();
        const dest = path.join(this.dir, 'queued', id);
        await fs.promises.rename(file, dest);
        const record = { id, ...meta, file: dest };
        this.records.push(record);
        return { id, state: 'queued', sizeBytes: written };
      },
      abort: async () => {
        await close();
        await fs.promises.rm(file, { force: true });
      },
    };
  }
}

/** Whether dcmtk was built with TLS (Debian's is). */
export function dcmtkHasTls(): boolean {
  const r = spawnSync('echoscu', ['--help'], { encoding: 'utf8' });
  return /\+tls/.test(r.stdout + r.stderr);
}

/** A throwaway self-signed certificate for 127.0.0.1 / localhost. */
export function makeSelfSignedCert(dir: string): { certFile: string; keyFile: string } {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { certFile, keyFile };
}

// Orthanc and storescp cannot be told to pick a port themselves.
export { freePort };

/** The gateway's DIMSE server as the Q/R tests run it: a free loopback port, up to 10 associations, 64 kB PDUs, roomy timeouts. */
export function startTestDimseServer(aeTitle: string, services: DimseServices): Promise<DimseServer> {
  return createDimseServer({ aeTitle, host: '127.0.0.1', port: 0, services, maxAssociations: 10, maxPduLength: 64 * 1024, idleTimeoutMs: 60_000, artimTimeoutMs: 10_000 });
}
