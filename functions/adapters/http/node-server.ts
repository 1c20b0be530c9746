/**
 * Node http ⇄ Web Request/Response for the embedded server. Bodies stream
 * both ways (a multi-GB STOW never sits in memory). Every resource is
 * bounded: header and request timeouts, idle keep-alive, a connection cap,
 * so a few stalled clients cannot starve the rest.
 */
import * as http from 'node:http';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';

export interface ServerOptions {
  host: string;
  port: number;
  /** ms to receive the request headers */
  headersTimeoutMs?: number;
  /** ms for a whole request (large STOW bodies need minutes) */
  requestTimeoutMs?: number;
  /** ms a socket may stay idle mid-request before it is destroyed */
  idleTimeoutMs?: number;
  maxConnections?: number;
}

export type WebHandler = (request: Request) => Promise<Response>;

function toRequest(req: http.IncomingMessage, origin: string, signal: AbortSignal): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  return new Request(new URL(req.url ?? '/', origin), {
    method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
    duplex: 'half',
    signal,
  } as RequestInit);
}

function waitForDrain(res: http.ServerResponse): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      res.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      res.off('drain', onDrain);
      reject(new Error('client closed'));
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

async function writeResponse(res: http.ServerResponse, response: Response, head: boolean): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((v, k) => (headers[k] = v));
  res.writeHead(response.status, headers);
  if (!response.body || head) {
    await response.body?.cancel();
    res.end();
    return;
  }
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await waitForDrain(res);
    }
    res.end();
  } catch {
    await reader.cancel().catch(() => undefined);
    res.destroy();
  }
}

export function startServer(handler: WebHandler, options: ServerOptions): Promise<{ server: http.Server; url: string; close: () => Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    try {
      const origin = `http://${req.headers.host && /^[A-Za-z0-9.\-:\[\]]+$/.test(req.headers.host) ? req.headers.host : `${options.host}:${options.port}`}`;
      const response = await handler(toRequest(req, origin, abort.signal));
      await writeResponse(res, response, req.method === 'HEAD');
      // An early answer (413, 415…) leaves the body unread: discard it so the client sees the status, not a reset.
      if (!req.complete) req.resume();
    } catch {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ code: 'INTERNAL', message: 'Internal server error.' }));
      } else res.destroy();
    }
  });
  server.headersTimeout = options.headersTimeoutMs ?? 30_000;
  server.requestTimeout = options.requestTimeoutMs ?? 30 * 60_000;
  server.keepAliveTimeout = 5_000;
  server.timeout = options.idleTimeoutMs ?? 60_000;
  server.maxConnections = options.maxConnections ?? 512;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      const addr = server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve({
        server,
        url: `http://${host}:${addr.port}`,
        close: () => new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
      });
    });
  });
}
