/**
 * The DICOMweb requests of the benchmark, the same for both systems: STOW
 * of one instance per request (what an edge gateway sends), GETs whose body
 * is read to the end (bytes counted, not kept), and a streamed STOW of a
 * file too big to hold in memory.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

const BOUNDARY = 'BENCH-7b1d5f3e9a2c4b80';
export const STOW_CONTENT_TYPE = `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`;
const HEAD = Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`);
const TAIL = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);

/** multipart/related body carrying one instance. */
export function stowBody(instance: Uint8Array): Buffer {
  return Buffer.concat([HEAD, instance, TAIL]);
}

export class BenchHttpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchHttpError';
  }
}

/**
 * Keep-alive connections for STOW, like a gateway's uploader keeps them. The
 * STOW client is node:http rather than fetch: fetch (undici) costs ~2 ms of
 * client CPU per 0.5 MB request here, which capped both servers at the same
 * client-side ceiling and squeezed every ratio toward 1 (see the "client
 * ceiling" reference row of figure 1).
 */
const stowAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** POST one instance to {base}/studies; throws unless the answer is 200 (all stored). */
export function stowOne(base: string, instance: Uint8Array): Promise<void> {
  const url = new URL(`${base}/studies`);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent: stowAgent,
        headers: { 'Content-Type': STOW_CONTENT_TYPE, Accept: 'application/dicom+json', 'Content-Length': HEAD.length + instance.byteLength + TAIL.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode === 200) resolve();
          else reject(new BenchHttpError(`STOW ${base}: ${res.statusCode} ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`));
        });
      },
    );
    req.on('error', reject);
    req.setNoDelay(true);
    // Three writes, no concatenated copy of the instance.
    req.write(HEAD);
    req.write(instance);
    req.end(TAIL);
  });
}

/** STOW a file streamed from disk (constant memory on the client side). */
export async function stowFileStreamed(base: string, file: string): Promise<void> {
  async function* body(): AsyncGenerator<Uint8Array> {
    yield HEAD;
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
    yield TAIL;
  }
  const res = await fetch(`${base}/studies`, {
    method: 'POST',
    body: Readable.toWeb(Readable.from(body())) as unknown as BodyInit,
    headers: { 'Content-Type': STOW_CONTENT_TYPE, Accept: 'application/dicom+json' },
    duplex: 'half',
  } as RequestInit);
  const text = await res.text();
  if (res.status !== 200) throw new BenchHttpError(`STOW (streamed) ${base}: ${res.status} ${text.slice(0, 300)}`);
}

/** Keep-alive connections for the GETs (node:http for the same reason as STOW: fetch's per-request and per-chunk cost showed up in the figures). */
const getAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/**
 * GET with `Accept-Encoding: gzip`, as browsers and viewers send it; the body
 * comes back decoded (a gzipped answer is inflated as it streams), so the
 * client does the work a viewer would.
 */
function httpGet(url: string, accept: string): Promise<{ status: number; body: Readable }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: getAgent, headers: { Accept: accept, 'Accept-Encoding': 'gzip' } }, (res) => {
      const body = res.headers['content-encoding'] === 'gzip' ? pipeline(res, createGunzip(), () => undefined) : res;
      resolve({ status: res.statusCode ?? 0, body });
    });
    req.setNoDelay(true);
    req.on('error', reject);
  });
}

async function readText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** GET, read the body to the end; returns its (decoded) length. Throws unless 200. */
export async function getBytes(url: string, accept: string): Promise<number> {
  const res = await httpGet(url, accept);
  if (res.status !== 200) throw new BenchHttpError(`GET ${url}: ${res.status} ${(await readText(res.body)).slice(0, 300)}`);
  let n = 0;
  for await (const chunk of res.body) n += (chunk as Buffer).byteLength;
  return n;
}

/** GET a DICOM JSON answer; returns the parsed array. */
export async function getJsonArray(url: string): Promise<unknown[]> {
  const res = await httpGet(url, 'application/dicom+json');
  const text = await readText(res.body);
  if (res.status === 204) return [];
  if (res.status !== 200) throw new BenchHttpError(`GET ${url}: ${res.status} ${text.slice(0, 300)}`);
  const json = JSON.parse(text) as unknown;
  if (!Array.isArray(json)) throw new BenchHttpError(`GET ${url}: not a JSON array`);
  return json;
}

/** Seconds taken by fn. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

/**
 * Store `files` with `clients` concurrent clients, each sending one instance
 * per request, one request at a time (a shared queue). Returns seconds.
 */
export async function stowFiles(base: string, files: readonly Uint8Array[], clients: number): Promise<number> {
  let next = 0;
  return timed(() =>
    Promise.all(
      Array.from({ length: clients }, async () => {
        for (;;) {
          const i = next++;
          if (i >= files.length) return;
          await stowOne(base, files[i]!);
        }
      }),
    ),
  );
}
