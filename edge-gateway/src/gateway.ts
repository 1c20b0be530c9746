/**
 * The edge gateway composed: the durable upload pipeline (spool, uploader,
 * /healthz + /metrics — uploader/pipeline.ts) plus the DIMSE side: an
 * acceptor (TCP or TLS, PS3.15 B.1) serving C-ECHO, C-STORE into the spool,
 * C-FIND / C-MOVE / C-GET against the archive (scp/find.ts, move.ts, get.ts),
 * Storage Commitment Push Model (scp/commitment.ts), with DIMSE metrics.
 *
 * Shutdown order: storage commitment reports what it knows now, then stop
 * accepting associations and let running ones finish (bounded), then the
 * uploader and spool — so no C-STORE is acknowledged after its spool is gone.
 */
import * as fs from 'node:fs';
import type * as tls from 'node:tls';
import * as path from 'node:path';
import { DicomWebClient, type DicomWebClientDeps } from './cloud/dicomweb-client';
import { CONFIG_DEFAULTS } from './config';
import type { GatewayConfig } from './config-types';
import { createDimseServer, type DimseServer } from './dimse/server';
import type { DimseServices } from './dimse/types';
import { createLogger, type Logger } from './ops/logger';
import { Metrics } from './ops/metrics';
import { createCommitmentService, type CommitmentService } from './scp/commitment';
import { createEchoService } from './scp/echo';
import { createFindService } from './scp/find';
import { createGetService } from './scp/get';
import { createMoveService } from './scp/move';
import { createStoreService } from './scp/store';
import type { Spool } from './spool/spool';
import { startUploadPipeline, type UploadPipelineOptions } from './uploader/pipeline';
import type { Uploader } from './uploader/uploader';

export interface GatewayOptions {
  metrics?: Metrics;
  logger?: Logger;
  /** Passed to the uploader (tests: fetch, clock). */
  uploader?: UploadPipelineOptions['uploader'];
  /** Passed to the DICOMweb client used by C-FIND / C-MOVE / C-GET. */
  cloudClient?: DicomWebClientDeps;
  /** How long close() lets running associations finish before aborting them (default 10 s). */
  closeGraceMs?: number;
}

export interface RunningGateway {
  dimsePort: number;
  /** 0 when the ops HTTP server is disabled. */
  httpPort: number;
  spool: Spool;
  uploader: Uploader;
  metrics: Metrics;
  close(): Promise<void>;
}

