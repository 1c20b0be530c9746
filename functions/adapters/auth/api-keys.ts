/**
 * Static API keys for the embedded server (edge gateways, scripts):
 * `API_KEYS=name:secret:scope+scope,...`, e.g. `gateway:s3cr3t:read+write`.
 * The name is what the logs show; the secret is only ever compared, in
 * constant time, through its SHA-256 (equal lengths for timingSafeEqual,
 * and every key is compared so the time does not say which one matched).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Principal, Scope } from '../../core/archive/app';
import { ALL_SCOPES, isScope } from './scopes';
import { AuthConfigError } from './config-error';

export interface ApiKey {
  name: string;
  scopes: ReadonlySet<Scope>;
  digest: Buffer;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function digestOf(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/**
 * Parse API_KEYS. The secret may contain ':' (the name is before the first
 * one, the scopes after the last one) but not ',' (the list separator) or
 * whitespace. Throws AuthConfigError, never echoing a secret.
 */
export function parseApiKeys(text: string): ApiKey[] {
  const keys: ApiKey[] = [];
  const entries = text.split(',').map((e) => e.trim()).filter(Boolean);
  entries.forEach((entry, i) => {
    const first = entry.indexOf(':');
    const last = entry.lastIndexOf(':');
    if (first <= 0 || last === first) throw new AuthConfigError(`API_KEYS entry ${i + 1}: expected name:secret:scope+scope`);
    const name = entry.slice(0, first);
    const secret = entry.slice(first + 1, last);
    const scopeText = entry.slice(last + 1);
    if (!NAME.test(name)) throw new AuthConfigError(`API_KEYS entry ${i + 1}: the name must be 1-64 of A-Z a-z 0-9 . _ - (starting alphanumeric)`);
    if (!secret || /\s/.test(secret)) throw new AuthConfigError(`API_KEYS entry "${name}": the secret is empty or contains whitespace`);
    const scopes = new Set<Scope>();
    for (const s of scopeText.split('+').map((x) => x.trim())) {
      if (!isScope(s)) throw new AuthConfigError(`API_KEYS entry "${name}": unknown scope "${s}" (use ${ALL_SCOPES.join(', ')} joined by +)`);
      scopes.add(s);
    }
    const digest = digestOf(secret);
    if (keys.some((k) => k.name === name)) throw new AuthConfigError(`API_KEYS: the name "${name}" is used twice`);
    if (keys.some((k) => timingSafeEqual(k.digest, digest))) throw new AuthConfigError(`API_KEYS entry "${name}": the same secret is already given to another key`);
    keys.push({ name, scopes, digest });
  });
  if (keys.length === 0) throw new AuthConfigError('API_KEYS is set but lists no key');
  return keys;
}

/** The principal whose secret this is, or undefined. */
export function createApiKeyVerifier(keys: readonly ApiKey[]): (secret: string) => Principal | undefined {
  return (secret) => {
    const digest = digestOf(secret);
    let match: ApiKey | undefined;
    for (const k of keys) if (timingSafeEqual(k.digest, digest) && !match) match = k;
    return match ? { id: match.name, scopes: match.scopes } : undefined;
  };
}

/** Secrets shorter than this are accepted but reported at start-up (a guessable key is a weak one). */
export const RECOMMENDED_SECRET_LENGTH = 24;

export function shortSecrets(text: string): string[] {
  return text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .filter((e) => e.slice(e.indexOf(':') + 1, e.lastIndexOf(':')).length < RECOMMENDED_SECRET_LENGTH)
    .map((e) => e.slice(0, e.indexOf(':')));
}
