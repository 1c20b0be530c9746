/**
 * The gateway's DICOMweb client for the archive: QIDO-RS searches (PS3.18
 * §10.6) followed page by page, WADO-RS retrieval of one instance's original
 * bytes as a stream (PS3.18 §10.4, `transfer-syntax=*`), and the credentials
 * of auth.ts on every request (one fresh-token retry after a 401).
 *
 * Every request is bounded in time: `requestTimeoutMs` for a search (headers
 * and body), and for a retrieve the same limit between two body chunks, so a
 * large instance on a slow link is fine but a stalled one is not. Responses
 * are bounded in size (JSON pages) or streamed (instances, never buffered
 * whole). Errors are `CloudError`s with a stable code and the HTTP status.
 */
import type { CloudConfig } from '../config-types';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import { readFileMeta } from '../../../functions/core/dicom/part10';
import { DicomParseError, DEFAULT_PARSE_LIMITS } from '../../../functions/core/dicom/part10-types';
import { isValidUID } from '../../../functions/core/dicom/uid';
import { parseMultipartRelated, readMultipart, type MultipartPart } from '../../../functions/core/dicomweb/multipart';
import { Tag } from '../../../functions/core/dicom/tags';
import { concatBytes } from '../../../functions/core/bytes';
import { createAuthProvider, isTimeout, causeText, readLimitedText, type AuthProvider } from './auth';
import { CloudError } from './errors';
import { readAhead } from './read-ahead';

export interface DicomWebClientDeps {
  fetch?: typeof fetch;
  /** Clock for the token cache (tests). */
  now?: () => number;
  /** QIDO `limit` per page (the archive may cap it lower; paging copes). Default 200. */
  pageSize?: number;
  /** A search yielding more matches than this fails with CLOUD_TOO_MANY_RESULTS. Default 100 000. */
  maxSearchResults?: number;
  /** Largest QIDO page body accepted. Default 64 MiB. */
  maxPageBytes?: number;
  /** Further attempts after a transient failure (429/502/503/504, connection refused or reset). Default 2. */
  retries?: number;
}

export interface RetrieveOptions {
  /**
   * Read the answer up to this many bytes ahead of the consumer (read-ahead.ts),
   * so the download overlaps with what the consumer does with the bytes. 0 or
   * absent: read only when the consumer asks.
   */
  readAheadBytes?: number;
}

export interface RetrievedInstance {
  /** From the instance's file meta (0002,0010). */
  transferSyntaxUID: string;
  /** Where the data set starts in `body` (after preamble, "DICM" and file meta): DIMSE sends only what follows. */
  datasetOffset: number;
  /** The Part 10 file as stored: preamble, file meta, data set. Single use; stop reading to cancel. */
  body: AsyncIterable<Uint8Array>;
}

/** One instance of a series retrieve (retrieveSeries). */
export interface RetrievedSeriesInstance extends RetrievedInstance {
  /** From the file meta (0002,0003), else the part's Content-Location; '' when neither names it. */
  sopInstanceUID: string;
}

/** The media type of original bytes (PS3.18 §8.7.3.5.2: `transfer-syntax=*` = as stored). */
export const ACCEPT_ORIGINAL_INSTANCE = 'multipart/related; type="application/dicom"; transfer-syntax=*';
/** One instance's stored bytes alone (this archive's single-part extension, docs/conformance.md). */
export const ACCEPT_ORIGINAL_BYTES = 'application/dicom; transfer-syntax=*';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Where a redirect may take us: https anywhere (a presigned object store
 * URL), plain http only to the archive's own origin or a loopback host.
 */
