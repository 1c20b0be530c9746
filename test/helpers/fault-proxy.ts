/**
 * A reverse proxy in front of a real (embedded) archive that can answer
 * chosen requests itself — 503, 429 with Retry-After, 401, 400 — to test how a
 * client reacts, while everything else reaches the archive unchanged (the Host
 * header is kept, so URLs the archive builds point back through the proxy).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Fault {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface SeenRequest {
  method: string;
  path: string;
  answeredBy: 'proxy' | 'archive';
  authorization?: string;
}

export interface FaultProxy {
  url: string;
  /** Answer the next `count` requests matching `when` (default: all) with `fault`. */
  inject(fault: Fault, count?: number, when?: (method: string, path: string) => boolean): void;
  /** Answer every matching request with `fault` until cleared. */
  always(fault: Fault | undefined, when?: (method: string, path: string) => boolean): void;
  seen: SeenRequest[];
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const to = new URL(target);
  const queue: { fault: Fault; left: number; when: (m: string, p: string) => boolean }[] = [];
  let standing: { fault: Fault; when: (m: string, p: string) => boolean } | undefined;
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0]!;
    const authorization = req.headers.authorization;
    const q = queue.find((f) => f.left > 0 && f.when(method, path));
    const fault = q?.fault ?? (standing?.when(method, path) ? standing.fault : undefined);
    if (fault) {
      if (q) q.left--;
      seen.push({ method, path, answeredBy: 'proxy', authorization });
      // Read the request body before answering so the client sees the status, not a reset.
      req.resume();
      req.on('end', () => {
        res.writeHead(fault.status, { 'Content-Type': 'application/json', ...(fault.headers ?? {}) });
        res.end(fault.body ?? JSON.stringify({ code: `INJECTED_${fault.status}` }));
      });
      return;
    }
    seen.push({ method, path, answeredBy: 'archive', authorization });
    const upstream = http.request({ host: to.hostname, port: to.port, method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const all = () => true;
  return {
    url: `http://127.0.0.1:${port}`,
    inject: (fault, count = 1, when = all) => queue.push({ fault, left: count, when }),
    always: (fault, when = all) => {
      standing = fault ? { fault, when } : undefined;
    },
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
