/**
 * Authentication of the embedded server (docs/auth.md) over real HTTP.
 *
 * Every route of the live route table (`archive.app.routes`, so routes added
 * later are covered without touching this file) is called three ways for
 * each kind of credential — API key as Bearer, API key as X-API-Key, HS256
 * JWT with Cognito-style `scope`, JWT with a plain `scp` array:
 * no credentials → 401 + WWW-Authenticate: Bearer; every scope but the
 * route's → 403; only the route's scope → neither. Then the token failures
 * (expired, wrong issuer/audience, tampered, alg none, …), JWKS (RS256),
 * CORS preflight, capabilities, the configuration rules and `npm start`'s
 * loopback rule.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import type * as Jose from 'jose';
import type { Route, Scope, Service } from '../../functions/core/archive/app';
import type { Logger } from '../../functions/core/archive/context';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { createEmbeddedAuthenticator, embeddedAuthConfigFromEnv, isLoopbackHost, type Env } from '../../functions/adapters/auth/embedded-auth';
import { uid } from '../fixtures/synthetic';
import { PROJECT_ROOT } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';

// jose is ESM-only and jest loads CommonJS: hand jest a CommonJS bundle of the
// real jose under its own name (Node itself loads jose with require(esm)).
const joseDir = makeTempDir('jose-cjs-');
const JOSE_CJS = path.join(joseDir.dir, 'jose.cjs');
buildSync({ entryPoints: [path.join(PROJECT_ROOT, 'node_modules', 'jose', 'dist', 'webapi', 'index.js')], bundle: true, format: 'cjs', platform: 'node', target: 'node22', outfile: JOSE_CJS, logLevel: 'warning' });
jest.mock('jose', () => jest.requireActual(JOSE_CJS));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const jose = require('jose') as typeof Jose;

/** The scope each service needs (the brief's table, kept independent of app.ts on purpose). */
const SCOPE_OF: Record<Service, Scope> = { stow: 'write', upload: 'write', qido: 'read', wado: 'read', delete: 'delete', meta: 'read' };
const SCOPES: Scope[] = ['read', 'write', 'delete'];
const others = (s: Scope) => SCOPES.filter((x) => x !== s);

/** Synthetic values for the path parameters; unknown names get a harmless token. */
const SAMPLE: Record<string, () => string> = { study: uid, series: uid, instance: uid, frames: () => '1', path: () => '7FE00010' };
const concretePath = (route: Route) => route.path.replace(/\{(\w+)\}/g, (_, n: string) => encodeURIComponent(SAMPLE[n]?.() ?? `synthetic-${n}-1`));

const TSX = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');
const MAIN = path.join(PROJECT_ROOT, 'functions', 'adapters', 'http', 'main.ts');
const ISSUER = 'https://idp.example.test/realms/dicom';
const AUDIENCE = 'dicomweb-archive';
const JWT_SECRET = randomBytes(32).toString('hex');

/** One API key per scope set the matrix needs: name = the scopes joined by '+'. */
const keySets: Scope[][] = [...SCOPES.map((s) => [s]), ...SCOPES.map(others), SCOPES];
const secrets = new Map(keySets.map((set) => [set.join('+'), randomBytes(24).toString('base64url')]));
const secretFor = (scopes: Scope[]) => secrets.get(SCOPES.filter((s) => scopes.includes(s)).join('+'))!;
const API_KEYS = [...secrets].map(([name, secret]) => `k-${name.replace(/\+/g, '-')}:${secret}:${name}`).join(',');

async function sign(claims: Jose.JWTPayload, opts: { secret?: string; exp?: string | number; iss?: string; alg?: string } = {}): Promise<string> {
  const jwt = new jose.SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256', typ: 'at+jwt' }).setIssuedAt().setIssuer(opts.iss ?? ISSUER);
  if (opts.exp !== undefined) jwt.setExpirationTime(opts.exp);
  else if (!('exp' in claims)) jwt.setExpirationTime('10m');
  return jwt.sign(new TextEncoder().encode(opts.secret ?? JWT_SECRET));
}