function redirectTarget(from: string, location: string | null, base: string): { url: string; sameOrigin: boolean } {
  let target: URL;
  try {
    target = new URL(location ?? '', from);
  } catch {
    throw new CloudError('CLOUD_PROTOCOL', 'retrieve instance: a redirect without a usable Location');
  }
  if (!location) throw new CloudError('CLOUD_PROTOCOL', 'retrieve instance: a redirect without a Location');
  const sameOrigin = target.origin === new URL(base).origin;
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname);
  if (target.protocol === 'https:' || (target.protocol === 'http:' && (sameOrigin || loopback))) return { url: target.toString(), sameOrigin };
  throw new CloudError('CLOUD_PROTOCOL', 'retrieve instance: refusing a redirect to a non-https URL');
}

const DICOM_JSON = 'application/dicom+json';
/** Most instances accepted in one series answer. */
const MAX_SERIES_PARTS = 1_000_000;
/** Longest head buffered while looking for the end of the file meta. */
const MAX_FILE_META_BYTES = 1024 * 1024;

const UID_SEGMENT = '[0-9.]{1,64}';
/** The QIDO resources of PS3.18 §10.6.1 (Table 10.6.1-2). */
const SEARCH_PATH = new RegExp(
  `^/(?:studies|series|instances|studies/${UID_SEGMENT}/(?:series|instances)|studies/${UID_SEGMENT}/series/${UID_SEGMENT}/instances)$`,
);

