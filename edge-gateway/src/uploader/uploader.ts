/**
 * Drains the spool into the archive: oldest queued entry first, `concurrency`
 * at a time. Small instances go by STOW-RS, large ones (≥ the threshold)
 * through the large-object upload API. Transient failures (network, 408, 429,
 * 5xx, out-of-resources FailureReasons) go back to queued/ with exponential
 * backoff and full jitter (Retry-After honoured); refusals of the object go to
 * quarantine/ with the reason; 401/403 pause the whole uploader (credentials
 * are not the instance's fault) and a single probe upload is tried later.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { CloudConfig, UploaderConfig } from '../config-types';
import type { Metrics } from '../ops/metrics';
import { silentLogger, type Logger } from '../ops/logger';
import type { Spool, SpoolRecord } from '../spool/spool';
import { createUploaderAuth, type AuthHeaders, type UploaderAuth } from './auth';
import { stowInstance, type TransferContext } from './stow';
import { uploadLargeObject, type LargeObjectOptions } from './large-object';
import type { UploadOutcome } from './outcome';
import { isErrno } from '../spool/fs-durable';

export interface UploaderDeps {
  /** Headers for archive requests; default: from cloud.auth, through the DICOMweb client's auth provider (cloud/auth.ts). */
  authHeaders?: AuthHeaders;
  metrics?: Metrics;
  logger?: Logger;
  /** [0, 1) — injectable for tests of the backoff. */
  random?: () => number;
  /** How often queued/ is rescanned for entries of other processes (default 2 s). */
  rescanIntervalMs?: number;
  /** How often done/ is pruned (default 10 min). */
  pruneIntervalMs?: number;
  largeObject?: LargeObjectOptions;
}

/** Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter"). */
export function backoffDelay(attempts: number, retry: UploaderConfig['retry'], random: () => number = Math.random): number {
  const cap = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** Math.min(Math.max(attempts - 1, 0), 30));
  return Math.floor(random() * cap);
}

/** Longest Retry-After we follow (a server asking for days is treated as this). */
const MAX_RETRY_AFTER_MS = 3600_000;

export class Uploader {
  private running = false;
  private paused = false;
  /** After a pause or a hold: one upload at a time until one succeeds. */
  private probing: 'auth' | 'unavailable' | false = false;
  private pauseDelayMs: number;
  private readonly active = new Map<string, Promise<void>>();
  private pumping = false;
  private pumpAgain = false;
  private dueTimer?: NodeJS.Timeout;
  private pauseTimer?: NodeJS.Timeout;
  private rescanTimer?: NodeJS.Timeout;
  private pruneTimer?: NodeJS.Timeout;
  private readonly onQueued = () => this.pump();
  /** settled() callers by spool id: one listener on the spool, not one per caller. */
  private readonly waiters = new Map<string, Array<(r: SpoolRecord) => void>>();
  private readonly onSettled = (r: SpoolRecord) => {
    const list = this.waiters.get(r.id);
    if (!list) return;
    this.waiters.delete(r.id);
    for (const resolve of list) resolve(r);
  };
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly transfer: TransferContext;
  private readonly auth: UploaderAuth;
  /** A 401 already led to a fresh credential since the last success: the next one pauses. */
  private credentialRefreshed = false;
  /**
   * Circuit breaker: transient failures in a row since the last success. When the
   * archive is unreachable, every entry failing on its own schedule would keep
   * hammering it (and churn the queue); after a streak the uploader holds all
   * claims for a backoff, then probes with one upload at a time.
   */
  private failStreak = 0;
  private holdLevel = 0;
  private holdUntil = 0;
  private holdTimer?: NodeJS.Timeout;
  private readonly agents = { http: new http.Agent({ keepAlive: true, maxSockets: 64 }), https: new https.Agent({ keepAlive: true, maxSockets: 64 }) };
  private readonly m;

