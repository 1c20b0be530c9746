/**
 * OIDC / OAuth 2.0 access-token validation for the embedded server, with
 * jose: what API Gateway's JWT authorizer does in AWS, done in-process.
 *
 * - signature: keys from the issuer's JWKS (AUTH_JWKS_URL; asymmetric
 *   algorithms only), or a shared HS256 secret (AUTH_JWT_SECRET; tests/dev);
 * - `iss` must equal the issuer; `exp` is required and checked (30 s clock
 *   tolerance), `nbf` when present;
 * - audience, as API Gateway checks it: `aud` or `client_id` must be one of
 *   the configured audiences (Cognito access tokens carry no `aud`, only
 *   `client_id`);
 * - scopes from `scope` / `scp`, mapped as in ./scopes.
 *
 * Token problems are 401s with a short reason; a JWKS endpoint that cannot
 * be fetched is a 503 (TIMEOUT), not the client's fault.
 */
import type * as Jose from 'jose';
import type { Principal } from '../../core/archive/app';
import { ArchiveError } from '../../core/archive/errors';
import { DEFAULT_SCOPE_PREFIX, principalFromClaims, type Claims } from './scopes';

export interface JwtVerifierOptions {
  /** Expected `iss`, exactly. */
  issuer: string;
  /** Accepted audiences: matched against `aud` or `client_id`. */
  audiences: readonly string[];
  /** The issuer's JWKS (e.g. https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json). */
  jwksUrl?: string;
  /** HS256 shared secret (≥ 32 characters), for tests and development. */
  secret?: string;
  scopePrefix?: string;
  clockToleranceSeconds?: number;
}

/** Asymmetric JWS algorithms accepted from a JWKS (never `none`, never HMAC with a public key). */
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/**
 * jose is ESM-only: Node 22 loads it with require() (no flag since 22.12).
 * Loaded on first use, so processes that never verify a JWT (Lambda
 * bundles, the open loopback mode) never load it.
 */
function loadJose(): typeof Jose {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('jose') as typeof Jose;
}

function tokenError(error: unknown, remoteKeys: boolean): Error {
  const code = (error as { code?: unknown })?.code;
  const joseError = typeof code === 'string' && code.startsWith('ERR_J');
  // The issuer's key set could not be fetched (unreachable, timed out, not a JWKS): not the client's fault.
  if (remoteKeys && (!joseError || code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID')) {
    return new ArchiveError('TIMEOUT', "the identity provider's signing keys could not be fetched", { cause: error });
  }
  if (!joseError) return error as Error; // 500, logged by the core
  if (code === 'ERR_JWT_EXPIRED') return new ArchiveError('UNAUTHORIZED', 'the bearer token has expired', { cause: error });
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    const claim = (error as { claim?: unknown }).claim;
    if (claim === 'iss') return new ArchiveError('UNAUTHORIZED', 'the bearer token was not issued for this archive', { cause: error });
    if (claim === 'nbf') return new ArchiveError('UNAUTHORIZED', 'the bearer token is not valid yet', { cause: error });
  }
  return new ArchiveError('UNAUTHORIZED', 'the bearer token is not valid', { cause: error });
}

function audienceMatches(claims: Claims, audiences: readonly string[]): boolean {
  const aud = claims.aud;
  const auds = Array.isArray(aud) ? aud : typeof aud === 'string' ? [aud] : [];
  if (auds.some((a) => typeof a === 'string' && audiences.includes(a))) return true;
  return typeof claims.client_id === 'string' && audiences.includes(claims.client_id);
}

export type JwtVerifier = (token: string) => Promise<Principal>;

export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  if (!options.issuer) throw new Error('a JWT issuer is required');
  if (options.audiences.length === 0) throw new Error('at least one JWT audience is required');
  if (Boolean(options.jwksUrl) === Boolean(options.secret)) throw new Error('give exactly one of a JWKS URL or an HS256 secret');
  const jose = loadJose();
  const verifyOptions: Jose.JWTVerifyOptions = {
    issuer: options.issuer,
    algorithms: options.secret ? ['HS256'] : ASYMMETRIC,
    requiredClaims: ['exp'],
    clockTolerance: options.clockToleranceSeconds ?? 30,
  };
  // The remote key set is fetched on first use, cached, and refetched (rate-limited) when a token names an unknown kid: key rotation needs no restart.
  const jwks = options.jwksUrl ? jose.createRemoteJWKSet(new URL(options.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 }) : undefined;
  const secret = options.secret ? new TextEncoder().encode(options.secret) : undefined;
  const scopePrefix = options.scopePrefix ?? DEFAULT_SCOPE_PREFIX;

  return async (token) => {
    let claims: Claims;
    try {
      claims = (jwks ? await jose.jwtVerify(token, jwks, verifyOptions) : await jose.jwtVerify(token, secret!, verifyOptions)).payload;
    } catch (error) {
      throw tokenError(error, jwks !== undefined);
    }
    if (!audienceMatches(claims, options.audiences)) throw new ArchiveError('UNAUTHORIZED', 'the bearer token was not issued for this archive');
    const principal = principalFromClaims(claims, { scopePrefix });
    if (!principal) throw new ArchiveError('UNAUTHORIZED', 'the bearer token names no subject or client');
    return principal;
  };
}