export class DicomWebClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;
  private readonly auth: AuthProvider;
  private readonly timeoutMs: number;
  private readonly pageSize: number;
  private readonly maxSearchResults: number;
  private readonly maxPageBytes: number;
  private readonly retries: number;

  constructor(cfg: CloudConfig, deps: DicomWebClientDeps = {}) {
    this.base = cfg.dicomWebUrl.replace(/\/+$/, '');
    this.fetch = deps.fetch ?? globalThis.fetch;
    this.timeoutMs = cfg.requestTimeoutMs;
    this.pageSize = deps.pageSize ?? 200;
    this.maxSearchResults = deps.maxSearchResults ?? 100_000;
    this.maxPageBytes = deps.maxPageBytes ?? 64 * 1024 * 1024;
    this.retries = Math.max(0, deps.retries ?? 2);
    this.auth = createAuthProvider(cfg.auth, { fetch: this.fetch, now: deps.now ?? Date.now, timeoutMs: cfg.requestTimeoutMs });
  }

  /** Credential headers for a request to the archive (the uploader uses them for STOW too). */
  authHeaders(): Promise<Record<string, string>> {
    return this.auth.headers();
  }

  /**
   * QIDO-RS at `path` (`/studies`, `/studies/{study}/series`, …). `limit` and
   * `offset` are ours: pages are requested until one comes back short and
   * without `Warning: 299` (PS3.18 §8.3.4.4: more results exist), so the
   * archive capping our limit does not lose matches.
   */
  async *search(path: string, query: URLSearchParams): AsyncIterable<DicomJsonDataset> {
    if (!SEARCH_PATH.test(path) || path.split('/').some((s) => /^[0-9.]+$/.test(s) && !isValidUID(s))) {
      throw new CloudError('CLOUD_INVALID_UID', 'search: not a QIDO-RS resource path with valid UIDs');
    }
    const params = new URLSearchParams(query);
    params.delete('limit');
    params.delete('offset');
    let offset = 0;
    let previousFirst: string | undefined;
    for (;;) {
      params.set('limit', String(this.pageSize));
      params.set('offset', String(offset));
      const { results, more } = await this.searchPage(`${this.base}${path}?${params.toString()}`);
      if (results.length === 0) return;
      // An origin server that ignores offset would hand us page one forever.
      const first = JSON.stringify(results[0]);
      if (first === previousFirst) throw new CloudError('CLOUD_PROTOCOL', 'search: the archive returned the same page twice (offset ignored?)');
      previousFirst = first;
      if (offset + results.length > this.maxSearchResults) {
        throw new CloudError('CLOUD_TOO_MANY_RESULTS', `search: more than ${this.maxSearchResults} matches; narrow the query`);
      }
      for (const r of results) yield r;
      offset += results.length;
      if (results.length < this.pageSize && !more) return;
    }
  }

  /** Does the archive hold this instance? (QIDO by SOP Instance UID, within the study when known.) */
  async hasInstance(sopInstanceUID: string, studyUID?: string): Promise<boolean> {
    assertUids(studyUID === undefined ? [sopInstanceUID] : [sopInstanceUID, studyUID]);
    const path = studyUID ? `/studies/${studyUID}/instances` : '/instances';
    const params = new URLSearchParams({ SOPInstanceUID: sopInstanceUID, includefield: '00080018', limit: '1' });
    const { results } = await this.searchPage(`${this.base}${path}?${params.toString()}`);
    return results.some((r) => r['00080018']?.Value?.[0] === sopInstanceUID);
  }

  /**
   * Which of these instances the archive holds: QIDO with UID list matching
   * (PS3.4 C.2.2.2.2), `chunk` UIDs per request (storage commitment asks
   * about many instances at once; one request each would not scale).
   */
  async instancesPresent(sopInstanceUIDs: readonly string[], chunk = 50): Promise<Set<string>> {
    assertUids([...sopInstanceUIDs]);
    const wanted = [...new Set(sopInstanceUIDs)];
    const found = new Set<string>();
    for (let i = 0; i < wanted.length; i += chunk) {
      const part = wanted.slice(i, i + chunk);
      const params = new URLSearchParams({ SOPInstanceUID: part.join(','), includefield: '00080018' });
      for await (const r of this.search('/instances', params)) {
        const sop = r['00080018']?.Value?.[0];
        if (typeof sop === 'string' && part.includes(sop)) found.add(sop);
      }
    }
    return found;
  }

  /**
   * The stored transfer syntax of each instance of a series, by SOP Instance
   * UID. C-MOVE/C-GET need it to propose presentation contexts before any
   * byte is fetched. Asked first from this archive's download manifest
   * (`GET …/series/{uid}/download`: small, paged, and served in AWS where a
   * large series' metadata is not); a DICOMweb server without it is asked for
   * the series metadata (PS3.18 §10.4.1.1.2, Available Transfer Syntax UID
   * (0008,3002), which this archive sets per instance).
   */
  async seriesTransferSyntaxes(studyUID: string, seriesUID: string): Promise<Map<string, string>> {
    assertUids([studyUID, seriesUID]);
    const seriesUrl = `${this.base}/studies/${studyUID}/series/${seriesUID}`;
    try {
      return await this.manifestTransferSyntaxes(`${seriesUrl}/download`);
    } catch (error) {
      // Not this archive (no manifest route): the standard way.
      if (!(error instanceof CloudError && error.code === 'CLOUD_HTTP' && [400, 404, 405, 406, 501].includes(error.status ?? 0))) throw error;
    }
    const out = new Map<string, string>();
    for (const ds of await this.getJsonArray(`${seriesUrl}/metadata`, DICOM_JSON, 'series metadata')) {
      const sop = (ds as DicomJsonDataset)?.['00080018']?.Value?.[0];
      const ts = (ds as DicomJsonDataset)?.['00083002']?.Value?.[0];
      if (typeof sop === 'string' && typeof ts === 'string') out.set(sop, ts);
    }
    return out;
  }

  private async manifestTransferSyntaxes(first: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const origin = new URL(this.base).origin;
    let url: string | undefined = first;
    for (let pages = 0; url; pages++) {
      if (pages > 10_000) throw new CloudError('CLOUD_PROTOCOL', 'download manifest: too many pages');
      const manifest = (await this.getJson(url, 'application/json', 'download manifest')) as { instances?: unknown; next?: unknown };
      if (!Array.isArray(manifest?.instances)) throw new CloudError('CLOUD_PROTOCOL', 'download manifest: no instance list');
      for (const e of manifest.instances as Array<{ sopInstanceUID?: unknown; transferSyntaxUID?: unknown }>) {
        if (typeof e?.sopInstanceUID === 'string' && typeof e.transferSyntaxUID === 'string') out.set(e.sopInstanceUID, e.transferSyntaxUID);
      }
      const next: URL | undefined = typeof manifest.next === 'string' ? new URL(manifest.next, url) : undefined;
      // Our credentials follow only links to the archive itself.
      if (next && next.origin !== origin) throw new CloudError('CLOUD_PROTOCOL', 'download manifest: next page on another origin');
      url = next?.toString();
    }
    return out;
  }

  private async getJsonArray(url: string, accept: string, what: string): Promise<unknown[]> {
    const json = await this.getJson(url, accept, what);
    if (!Array.isArray(json)) throw new CloudError('CLOUD_PROTOCOL', `${what}: not a JSON array`);
    return json;
  }

  private async getJson(url: string, accept: string, what: string): Promise<unknown> {
    const timer = new RequestTimer(this.timeoutMs);
    try {
      const res = await this.send(url, accept, timer);
      if (res.status !== 200) throw await httpError(res, what);
      const text = await mapStreamErrors(() => readText(res, this.maxPageBytes), timer);
      try {
        return JSON.parse(text);
      } catch (error) {
        throw new CloudError('CLOUD_PROTOCOL', `${what}: the answer is not JSON`, { cause: error, status: res.status });
      }
    } finally {
      timer.done();
    }
  }

  /**
   * One instance's original bytes (WADO-RS RetrieveInstance with
   * `transfer-syntax=*`). Resolves once the file meta has arrived (so the
   * transfer syntax is known); the rest streams.
   *
   * Asked for as multipart/related (PS3.18 §8.7.3.5.2). An archive that
   * cannot answer that in one response (this archive in AWS Lambda: 413
   * RESPONSE_TOO_LARGE above ~4.5 MB) is asked again for the bytes alone
   * (`application/dicom; transfer-syntax=*`), which it answers with a 303 to
   * a short-lived presigned URL; that URL is fetched without our credentials.
   */
  async retrieveInstance(studyUID: string, seriesUID: string, sopInstanceUID: string, options: RetrieveOptions = {}): Promise<RetrievedInstance> {
    assertUids([studyUID, seriesUID, sopInstanceUID]);
    const url = `${this.base}/studies/${studyUID}/series/${seriesUID}/instances/${sopInstanceUID}`;
    try {
      return await this.retrieveFrom(url, ACCEPT_ORIGINAL_INSTANCE, options);
    } catch (error) {
      if (error instanceof CloudError && error.code === 'CLOUD_HTTP' && error.status === 413) return this.retrieveFrom(url, ACCEPT_ORIGINAL_BYTES, options);
      throw error;
    }
  }

  /**
   * Every instance of a series as stored, in one response (WADO-RS
   * RetrieveSeries, multipart/related, `transfer-syntax=*`): one request
   * instead of one per instance, and the archive streams the parts back to
   * back. Each instance is yielded once its file meta has arrived, in the
   * archive's order, named by its Media Storage SOP Instance UID (0002,0003)
   * (or the part's Content-Location). Read or abandon an instance's body
   * before asking for the next one (what is left of it is then skipped,
   * never buffered). Stopping the iteration, or `signal`, cancels the
   * download. An archive that cannot answer in one response (413 in AWS
   * Lambda) fails with CLOUD_HTTP before any instance: ask per instance.
   */
  async *retrieveSeries(studyUID: string, seriesUID: string, options: RetrieveOptions & { signal?: AbortSignal } = {}): AsyncGenerator<RetrievedSeriesInstance> {
    assertUids([studyUID, seriesUID]);
    const timer = new RequestTimer(this.timeoutMs);
    const onAbort = () => timer.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let parts: AsyncGenerator<MultipartPart, void, undefined> | undefined;
    let complete = false;
    try {
      if (options.signal?.aborted) return;
      const res = await this.openRetrieve(`${this.base}/studies/${studyUID}/series/${seriesUID}`, ACCEPT_ORIGINAL_INSTANCE, timer, 'retrieve series');
      const boundary = multipartBoundary(res, 'retrieve series');
      parts = readMultipart(this.bodyChunks(res.body!, timer, options), boundary, { maxParts: MAX_SERIES_PARTS, maxHeaderBytes: 16 * 1024, maxBodyBytes: Number.MAX_SAFE_INTEGER });
      for (;;) {
        const next = await mapStreamErrors(() => parts!.next(), timer);
        if (next.done) break;
        const part = next.value;
        assertDicomPart(part, 'retrieve series');
        const chunks = part.body[Symbol.asyncIterator]();
        const head = await readHead(chunks, timer, 'retrieve series');
        const fromMeta = head.fileMeta[Tag.MediaStorageSOPInstanceUID]?.Value?.[0];
        const sopInstanceUID = (typeof fromMeta === 'string' ? fromMeta.trim() : '') || lastUidOf(part.contentLocation);
        // What the caller leaves of this body is skipped by the multipart reader when it asks for the next part.
        yield { sopInstanceUID, transferSyntaxUID: head.transferSyntaxUID, datasetOffset: head.datasetOffset, body: partBody(head, chunks, timer) };
      }
      complete = true;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      // Stopped before the end (cancel, an error, a consumer that has enough): stop the download too.
      if (!complete) timer.abort();
      timer.done();
      await parts?.return(undefined).catch(() => undefined);
    }
  }

  private async retrieveFrom(url: string, accept: string, options: RetrieveOptions): Promise<RetrievedInstance> {
    const timer = new RequestTimer(this.timeoutMs);
    let finished = false;
    try {
      const res = await this.openRetrieve(url, accept, timer, 'retrieve instance');
      const contentType = res.headers.get('content-type') ?? '';
      let chunks: AsyncIterator<Uint8Array>;
      let close: () => Promise<unknown>;
      if (/^\s*multipart\//i.test(contentType)) {
        const boundary = multipartBoundary(res, 'retrieve instance');
        // One part expected; the whole body is bounded by the idle timer, not by size (instances can be GBs).
        const parts = readMultipart(this.bodyChunks(res.body!, timer, options), boundary, { maxParts: 1, maxHeaderBytes: 16 * 1024, maxBodyBytes: Number.MAX_SAFE_INTEGER });
        close = () => parts.return(undefined);
        const first = await mapStreamErrors(() => parts.next(), timer);
        if (first.done) throw new CloudError('CLOUD_PROTOCOL', 'retrieve instance: no part in the answer');
        assertDicomPart(first.value, 'retrieve instance');
        chunks = first.value.body[Symbol.asyncIterator]();
      } else {
        // The bytes alone (application/dicom, or whatever an object store labels them): the DICM check below decides.
        const single = this.bodyChunks(res.body!, timer, options);
        chunks = single;
        close = () => single.return!(undefined);
      }
      // Read until the file meta is complete: the caller needs the transfer syntax before the bytes.
      const head = await readHead(chunks, timer, 'retrieve instance');
      finished = true;
      const body = streamRest(head, chunks, close, timer);
      return { transferSyntaxUID: head.transferSyntaxUID, datasetOffset: head.datasetOffset, body };
    } finally {
      if (!finished) timer.abort();
    }
  }

  /** GET a retrieve URL (following one redirect as described at retrieveInstance); a 200 with a body, else a CloudError. */
  private async openRetrieve(url: string, accept: string, timer: RequestTimer, what: string): Promise<Response> {
    let res = await this.send(url, accept, timer, 'manual');
    if (REDIRECTS.has(res.status)) {
      const target = redirectTarget(url, res.headers.get('location'), this.base);
      await res.body?.cancel().catch(() => undefined);
      // A presigned URL carries its own credential: ours go only to the archive's own origin.
      const headers = target.sameOrigin ? { Accept: accept, ...(await this.auth.headers()) } : { Accept: accept };
      try {
        res = await this.fetch(target.url, { headers, signal: timer.signal, redirect: 'error' });
      } catch (error) {
        throw networkError(error, timer);
      }
    }
    timer.pause(); // from here on, only reads are timed
    if (res.status !== 200) throw await httpError(res, what);
    if (!res.body) throw new CloudError('CLOUD_PROTOCOL', `${what}: empty answer`, { status: res.status });
    return res;
  }

  /** The response body's chunks, each read timed; read ahead of the consumer when asked (bounded). */
  private bodyChunks(body: ReadableStream<Uint8Array>, timer: RequestTimer, options: RetrieveOptions): AsyncIterableIterator<Uint8Array> {
    const chunks = timedChunks(body, timer);
    if (!options.readAheadBytes || options.readAheadBytes <= 0) return chunks;
    return readAhead(chunks, { maxBytes: options.readAheadBytes, abort: () => timer.abort() });
  }

  // ------------------------------------------------------------ requests

  private async searchPage(url: string): Promise<{ results: DicomJsonDataset[]; more: boolean }> {
    const timer = new RequestTimer(this.timeoutMs);
    try {
      const res = await this.send(url, DICOM_JSON, timer);
      // 204 was "no match" in older editions of PS3.18.
      if (res.status === 204) return { results: [], more: false };
      if (res.status !== 200) throw await httpError(res, 'search');
      const text = await mapStreamErrors(() => readText(res, this.maxPageBytes), timer);
      let json: unknown;
      try {
        json = text.trim() === '' ? [] : JSON.parse(text);
      } catch (error) {
        throw new CloudError('CLOUD_PROTOCOL', 'search: the answer is not JSON', { cause: error, status: res.status });
      }
      if (!Array.isArray(json) || !json.every((r) => typeof r === 'object' && r !== null && !Array.isArray(r))) {
        throw new CloudError('CLOUD_PROTOCOL', 'search: the answer is not an array of DICOM JSON objects', { status: res.status });
      }
      return { results: json as DicomJsonDataset[], more: hasMoreWarning(res.headers.get('warning')) };
    } finally {
      timer.done();
    }
  }

  /**
   * GET with credentials. After a 401, once more with a fresh token (when the
   * credential can be renewed). Transient answers — 429, 502, 503, 504 or a
   * refused/reset connection — are tried again (GETs are safe, RFC 9110
   * §9.2.1) up to `retries` times, after `Retry-After` (capped) or a short
   * backoff; all within the request's timeout.
   */
  private async send(url: string, accept: string, timer: RequestTimer, redirect: RequestRedirect = 'follow'): Promise<Response> {
    let renewed = false;
    for (let attempt = 0; ; attempt++) {
      const auth = await this.auth.headers();
      let res: Response;
      try {
        res = await this.fetch(url, { headers: { Accept: accept, ...auth }, signal: timer.signal, redirect });
      } catch (error) {
        const e = networkError(error, timer);
        if (e.code === 'CLOUD_UNREACHABLE' && attempt < this.retries) {
          await backoff(attempt, undefined, timer.signal);
          continue;
        }
        throw e;
      }
      if (res.status === 401 && !renewed && this.auth.invalidate(auth)) {
        renewed = true;
        await res.body?.cancel().catch(() => undefined);
        continue;
      }
      if (TRANSIENT.has(res.status) && attempt < this.retries) {
        await res.body?.cancel().catch(() => undefined);
        await backoff(attempt, res.headers.get('retry-after'), timer.signal);
        if (timer.signal.aborted) throw networkError(timer.signal.reason, timer);
        continue;
      }
      return res;
    }
  }
}

