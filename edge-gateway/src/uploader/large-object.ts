/**
 * One instance through the archive's large-object upload API
 * (docs/upload-api.md; not DICOMweb): create the upload, PUT the parts to
 * their (presigned) URLs in parallel straight from the spooled file, complete,
 * then poll the status until the archive has ingested the object. The outcome
 * is reported like STOW's (stored / FailureReason).
 *
 * Part URLs are their own credential: no Authorization header goes with them
 * (S3 refuses a presigned request that also carries one).
 */
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpRequest, type HttpResponse } from './http-request';
import { classifyHttpError, describeHttpError, type UploadOutcome } from './outcome';
import type { TransferContext } from './stow';
import { mapLimit } from '../map-limit';

export interface LargeObjectOptions {
  /** Parallel part PUTs (default 4). */
  partConcurrency?: number;
  /** Longest wait for ingest after complete (default 15 min); then the attempt is retried. */
  ingestTimeoutMs?: number;
  /** First status poll interval (default 250 ms, doubling to 5 s). */
  pollIntervalMs?: number;
}

interface PartTarget {
  partNumber: number;
  size: number;
  url: string;
  method?: string;
  headers?: Record<string, string>;
}

interface UploadDoc {
  uploadId?: string;
  state?: string;
  partSize?: number;
  partCount?: number;
  parts?: PartTarget[];
  nextPartNumberMarker?: number;
  completeUrl?: string;
  statusUrl?: string;
  result?: { state?: string; reason?: string; failureReason?: number };
  failureReason?: number;
}

/** Ingest verdicts that are the archive's momentary trouble, worth a new attempt. */
const TRANSIENT_RESULTS = new Set(['INGEST_FAILED', 'OBJECT_GONE', 'EXPIRED', 'ABORTED']);

/** Thrown inside the flow to end it with an outcome. */
class Stop extends Error {
  constructor(readonly outcome: UploadOutcome) {
    super(outcome.kind);
  }
}

function parseDoc(res: HttpResponse): UploadDoc {
  try {
    const d = JSON.parse(res.body.toString('utf8')) as UploadDoc;
    if (typeof d === 'object' && d !== null) return d;
  } catch {
    // fall through
  }
  throw new Stop({ kind: 'retry', reason: `upload API: unreadable answer (HTTP ${res.status})` });
}

function expectOk(res: HttpResponse, what: string, ok: number[]): void {
  if (ok.includes(res.status)) return;
  const o = classifyHttpError(res.status, res.headers, res.body);
  throw new Stop(o.kind === 'reject' ? { kind: 'reject', reason: `${what}: ${o.reason}` } : o);
}

function verdict(doc: UploadDoc): UploadOutcome | undefined {
  if (doc.state === 'stored') return { kind: 'done' };
  if (doc.state !== 'failed') return undefined;
  const reason = doc.result?.reason ?? 'UNKNOWN';
  if (TRANSIENT_RESULTS.has(reason)) return { kind: 'retry', reason: `upload API: ${reason}` };
  const fr = doc.failureReason ?? doc.result?.failureReason;
  const code = typeof fr === 'number' ? ` (FailureReason 0x${fr.toString(16).toUpperCase().padStart(4, '0')})` : '';
  return { kind: 'reject', reason: `upload API: ${reason.slice(0, 60)}${code}` };
}

export interface ResumeHandle {
  /** statusUrl of an upload an earlier attempt started (from the spool record). */
  statusUrl?: string;
  /** Called once a new upload exists, so a later attempt can resume it (the uploader records it). */
  onCreated?: (statusUrl: string) => Promise<void>;
}