  constructor(
    private readonly spool: Spool,
    private readonly cfg: { uploader: UploaderConfig; cloud: CloudConfig },
    private readonly deps: UploaderDeps = {},
  ) {
    this.log = deps.logger ?? silentLogger;
    this.random = deps.random ?? Math.random;
    this.pauseDelayMs = cfg.uploader.retry.initialDelayMs;
    this.auth = createUploaderAuth(cfg.cloud, deps.authHeaders);
    this.transfer = {
      dicomWebUrl: cfg.cloud.dicomWebUrl.replace(/\/+$/, ''),
      authHeaders: this.auth.headers,
      timeoutMs: cfg.cloud.requestTimeoutMs,
      agents: this.agents,
    };
    const metrics = deps.metrics;
    this.m = metrics
      ? {
          uploads: metrics.counter('gateway_uploads_total', 'Instances the archive confirmed, by route (stow, upload).'),
          bytes: metrics.counter('gateway_upload_bytes_total', 'Bytes of instances the archive confirmed.'),
          retries: metrics.counter('gateway_upload_retries_total', 'Upload attempts that failed transiently and were requeued.'),
          failures: metrics.counter('gateway_upload_failures_total', 'Instances quarantined (refused by the archive or out of attempts).'),
          lastSuccess: metrics.gauge('gateway_upload_last_success_timestamp_seconds', 'Unix time of the last confirmed upload (0: none yet).'),
          paused: metrics.gauge('gateway_uploader_paused', 'Whether uploads are paused because the archive refused our credentials (401/403): 1 yes, 0 no.'),
          held: metrics.gauge('gateway_uploader_backoff', 'Whether uploads are held back after repeated transient failures (archive unreachable, 5xx, 429): 1 yes, 0 no.'),
        }
      : undefined;
    metrics?.gauge('gateway_uploader_inflight', 'Uploads in progress.', () => this.active.size);
    this.m?.paused.set(0);
    this.m?.held.set(0);
    this.m?.lastSuccess.set(0);
    spool.events.on('settled', this.onSettled);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  get inflight(): number {
    return this.active.size;
  }

  start(): void {
    if (this.running) return;
    if (!this.spool.isOwner) throw new Error('the uploader needs the spool owner lock');
    this.running = true;
    this.spool.events.on('queued', this.onQueued);
    this.rescanTimer = setInterval(() => {
      this.spool.rescan().then(
        () => this.pump(),
        (e) => this.log.warn('uploader: spool rescan failed', { err: e }),
      );
    }, this.deps.rescanIntervalMs ?? 2_000);
    this.rescanTimer.unref();
    const prune = () =>
      this.spool.pruneDone().then(
        (pruned) => pruned && this.log.info('spool: pruned done entries', { pruned }),
        (e) => this.log.warn('spool: prune failed', { err: e }),
      );
    void prune();
    this.pruneTimer = setInterval(prune, this.deps.pruneIntervalMs ?? 600_000);
    this.pruneTimer.unref();
    this.pump();
  }

  /**
   * Stop taking entries and wait up to `graceMs` (default 10 s) for uploads in
   * progress. One still running after that stays in inflight/ and is sent
   * again after the next start (an identical duplicate is a success).
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.running = false;
    this.spool.events.off('queued', this.onQueued);
    for (const t of [this.dueTimer, this.pauseTimer, this.holdTimer]) if (t) clearTimeout(t);
    for (const t of [this.rescanTimer, this.pruneTimer]) if (t) clearInterval(t);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.active.values()]), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** Resolves when the record is done or quarantined (ackMode 'cloud', storage commitment). */
  settled(id: string): Promise<SpoolRecord> {
    return new Promise<SpoolRecord>((resolve, reject) => {
      let done = false;
      const finish = (r: SpoolRecord) => {
        if (done) return;
        done = true;
        resolve(r);
      };
      const drop = () => {
        const list = this.waiters.get(id)?.filter((f) => f !== finish);
        if (list?.length) this.waiters.set(id, list);
        else this.waiters.delete(id);
      };
      // Wait first, then look: a transition between the two is not missed.
      this.waiters.set(id, [...(this.waiters.get(id) ?? []), finish]);
      this.spool.get(id).then(
        (r) => {
          if (!r) {
            drop();
            done = true;
            reject(Object.assign(new Error(`no spool entry ${id}`), { code: 'SPOOL_UNKNOWN_ID' }));
          } else if (r.state === 'done' || r.state === 'quarantine') {
            drop();
            finish(r);
          }
        },
        (e) => {
          drop();
          done = true;
          reject(e);
        },
      );
    });
  }

  private limit(): number {
    return this.probing ? 1 : this.cfg.uploader.concurrency;
  }

  private pump(): void {
    if (!this.running) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void (async () => {
      try {
        do {
          this.pumpAgain = false;
          while (this.running && !this.paused && Date.now() >= this.holdUntil && this.active.size < this.limit()) {
            const record = await this.spool.claimNext();
            if (!record) break;
            this.launch(record);
          }
        } while (this.pumpAgain && this.running);
      } catch (e) {
        this.log.error('uploader: claiming from the spool failed', { err: e });
      } finally {
        this.pumping = false;
        this.armDueTimer();
      }
    })();
  }

  /** Wake up when the earliest backed-off entry becomes ready. */
  private armDueTimer(): void {
    if (this.dueTimer) clearTimeout(this.dueTimer);
    this.dueTimer = undefined;
    const due = this.spool.nextDueAt();
    if (!this.running || due === undefined) return;
    this.dueTimer = setTimeout(() => this.pump(), Math.max(0, due - Date.now()) + 5);
    this.dueTimer.unref();
  }

  private launch(record: SpoolRecord): void {
    const p = this.process(record)
      .catch((e) => this.log.error('uploader: could not record an upload outcome', { id: record.id, err: e }))
      .finally(() => {
        this.active.delete(record.id);
        this.pump();
      });
    this.active.set(record.id, p);
  }

  private async attempt(record: SpoolRecord): Promise<{ outcome: UploadOutcome; route: 'stow' | 'upload' }> {
    const route = record.route ?? (record.sizeBytes >= this.cfg.uploader.largeObjectThresholdBytes ? 'upload' : 'stow');
    const file = this.spool.filePath(record);
    try {
      const outcome =
        route === 'stow'
          ? await stowInstance(this.transfer, file, record.sopInstanceUID)
          : await uploadLargeObject(this.transfer, file, { studyInstanceUID: record.studyInstanceUID }, this.deps.largeObject, {
              statusUrl: record.uploadStatusUrl,
              onCreated: async (statusUrl) => {
                // Kept in the record (and carried by a requeue) so the next attempt resumes this upload.
                record.uploadStatusUrl = statusUrl;
                await this.spool.annotate(record, { uploadStatusUrl: statusUrl });
              },
            });
      return { outcome, route };
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return { outcome: { kind: 'reject', reason: 'FILE_MISSING: the spooled file is gone' }, route };
      const code = (e as { code?: unknown }).code;
      return { outcome: { kind: 'retry', reason: `network: ${typeof code === 'string' ? code : 'error'}` }, route };
    }
  }

  private async process(record: SpoolRecord): Promise<void> {
    const started = Date.now();
    const { outcome, route } = await this.attempt(record);
    switch (outcome.kind) {
      case 'done': {
        // Metrics first: whoever awaits settled() then sees them already counted.
        this.m?.uploads.inc(1, { route });
        this.m?.bytes.inc(record.sizeBytes);
        this.m?.lastSuccess.set(Math.floor(Date.now() / 1000));
        await this.spool.markDone({ ...record, attempts: record.attempts + 1 }, outcome.note ? { reason: outcome.note } : {});
        this.credentialRefreshed = false;
        this.archiveAnswered();
        this.log.debug('uploaded', { id: record.id, sopInstanceUID: record.sopInstanceUID, route, sizeBytes: record.sizeBytes, durationMs: Date.now() - started });
        if (this.probing === 'auth') {
          this.pauseDelayMs = this.cfg.uploader.retry.initialDelayMs;
          this.log.info('uploader: the archive accepts our credentials again', {});
        } else if (this.probing === 'unavailable') {
          this.log.info('uploader: the archive answers again', {});
        }
        this.probing = false;
        return;
      }
      case 'reject': {
        // The archive answered (it refused this object): it is reachable.
        this.archiveAnswered();
        if (this.probing === 'unavailable') this.probing = false;
        this.m?.failures.inc();
        await this.spool.quarantine({ ...record, attempts: record.attempts + 1 }, outcome.reason);
        this.log.warn('upload refused: quarantined', { id: record.id, sopInstanceUID: record.sopInstanceUID, route, reason: outcome.reason });
        return;
      }
      case 'retry': {
        const attempts = record.attempts + 1;
        const max = this.cfg.uploader.retry.maxAttempts;
        if (max > 0 && attempts >= max) {
          this.m?.failures.inc();
          await this.spool.quarantine({ ...record, attempts }, `gave up after ${attempts} attempts: ${outcome.reason}`);
          this.log.warn('upload failed too often: quarantined', { id: record.id, attempts, reason: outcome.reason });
          return;
        }
        const delayMs = outcome.retryAfterMs !== undefined ? Math.min(outcome.retryAfterMs, MAX_RETRY_AFTER_MS) : backoffDelay(attempts, this.cfg.uploader.retry, this.random);
        this.m?.retries.inc();
        await this.spool.requeue(record, { attempts, reason: outcome.reason, notBefore: Date.now() + delayMs, ...(outcome.route ? { route: outcome.route } : {}) });
        this.log.info('upload failed transiently: requeued', { id: record.id, attempts, delayMs, reason: outcome.reason });
        // A route switch (413 → upload API) says nothing about the archive's health.
        if (!outcome.route) this.noteTransientFailure(outcome.retryAfterMs);
        return;
      }
      case 'auth': {
        // An expired or revoked token: ask for a new one once before pausing everything.
        if (outcome.status === 401 && !this.credentialRefreshed && this.auth.invalidate()) {
          this.credentialRefreshed = true;
          this.log.info('uploader: the archive refused our token; asking for a new one', { status: outcome.status });
        } else {
          // Paused before the entry is back in the queue, so it is not claimed again at once.
          this.pause(outcome.status);
        }
        // Not the instance's fault: back to the queue without counting an attempt.
        await this.spool.requeue(record, { reason: outcome.reason });
        return;
      }
    }
  }

  private archiveAnswered(): void {
    this.failStreak = 0;
    this.holdLevel = 0;
    this.m?.held.set(0);
  }

  /** Count a transient failure; after a streak (or any failure of a probe), hold all claims for a while. */
  private noteTransientFailure(retryAfterMs: number | undefined): void {
    this.failStreak++;
    const probing = this.holdLevel > 0;
    if (!probing && this.failStreak < Math.max(2, this.cfg.uploader.concurrency)) return;
    this.failStreak = 0;
    this.holdLevel++;
    const { initialDelayMs, maxDelayMs } = this.cfg.uploader.retry;
    const cap = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.holdLevel - 1, 30));
    // "Equal jitter": at least half the cap, so a hold is never ~0 (full jitter is for the per-entry delays).
    const delayMs = retryAfterMs !== undefined ? Math.min(retryAfterMs, MAX_RETRY_AFTER_MS) : Math.floor(cap / 2 + this.random() * (cap / 2));
    this.holdUntil = Date.now() + delayMs;
    if (this.probing !== 'auth') this.probing = 'unavailable';
    this.m?.held.set(1);
    if (this.holdLevel === 1) this.log.warn('uploader: the archive is unavailable; holding uploads', { delayMs });
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(() => this.pump(), delayMs + 5);
    this.holdTimer.unref();
  }

  private pause(status: number): void {
    if (this.paused) return;
    this.paused = true;
    this.m?.paused.set(1);
    const delayMs = this.pauseDelayMs;
    this.pauseDelayMs = Math.min(this.pauseDelayMs * 2, this.cfg.uploader.retry.maxDelayMs);
    // The alert operators page on (with gateway_uploader_paused 1).
    this.log.error('ALERT uploader paused: the archive refused our credentials', { status, delayMs });
    this.pauseTimer = setTimeout(() => {
      this.paused = false;
      this.probing = 'auth';
      this.m?.paused.set(0);
      this.pump();
    }, delayMs);
    this.pauseTimer.unref();
  }
}