/** Answers worth asking again: throttling and a gateway or service that is briefly unavailable. */
const TRANSIENT = new Set([429, 502, 503, 504]);
const MAX_RETRY_AFTER_MS = 5000;

/** 250 ms, 1 s (× jitter), or the server's Retry-After seconds when it gives a small one. */
function backoff(attempt: number, retryAfter: string | null | undefined, signal: AbortSignal): Promise<void> {
  const seconds = retryAfter && /^\d{1,4}$/.test(retryAfter.trim()) ? Number(retryAfter) : undefined;
  const base = seconds !== undefined ? Math.min(seconds * 1000, MAX_RETRY_AFTER_MS) : 250 * 4 ** attempt;
  const ms = seconds !== undefined ? base : base * (0.75 + Math.random() / 2);
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

// ------------------------------------------------------------ helpers

function assertUids(uids: string[]): void {
  for (const uid of uids) if (!isValidUID(uid)) throw new CloudError('CLOUD_INVALID_UID', 'not a valid UID (PS3.5 §9)');
}

/** `Warning: 299 <agent> "<text>"` (RFC 7234 §5.5; PS3.18 §8.3.4.4), possibly among other warnings. */
function hasMoreWarning(value: string | null): boolean {
  return value !== null && /(?:^|,)\s*299\s/.test(value);
}

async function httpError(res: Response, what: string): Promise<CloudError> {
  await res.body?.cancel().catch(() => undefined);
  const code = res.status === 401 || res.status === 403 ? 'CLOUD_AUTH' : 'CLOUD_HTTP';
  return new CloudError(code, `${what}: the archive answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`, { status: res.status });
}

function networkError(error: unknown, timer: RequestTimer): CloudError {
  if (error instanceof CloudError) return error;
  if (timer.timedOut || isTimeout(error)) return new CloudError('CLOUD_TIMEOUT', `no answer from the archive within ${timer.ms} ms`, { cause: error });
  return new CloudError('CLOUD_UNREACHABLE', `the archive is unreachable: ${causeText(error)}`, { cause: error });
}

async function mapStreamErrors<T>(step: () => Promise<T>, timer: RequestTimer): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof CloudError) throw error;
    const code = (error as { code?: unknown }).code;
    if (code === 'MULTIPART_MALFORMED' || code === 'MULTIPART_LIMIT') {
      throw new CloudError('CLOUD_PROTOCOL', `the archive's multipart answer is malformed: ${(error as Error).message}`, { cause: error });
    }
    throw networkError(error, timer);
  }
}

