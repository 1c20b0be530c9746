/**
 * The Lambda side: API Gateway's JWT authorizer has already checked the
 * token's signature, issuer, audience and expiry before the function runs;
 * this authenticator only turns the claims it forwards
 * (`requestContext.authorizer.jwt`) into a Principal.
 *
 * The claims reach it through `lookup` (filled by eventToRequest from the
 * event itself), never through a request header: a client can send any
 * header, but cannot write the event's requestContext.
 */
import { ArchiveError } from '../../core/archive/errors';
import type { Authenticator } from '../../core/archive/app';
import { DEFAULT_SCOPE_PREFIX, principalFromClaims, type Claims } from './scopes';

/** What API Gateway (HTTP API, payload 2.0) forwards from a validated JWT. */
export interface JwtAuthorizerContext {
  claims: Claims;
  /** API Gateway's own split of the `scope` / `scp` claim (may be null). */
  scopes?: readonly string[] | null;
}

export type AuthMode = 'jwt' | 'none';

export interface ApiGatewayJwtOptions {
  /** Prefix of the resource-server scopes (`dicomweb/` → `dicomweb/read`). */
  scopePrefix?: string;
}

export function createApiGatewayJwtAuthenticator(lookup: (request: Request) => JwtAuthorizerContext | undefined, options: ApiGatewayJwtOptions = {}): Authenticator {
  return async (request) => {
    const jwt = lookup(request);
    // No authorizer context: the route is not behind the authorizer (a misconfigured API). Fail closed.
    if (!jwt) return undefined;
    const principal = principalFromClaims(jwt.claims, { scopePrefix: options.scopePrefix ?? DEFAULT_SCOPE_PREFIX, scopes: jwt.scopes ?? [] });
    if (!principal) throw new ArchiveError('UNAUTHORIZED', 'the token names no subject or client');
    return principal;
  };
}

/**
 * AUTH_MODE: `jwt` (the default: every request must carry authorizer claims)
 * or `none` (no authentication; only for tests of the unauthenticated
 * behaviour). Anything else is a configuration error, not a silent `none`.
 */
export function authModeFromEnv(env: Record<string, string | undefined>): AuthMode {
  const mode = (env.AUTH_MODE ?? 'jwt').trim().toLowerCase();
  if (mode === 'jwt' || mode === 'none') return mode;
  throw new Error(`AUTH_MODE must be "jwt" or "none", not "${env.AUTH_MODE}"`);
}
