/**
 * The durable side of the gateway composed: spool (owner), uploader, metrics,
 * PHI-free logger and the /healthz + /metrics server. `gateway.ts` adds the
 * DIMSE side on top; `cli.ts drain` runs it alone (empty a spool without
 * accepting associations).
 */
import type { GatewayConfig } from '../config-types';
import { Metrics } from '../ops/metrics';
import { createLogger, type Logger } from '../ops/logger';
import { startOpsServer, type HealthReport, type OpsServer } from '../ops/ops-server';
import { Spool } from '../spool/spool';
import { Uploader, type UploaderDeps } from './uploader';

export interface UploadPipeline {
  spool: Spool;
  uploader: Uploader;
  metrics: Metrics;
  logger: Logger;
  /** Absent when http.port is 0. */
  ops?: OpsServer;
  health(): Promise<HealthReport>;
  close(): Promise<void>;
}

export interface UploadPipelineOptions {
  metrics?: Metrics;
  logger?: Logger;
  /** Extra health facts (e.g. the DIMSE listener); healthy only if this says so too. */
  health?: () => HealthReport | Promise<HealthReport>;
  uploader?: Omit<UploaderDeps, 'metrics' | 'logger'>;
  /** Do not start the ops HTTP server even if http.port is set (the caller serves it). */
  noOpsServer?: boolean;
}

export async function startUploadPipeline(config: GatewayConfig, options: UploadPipelineOptions = {}): Promise<UploadPipeline> {
  const metrics = options.metrics ?? new Metrics();
  const logger = options.logger ?? createLogger('edge-gateway');
  const spool = await Spool.open(config.spool, { metrics, logger, role: 'owner' });
  const uploader = new Uploader(spool, { uploader: config.uploader, cloud: config.cloud }, { ...options.uploader, metrics, logger });
  uploader.start();
  const health = async (): Promise<HealthReport> => {
    const spoolWritable = await spool.checkWritable();
    const spoolHasRoom = await spool.hasRoom().catch(() => false);
    const extra = options.health ? await options.health() : { healthy: true };
    const queue = await spool.stats();
    return {
      ...extra,
      healthy: spoolWritable && spoolHasRoom && !uploader.isPaused && extra.healthy,
      spoolWritable,
      spoolHasRoom,
      uploaderPaused: uploader.isPaused,
      queue,
    };
  };
  let ops: OpsServer | undefined;
  try {
    if (config.http.port !== 0 && !options.noOpsServer) ops = await startOpsServer({ host: config.http.host, port: config.http.port, metrics, health });
  } catch (e) {
    await uploader.stop();
    await spool.close();
    throw e;
  }
  logger.info('upload pipeline started', { dir: config.spool.dir, concurrency: config.uploader.concurrency, ...(ops ? { port: ops.port } : {}) });
  return {
    spool,
    uploader,
    metrics,
    logger,
    ops,
    health,
    close: async () => {
      await ops?.close();
      await uploader.stop();
      await spool.close();
    },
  };
}
