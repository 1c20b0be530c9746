/**
 * A gateway configuration for tests: loopback, an ephemeral DIMSE port, the
 * spool under `spoolDir`, fast retries, no authentication towards the archive.
 */
import { parseConfig } from '../../edge-gateway/src/config';
import type { GatewayConfig } from '../../edge-gateway/src/config-types';

export interface TestGatewayOptions {
  aeTitle: string;
  allowedCallingAETitles?: string[];
  ackMode?: 'spool' | 'cloud';
  httpPort?: number;
}

export function testGatewayConfig(dicomWebUrl: string, spoolDir: string, options: TestGatewayOptions): GatewayConfig {
  const config = parseConfig(
    {
      dimse: {
        aeTitle: options.aeTitle,
        host: '127.0.0.1',
        port: 11112,
        destinations: {},
        idleTimeoutMs: 30_000,
        ...(options.allowedCallingAETitles ? { allowedCallingAETitles: options.allowedCallingAETitles } : {}),
      },
      cloud: { dicomWebUrl, auth: { kind: 'none' }, requestTimeoutMs: 30_000 },
      spool: { dir: spoolDir, fsync: true, ackMode: options.ackMode ?? 'spool' },
      uploader: { concurrency: 4, retry: { initialDelayMs: 50, maxDelayMs: 1000, maxAttempts: 0 } },
      http: { host: '127.0.0.1', port: options.httpPort ?? 0 },
    },
    spoolDir,
    {},
  );
  config.dimse.port = 0; // ephemeral: parseConfig wants a real port number
  return config;
}
