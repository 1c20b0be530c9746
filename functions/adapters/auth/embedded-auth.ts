/**
 * Authentication of the embedded server (`npm start`), the same model as in
 * AWS: off only when bound to loopback with nothing configured; otherwise
 * every request but CORS preflight needs a bearer token or a static API key.
 *
 * Settings (environment; empty = unset):
 *   API_KEYS            name:secret:scope+scope,...   (see ./api-keys)
 *   AUTH_JWKS_URL       the issuer's JWKS             } OIDC access tokens,
 *   AUTH_ISSUER         expected `iss`                } verified with jose
 *   AUTH_AUDIENCE       accepted aud/client_id, comma-separated
 *   AUTH_JWT_SECRET     HS256 secret instead of AUTH_JWKS_URL (tests/dev)
 *   AUTH_SCOPE_PREFIX   scope prefix, default `dicomweb/`
 *
 * Credentials: `Authorization: Bearer <API key secret or JWT>` or
 * `X-API-Key: <secret>`.
 */
import type { Authenticator, Principal } from '../../core/archive/app';
import { ArchiveError } from '../../core/archive/errors';
import { createApiKeyVerifier, parseApiKeys, type ApiKey } from './api-keys';
import { AuthConfigError } from './config-error';
import { createJwtVerifier, type JwtVerifierOptions } from './jwt-verifier';
import { DEFAULT_SCOPE_PREFIX } from './scopes';

export interface EmbeddedAuthConfig {
  apiKeys?: ApiKey[];
  jwt?: JwtVerifierOptions;
}

export type Env = Record<string, string | undefined>;

const LOOPBACK = new Set(['localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1']);

/** Loopback-only addresses: the only ones the embedded server may serve without authentication. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  return LOOPBACK.has(h) || /^127(\.\d{1,3}){3}$/.test(h);
}

function setting(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

const MIN_HS256_SECRET = 32;

/** The configuration the environment asks for; undefined when it asks for none. Throws AuthConfigError. */
export function embeddedAuthConfigFromEnv(env: Env): EmbeddedAuthConfig | undefined {
  const config: EmbeddedAuthConfig = {};
  const apiKeys = setting(env, 'API_KEYS');
  if (apiKeys) config.apiKeys = parseApiKeys(apiKeys);

  const jwksUrl = setting(env, 'AUTH_JWKS_URL');
  const secret = setting(env, 'AUTH_JWT_SECRET');
  const issuer = setting(env, 'AUTH_ISSUER');
  const audiences = (setting(env, 'AUTH_AUDIENCE') ?? '').split(',').map((a) => a.trim()).filter(Boolean);
  if (jwksUrl || secret || issuer || audiences.length) {
    if (jwksUrl && secret) throw new AuthConfigError('set AUTH_JWKS_URL or AUTH_JWT_SECRET, not both');
    if (!jwksUrl && !secret) throw new AuthConfigError('AUTH_ISSUER / AUTH_AUDIENCE need AUTH_JWKS_URL (or AUTH_JWT_SECRET for HS256)');
    if (!issuer) throw new AuthConfigError('JWT validation needs AUTH_ISSUER (the expected "iss")');
    if (audiences.length === 0) throw new AuthConfigError('JWT validation needs AUTH_AUDIENCE (accepted "aud" or "client_id", comma-separated)');
    if (secret && secret.length < MIN_HS256_SECRET) throw new AuthConfigError(`AUTH_JWT_SECRET must be at least ${MIN_HS256_SECRET} characters`);
    if (jwksUrl) {
      let url: URL;
      try {
        url = new URL(jwksUrl);
      } catch {
        throw new AuthConfigError('AUTH_JWKS_URL is not a URL');
      }
      // Keys fetched over plain HTTP could be swapped in transit: only a loopback issuer (tests, a local IdP) may use it.
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
        throw new AuthConfigError('AUTH_JWKS_URL must be https (http only for a loopback issuer)');
      }
    }
    config.jwt = { issuer, audiences, jwksUrl, secret, scopePrefix: env.AUTH_SCOPE_PREFIX ?? DEFAULT_SCOPE_PREFIX };
  }
  return config.apiKeys || config.jwt ? config : undefined;
}

/** One line for the start-up message: what is accepted, no secrets. */
export function describeAuth(config: EmbeddedAuthConfig | undefined): string {
  if (!config) return 'open to loopback clients (no authentication configured)';
  const parts: string[] = [];
  if (config.apiKeys) parts.push(`API keys (${config.apiKeys.map((k) => k.name).join(', ')})`);
  if (config.jwt) parts.push(`${config.jwt.jwksUrl ? 'JWT via JWKS' : 'JWT HS256'} from ${config.jwt.issuer}`);
  return `authentication required: ${parts.join(' or ')}`;
}

type Credential = { kind: 'api-key' | 'bearer'; value: string };

/** RFC 6750 §2.1 bearer token, or X-API-Key. Both at once is ambiguous and refused. */
function credentialOf(request: Request): Credential | undefined {
  const apiKey = request.headers.get('x-api-key')?.trim() || undefined;
  const authorization = request.headers.get('authorization')?.trim() || undefined;
  if (apiKey && authorization) throw new ArchiveError('UNAUTHORIZED', 'send either Authorization or X-API-Key, not both');
  if (apiKey) return { kind: 'api-key', value: apiKey };
  if (!authorization) return undefined;
  const m = /^Bearer +(\S+)$/i.exec(authorization);
  if (!m) throw new ArchiveError('UNAUTHORIZED', 'use the Bearer authorization scheme');
  return { kind: 'bearer', value: m[1]! };
}

const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function createEmbeddedAuthenticator(config: EmbeddedAuthConfig): Authenticator {
  const keyOf = config.apiKeys ? createApiKeyVerifier(config.apiKeys) : undefined;
  let verifyJwt: ReturnType<typeof createJwtVerifier> | undefined;
  try {
    verifyJwt = config.jwt ? createJwtVerifier(config.jwt) : undefined;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'AUTH_CONFIG') throw error;
    throw new AuthConfigError((error as Error).message);
  }
  return async (request): Promise<Principal | undefined> => {
    const credential = credentialOf(request);
    if (!credential) return undefined;
    // API keys first: the comparison takes the same time whatever the value, and a key never reaches the JWT parser.
    const byKey = keyOf?.(credential.value);
    if (byKey) return byKey;
    if (credential.kind === 'bearer' && verifyJwt && JWS_COMPACT.test(credential.value)) return verifyJwt(credential.value);
    throw new ArchiveError('UNAUTHORIZED', credential.kind === 'api-key' ? 'the API key is not valid' : 'the bearer token is not valid');
  };
}
