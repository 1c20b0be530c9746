/**
 * What one upload attempt came to, and how HTTP answers map onto it. The
 * uploader turns outcomes into spool transitions: done → done/, retry →
 * queued/ with backoff, reject → quarantine/, auth → the whole uploader
 * pauses (a credentials problem is not the instance's fault).
 */
import { retryAfterMs } from './http-request';

export type UploadOutcome =
  | { kind: 'done'; note?: string }
  | { kind: 'retry'; reason: string; retryAfterMs?: number; route?: 'stow' | 'upload' }
  | { kind: 'reject'; reason: string }
  | { kind: 'auth'; status: number; reason: string };

/** A short, PHI-free description of an HTTP error answer (the archive's error code if it sent one). */
export function describeHttpError(status: number, body: Buffer): string {
  let detail = '';
  try {
    const j = JSON.parse(body.toString('utf8')) as { code?: unknown; error?: unknown };
    const code = typeof j.code === 'string' ? j.code : typeof j.error === 'string' ? j.error : undefined;
    if (code && /^[A-Za-z0-9_ .:-]{1,80}$/.test(code)) detail = ` ${code}`;
  } catch {
    // not JSON: the status says enough
  }
  return `HTTP ${status}${detail}`;
}

/**
 * Non-2xx answers: 401/403 → auth (pause); 408, 429, 5xx → retry (honouring
 * Retry-After, RFC 9110 §10.2.3); other 4xx → reject (sending the same bytes
 * again would get the same answer).
 */
export function classifyHttpError(status: number, headers: Record<string, string | string[] | undefined>, body: Buffer): UploadOutcome {
  const reason = describeHttpError(status, body);
  if (status === 401 || status === 403) return { kind: 'auth', status, reason };
  if (status === 408 || status === 429 || status >= 500) {
    const after = retryAfterMs(headers['retry-after']);
    return { kind: 'retry', reason, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  }
  return { kind: 'reject', reason };
}

/** DIMSE/STOW failure reasons (PS3.4 B.2.3, PS3.18 Table 10.5.3-2) that are the archive's momentary state, not the object's. */
export function isTransientFailureReason(code: number): boolean {
  return (code & 0xff00) === 0xa700 || code === 0x0110;
}

export function hex4(code: number): string {
  return `0x${code.toString(16).toUpperCase().padStart(4, '0')}`;
}