export async function startGateway(config: GatewayConfig, opts: GatewayOptions = {}): Promise<RunningGateway> {
  const metrics = opts.metrics ?? new Metrics();
  const logger = opts.logger ?? createLogger('edge-gateway');
  let dimse: DimseServer | undefined;
  let commitment: CommitmentService | undefined;
  const pipeline = await startUploadPipeline(config, {
    metrics,
    logger,
    uploader: opts.uploader,
    health: () => ({ healthy: dimse !== undefined, dimseListening: dimse !== undefined, associations: dimse?.activeAssociations ?? 0 }),
  });

  try {
    const associations = metrics.counter('gateway_dimse_associations_total', 'DIMSE associations by outcome (accepted, rejected, released, aborted, closed)');
    const received = metrics.counter('gateway_dimse_received_bytes_total', 'Data set bytes received in P-DATA');
    const stores = metrics.counter('gateway_dimse_c_store_total', 'C-STORE requests answered, by DIMSE status (hex)');
    const storeBytes = metrics.counter('gateway_dimse_c_store_bytes_total', 'Data set bytes of C-STOREs answered with Success');
    metrics.gauge('gateway_dimse_associations_active', 'DIMSE associations currently established', () => dimse?.activeAssociations ?? 0);

    const client = new DicomWebClient(config.cloud, opts.cloudClient);
    const { dimse: d } = config;
    let tlsOptions: tls.TlsOptions | undefined;
    if (d.tls) {
      tlsOptions = {
        cert: fs.readFileSync(d.tls.certFile),
        key: fs.readFileSync(d.tls.keyFile),
        ...(d.tls.caFile ? { ca: fs.readFileSync(d.tls.caFile) } : {}),
        ...(d.tls.requireClientCert ? { requestCert: true, rejectUnauthorized: true } : {}),
      };
    }
    // Destinations with tls: true are verified against the same CA and get our certificate (mutual TLS).
    const clientTls: tls.ConnectionOptions | undefined = tlsOptions ? { ca: tlsOptions.ca, cert: tlsOptions.cert, key: tlsOptions.key } : undefined;

    commitment = createCommitmentService({ client, spool: pipeline.spool, aeTitle: d.aeTitle, destinations: d.destinations, tlsOptions: clientTls, logger });
    const services: DimseServices = {
      echo: createEchoService(() => pipeline.spool.checkWritable()),
      store: createStoreService({
        spool: pipeline.spool,
        ackMode: config.spool.ackMode,
        uploader: pipeline.uploader,
        logger,
        observe: ({ status, bytes }) => {
          stores.inc(1, { status: `0x${status.toString(16).padStart(4, '0')}` });
          if (status === 0) storeBytes.inc(bytes);
        },
      }),
      find: createFindService({ client, aeTitle: d.aeTitle, logger }),
      move: createMoveService({ client, aeTitle: d.aeTitle, destinations: d.destinations, tlsOptions: clientTls, maxPduLength: d.maxPduLength, logger }),
      get: createGetService({ client, logger }),
      nAction: commitment.nAction.bind(commitment),
    };

    dimse = await createDimseServer({
      aeTitle: d.aeTitle,
      host: d.host,
      port: d.port,
      services,
      tls: tlsOptions,
      allowedCallingAETitles: d.allowedCallingAETitles,
      allowedIPs: d.allowedIPs,
      maxAssociations: d.maxAssociations,
      maxPduLength: d.maxPduLength,
      idleTimeoutMs: d.idleTimeoutMs,
      artimTimeoutMs: d.artimTimeoutMs,
      logger,
      hooks: {
        associationAccepted: () => associations.inc(1, { outcome: 'accepted' }),
        associationRejected: () => associations.inc(1, { outcome: 'rejected' }),
        associationClosed: (_a, how) => associations.inc(1, { outcome: how }),
        bytesReceived: (n) => received.inc(n),
      },
    });
  } catch (e) {
    await commitment?.close();
    await pipeline.close();
    throw e;
  }

  const server = dimse;
  logger.info('edge gateway started', { port: server.port, host: config.dimse.host });
  let closing: Promise<void> | undefined;
  return {
    dimsePort: server.port,
    httpPort: pipeline.ops?.port ?? 0,
    spool: pipeline.spool,
    uploader: pipeline.uploader,
    metrics,
    close: () =>
      (closing ??= (async () => {
        await commitment?.close();
        await server.close(opts.closeGraceMs ?? 10_000);
        dimse = undefined;
        await pipeline.close();
      })()),
  };
}

/** AE title of the gateway `npm start` runs beside the embedded archive. */
export const EMBEDDED_GATEWAY_AE_TITLE = 'DICOMWEB_EDGE';

/**
 * The configuration `npm start` uses: DIMSE on loopback, spool under the
 * archive's data directory, the archive itself as the cloud (over loopback,
 * with an API key when the archive requires one). Everything else is the
 * documented default (config.ts CONFIG_DEFAULTS).
 */
export function embeddedGatewayConfig(options: { dicomWebUrl: string; dataDir: string; port: number; host?: string; apiKey?: string }): GatewayConfig {
  const d = CONFIG_DEFAULTS;
  return {
    dimse: {
      ...d.dimse,
      aeTitle: EMBEDDED_GATEWAY_AE_TITLE,
      host: options.host ?? '127.0.0.1',
      port: options.port,
      destinations: {},
    },
    cloud: {
      dicomWebUrl: options.dicomWebUrl,
      auth: options.apiKey ? { kind: 'apiKey', apiKey: options.apiKey } : { kind: 'none' },
      requestTimeoutMs: d.cloud.requestTimeoutMs,
    },
    spool: { ...d.spool, dir: path.join(options.dataDir, 'gateway-spool') },
    uploader: { ...d.uploader, retry: { ...d.uploader.retry } },
    http: { host: '127.0.0.1', port: 0 },
  };
}
