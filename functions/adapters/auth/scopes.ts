/**
 * OAuth scopes and token claims → the archive's Principal. One mapping for
 * every runtime (API Gateway's JWT authorizer, jose in the embedded server),
 * so `dicomweb/read` means the same thing everywhere.
 *
 * Accepted scope spellings: `<prefix><scope>` (default prefix `dicomweb/`,
 * the Cognito resource-server form) and the plain `read` / `write` /
 * `delete`. Anything else in the token (openid, profile, other APIs' scopes)
 * is ignored. Binding a token to this archive is the audience check's job
 * (the authorizer's or the verifier's), not the scope names'.
 */
import type { Logger } from '../../core/archive/context';
import type { Authenticator, Principal, Scope } from '../../core/archive/app';

export const ALL_SCOPES: readonly Scope[] = ['read', 'write', 'delete'];
export const DEFAULT_SCOPE_PREFIX = 'dicomweb/';

/** Claims of a verified token, as jose or API Gateway hands them over. */
export type Claims = Record<string, unknown>;

export function isScope(value: string): value is Scope {
  return (ALL_SCOPES as readonly string[]).includes(value);
}

/** Raw scope strings → archive scopes; unknown strings are ignored. */
export function mapScopes(raw: Iterable<string>, prefix: string = DEFAULT_SCOPE_PREFIX): Set<Scope> {
  const out = new Set<Scope>();
  for (const s of raw) {
    const name = prefix && s.startsWith(prefix) ? s.slice(prefix.length) : s;
    if (isScope(name)) out.add(name);
  }
  return out;
}

/**
 * A claim that holds a list: a JSON array, a space-separated string
 * (RFC 9068 §2.2.3 `scope`), or API Gateway's flattening of an array claim
 * into one string, "[a b]" (payload 2.0 JWT authorizer).
 */
function listClaim(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  if (typeof value !== 'string') return [];
  const text = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  return text.split(/[\s,]+/).filter(Boolean);
}

/** Scope strings from `scope` (space-separated), `scp` (array: Azure AD, Okta) and any already-split list. */
export function scopesFromClaims(claims: Claims, extra: readonly string[] = []): string[] {
  return [...listClaim(claims.scope), ...listClaim(claims.scp), ...extra];
}

function stringClaim(claims: Claims, name: string): string | undefined {
  const v = claims[name];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/**
 * The principal of a verified token. Its id is the subject (`sub`; for
 * Cognito client credentials it equals the client id), else `client_id` /
 * `azp`: an account identifier for the audit log, never a patient attribute.
 * A token naming neither is refused (RFC 9068 §2.2 requires both).
 */
export function principalFromClaims(claims: Claims, options: { scopePrefix?: string; scopes?: readonly string[] } = {}): Principal | undefined {
  const id = stringClaim(claims, 'sub') ?? stringClaim(claims, 'client_id') ?? stringClaim(claims, 'azp');
  if (!id) return undefined;
  return { id, scopes: mapScopes(scopesFromClaims(claims, options.scopes), options.scopePrefix ?? DEFAULT_SCOPE_PREFIX) };
}

/** The embedded server bound to loopback with nothing configured: the local user may do everything. */
export const LOOPBACK_PRINCIPAL: Principal = Object.freeze({ id: 'loopback', scopes: new Set<Scope>(ALL_SCOPES) });

/**
 * One PHI-free audit line per authenticated request: the principal id and
 * its scopes, nothing from the token or the request. Failures are already in
 * the core's request line (status 401, code UNAUTHORIZED).
 */
export function auditing(authenticate: Authenticator, log: Logger): Authenticator {
  return async (request) => {
    const principal = await authenticate(request);
    if (principal) log.info('auth', { principal: principal.id, scopes: [...principal.scopes].join(' ') });
    return principal;
  };
}
