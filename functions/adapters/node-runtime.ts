/**
 * Runtime capabilities the core gets injected (Node implementations):
 * sha-256 hashing, random object ids, and a PHI-free JSON-lines logger.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Hasher, Logger } from '../core/archive/context';

export function sha256(): Hasher {
  const h = createHash('sha256');
  return {
    update: (chunk) => void h.update(chunk),
    digest: () => h.digest('hex'),
  };
}

/** 20 random bytes in base 36-ish lower-case alphanumerics (≥ 128 bits). */
export function newObjectId(): string {
  return randomBytes(20).toString('hex');
}

/**
 * JSON-lines logger. Callers log only codes, counts and timings — never
 * attribute values (PHI); `fields` are additionally filtered to primitives.
 */
export function jsonLogger(write: (line: string) => void = (l) => process.stdout.write(l + '\n'), level: 'info' | 'warn' | 'error' | 'silent' = 'info'): Logger {
  const order = { info: 0, warn: 1, error: 2, silent: 3 } as const;
  const emit = (lvl: 'info' | 'warn' | 'error') => (message: string, fields?: Record<string, unknown>) => {
    if (order[lvl] < order[level]) return;
    const safe: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields ?? {})) if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) safe[k] = v;
    write(JSON.stringify({ time: new Date().toISOString(), level: lvl, message, ...safe }));
  };
  return { info: emit('info'), warn: emit('warn'), error: emit('error') };
}
