/**
 * The uploader against a real embedded archive over HTTP: STOW-RS and the
 * large-object upload API (multi-part), byte-identical retrieval, duplicates,
 * retries (503, 429 + Retry-After, archive down and back on the same port and
 * data dir), quarantine (400, 409 conflict, unreadable object), pause on
 * 401/403 and API-key authentication. Faults come from a proxy in front of the
 * archive; everything else is the archive's own answer.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { createHmac } from 'node:crypto';
import { buildSync } from 'esbuild';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import { createEmbeddedAuthenticator, embeddedAuthConfigFromEnv } from '../../functions/adapters/auth/embedded-auth';
import { Spool, type SpoolRecord } from '../../edge-gateway/src/spool/spool';
import { Uploader, backoffDelay } from '../../edge-gateway/src/uploader/uploader';
import { retryAfterMs } from '../../edge-gateway/src/uploader/http-request';
import { Metrics } from '../../edge-gateway/src/ops/metrics';
import { silentLogger as silentGatewayLogger } from '../../edge-gateway/src/ops/logger';
import { startUploadPipeline } from '../../edge-gateway/src/uploader/pipeline';
import type { CloudConfig, UploaderConfig } from '../../edge-gateway/src/config-types';
import { ctSeries, notPart10, type SyntheticInstance } from '../fixtures/synthetic';
import { getJson, getParts, withZeroPreamble } from '../helpers/archive';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { freePort, waitFor as waitForDefault } from '../helpers/wait';
import { makeTempDir } from '../helpers/tmp';
import { PROJECT_ROOT } from '../helpers/paths';

/** This file's waits are short: 20 s unless a test says otherwise. */
const waitFor = (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000) => waitForDefault(what, cond, timeoutMs);

// The archive's JWT verifier loads jose, which is ESM-only, and jest loads CommonJS:
// hand jest a CommonJS bundle of the real jose (as test/e2e/auth-embedded.test.ts does).
const joseDir = makeTempDir('jose-cjs-');
const JOSE_CJS = path.join(joseDir.dir, 'jose.cjs');
buildSync({ entryPoints: [path.join(PROJECT_ROOT, 'node_modules', 'jose', 'dist', 'webapi', 'index.js')], bundle: true, format: 'cjs', platform: 'node', target: 'node22', outfile: JOSE_CJS, logLevel: 'warning' });
jest.mock('jose', () => jest.requireActual(JOSE_CJS));
afterAll(() => joseDir.cleanup());

const MiB = 1024 * 1024;
const ORIGINAL = 'multipart/related; type="application/dicom"; transfer-syntax=*';

type Archive = Awaited<ReturnType<typeof startEmbeddedArchive>>;