async function readText(res: Response, max: number): Promise<string> {
  const text = await readLimitedText(res, max);
  if (text === undefined) throw new CloudError('CLOUD_PROTOCOL', `an answer larger than ${max} bytes`, { status: res.status });
  return text;
}

/**
 * One AbortController per request: aborts when the archive makes us wait
 * longer than `ms` — for the headers, or for the next body chunk while we are
 * asking for one (`arm` before a read, `pause` after). Time the consumer
 * spends elsewhere (sending the previous instance to a slow DIMSE peer, a
 * prefetched instance waiting its turn) does not count.
 */
class RequestTimer {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private finished = false;
  timedOut = false;
  constructor(readonly ms: number) {
    this.arm();
  }
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  arm(): void {
    if (this.finished) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.timer = undefined;
      this.controller.abort(new CloudError('CLOUD_TIMEOUT', `no data from the archive for ${this.ms} ms`));
    }, this.ms);
    this.timer.unref?.();
  }
  pause(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
  done(): void {
    this.finished = true;
    this.pause();
  }
  abort(): void {
    this.done();
    if (!this.controller.signal.aborted) this.controller.abort();
  }
}

async function* timedChunks(body: ReadableStream<Uint8Array>, timer: RequestTimer): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  // Aborting the request does not always fail a read already waiting on the body (seen with
  // undici once the answer's bytes are all in): cancelling the reader ends that read for sure.
  const onAbort = () => void reader.cancel().catch(() => undefined);
  timer.signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      timer.arm();
      const r = await reader.read();
      timer.pause();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    timer.signal.removeEventListener('abort', onAbort);
    await reader.cancel().catch(() => undefined);
  }
}

