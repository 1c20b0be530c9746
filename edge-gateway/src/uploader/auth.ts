/**
 * Credentials for the uploader's requests to the archive: the same provider
 * as the DICOMweb client (edge-gateway/src/cloud/auth.ts — API key header, or
 * an OAuth2 client-credentials token cache), plus a note of the last headers
 * handed out, so that a 401 can drop a stale token once before the uploader
 * pauses.
 */
import type { CloudConfig } from '../config-types';
import { createAuthProvider } from '../cloud/auth';

export type AuthHeaders = () => Promise<Record<string, string>>;

export interface UploaderAuth {
  headers: AuthHeaders;
  /** Forget the credential last handed out; true when asking again may help (a fresh token). */
  invalidate(): boolean;
}

export function createUploaderAuth(cloud: CloudConfig, override?: AuthHeaders): UploaderAuth {
  if (override) return { headers: override, invalidate: () => false };
  const provider = createAuthProvider(cloud.auth, { fetch: globalThis.fetch, now: Date.now, timeoutMs: cloud.requestTimeoutMs });
  let last: Record<string, string> = {};
  return {
    headers: async () => (last = await provider.headers()),
    invalidate: () => provider.invalidate(last),
  };
}
