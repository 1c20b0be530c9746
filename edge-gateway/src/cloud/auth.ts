/**
 * Credentials the gateway sends to the archive (docs/auth.md):
 * - `none`: nothing (an embedded archive open to loopback clients);
 * - `apiKey`: `X-API-Key: <secret>` (the embedded archive's API_KEYS);
 * - `clientCredentials`: an OAuth 2.0 access token from the token endpoint
 *   (RFC 6749 §4.4), e.g. a Cognito machine client, sent as
 *   `Authorization: Bearer` (RFC 6750 §2.1). The token is cached until shortly
 *   before `expires_in`; concurrent callers share one token request; after a
 *   401 the client drops it and asks again, once.
 */
import type { CloudAuthConfig } from '../config-types';
import { CloudError } from './errors';

export interface AuthProvider {
  /** Headers to add to a DICOMweb request. */
  headers(): Promise<Record<string, string>>;
  /**
   * The archive answered 401 to a request made with `used` (the headers
   * returned earlier): forget that credential. True when asking again may
   * help (a fresh token); false for static credentials.
   */
  invalidate(used: Record<string, string>): boolean;
}

export interface AuthDeps {
  fetch: typeof fetch;
  /** Milliseconds since the epoch (tests move time). */
  now: () => number;
  /** Timeout of one token request. */
  timeoutMs: number;
}

/** Without `expires_in` (it is only RECOMMENDED, RFC 6749 §5.1) a token is reused this long, or until a 401. */
const DEFAULT_TOKEN_LIFETIME_S = 300;
/** Refresh this long before expiry (at most a tenth of the lifetime): clocks differ, and requests take time. */
const REFRESH_MARGIN_S = 60;
/** A token endpoint answer larger than this is not a token response. */
const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;

export function createAuthProvider(cfg: CloudAuthConfig, deps: AuthDeps): AuthProvider {
  switch (cfg.kind) {
    case 'none':
      return { headers: async () => ({}), invalidate: () => false };
    case 'apiKey': {
      const headers = { 'X-API-Key': cfg.apiKey };
      return { headers: async () => ({ ...headers }), invalidate: () => false };
    }
    case 'clientCredentials':
      return new ClientCredentialsAuth(cfg, deps);
  }
}

interface CachedToken {
  accessToken: string;
  /** epoch ms after which a new token is fetched */
  refreshAt: number;
}

class ClientCredentialsAuth implements AuthProvider {
  private cached?: CachedToken;
  private pending?: Promise<CachedToken>;

  constructor(
    private readonly cfg: Extract<CloudAuthConfig, { kind: 'clientCredentials' }>,
    private readonly deps: AuthDeps,
  ) {}

  async headers(): Promise<Record<string, string>> {
    const token = await this.token();
    return { Authorization: `Bearer ${token.accessToken}` };
  }

  invalidate(used: Record<string, string>): boolean {
    // Only drop the token the failed request carried: another caller may already hold a fresh one.
    if (this.cached && used.Authorization === `Bearer ${this.cached.accessToken}`) this.cached = undefined;
    return true;
  }

  private async token(): Promise<CachedToken> {
    if (this.cached && this.deps.now() < this.cached.refreshAt) return this.cached;
    // One token request at a time, shared by every caller waiting for it.
    this.pending ??= this.requestToken().finally(() => {
      this.pending = undefined;
    });
    const token = await this.pending;
    this.cached = token;
    return token;
  }

  private async requestToken(): Promise<CachedToken> {
    const { tokenUrl, clientId, clientSecret, scope } = this.cfg;
    // RFC 6749 §2.3.1: client id and secret are form-encoded, then Basic (RFC 7617).
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (scope) form.set('scope', scope);
    const startedAt = this.deps.now();
    let res: Response;
    try {
      res = await this.deps.fetch(tokenUrl, {
        method: 'POST',
        headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: form.toString(),
        signal: AbortSignal.timeout(this.deps.timeoutMs),
      });
    } catch (error) {
      if (isTimeout(error)) throw new CloudError('CLOUD_TIMEOUT', `token endpoint: no answer within ${this.deps.timeoutMs} ms`, { cause: error });
      throw new CloudError('CLOUD_UNREACHABLE', `token endpoint unreachable: ${causeText(error)}`, { cause: error });
    }
    const text = await readLimitedText(res, MAX_TOKEN_RESPONSE_BYTES);
    if (!res.ok) {
      // RFC 6749 §5.2: the error code (invalid_client, invalid_scope, …) is safe to show; nothing else is.
      const oauthError = safeOAuthError(text);
      const code = res.status >= 500 ? 'CLOUD_HTTP' : 'CLOUD_AUTH';
      throw new CloudError(code, `token endpoint answered ${res.status}${oauthError ? ` (${oauthError})` : ''}`, { status: res.status });
    }
    let body: { access_token?: unknown; token_type?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text ?? '') as typeof body;
    } catch (error) {
      throw new CloudError('CLOUD_PROTOCOL', 'token endpoint: the answer is not JSON', { cause: error, status: res.status });
    }
    if (typeof body.access_token !== 'string' || !/^[\x21-\x7e]+$/.test(body.access_token)) {
      throw new CloudError('CLOUD_PROTOCOL', 'token endpoint: no usable access_token in the answer', { status: res.status });
    }
    if (body.token_type !== undefined && String(body.token_type).toLowerCase() !== 'bearer') {
      throw new CloudError('CLOUD_PROTOCOL', 'token endpoint: token_type is not Bearer', { status: res.status });
    }
    const expiresIn = Number(body.expires_in);
    const lifetime = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : DEFAULT_TOKEN_LIFETIME_S;
    const margin = Math.min(REFRESH_MARGIN_S, lifetime / 10);
    // Count from when we asked: the lifetime started on the server before the answer reached us.
    return { accessToken: body.access_token, refreshAt: startedAt + (lifetime - margin) * 1000 };
  }
}

function safeOAuthError(text: string | undefined): string | undefined {
  try {
    const e = (JSON.parse(text ?? '') as { error?: unknown }).error;
    return typeof e === 'string' && /^[a-z_]{1,40}$/.test(e) ? e : undefined;
  } catch {
    return undefined;
  }
}

/** The body as text, or undefined (the body cancelled) once it passes `max` bytes. */
export async function readLimitedText(res: Response, max: number): Promise<string | undefined> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > max) {
      await res.body.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function isTimeout(error: unknown): boolean {
  const name = (error as { name?: unknown })?.name;
  return name === 'TimeoutError' || (name === 'AbortError' && (error as { cause?: { name?: unknown } }).cause?.name === 'TimeoutError');
}

/** A short, PHI-free description of a network failure (undici puts the errno in `cause`). */
export function causeText(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } })?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  return error instanceof Error ? error.message : String(error);
}