export async function uploadLargeObject(
  ctx: TransferContext,
  file: string,
  meta: { studyInstanceUID?: string },
  options: LargeObjectOptions = {},
  resume: ResumeHandle = {},
): Promise<UploadOutcome> {
  const size = (await fs.promises.stat(file)).size;
  const json = async (method: string, url: string, body?: unknown): Promise<HttpResponse> => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return httpRequest({
      method,
      url,
      headers: { ...(await ctx.authHeaders()), Accept: 'application/json', ...(text !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(text !== undefined ? { body: () => text, contentLength: Buffer.byteLength(text) } : {}),
      timeoutMs: ctx.timeoutMs,
      agents: ctx.agents,
    });
  };
  let statusUrl: string | undefined;
  try {
    let doc: UploadDoc | undefined;
    // Resume an upload an earlier attempt started: only the parts the store lacks are sent again
    // (a 10 GB whole-slide image is not restarted from zero after a network error or a crash).
    if (resume.statusUrl) {
      const s = await json('GET', resume.statusUrl);
      if (s.status === 401 || s.status === 403) expectOk(s, 'upload status', [200]);
      if (s.status === 200) {
        const d = parseDoc(s);
        if ((d as { size?: unknown }).size === size && d.state !== 'failed') {
          doc = d;
          statusUrl = resume.statusUrl;
        }
      }
      // Anything else (gone, expired, failed, another size): start afresh.
    }
    if (doc?.state === 'stored') return { kind: 'done' };
    if (!doc || doc.state === 'uploading') {
      if (!doc) {
        const created = await json('POST', `${ctx.dicomWebUrl}/uploads`, { size, ...(meta.studyInstanceUID ? { studyInstanceUID: meta.studyInstanceUID } : {}) });
        if (created.status === 404 || created.status === 405) throw new Stop({ kind: 'reject', reason: `the archive has no upload API (${describeHttpError(created.status, created.body)})` });
        expectOk(created, 'create upload', [200, 201]);
        doc = parseDoc(created);
        statusUrl = doc.statusUrl;
        if (statusUrl) await resume.onCreated?.(statusUrl);
      }
      const partCount = doc.partCount ?? 0;
      const partSize = doc.partSize ?? 0;
      if (!statusUrl || !doc.completeUrl || !Number.isSafeInteger(partCount) || partCount < 1 || partCount > 10_000 || !Number.isSafeInteger(partSize) || partSize < 1) {
        throw new Stop({ kind: 'retry', reason: 'upload API: incomplete upload description' });
      }
      const completeUrl = doc.completeUrl;
      const etags = new Map<number, string>();
      for (const u of (doc as { uploadedParts?: Array<{ partNumber: number; etag: string }> }).uploadedParts ?? []) etags.set(u.partNumber, u.etag);
      // At most 1000 targets per answer: page through the status for the rest.
      const targets = new Map<number, PartTarget>();
      for (let page = 0; page < 20; page++) {
        for (const p of doc.parts ?? []) if (!etags.has(p.partNumber)) targets.set(p.partNumber, p);
        if (targets.size + etags.size >= partCount || doc.nextPartNumberMarker === undefined) break;
        const next = await json('GET', `${statusUrl}?partNumberMarker=${doc.nextPartNumberMarker}`);
        expectOk(next, 'upload status', [200]);
        doc = parseDoc(next);
      }
      if (targets.size + etags.size !== partCount) throw new Stop({ kind: 'retry', reason: `upload API: ${targets.size + etags.size} of ${partCount} parts known` });
      // Part n covers [(n-1)·partSize, …) — never trust a size that would read past the file.
      const plan = [...targets.values()].map((p) => ({ ...p, start: (p.partNumber - 1) * partSize }));
      if (plan.some((p) => !Number.isSafeInteger(p.size) || p.size < 1 || p.start + p.size > size)) throw new Stop({ kind: 'retry', reason: 'upload API: part sizes do not fit the file' });
      await mapLimit(plan, options.partConcurrency ?? 4, async (p) => {
        const res = await httpRequest({
          method: p.method ?? 'PUT',
          url: p.url,
          headers: { ...(p.headers ?? {}) },
          contentLength: p.size,
          body: () => fs.createReadStream(file, { start: p.start, end: p.start + p.size - 1, highWaterMark: 256 * 1024 }),
          timeoutMs: ctx.timeoutMs,
          agents: ctx.agents,
        });
        // A refused part URL (expired, signature) is not our credentials' fault: a new attempt gets fresh URLs.
        if (res.status === 401 || res.status === 403) throw new Stop({ kind: 'retry', reason: `part ${p.partNumber}: ${describeHttpError(res.status, res.body)}` });
        expectOk(res, `part ${p.partNumber}`, [200, 201, 204]);
        const etag = res.headers.etag;
        if (!etag) throw new Stop({ kind: 'retry', reason: `part ${p.partNumber}: no ETag in the answer` });
        etags.set(p.partNumber, etag);
      });
      const parts = [...etags].sort((a, b) => a[0] - b[0]).map(([partNumber, etag]) => ({ partNumber, etag }));
      const done = await json('POST', completeUrl, { parts });
      expectOk(done, 'complete upload', [200, 202]);
      doc = parseDoc(done);
    }
    const deadline = Date.now() + (options.ingestTimeoutMs ?? 15 * 60_000);
    let interval = options.pollIntervalMs ?? 250;
    for (;;) {
      const v = verdict(doc);
      if (v) return v;
      if (Date.now() > deadline) return { kind: 'retry', reason: 'upload API: ingest did not finish in time' };
      await sleep(interval);
      interval = Math.min(interval * 2, 5_000);
      const s = await json('GET', statusUrl!);
      expectOk(s, 'upload status', [200]);
      doc = parseDoc(s);
    }
  } catch (e) {
    // A refused object will not be resumed: drop its staged parts (best effort). Transient failures
    // keep the upload, so the next attempt sends only what is missing.
    if (statusUrl && e instanceof Stop && e.outcome.kind === 'reject') await json('DELETE', statusUrl).catch(() => undefined);
    if (e instanceof Stop) return e.outcome;
    throw e;
  }
}
