/**
 * Node http ⇄ Web Request/Response for the embedded server. Bodies stream
 * both ways (a multi-GB STOW never sits in memory). Every resource is
 * bounded: header and request timeouts, idle keep-alive, a connection cap,
 * so a few stalled clients cannot starve the rest.
 *
 * Early answers (413, 401, 415… before the body was read): the unread rest of
 * the body still arrives on the connection, ahead of the client's next
 * request (RFC 9112 §9.3). If the rest is small and its length known, it is
 * read and discarded after the answer, and the connection stays reusable;
 * otherwise the answer says `Connection: close` (RFC 9112 §9.6) and the
 * connection is closed once it is sent, so a keep-alive client opens a new
 * one instead of writing its next request into a socket being torn down.
 *
 * Text answers (JSON, XML) are gzipped when the request's Accept-Encoding
 * allows (content-coding.ts), as the Lambda adapter does.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipResponse } from '../content-coding';

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
  /**
   * Unread request body bytes (of a known Content-Length) still read and
   * discarded after an early answer to keep the connection; beyond this the
   * connection is closed instead.
   */
  maxDrainBytes?: number;
}

/** Default of ServerOptions.maxDrainBytes: a refused small STOW keeps its connection, a refused large one does not. */
export const DEFAULT_MAX_DRAIN_BYTES = 8 * 1024 * 1024;

export type WebHandler = (request: Request) => Promise<Response>;

/**
 * The request body as a Web stream that reads only when asked (high-water mark
 * 0) and counts what it read. Unlike Readable.toWeb, cancelling it does not
 * destroy the request (and with it the socket, before the answer is out): the
 * server decides afterwards whether to drain the rest or close.
 */
function bodyStream(req: http.IncomingMessage): { stream: ReadableStream<Uint8Array>; bytesRead: () => number } {
  let read = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        return new Promise<void>((resolve) => {
          const cleanup = () => {
            req.off('readable', tryRead);
            req.off('end', onEnd);
            req.off('error', onError);
            req.off('close', onClose);
          };
          const onEnd = () => {
            cleanup();
            controller.close();
            resolve();
          };
          const onError = (error: Error) => {
            cleanup();
            controller.error(error);
            resolve();
          };
          // The client went away mid-body: the same code Node gives an aborted request.
          const onClose = () => {
            if (req.complete) return onEnd();
            onError(Object.assign(new Error('the request body broke off'), { code: 'ECONNRESET' }));
          };
          function tryRead(): boolean {
            if (cancelled) {
              onEnd();
              return true;
            }
            const chunk = req.read() as Buffer | null;
            if (chunk !== null) {
              cleanup();
              read += chunk.byteLength;
              controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
              resolve();
              return true;
            }
            if (req.readableEnded) {
              onEnd();
              return true;
            }
            return false;
          }
          if (tryRead()) return;
          if (req.destroyed) return onClose();
          req.on('readable', tryRead);
          req.once('end', onEnd);
          req.once('error', onError);
          req.once('close', onClose);
        });
      },
      cancel() {
        cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, bytesRead: () => read };
}

function toRequest(req: http.IncomingMessage, origin: string, signal: AbortSignal, body: ReadableStream<Uint8Array> | undefined): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  return new Request(new URL(req.url ?? '/', origin), {
    method: req.method ?? 'GET',
    headers,
    body,
    duplex: 'half',
    signal,
  } as RequestInit);
}

function hasBody(req: http.IncomingMessage): boolean {
  const method = req.method ?? 'GET';
  return method !== 'GET' && method !== 'HEAD';
}

/**
 * Read and discard the rest of a body after an early answer. Bounded: more
 * than `maxBytes` (a Content-Length that lied cannot get past the parser, but
 * keep the bound anyway) destroys the connection.
 */
function discardRest(req: http.IncomingMessage, maxBytes: number): Promise<void> {
  return new Promise<void>((resolve) => {
    let n = 0;
    const done = () => {
      req.off('readable', onReadable);
      req.off('end', done);
      req.off('close', done);
      req.off('error', done);
      resolve();
    };
    function onReadable(): void {
      for (let chunk = req.read() as Buffer | null; chunk !== null; chunk = req.read() as Buffer | null) {
        n += chunk.byteLength;
        if (n > maxBytes) {
          req.socket.destroy();
          return done();
        }
      }
    }
    if (req.complete || req.destroyed) return resolve();
    req.on('readable', onReadable);
    req.once('end', done);
    req.once('close', done);
    req.once('error', done);
    onReadable();
  });
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

async function writeResponse(res: http.ServerResponse, response: Response, head: boolean, close: boolean): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((v, k) => (headers[k] = v));
  if (close) headers['connection'] = 'close';
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
  const maxDrainBytes = options.maxDrainBytes ?? DEFAULT_MAX_DRAIN_BYTES;
  const server = http.createServer(async (req, res) => {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const body = hasBody(req) ? bodyStream(req) : undefined;
    /** Whether the answer goes out with part of the body unread and too much (or an unknown amount) left to discard. */
    const mustClose = (): boolean => {
      if (!body || req.complete) return false;
      const declared = req.headers['content-length'];
      if (declared === undefined || !/^\d{1,15}$/.test(declared)) return true; // chunked: the rest is unknown
      return Number(declared) - body.bytesRead() > maxDrainBytes;
    };
    let close = false;
    try {
      const origin = `http://${req.headers.host && /^[A-Za-z0-9.\-:\[\]]+$/.test(req.headers.host) ? req.headers.host : `${options.host}:${options.port}`}`;
      // Text answers are gzipped when the client accepts it (content-coding.ts).
      const response = gzipResponse(await handler(toRequest(req, origin, abort.signal, body?.stream)), {
        method: req.method ?? 'GET',
        acceptEncoding: req.headers['accept-encoding'],
        ifNoneMatch: req.headers['if-none-match'],
      });
      close = mustClose();
      await writeResponse(res, response, req.method === 'HEAD', close);
    } catch {
      close = mustClose();
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'application/json', ...(close ? { Connection: 'close' } : {}) });
        res.end(JSON.stringify({ code: 'INTERNAL', message: 'Internal server error.' }));
      } else res.destroy();
    }
    // Node closes a `Connection: close` socket once the answer is sent; otherwise the few bytes left are read so the next request can follow.
    if (body && !close && !req.complete) await discardRest(req, maxDrainBytes);
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