/** One instance's answer: its part (partBody), then the download is closed; a consumer that stopped early cancels it. */
async function* streamRest(head: Head, chunks: AsyncIterator<Uint8Array>, close: () => Promise<unknown>, timer: RequestTimer): AsyncGenerator<Uint8Array> {
  let complete = false;
  try {
    yield* partBody(head, chunks, timer);
    complete = true;
  } finally {
    timer.done();
    // Stop reading after our one part (an epilogue or further parts are not ours); a consumer that stopped early cancels the download.
    if (!complete) timer.abort();
    await close().catch(() => undefined);
  }
}

function multipartBoundary(res: Response, what: string): string {
  try {
    return parseMultipartRelated(res.headers.get('content-type') ?? '').boundary;
  } catch (error) {
    void res.body?.cancel().catch(() => undefined);
    throw new CloudError('CLOUD_PROTOCOL', `${what}: the answer is not multipart/related`, { cause: error, status: res.status });
  }
}

function assertDicomPart(part: MultipartPart, what: string): void {
  const partType = (part.contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (partType !== '' && partType !== 'application/dicom') throw new CloudError('CLOUD_PROTOCOL', `${what}: the part is not application/dicom`);
}

/** The last path segment of a part's Content-Location when it is a UID (…/instances/{uid}). */
function lastUidOf(location: string | undefined): string {
  const last = (location ?? '').replace(/[?#].*$/, '').split('/').pop() ?? '';
  return isValidUID(last) ? last : '';
}

interface Head {
  /** The chunks read so far (kept: they are the start of the body). */
  chunks: Uint8Array[];
  ended: boolean;
  transferSyntaxUID: string;
  datasetOffset: number;
  fileMeta: DicomJsonDataset;
}

/** Read until the file meta is complete: the caller needs the transfer syntax (and which instance it is) before the bytes. */
async function readHead(chunks: AsyncIterator<Uint8Array>, timer: RequestTimer, what: string): Promise<Head> {
  const head: Uint8Array[] = [];
  let headLength = 0;
  let ended = false;
  for (;;) {
    const r = await mapStreamErrors(() => chunks.next(), timer);
    if (r.done) ended = true;
    else {
      head.push(r.value);
      headLength += r.value.length;
    }
    const bytes = head.length === 1 ? head[0]! : concatBytes(head, headLength);
    try {
      const meta = readFileMeta(bytes, DEFAULT_PARSE_LIMITS, ended);
      return { chunks: head, ended, transferSyntaxUID: meta.transferSyntaxUID, datasetOffset: meta.datasetOffset, fileMeta: meta.fileMeta };
    } catch (error) {
      const needMore = error instanceof DicomParseError && (error.code === 'NEED_MORE_DATA' || error.code === 'TRUNCATED');
      if (!needMore || ended) throw new CloudError('CLOUD_PROTOCOL', `${what}: not a Part 10 file (${(error as Error).message})`, { cause: error });
      if (headLength > MAX_FILE_META_BYTES) throw new CloudError('CLOUD_PROTOCOL', `${what}: file meta larger than 1 MiB`);
    }
  }
}

/** One part of a series answer: its head, then the rest of the part (stopping early leaves the rest to the multipart reader, the series goes on). */
async function* partBody(head: Head, chunks: AsyncIterator<Uint8Array>, timer: RequestTimer): AsyncGenerator<Uint8Array> {
  for (const h of head.chunks) yield h;
  if (head.ended) return;
  for (;;) {
    const r = await mapStreamErrors(() => chunks.next(), timer);
    if (r.done) return;
    yield r.value;
  }
}