/** The value of one sample line of a Prometheus exposition (not a HELP line that happens to match). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}



async function put(spool: Spool, inst: Pick<SyntheticInstance, 'bytes' | 'sopInstanceUID' | 'sopClassUID' | 'studyInstanceUID' | 'seriesInstanceUID' | 'transferSyntaxUID'>): Promise<SpoolRecord> {
  const w = await spool.createIncoming();
  await w.write(inst.bytes);
  return w.commit({
    sopInstanceUID: inst.sopInstanceUID,
    sopClassUID: inst.sopClassUID,
    studyInstanceUID: inst.studyInstanceUID,
    seriesInstanceUID: inst.seriesInstanceUID,
    transferSyntaxUID: inst.transferSyntaxUID,
  });
}

async function instanceCount(base: string, studyInstanceUID: string): Promise<number> {
  const r = await getJson(`${base}/studies/${studyInstanceUID}/instances`);
  return r.status === 200 ? r.json.length : 0;
}

async function expectRetrievable(base: string, inst: SyntheticInstance): Promise<void> {
  const r = await getParts(`${base}/studies/${inst.studyInstanceUID}/series/${inst.seriesInstanceUID}/instances/${inst.sopInstanceUID}`, ORIGINAL);
  expect(r.status).toBe(200);
  expect(r.parts).toHaveLength(1);
  expect(Buffer.compare(r.parts[0]!.body, withZeroPreamble(inst.bytes))).toBe(0);
}

describe('uploader → embedded archive', () => {
  const tmp = makeTempDir('uploader-');
  let archive: Archive;
  let proxy: FaultProxy;
  let n = 0;
  const running: { spool: Spool; uploader: Uploader }[] = [];

  beforeAll(async () => {
    // Parts of 1 MiB (the archive rounds part sizes to whole MiB), so a 2 MiB instance takes three.
    archive = await startEmbeddedArchive({ dataDir: path.join(tmp.dir, 'archive'), port: 0, log: silentLogger, uploads: { settings: { minPartSize: 1 * MiB } } });
    proxy = await startFaultProxy(archive.url);
  });
  afterAll(async () => {
    await proxy.close();
    await archive.close();
    tmp.cleanup();
  });
  afterEach(async () => {
    proxy.always(undefined);
    for (const r of running.splice(0)) {
      await r.uploader.stop();
      await r.spool.close();
    }
  });

  async function start(opts: { url?: string; uploader?: Partial<UploaderConfig>; cloud?: Partial<CloudConfig>; metrics?: Metrics; start?: boolean } = {}) {
    const spool = await Spool.open({ dir: path.join(tmp.dir, `spool-${++n}`), fsync: true, ackMode: 'spool', doneRetentionMs: 3600_000 });
    const metrics = opts.metrics ?? new Metrics();
    const uploader = new Uploader(
      spool,
      {
        uploader: { concurrency: 4, largeObjectThresholdBytes: 32 * MiB, retry: { initialDelayMs: 20, maxDelayMs: 200, maxAttempts: 0 }, ...opts.uploader },
        cloud: { dicomWebUrl: opts.url ?? `${proxy.url}/dicom-web`, auth: { kind: 'none' }, requestTimeoutMs: 10_000, ...opts.cloud },
      },
      { metrics, rescanIntervalMs: 200, largeObject: { pollIntervalMs: 20 } },
    );
    running.push({ spool, uploader });
    if (opts.start !== false) uploader.start();
    return { spool, uploader, metrics };
  }

  test('STOW path: several instances, concurrently; each retrievable byte-identical; metrics count them', async () => {
    const { spool, uploader, metrics } = await start();
    const series = ctSeries({ count: 12, rows: 64, columns: 64 });
    const records = await Promise.all(series.map((i) => put(spool, i)));
    const settled = await Promise.all(records.map((r) => uploader.settled(r.id)));
    expect(settled.map((r) => r.state)).toEqual(series.map(() => 'done'));
    expect(await instanceCount(archive.dicomWebUrl, series[0]!.studyInstanceUID)).toBe(12);
    for (const inst of [series[0]!, series[11]!]) await expectRetrievable(archive.dicomWebUrl, inst);
    expect(await spool.stats()).toMatchObject({ queued: 0, inflight: 0, done: 12, quarantine: 0 });
    const text = metrics.render();
    expect(sample(text, 'gateway_uploads_total{route="stow"}')).toBe(12);
    expect(sample(text, 'gateway_upload_last_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(sample(text, 'gateway_uploader_paused')).toBe(0);
    // settled() of an entry that is already done answers at once.
    expect((await uploader.settled(records[0]!.id)).state).toBe('done');
    await expect(uploader.settled('0000000aa-0000-00000000')).rejects.toMatchObject({ code: 'SPOOL_UNKNOWN_ID' });
  });

  test('large-object path: at or above the threshold the upload API takes it, in parallel parts', async () => {
    const { spool, uploader, metrics } = await start({ uploader: { largeObjectThresholdBytes: 1 * MiB } });
    const [big] = ctSeries({ count: 1, rows: 1024, columns: 1024 });
    const [small] = ctSeries({ count: 1, rows: 32, columns: 32 });
    expect(big!.bytes.length).toBeGreaterThan(2 * MiB);
    const seenBefore = proxy.seen.length;
    const rb = await put(spool, big!);
    const rs = await put(spool, small!);
    expect((await uploader.settled(rb.id)).state).toBe('done');
    expect((await uploader.settled(rs.id)).state).toBe('done');
    await expectRetrievable(archive.dicomWebUrl, big!);
    await expectRetrievable(archive.dicomWebUrl, small!);
    const seen = proxy.seen.slice(seenBefore);
    expect(seen.filter((s) => s.method === 'PUT' && /\/uploads\/[0-9a-f]+\/parts\/\d+$/.test(s.path))).toHaveLength(3);
    expect(seen.some((s) => s.method === 'POST' && s.path.endsWith('/complete'))).toBe(true);
    expect(seen.filter((s) => s.method === 'POST' && s.path === '/dicom-web/studies')).toHaveLength(1);
    expect(sample(metrics.render(), 'gateway_uploads_total{route="upload"}')).toBe(1);
  });

  test('large-object path: a failed part is resumed, not restarted — only the missing part is sent again', async () => {
    const { spool, uploader } = await start({ uploader: { largeObjectThresholdBytes: 1 * MiB } });
    const [big] = ctSeries({ count: 1, rows: 1024, columns: 1024 });
    const isPart = (n: number) => (m: string, p: string) => m === 'PUT' && new RegExp(`/uploads/[0-9a-f]+/parts/${n}$`).test(p);
    proxy.inject({ status: 503 }, 1, isPart(3));
    const seenBefore = proxy.seen.length;
    const r = await put(spool, big!);
    expect(await uploader.settled(r.id)).toMatchObject({ state: 'done', attempts: 2 });
    await expectRetrievable(archive.dicomWebUrl, big!);
    const seen = proxy.seen.slice(seenBefore);
    expect(seen.filter((s) => s.method === 'POST' && s.path === '/dicom-web/uploads')).toHaveLength(1);
    for (const n of [1, 2]) expect(seen.filter((s) => isPart(n)(s.method, s.path))).toHaveLength(1);
    expect(seen.filter((s) => isPart(3)(s.method, s.path)).map((s) => s.answeredBy)).toEqual(['proxy', 'archive']);
  });

  test('STOW answering 413 sends the instance through the upload API instead', async () => {
    const { spool, uploader } = await start();
    const [inst] = ctSeries({ count: 1, rows: 32, columns: 32 });
    proxy.inject({ status: 413 }, 1, (m, p) => m === 'POST' && p === '/dicom-web/studies');
    const r = await put(spool, inst!);
    const done = await uploader.settled(r.id);
    expect(done).toMatchObject({ state: 'done', route: 'upload', attempts: 2 });
    await expectRetrievable(archive.dicomWebUrl, inst!);
  });

  test('duplicates are safe: the same instance twice is stored once, both entries done', async () => {
    const { spool, uploader } = await start({ uploader: { concurrency: 1 } });
    const [inst] = ctSeries({ count: 1, rows: 32, columns: 32 });
    const a = await put(spool, inst!);
    const b = await put(spool, inst!);
    expect((await uploader.settled(a.id)).state).toBe('done');
    expect((await uploader.settled(b.id)).state).toBe('done');
    expect(await instanceCount(archive.dicomWebUrl, inst!.studyInstanceUID)).toBe(1);
  });

  test('503 and 429 are retried with backoff, Retry-After honoured; then stored', async () => {
    const { spool, uploader, metrics } = await start();
    const [inst] = ctSeries({ count: 1, rows: 32, columns: 32 });
    proxy.inject({ status: 503 }, 2, (m, p) => m === 'POST' && p === '/dicom-web/studies');
    proxy.inject({ status: 429, headers: { 'Retry-After': '1' } }, 1, (m, p) => m === 'POST' && p === '/dicom-web/studies');
    const requeued: SpoolRecord[] = [];
    spool.events.on('queued', (id: string) => void spool.get(id).then((r) => r && requeued.push(r)));
    const r = await put(spool, inst!);
    const done = await uploader.settled(r.id);
    expect(done).toMatchObject({ state: 'done', attempts: 4 });
    expect(sample(metrics.render(), 'gateway_upload_retries_total')).toBe(3);
    // The 429's Retry-After set the entry's next attempt a second out (not the 20–200 ms backoff).
    const after429 = requeued.find((x) => x.reason?.startsWith('HTTP 429'));
    expect(after429).toBeDefined();
    expect(Date.parse(after429!.notBefore!)).toBeGreaterThanOrEqual(Date.parse(requeued.find((x) => x.reason?.startsWith('HTTP 503'))!.notBefore!) + 500);
    await expectRetrievable(archive.dicomWebUrl, inst!);
  });

  test('archive down: network errors are retried until it is back (same port, same data dir)', async () => {
    const dataDir = path.join(tmp.dir, 'archive-down');
    let down = await startEmbeddedArchive({ dataDir, port: 0, log: silentLogger });
    const port = Number(new URL(down.url).port);
    await down.close();
    const { spool, uploader, metrics } = await start({ url: `http://127.0.0.1:${port}/dicom-web` });
    const series = ctSeries({ count: 3, rows: 32, columns: 32 });
    const records = await Promise.all(series.map((i) => put(spool, i)));
    await waitFor('a few failed attempts', () => metrics.counter('gateway_upload_retries_total', '').value() >= 6);
    expect(await spool.stats()).toMatchObject({ done: 0, quarantine: 0 });
    down = await startEmbeddedArchive({ dataDir, port, log: silentLogger });
    try {
      const settled = await Promise.all(records.map((r) => uploader.settled(r.id)));
      expect(settled.every((r) => r.state === 'done' && r.attempts > 1)).toBe(true);
      expect((await spool.get(records[0]!.id))!.reason).toMatch(/^network: ECONNREFUSED/);
      expect(await instanceCount(down.dicomWebUrl, series[0]!.studyInstanceUID)).toBe(3);
    } finally {
      await down.close();
    }
  });

  test('an unavailable archive is not hammered: after a streak of failures all uploads are held, then probed one at a time', async () => {
    const { spool, uploader, metrics } = await start({ uploader: { concurrency: 4, retry: { initialDelayMs: 200, maxDelayMs: 400, maxAttempts: 0 } } });
    const series = ctSeries({ count: 20, rows: 16, columns: 16 });
    proxy.always({ status: 503 }, (m, p) => m === 'POST' && p === '/dicom-web/studies');
    const before = proxy.seen.length;
    const records = await Promise.all(series.map((i) => put(spool, i)));
    await waitFor('the hold', () => sample(metrics.render(), 'gateway_uploader_backoff') === 1);
    await new Promise((r) => setTimeout(r, 1_500));
    // Per-entry backoff alone would retry each of the 20 entries every 0–400 ms (~150 requests in 1.5 s);
    // held, the uploader sends the first streak and then one probe per hold (200–400 ms).
    const during = proxy.seen.length - before;
    expect(during).toBeGreaterThanOrEqual(4);
    expect(during).toBeLessThan(40);
    proxy.always(undefined);
    const settled = await Promise.all(records.map((r) => uploader.settled(r.id)));
    expect(settled.every((r) => r.state === 'done')).toBe(true);
    expect(sample(metrics.render(), 'gateway_uploader_backoff')).toBe(0);
  });

  test('400 quarantines with the reason and keeps the file', async () => {
    const { spool, uploader, metrics } = await start();
    const [inst] = ctSeries({ count: 1, rows: 32, columns: 32 });
    proxy.inject({ status: 400, body: JSON.stringify({ code: 'BAD_REQUEST', message: 'nope' }) }, 1, (m, p) => m === 'POST' && p === '/dicom-web/studies');
    const r = await put(spool, inst!);
    const q = await uploader.settled(r.id);
    expect(q).toMatchObject({ state: 'quarantine', reason: 'HTTP 400 BAD_REQUEST', attempts: 1 });
    expect(spool.filePath(q)).toContain(`${path.sep}quarantine${path.sep}`);
    expect(sample(metrics.render(), 'gateway_upload_failures_total')).toBe(1);
  });

  test('409: different content under a stored SOP Instance UID is quarantined, nothing overwritten; an unreadable object too', async () => {
    const { spool, uploader } = await start();
    const [inst] = ctSeries({ count: 1, rows: 32, columns: 32 });
    const first = await put(spool, inst!);
    expect((await uploader.settled(first.id)).state).toBe('done');
    const changed = Uint8Array.from(inst!.bytes);
    changed[changed.length - 1] ^= 0xff;
    const second = await put(spool, { ...inst!, bytes: changed });
    const q = await uploader.settled(second.id);
    expect(q.state).toBe('quarantine');
    expect(q.reason).toMatch(/0x0111/);
    await expectRetrievable(archive.dicomWebUrl, inst!);

    const junk = await put(spool, { ...inst!, sopInstanceUID: '1.2.826.0.1.3680043.10.1234.77.1', bytes: notPart10() });
    const qj = await uploader.settled(junk.id);
    expect(qj).toMatchObject({ state: 'quarantine', reason: 'STOW FailureReason 0xC000' });
  });

  test.each([401, 403])('%i pauses the whole uploader (metric) without quarantining; it resumes when accepted again', async (status) => {
    const { spool, uploader, metrics } = await start();
    const series = ctSeries({ count: 3, rows: 32, columns: 32 });
    proxy.always({ status }, (m, p) => m === 'POST' && p === '/dicom-web/studies');
    const records = await Promise.all(series.map((i) => put(spool, i)));
    await waitFor('the pause', () => uploader.isPaused);
    expect(sample(metrics.render(), 'gateway_uploader_paused')).toBe(1);
    await waitFor('the entries back in the queue', async () => (await spool.stats()).inflight === 0);
    const s = await spool.stats();
    expect(s).toMatchObject({ done: 0, quarantine: 0 });
    // Whichever entries were tried before the pause carry the refusal as their reason; the rest were never claimed.
    const reasons = (await Promise.all(records.map((r) => spool.get(r.id)))).map((r) => r!.reason).filter((r) => r !== undefined);
    expect(reasons.length).toBeGreaterThan(0);
    for (const reason of reasons) expect(reason).toBe(`HTTP ${status} INJECTED_${status}`);
    proxy.always(undefined);
    const settled = await Promise.all(records.map((r) => uploader.settled(r.id)));
    expect(settled.every((r) => r.state === 'done')).toBe(true);
    expect(uploader.isPaused).toBe(false);
    expect(sample(metrics.render(), 'gateway_uploader_paused')).toBe(0);
    expect(await instanceCount(archive.dicomWebUrl, series[0]!.studyInstanceUID)).toBe(3);
  });

  test('maxAttempts: an entry that keeps failing is quarantined with the last reason', async () => {
    const { spool, uploader } = await start({ uploader: { retry: { initialDelayMs: 5, maxDelayMs: 10, maxAttempts: 3 } } });
    proxy.always({ status: 500 }, (m, p) => m === 'POST' && p === '/dicom-web/studies');
    const [inst] = ctSeries({ count: 1, rows: 32, columns: 32 });
    const r = await put(spool, inst!);
    expect(await uploader.settled(r.id)).toMatchObject({ state: 'quarantine', attempts: 3, reason: 'gave up after 3 attempts: HTTP 500 INJECTED_500' });
  });

  test('pipeline health: unhealthy while paused (401) or while the spool is short of space; /healthz and /metrics served', async () => {
    const dir = path.join(tmp.dir, `spool-${++n}`);
    const config = {
      dimse: { aeTitle: 'EDGE', host: '127.0.0.1', port: 0, destinations: {}, maxPduLength: 116794, maxAssociations: 4, idleTimeoutMs: 60_000, artimTimeoutMs: 30_000 },
      cloud: { dicomWebUrl: `${proxy.url}/dicom-web`, auth: { kind: 'none' as const }, requestTimeoutMs: 10_000 },
      spool: { dir, fsync: false, ackMode: 'spool' as const, doneRetentionMs: 3600_000, minFreeBytes: 1 },
      // A pause long enough that the health checks below see it before the probe (1 s).
      uploader: { concurrency: 2, largeObjectThresholdBytes: 32 * MiB, retry: { initialDelayMs: 1_000, maxDelayMs: 2_000, maxAttempts: 0 } },
      http: { host: '127.0.0.1', port: 0 },
    };
    const pipeline = await startUploadPipeline(config, { logger: silentGatewayLogger });
    try {
      expect(pipeline.ops).toBeUndefined(); // http.port 0: no ops server
      expect(await pipeline.health()).toMatchObject({ healthy: true, spoolWritable: true, spoolHasRoom: true, uploaderPaused: false });
      proxy.always({ status: 401 }, (m, p) => m === 'POST' && p === '/dicom-web/studies');
      const [inst] = ctSeries({ count: 1, rows: 32, columns: 32 });
      const r = await put(pipeline.spool, inst!);
      await waitFor('the pause', () => pipeline.uploader.isPaused);
      expect(await pipeline.health()).toMatchObject({ healthy: false, uploaderPaused: true, queue: { queued: 1 } });
      proxy.always(undefined);
      expect((await pipeline.uploader.settled(r.id)).state).toBe('done');
      expect((await pipeline.health()).healthy).toBe(true);
    } finally {
      await pipeline.close();
    }
    // Short of space: unhealthy; served over HTTP when a port is set.
    const full = await startUploadPipeline(
      { ...config, spool: { ...config.spool, minFreeBytes: Number.MAX_SAFE_INTEGER }, http: { host: '127.0.0.1', port: await freePort() } },
      { logger: silentGatewayLogger },
    );
    try {
      const res = await fetch(`${full.ops!.url}/healthz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ healthy: false, spoolHasRoom: false, spoolWritable: true });
      expect(await (await fetch(`${full.ops!.url}/metrics`)).text()).toContain('gateway_spool_entries{state="queued"} 0');
    } finally {
      await full.close();
    }
  });

  test('backoff: exponential with full jitter, capped; Retry-After in seconds or as a date', () => {
    const retry = { initialDelayMs: 1000, maxDelayMs: 300_000, maxAttempts: 0 };
    expect(backoffDelay(1, retry, () => 0.999)).toBe(999);
    expect(backoffDelay(4, retry, () => 0.5)).toBe(4000);
    expect(backoffDelay(40, retry, () => 0.999)).toBe(299_700);
    expect(backoffDelay(3, retry, () => 0)).toBe(0);
    expect(retryAfterMs('120')).toBe(120_000);
    expect(retryAfterMs(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(30_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});

describe('uploader with API keys (embedded archive authentication)', () => {
  const tmp = makeTempDir('uploader-auth-');
  const SECRET = 'edge-gateway-test-secret-0123456789';
  let archive: Archive;
  beforeAll(async () => {
    const config = embeddedAuthConfigFromEnv({ API_KEYS: `gateway:${SECRET}:read+write` })!;
    archive = await startEmbeddedArchive({ dataDir: path.join(tmp.dir, 'archive'), port: 0, log: silentLogger, authenticate: createEmbeddedAuthenticator(config) });
  });
  afterAll(async () => {
    await archive.close();
    tmp.cleanup();
  });

  test('the right key uploads; a wrong one pauses the uploader (401), nothing quarantined', async () => {
    for (const [key, expectDone] of [
      [SECRET, true],
      ['wrong-key-wrong-key-wrong-key', false],
    ] as const) {
      const spool = await Spool.open({ dir: path.join(tmp.dir, `spool-${expectDone}`), fsync: false, ackMode: 'spool', doneRetentionMs: 3600_000 });
      const uploader = new Uploader(spool, {
        uploader: { concurrency: 2, largeObjectThresholdBytes: 32 * MiB, retry: { initialDelayMs: 5_000, maxDelayMs: 10_000, maxAttempts: 0 } },
        cloud: { dicomWebUrl: archive.dicomWebUrl, auth: { kind: 'apiKey', apiKey: key }, requestTimeoutMs: 10_000 },
      });
      uploader.start();
      try {
        const [inst] = ctSeries({ count: 1, rows: 32, columns: 32 });
        const r = await put(spool, inst!);
        if (expectDone) {
          expect((await uploader.settled(r.id)).state).toBe('done');
        } else {
          await waitFor('the pause', () => uploader.isPaused);
          await waitFor('the entry back in the queue', async () => (await spool.stats()).queued === 1);
          expect((await spool.get(r.id))!).toMatchObject({ state: 'queued', attempts: 0, reason: 'HTTP 401 UNAUTHORIZED' });
        }
      } finally {
        await uploader.stop();
        await spool.close();
      }
    }
  });
});

/** A compact HS256 JWS (RFC 7515 §3.1, RFC 7519), signed by hand: the test's token endpoint. */
function hs256(claims: object, secret: string): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('uploader with OAuth2 client credentials (embedded archive verifying HS256 JWTs)', () => {
  const tmp = makeTempDir('uploader-oauth-');
  const ISSUER = 'https://idp.example.test/realms/edge';
  const AUDIENCE = 'edge-gateway';
  const JWT_SECRET = 'an-hs256-secret-of-at-least-32-characters!';
  let archive: Archive;
  let tokenServer: http.Server;
  let tokenUrl: string;
  const issued: string[] = [];

  beforeAll(async () => {
    const config = embeddedAuthConfigFromEnv({ AUTH_JWT_SECRET: JWT_SECRET, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE })!;
    archive = await startEmbeddedArchive({ dataDir: path.join(tmp.dir, 'archive'), port: 0, log: silentLogger, authenticate: createEmbeddedAuthenticator(config) });
    // A token endpoint whose first token the archive will refuse (issued for another audience: as good as revoked).
    tokenServer = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const audience = issued.length === 0 ? 'someone-else' : AUDIENCE;
        const now = Math.floor(Date.now() / 1000);
        const token = hs256({ iss: ISSUER, client_id: audience, sub: audience, scope: 'dicomweb/read dicomweb/write', iat: now, exp: now + 600 }, JWT_SECRET);
        issued.push(audience);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 600 }));
      });
    });
    await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
    tokenUrl = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/oauth2/token`;
  });
  afterAll(async () => {
    await new Promise((r) => tokenServer.close(r));
    await archive.close();
    tmp.cleanup();
  });

  test('a refused token is replaced once without pausing; the upload succeeds with the new one', async () => {
    const spool = await Spool.open({ dir: path.join(tmp.dir, 'spool'), fsync: false, ackMode: 'spool', doneRetentionMs: 3600_000 });
    const metrics = new Metrics();
    const uploader = new Uploader(
      spool,
      {
        uploader: { concurrency: 1, largeObjectThresholdBytes: 32 * MiB, retry: { initialDelayMs: 10_000, maxDelayMs: 20_000, maxAttempts: 0 } },
        cloud: { dicomWebUrl: archive.dicomWebUrl, auth: { kind: 'clientCredentials', tokenUrl, clientId: 'edge', clientSecret: 'secret' }, requestTimeoutMs: 10_000 },
      },
      { metrics },
    );
    uploader.start();
    try {
      const [inst] = ctSeries({ count: 1, rows: 32, columns: 32 });
      const r = await put(spool, inst!);
      expect(await uploader.settled(r.id)).toMatchObject({ state: 'done', attempts: 1 });
      expect(issued).toEqual(['someone-else', AUDIENCE]);
      expect(sample(metrics.render(), 'gateway_uploader_paused')).toBe(0);
      const now = Math.floor(Date.now() / 1000);
      const reader = hs256({ iss: ISSUER, client_id: AUDIENCE, sub: 'test', scope: 'dicomweb/read', iat: now, exp: now + 60 }, JWT_SECRET);
      const found = await getJson(`${archive.dicomWebUrl}/studies/${inst!.studyInstanceUID}/instances`, { Authorization: `Bearer ${reader}` });
      expect(found.status).toBe(200);
      expect(found.json.map((d: any) => d['00080018'].Value[0])).toEqual([inst!.sopInstanceUID]);
    } finally {
      await uploader.stop();
      await spool.close();
    }
  });
});
