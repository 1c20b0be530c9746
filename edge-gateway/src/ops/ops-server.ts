/**
 * The operations endpoints: `GET /healthz` (200 healthy / 503 not, JSON body)
 * and `GET /metrics` (Prometheus text 0.0.4). Nothing else is served; no
 * request body is read. Bind it to loopback or a management network.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { METRICS_CONTENT_TYPE, type Metrics } from './metrics';

export interface HealthReport {
  healthy: boolean;
  [key: string]: unknown;
}

export interface OpsServerOptions {
  host: string;
  port: number;
  metrics: Metrics;
  health: () => HealthReport | Promise<HealthReport>;
}

export interface OpsServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'application/json', JSON.stringify({ error: 'method not allowed' }));
    if (path === '/metrics') return send(200, METRICS_CONTENT_TYPE, options.metrics.render());
    if (path === '/healthz') {
      Promise.resolve()
        .then(() => options.health())
        .then(
          (h) => send(h.healthy ? 200 : 503, 'application/json', JSON.stringify(h)),
          () => send(503, 'application/json', JSON.stringify({ healthy: false, reason: 'health check failed' })),
        );
      return;
    }
    send(404, 'application/json', JSON.stringify({ error: 'not found' }));
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    port,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
