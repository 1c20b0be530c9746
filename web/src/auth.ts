/**
 * Credentials of the web UI. The token (an API key secret or an OAuth
 * access token) lives in sessionStorage: gone with the tab, never in
 * localStorage or a cookie. OIDC is the authorization code flow with PKCE
 * (RFC 7636, S256) against the configured issuer: the UI is a public client
 * and keeps no secret.
 */
import type { WebConfig } from './config';

const TOKEN_KEY = 'dicomweb.token';
const PKCE_KEY = 'dicomweb.pkce';

export function storedToken(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

function base64Url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(bytes = 32): string {
  return base64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

async function discover(issuer: string): Promise<Discovery> {
  const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`the identity provider's configuration could not be read (HTTP ${res.status})`);
  const doc = (await res.json()) as Partial<Discovery>;
  if (!doc.authorization_endpoint || !doc.token_endpoint) throw new Error('the identity provider publishes no authorization or token endpoint');
  return doc as Discovery;
}

function redirectUri(): string {
  return `${location.origin}${location.pathname}`;
}

/** Leave for the issuer's login page; it comes back to this page with ?code&state. */
export async function beginOidcLogin(oidc: NonNullable<WebConfig['auth']['oidc']>): Promise<void> {
  const endpoints = await discover(oidc.issuer);
  const verifier = randomString(48);
  const state = randomString(16);
  const challenge = base64Url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state }));
  const url = new URL(endpoints.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: oidc.clientId,
    redirect_uri: redirectUri(),
    scope: oidc.scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

/**
 * Back from the issuer: trade the code for a token (checking `state`
 * against what this tab sent) and clean the address bar. Resolves false
 * when the page was not an OIDC redirect.
 */
export async function completeOidcLogin(oidc: WebConfig['auth']['oidc']): Promise<boolean> {
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  const error = params.get('error');
  if (!oidc || (!code && !error)) return false;
  history.replaceState(null, '', redirectUri());
  const saved = sessionStorage.getItem(PKCE_KEY);
  sessionStorage.removeItem(PKCE_KEY);
  if (error) throw new Error(`sign-in refused: ${error}`);
  const pkce = saved ? (JSON.parse(saved) as { verifier: string; state: string }) : undefined;
  if (!pkce || pkce.state !== params.get('state')) throw new Error('sign-in answer does not match the request this tab made (state); try again');
  const endpoints = await discover(oidc.issuer);
  const res = await fetch(endpoints.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: code!, redirect_uri: redirectUri(), client_id: oidc.clientId, code_verifier: pkce.verifier }),
  });
  if (!res.ok) throw new Error(`the token request failed (HTTP ${res.status})`);
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error('the identity provider returned no access token');
  storeToken(body.access_token);
  return true;
}
