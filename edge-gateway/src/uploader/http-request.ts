/**
 * One HTTP request with a streamed body of known length (node:http/https, not
 * fetch): the uploader sends files of any size without buffering them and
 * always with a Content-Length — presigned S3 part URLs sign it, and API
 * Gateway does not take chunked request bodies. The response body is read up
 * to a bound (STOW responses and upload statuses are small JSON documents).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** Body factory (called once); its length must be `contentLength`. */
  body?: () => Readable | Uint8Array | string;
  contentLength?: number;
  /** Whole-request deadline (connect, send, answer). */
  timeoutMs: number;
  /** Response bytes kept (default 4 MiB); more → error. */
  maxResponseBytes?: number;
  /** Keep-alive agents, one per protocol. */
  agents?: { http?: http.Agent; https?: https.Agent };
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Network-level failure (no HTTP answer): always worth a retry. */
export class HttpTransportError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HttpTransportError';
  }
}

export function httpRequest(req: HttpRequest): Promise<HttpResponse> {
  const url = new URL(req.url);
  const isHttps = url.protocol === 'https:';
  if (!isHttps && url.protocol !== 'http:') return Promise.reject(new HttpTransportError('BAD_URL', `unsupported URL scheme ${url.protocol}`));
  const lib = isHttps ? https : http;
  const maxResponseBytes = req.maxResponseBytes ?? 4 * 1024 * 1024;
  const headers: Record<string, string> = { ...(req.headers ?? {}) };
  if (req.contentLength !== undefined) headers['Content-Length'] = String(req.contentLength);
  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false;
    let source: Readable | undefined;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      source?.destroy();
      request.destroy();
      reject(e);
    };
    const request = lib.request(
      url,
      { method: req.method, headers, agent: (isHttps ? req.agents?.https : req.agents?.http) ?? undefined },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxResponseBytes) {
            fail(new HttpTransportError('RESPONSE_TOO_LARGE', `response over ${maxResponseBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
        res.on('error', (e) => fail(new HttpTransportError(codeOf(e), 'the response broke off', { cause: e })));
        res.on('aborted', () => fail(new HttpTransportError('ECONNRESET', 'the response broke off')));
      },
    );
    const timer = setTimeout(() => fail(new HttpTransportError('ETIMEDOUT', `no complete answer within ${req.timeoutMs} ms`)), req.timeoutMs);
    request.on('error', (e) => fail(new HttpTransportError(codeOf(e), `request failed: ${codeOf(e)}`, { cause: e })));
    const body = req.body?.();
    if (body === undefined) {
      request.end();
    } else if (typeof body === 'string' || body instanceof Uint8Array) {
      request.end(body);
    } else {
      source = body;
      source.on('error', (e) => fail(new HttpTransportError('BODY_READ_FAILED', 'reading the spooled file failed', { cause: e })));
      source.pipe(request);
    }
  });
}

function codeOf(e: unknown): string {
  const c = (e as { code?: unknown })?.code;
  return typeof c === 'string' ? c : 'ERR_NETWORK';
}

/** Retry-After (RFC 9110 §10.2.3): seconds or an HTTP date → ms from now; undefined if absent/unreadable. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d{1,9}$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
