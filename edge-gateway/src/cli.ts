/**
 * The edge gateway's command line.
 *
 *   tsx edge-gateway/src/cli.ts run     [--config gateway.json]            DIMSE + spool + uploader + ops
 *   tsx edge-gateway/src/cli.ts status  [--config gateway.json] [--json]   queue counts, oldest age, quarantine reasons
 *   tsx edge-gateway/src/cli.ts import  [--config gateway.json] [--wait] [--again] <dir | DICOMDIR>
 *   tsx edge-gateway/src/cli.ts drain   [--config gateway.json] [--until-empty]   spool + uploader only
 *   tsx edge-gateway/src/cli.ts requeue [--config gateway.json] (--all | <id>...) quarantined entries back to the queue
 *
 * The config file defaults to $GATEWAY_CONFIG, then ./gateway.json.
 * Exit codes: 0 ok; 1 some files failed / were quarantined; 2 usage or configuration error.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from './config';
import type { GatewayConfig } from './config-types';
import { createLogger } from './ops/logger';
import { Spool, SpoolError, spoolIdTime, type SpoolRecord } from './spool/spool';
import { importFiles } from './importer/importer';
import { createProgressReporter } from './importer/progress';
import { Uploader } from './uploader/uploader';
import { startUploadPipeline } from './uploader/pipeline';
import { processAlive } from './spool/fs-durable';
import { startGateway } from './gateway';

const USAGE = `usage: gateway <command> [--config FILE]
  run                          start the gateway (DIMSE, spool, uploader, /healthz, /metrics)
  status [--json]              spool state: counts, oldest queued age, quarantine reasons
  import [--wait] [--again] <dir|DICOMDIR>
                               copy Part 10 files into the spool (--wait: until uploaded;
                               --again: also instances the spool already holds)
  drain [--until-empty]        upload what the spool holds, without accepting DIMSE
  requeue (--all | <id>...)    send quarantined entries again (after fixing the cause)`;

class UsageError extends Error {}

function configPath(value: string | undefined): string {
  return value ?? process.env.GATEWAY_CONFIG ?? 'gateway.json';
}

function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (stopping) process.exit(130);
      stopping = true;
      stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}

async function cmdRun(config: GatewayConfig): Promise<number> {
  const gateway = await startGateway(config);
  onSignals(() => gateway.close());
  await new Promise<never>(() => undefined);
  return 0;
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${(s / 3600).toFixed(1)}h`;
  return `${(s / 86400).toFixed(1)}d`;
}

async function cmdStatus(config: GatewayConfig, json: boolean): Promise<number> {
  // A producer never recovers or claims: safe beside a running gateway.
  const spool = await Spool.open(config.spool, { role: 'producer' });
  try {
    const counts = await spool.stats();
    const queued = await spool.list('queued');
    const quarantined = await spool.list('quarantine');
    const now = Date.now();
    const oldest = queued.reduce<SpoolRecord | undefined>((a, r) => (!a || r.id < a.id ? r : a), undefined);
    const reasons = new Map<string, number>();
    for (const r of quarantined) reasons.set(r.reason ?? 'unknown', (reasons.get(r.reason ?? 'unknown') ?? 0) + 1);
    const holder = spool.lockHolder();
    const owner = holder !== undefined && processAlive(holder) ? holder : undefined;
    const retrying = queued.filter((r) => r.attempts > 0).length;
    const report = {
      dir: config.spool.dir,
      owner: owner ? { pid: owner } : null,
      counts,
      oldestQueuedAgeSeconds: oldest ? Math.round((now - spoolIdTime(oldest.id)) / 1000) : null,
      retrying,
      quarantineReasons: [...reasons].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count),
    };
    if (json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      const out = [
        `spool ${report.dir}${owner ? ` (uploading: pid ${owner})` : ' (no gateway running)'}`,
        `  incoming ${counts.incoming}  queued ${counts.queued}  inflight ${counts.inflight}  done ${counts.done}  quarantine ${counts.quarantine}`,
        `  oldest queued: ${oldest ? age(now - spoolIdTime(oldest.id)) : '-'}${retrying ? `  (${retrying} waiting to retry${oldest?.reason ? `; last error: ${oldest.reason}` : ''})` : ''}`,
      ];
      if (report.quarantineReasons.length) {
        out.push('  quarantine reasons:');
        for (const { reason, count } of report.quarantineReasons.slice(0, 20)) out.push(`    ${String(count).padStart(6)}  ${reason}`);
      }
      process.stdout.write(`${out.join('\n')}\n`);
    }
    return 0;
  } finally {
    await spool.close();
  }
}

async function waitSettled(config: GatewayConfig, ids: string[], uploader: Uploader | undefined): Promise<{ done: number; quarantine: number }> {
  const result = { done: 0, quarantine: 0 };
  if (uploader) {
    for (const r of await Promise.all(ids.map((id) => uploader.settled(id)))) result[r.state === 'done' ? 'done' : 'quarantine']++;
    return result;
  }
  // Another process (the running gateway) uploads: watch done/ and quarantine/ (two directory
  // listings a second, however many instances are pending).
  const pending = new Set(ids);
  while (pending.size > 0) {
    for (const state of ['done', 'quarantine'] as const) {
      for (const id of await fs.promises.readdir(path.join(config.spool.dir, state)).catch(() => [] as string[])) {
        if (pending.delete(id)) result[state]++;
      }
    }
    if (pending.size > 0) await new Promise((r) => setTimeout(r, 1000));
  }
  return result;
}

async function cmdImport(config: GatewayConfig, dir: string, options: { wait: boolean; again: boolean }): Promise<number> {
  const logger = createLogger('gateway-import');
  // Owner when no gateway runs (then --wait uploads from here); a producer beside a running gateway.
  const spool = await Spool.open(config.spool, { role: options.wait ? 'auto' : 'producer', logger });
  let uploader: Uploader | undefined;
  try {
    if (options.wait && spool.isOwner) {
      uploader = new Uploader(spool, { uploader: config.uploader, cloud: config.cloud }, { logger });
      uploader.start();
    }
    const progress = createProgressReporter();
    const result = await importFiles({ spool, root: dir, again: options.again, onProgress: (p) => progress.update(p) });
    progress.finish(result);
    for (const f of result.failures.slice(0, 50)) process.stderr.write(`import: failed ${f.file}: ${f.reason}\n`);
    for (const f of result.nonDicom.slice(0, 20)) process.stderr.write(`import: skipped (not DICOM Part 10) ${f}\n`);
    if (result.nonDicom.length > 20) process.stderr.write(`import: … and ${result.nonDicom.length - 20} more non-DICOM files\n`);
    let quarantined = 0;
    if (options.wait && result.ids.length > 0) {
      process.stderr.write(`import: waiting for ${result.ids.length} uploads${uploader ? '' : ' (by the running gateway)'}\n`);
      const settled = await waitSettled(config, result.ids, uploader);
      quarantined = settled.quarantine;
      process.stderr.write(`import: ${settled.done} uploaded, ${settled.quarantine} quarantined\n`);
    }
    return result.failed > 0 || quarantined > 0 ? 1 : 0;
  } finally {
    await uploader?.stop();
    await spool.close();
  }
}

async function cmdDrain(config: GatewayConfig, untilEmpty: boolean): Promise<number> {
  const pipeline = await startUploadPipeline(config);
  onSignals(() => pipeline.close());
  // Timers of the uploader do not hold the process; this does.
  const keepAlive = setInterval(() => undefined, 60_000);
  if (!untilEmpty) {
    await new Promise<never>(() => undefined);
  }
  for (;;) {
    const s = await pipeline.spool.stats();
    if (s.queued === 0 && s.inflight === 0 && pipeline.uploader.inflight === 0) {
      clearInterval(keepAlive);
      await pipeline.close();
      process.stderr.write(`drain: spool empty (${s.done} done, ${s.quarantine} quarantined)\n`);
      return s.quarantine > 0 ? 1 : 0;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function cmdRequeue(config: GatewayConfig, ids: string[] | undefined): Promise<number> {
  const spool = await Spool.open(config.spool, { role: 'producer' });
  try {
    const moved = await spool.requeueQuarantined(ids);
    process.stdout.write(`requeued ${moved.length} quarantined entr${moved.length === 1 ? 'y' : 'ies'}\n`);
    return ids && moved.length < ids.length ? 1 : 0;
  } finally {
    await spool.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return command ? 0 : 2;
    }
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean' },
        wait: { type: 'boolean' },
        again: { type: 'boolean' },
        'until-empty': { type: 'boolean' },
        all: { type: 'boolean' },
      },
    });
    if (!['run', 'status', 'import', 'drain', 'requeue'].includes(command)) throw new UsageError(`unknown command ${command}`);
    if (command === 'requeue' && Boolean(values.all) === positionals.length > 0) throw new UsageError('requeue needs --all or entry ids (from status --json or the quarantine/ directory)');
    if (command === 'import' && positionals.length !== 1) throw new UsageError('import needs exactly one directory or DICOMDIR');
    const config = loadConfig(configPath(values.config));
    switch (command) {
      case 'run':
        return await cmdRun(config);
      case 'status':
        return await cmdStatus(config, Boolean(values.json));
      case 'import':
        return await cmdImport(config, positionals[0]!, { wait: Boolean(values.wait), again: Boolean(values.again) });
      case 'drain':
        return await cmdDrain(config, Boolean(values['until-empty']));
      case 'requeue':
        return await cmdRequeue(config, values.all ? undefined : positionals);
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`gateway: ${(e as Error).message}\n${USAGE}\n`);
      return 2;
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`gateway: configuration error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof SpoolError) {
      process.stderr.write(`gateway: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      // Code only: an exception message may quote input.
      process.stderr.write(`gateway: unexpected error ${(e as { code?: string }).code ?? (e as Error).name ?? 'Error'}\n`);
      if (process.env.GATEWAY_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
      process.exit(1);
    },
  );
}