type Credential = (scopes: Scope[]) => Promise<Record<string, string>>;
const CREDENTIALS: Record<string, Credential> = {
  'API key as Bearer': async (scopes) => ({ Authorization: `Bearer ${secretFor(scopes)}` }),
  'API key as X-API-Key': async (scopes) => ({ 'X-API-Key': secretFor(scopes) }),
  'JWT, Cognito-style `scope` (dicomweb/…), client_id as audience': async (scopes) => ({
    Authorization: `Bearer ${await sign({ client_id: AUDIENCE, sub: AUDIENCE, token_use: 'access', scope: ['openid', ...scopes.map((s) => `dicomweb/${s}`)].join(' ') })}`,
  }),
  'JWT, plain `scp` array, aud': async (scopes) => ({ Authorization: `Bearer ${await sign({ sub: 'user-7f3a', aud: [AUDIENCE, 'other-api'], scp: scopes })}` }),
};

async function call(url: string, method: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(url, { method, headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON (WADL, multipart) */
  }
  return { status: res.status, headers: res.headers, body };
}

function collectingLogger(lines: string[]): Logger {
  const emit = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push(JSON.stringify({ level, message, ...fields }));
  return { info: emit('info'), warn: emit('warn'), error: emit('error') };
}

afterAll(() => joseDir.cleanup());

describe('embedded server: API keys and HS256 JWT', () => {
  const tmp = makeTempDir('auth-embedded-');
  const logLines: string[] = [];
  let archive: Awaited<ReturnType<typeof startEmbeddedArchive>>;
  let base: string;

  beforeAll(async () => {
    const config = embeddedAuthConfigFromEnv({ API_KEYS, AUTH_JWT_SECRET: JWT_SECRET, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: `${AUDIENCE}, another-client` });
    expect(config?.apiKeys).toHaveLength(keySets.length);
    archive = await startEmbeddedArchive({ dataDir: tmp.dir, port: 0, log: collectingLogger(logLines), authenticate: createEmbeddedAuthenticator(config!) });
    base = archive.dicomWebUrl;
  });
  afterAll(async () => {
    await archive?.close();
    tmp.cleanup();
  });

  it('the route table covers every DICOMweb transaction', () => {
    const names = new Set(archive.app.routes.map((r) => r.name));
    for (const n of ['storeInstances', 'searchForStudies', 'searchForSeries', 'searchForInstances', 'retrieveStudy', 'retrieveInstance', 'retrieveSeriesMetadata', 'retrieveInstanceFrames', 'retrieveBulkData', 'deleteStudy', 'deleteInstance']) {
      expect(names).toContain(n);
    }
    console.log(`[auth] embedded route table: ${archive.app.routes.length} routes (${[...new Set(archive.app.routes.map((r) => r.service))].join(', ')})`);
  });

  describe.each(Object.keys(CREDENTIALS))('every route, %s', (kind) => {
    it('no credentials → 401 + WWW-Authenticate; other scopes → 403; its scope → allowed', async () => {
      const problems: string[] = [];
      for (const route of archive.app.routes) {
        const scope = SCOPE_OF[route.service];
        const url = `${base}${concretePath(route)}`;
        const label = `${route.method} ${route.path} (${route.name}, needs ${scope})`;
        const none = await call(url, route.method);
        if (none.status !== 401 || !/^Bearer\b/.test(none.headers.get('www-authenticate') ?? '') || none.body?.code !== 'UNAUTHORIZED') {
          problems.push(`${label}: no credentials → ${none.status} ${none.headers.get('www-authenticate')}`);
        }
        const wrong = await call(url, route.method, await CREDENTIALS[kind]!(others(scope)));
        if (wrong.status !== 403 || wrong.body?.code !== 'FORBIDDEN') problems.push(`${label}: scopes ${others(scope).join('+')} → ${wrong.status}, not 403`);
        const right = await call(url, route.method, await CREDENTIALS[kind]!([scope]));
        if ([401, 403].includes(right.status)) problems.push(`${label}: scope ${scope} → ${right.status} ${JSON.stringify(right.body)}`);
      }
      expect(problems).toEqual([]);
    });
  });

  it('the right scope really works: a search answers 200', async () => {
    const search = await call(`${base}/studies`, 'GET', { 'X-API-Key': secretFor(['read']), Accept: 'application/dicom+json' });
    expect(search.status).toBe(200);
    expect(search.body).toEqual([]);
  });

  it('the capabilities document (OPTIONS /dicom-web, no preflight headers) needs authentication and the read scope', async () => {
    const caps = `${base}`;
    const anonymous = await call(caps, 'OPTIONS');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await call(caps, 'OPTIONS', { Authorization: `Bearer ${secretFor(['write', 'delete'])}` })).status).toBe(403);
    const read = await call(caps, 'OPTIONS', { Authorization: `Bearer ${secretFor(['read'])}` });
    expect(read.status).toBe(200);
    expect(read.headers.get('content-type')).toBe('application/vnd.sun.wadl+xml');
  });

  it('CORS preflight is not blocked (no credentials by design)', async () => {
    for (const p of ['/studies', `/studies/${uid()}/series/${uid()}/metadata`]) {
      const res = await call(`${base}${p}`, 'OPTIONS', { Origin: 'https://viewer.example.test', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization' });
      expect([401, 403]).not.toContain(res.status);
      expect(res.status).toBeLessThan(300);
    }
  });

  describe('API keys', () => {
    const studies = () => `${base}/studies`;
    it('the Bearer scheme is case-insensitive; X-API-Key works', async () => {
      const secret = secretFor(SCOPES);
      expect((await call(studies(), 'GET', { Authorization: `bearer ${secret}` })).status).toBe(200);
      expect((await call(studies(), 'GET', { 'x-api-key': secret })).status).toBe(200);
    });
    it.each([
      ['a wrong key as Bearer', { Authorization: `Bearer ${randomBytes(24).toString('base64url')}` }],
      ['a wrong key as X-API-Key', { 'X-API-Key': 'not-the-key' }],
      ['a key with one character changed', { 'X-API-Key': secretFor(SCOPES).replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) }],
      ['a key with a suffix', { 'X-API-Key': `${secretFor(SCOPES)}x` }],
      ['the key name instead of the secret', { 'X-API-Key': 'k-read-write-delete' }],
      ['Basic authentication', { Authorization: `Basic ${Buffer.from(`k-read:${secretFor(['read'])}`).toString('base64')}` }],
      ['both headers at once', { Authorization: `Bearer ${secretFor(SCOPES)}`, 'X-API-Key': secretFor(SCOPES) }],
      ['an empty Bearer', { Authorization: 'Bearer ' }],
    ])('%s → 401', async (_label, headers) => {
      const res = await call(studies(), 'GET', headers as Record<string, string>);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(res.body.code).toBe('UNAUTHORIZED');
      expect(JSON.stringify(res.body)).not.toContain(secretFor(SCOPES));
    });
  });

  describe('JWT (HS256)', () => {
    const studies = () => `${base}/studies`;
    const good = { client_id: AUDIENCE, sub: AUDIENCE, scope: 'dicomweb/read' };
    const status = async (token: string) => {
      const res = await call(studies(), 'GET', { Authorization: `Bearer ${token}` });
      if (res.status === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      return res;
    };

    it('a valid token → 200', async () => {
      expect((await status(await sign(good))).status).toBe(200);
    });

    it('expired → 401 "expired"', async () => {
      const res = await status(await sign({ ...good, exp: Math.floor(Date.now() / 1000) - 600 }));
      expect(res.status).toBe(401);
      expect(res.body.message).toMatch(/expired/);
    });

    it.each([
      ['a wrong issuer', () => sign(good, { iss: 'https://evil.example.test' })],
      ['a wrong audience (aud)', () => sign({ sub: 'u1', aud: 'someone-else', scope: 'read' })],
      ['a wrong audience (client_id, no aud)', () => sign({ sub: 'u1', client_id: 'another-app', scope: 'dicomweb/read' })],
      ['no audience at all', () => sign({ sub: 'u1', scope: 'dicomweb/read' })],
      ['another secret', () => sign(good, { secret: randomBytes(32).toString('hex') })],
      ['a tampered signature', async () => {
        const [h, p, s] = (await sign(good)).split('.');
        return `${h}.${p}.${s!.slice(0, -4)}${s!.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
      }],
      ['a tampered payload (scope raised to delete)', async () => {
        const [h, , s] = (await sign(good)).split('.');
        const claims = { ...good, scope: 'dicomweb/read dicomweb/delete', iss: ISSUER, exp: Math.floor(Date.now() / 1000) + 600 };
        return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
      }],
      ['alg none', async () => `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ ...good, iss: ISSUER, exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url')}.`],
      ['HS512 (only HS256 is accepted)', () => sign(good, { alg: 'HS512' })],
      ['no exp', () => new jose.SignJWT({ ...good }).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).sign(new TextEncoder().encode(JWT_SECRET))],
      ['not yet valid (nbf in an hour)', () => sign({ ...good, nbf: Math.floor(Date.now() / 1000) + 3600 })],
      ['no subject or client id', () => sign({ aud: AUDIENCE, scope: 'read' })],
      ['garbage', async () => 'aaa.bbb.ccc'],
    ])('%s → 401', async (_label, make) => {
      const res = await status(await make());
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('UNAUTHORIZED');
    });

    it('scopes: prefixed and plain names count, others are ignored', async () => {
      const headers = async (claims: Jose.JWTPayload) => ({ Authorization: `Bearer ${await sign({ sub: 'u2', aud: AUDIENCE, ...claims })}` });
      const del = `${base}/studies/${uid()}`;
      expect((await call(del, 'DELETE', await headers({ scope: 'openid profile read write' }))).status).toBe(403);
      expect((await call(del, 'DELETE', await headers({ scope: 'other-api/delete admin' }))).status).toBe(403);
      expect([401, 403]).not.toContain((await call(del, 'DELETE', await headers({ scope: 'dicomweb/delete' }))).status);
      expect([401, 403]).not.toContain((await call(del, 'DELETE', await headers({ scp: ['delete'] }))).status);
      expect((await call(`${base}/studies`, 'GET', await headers({}))).status).toBe(403);
    });
  });

  it('logs name the principal (key name or subject), never a secret, a token or a claim value', () => {
    const auth = logLines.map((l) => JSON.parse(l)).filter((l) => l.message === 'auth');
    expect(auth.length).toBeGreaterThan(0);
    const ids = new Set(auth.map((l) => l.principal));
    expect(ids).toContain('k-read');
    expect(ids).toContain(AUDIENCE);
    expect(ids).toContain('user-7f3a');
    const all = logLines.join('\n');
    for (const secret of secrets.values()) expect(all).not.toContain(secret);
    expect(all).not.toContain(JWT_SECRET);
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/); // no JWT
    expect(all).not.toContain(ISSUER);
  });
});

describe('embedded server: OIDC access tokens via JWKS (RS256)', () => {
  const tmp = makeTempDir('auth-jwks-');
  let jwksServer: http.Server;
  let archive: Awaited<ReturnType<typeof startEmbeddedArchive>>;
  let deadArchive: Awaited<ReturnType<typeof startEmbeddedArchive>>;
  let key: Awaited<ReturnType<typeof jose.generateKeyPair>>;
  let jwksUrl: string;
  const token = (claims: Jose.JWTPayload, privateKey = key.privateKey, kid = 'key-1') =>
    new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).setIssuer(ISSUER).setIssuedAt().setExpirationTime('5m').sign(privateKey);

  beforeAll(async () => {
    key = await jose.generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await jose.exportJWK(key.publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' };
    jwksServer = http.createServer((req, res) => {
      res.writeHead(req.url === '/.well-known/jwks.json' ? 200 : 404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', () => r()));
    jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
    const env = { AUTH_JWKS_URL: jwksUrl, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE };
    archive = await startEmbeddedArchive({ dataDir: path.join(tmp.dir, 'a'), port: 0, log: collectingLogger([]), authenticate: createEmbeddedAuthenticator(embeddedAuthConfigFromEnv(env)!) });
    // An issuer whose JWKS endpoint is down: tokens cannot be checked, which is a 503, not the client's 401.
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/jwks.json`;
    await new Promise<void>((r) => closed.close(() => r()));
    deadArchive = await startEmbeddedArchive({ dataDir: path.join(tmp.dir, 'b'), port: 0, log: collectingLogger([]), authenticate: createEmbeddedAuthenticator(embeddedAuthConfigFromEnv({ ...env, AUTH_JWKS_URL: deadUrl })!) });
  });
  afterAll(async () => {
    await archive?.close();
    await deadArchive?.close();
    await new Promise<void>((r) => (jwksServer ? jwksServer.close(() => r()) : r()));
    tmp.cleanup();
  });

  const get = async (a: typeof archive, t: string) => call(`${a.dicomWebUrl}/studies`, 'GET', { Authorization: `Bearer ${t}` });

  it('a token signed by the issuer key → 200; write scope only → 403', async () => {
    expect((await get(archive, await token({ client_id: AUDIENCE, sub: AUDIENCE, scope: 'dicomweb/read' }))).status).toBe(200);
    expect((await get(archive, await token({ client_id: AUDIENCE, sub: AUDIENCE, scope: 'dicomweb/write' }))).status).toBe(403);
  });

  it('another key under the same kid, an unknown kid, and an HS256 token keyed with the public key → 401', async () => {
    const other = await jose.generateKeyPair('RS256');
    expect((await get(archive, await token({ client_id: AUDIENCE, sub: 'x', scope: 'read' }, other.privateKey))).status).toBe(401);
    expect((await get(archive, await token({ client_id: AUDIENCE, sub: 'x', scope: 'read' }, other.privateKey, 'key-2'))).status).toBe(401);
    const n = (await jose.exportJWK(key.publicKey)).n!;
    const confused = await new jose.SignJWT({ client_id: AUDIENCE, sub: 'x', scope: 'read' }).setProtectedHeader({ alg: 'HS256', kid: 'key-1' }).setIssuer(ISSUER).setExpirationTime('5m').sign(new TextEncoder().encode(n));
    expect((await get(archive, confused)).status).toBe(401);
  });

  it('an unreachable JWKS → 503, not 401 or 500', async () => {
    const res = await get(deadArchive, await token({ client_id: AUDIENCE, sub: AUDIENCE, scope: 'dicomweb/read' }));
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('TIMEOUT');
  });
});

describe('configuration rules', () => {
  it('nothing configured → no authenticator; loopback detection', () => {
    expect(embeddedAuthConfigFromEnv({})).toBeUndefined();
    expect(embeddedAuthConfigFromEnv({ API_KEYS: '', AUTH_ISSUER: ' ' })).toBeUndefined();
    for (const h of ['127.0.0.1', 'localhost', '::1', '127.1.2.3']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'archive.example.test']) expect(isLoopbackHost(h)).toBe(false);
  });

  it.each<[string, Env, RegExp]>([
    ['unknown scope', { API_KEYS: 'gw:s3cr3t-value:read+admin' }, /unknown scope "admin"/],
    ['no secret', { API_KEYS: 'gw::read' }, /secret is empty/],
    ['missing scopes part', { API_KEYS: 'gw:s3cr3t-value' }, /name:secret:scope/],
    ['duplicate name', { API_KEYS: 'gw:aaaaaaaa:read,gw:bbbbbbbb:write' }, /used twice/],
    ['duplicate secret', { API_KEYS: 'gw:aaaaaaaa:read,gx:aaaaaaaa:write' }, /same secret/],
    ['issuer without keys', { AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE }, /AUTH_JWKS_URL/],
    ['JWKS without issuer', { AUTH_JWKS_URL: 'https://idp.example.test/jwks.json', AUTH_AUDIENCE: AUDIENCE }, /AUTH_ISSUER/],
    ['JWKS without audience', { AUTH_JWKS_URL: 'https://idp.example.test/jwks.json', AUTH_ISSUER: ISSUER }, /AUTH_AUDIENCE/],
    ['JWKS over plain http to another host', { AUTH_JWKS_URL: 'http://idp.example.test/jwks.json', AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE }, /https/],
    ['both JWKS and secret', { AUTH_JWKS_URL: 'https://idp.example.test/jwks.json', AUTH_JWT_SECRET: JWT_SECRET, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE }, /not both/],
    ['short HS256 secret', { AUTH_JWT_SECRET: 'short', AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE }, /at least 32/],
  ])('%s → refused', (_label, env, message) => {
    let error: unknown;
    try {
      embeddedAuthConfigFromEnv(env);
    } catch (e) {
      error = e;
    }
    expect((error as { code?: string })?.code).toBe('AUTH_CONFIG');
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toMatch(/s3cr3t-value|aaaaaaaa/);
  });

  it('a secret may contain ":"; the scopes are after the last one', async () => {
    const config = embeddedAuthConfigFromEnv({ API_KEYS: ' edge-1:pa:ss:word-0123456789abcdef:read+write , ops:zzzzzzzzzzzzzzzzzzzzzzzz:delete ' })!;
    expect(config.apiKeys!.map((k) => [k.name, [...k.scopes]])).toEqual([['edge-1', ['read', 'write']], ['ops', ['delete']]]);
    const p = await createEmbeddedAuthenticator(config)(new Request('http://127.0.0.1/dicom-web/studies', { headers: { 'X-API-Key': 'pa:ss:word-0123456789abcdef' } }));
    expect(p?.id).toBe('edge-1');
  });

  it('the embedded archive will not listen off loopback without an authenticator', async () => {
    const tmp = makeTempDir('auth-refuse-');
    try {
      await expect(startEmbeddedArchive({ dataDir: tmp.dir, host: '0.0.0.0', port: 0, log: collectingLogger([]) })).rejects.toThrow(/refusing to bind 0\.0\.0\.0/);
    } finally {
      tmp.cleanup();
    }
  });

  it('on loopback with nothing configured, the local user may do everything (as before)', async () => {
    const tmp = makeTempDir('auth-open-');
    const open = await startEmbeddedArchive({ dataDir: tmp.dir, port: 0, log: collectingLogger([]) });
    try {
      expect((await call(`${open.dicomWebUrl}/studies`, 'GET')).status).toBe(200);
      expect([401, 403]).not.toContain((await call(`${open.dicomWebUrl}/studies/${uid()}`, 'DELETE')).status);
      expect((await call(open.dicomWebUrl, 'OPTIONS')).status).toBe(200);
    } finally {
      await open.close();
      tmp.cleanup();
    }
  });
});

describe('npm start (functions/adapters/http/main.ts)', () => {
  const tmp = makeTempDir('auth-main-');
  afterAll(() => tmp.cleanup());
  const baseEnv = () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0' };
    for (const k of ['API_KEYS', 'AUTH_JWKS_URL', 'AUTH_JWT_SECRET', 'AUTH_ISSUER', 'AUTH_AUDIENCE', 'AUTH_SCOPE_PREFIX', 'HOST']) delete env[k];
    return env;
  };

  it('HOST=0.0.0.0 with API_KEYS: starts, and every request needs the key', async () => {
    const secret = randomBytes(24).toString('hex');
    const child = spawn(TSX, [MAIN], { env: { ...baseEnv(), HOST: '0.0.0.0', API_KEYS: `edge:${secret}:read+write`, DATA_DIR: path.join(tmp.dir, 'd1') }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const port = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start-up line: ${out}`)), 30_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening at http:\/\/[^\s]+:(\d+)\/dicom-web/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    try {
      const url = `http://127.0.0.1:${port}/dicom-web/studies`;
      expect((await call(url, 'GET')).status).toBe(401);
      expect((await call(url, 'GET', { 'X-API-Key': secret })).status).toBe(200);
      expect((await call(url.replace(/studies$/, `studies/${uid()}`), 'DELETE', { 'X-API-Key': secret })).status).toBe(403);
      expect(out).toMatch(/authentication required: API keys \(edge\)/);
      expect(out).not.toContain(secret);
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });

  it.each<[string, NodeJS.ProcessEnv, RegExp]>([
    ['HOST=0.0.0.0 with nothing configured', { HOST: '0.0.0.0' }, /refusing to bind 0\.0\.0\.0: no authentication is configured/],
    ['a bad API_KEYS entry', { API_KEYS: 'edge:very-secret-value:read+root' }, /invalid authentication settings: .*unknown scope "root"/],
    ['half an OIDC setup', { HOST: '0.0.0.0', AUTH_ISSUER: ISSUER }, /invalid authentication settings: .*AUTH_JWKS_URL/],
  ])('%s → exit 2 with a clear message', (_label, env, message) => {
    const r = spawnSync(TSX, [MAIN], { env: { ...baseEnv(), ...env, DATA_DIR: path.join(tmp.dir, 'x') }, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain('very-secret-value');
  });
});
