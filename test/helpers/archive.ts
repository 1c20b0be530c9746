import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import type { ArchiveLimits } from '../../functions/core/archive/context';
import { makeTempDir } from './tmp';

export type TestArchive = Awaited<ReturnType<typeof startEmbeddedArchive>> & { dataDir: string; stop: () => Promise<void> };

/** A real embedded archive (HTTP server on an ephemeral loopback port, SQLite + files in a temp dir). */
export async function startTestArchive(limits?: Partial<ArchiveLimits>): Promise<TestArchive> {
  const tmp = makeTempDir('archive-');
  const archive = await startEmbeddedArchive({ dataDir: tmp.dir, port: 0, log: silentLogger, limits });
  return {
    ...archive,
    dataDir: tmp.dir,
    stop: async () => {
      await archive.close();
      tmp.cleanup();
    },
  };
}

/** A hand-rolled multipart/related body (independent of the server's own writer). */
export function multipartBody(parts: Uint8Array[], boundary = 'TEST-BOUNDARY-1234', type = 'application/dicom'): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${type}\r\n\r\n`));
    chunks.push(Buffer.from(p));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="${type}"; boundary=${boundary}` };
}

export async function stow(base: string, parts: Uint8Array[], study?: string): Promise<{ status: number; json: any }> {
  const { body, contentType } = multipartBody(parts);
  const res = await fetch(`${base}/studies${study ? `/${study}` : ''}`, { method: 'POST', body: body as unknown as BodyInit, headers: { 'Content-Type': contentType, Accept: 'application/dicom+json' } });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { headers: { Accept: 'application/dicom+json', ...headers } });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** Split a multipart/related response into parts (test-side parser, independent of the server's). */
export function parseMultipart(body: Buffer, contentType: string): { headers: Record<string, string>; body: Buffer }[] {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m) throw new Error(`no boundary in ${contentType}`);
  const delimiter = Buffer.from(`--${m[1]}`);
  const parts: { headers: Record<string, string>; body: Buffer }[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const lineEnd = body.indexOf('\r\n', at);
    if (body.subarray(at + delimiter.length, at + delimiter.length + 2).toString() === '--') break;
    const headerEnd = body.indexOf('\r\n\r\n', lineEnd);
    const headers: Record<string, string> = {};
    for (const line of body.subarray(lineEnd + 2, headerEnd).toString().split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headerEnd + 4);
    parts.push({ headers, body: body.subarray(headerEnd + 4, next) });
    at = next + 2;
  }
  return parts;
}

export async function getParts(url: string, accept: string): Promise<{ status: number; parts: { headers: Record<string, string>; body: Buffer }[]; contentType: string }> {
  const res = await fetch(url, { headers: { Accept: accept } });
  const buf = Buffer.from(await res.arrayBuffer());
  const contentType = res.headers.get('content-type') ?? '';
  return { status: res.status, contentType, parts: res.status === 200 ? parseMultipart(buf, contentType) : [] };
}

/** The stored bytes as WADO should return them: original with the 128-byte preamble zeroed. */
export function withZeroPreamble(bytes: Uint8Array): Buffer {
  const b = Buffer.from(bytes);
  b.fill(0, 0, 128);
  return b;
}
