/**
 * Authorization in the bundled Lambda handlers (docs/auth.md). API Gateway's
 * JWT authorizer validates the token before the function runs and forwards
 * the claims in `requestContext.authorizer.jwt`; the handler maps them to a
 * Principal (AUTH_MODE=jwt, the default).
 *
 * Every route of the route table (taken from the embedded archive, so routes
 * added later are picked up) is sent to the bundle of its service three
 * ways: no authorizer context → 401 + WWW-Authenticate; claims with every
 * scope but the route's → 403; only the route's scope → neither. Claims come
 * Cognito-style (`scope` string + `scopes` array) and as a flattened `scp`
 * claim with no `scopes`. Also: recorded Cognito events (edge gateway,
 * viewer user), headers a client could forge, CORS preflight, capabilities,
 * AUTH_MODE / AUTH_SCOPE_PREFIX, and the audit log line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { HandlerName } from '../../scripts/build-functions';
import type { Route, Scope, Service } from '../../functions/core/archive/app';
import { uid } from '../fixtures/synthetic';
import { startTestArchive } from '../helpers/archive';
import { startLambdaBundles, type LambdaBundles } from '../helpers/lambda-bundles';
import { lambdaContext, loadEvent, retarget as retargetEvent, type LambdaHandler } from '../helpers/lambda-events';
import { resultJson } from '../helpers/lambda-result';

type Claims = Record<string, string | number | boolean | string[]>;

/** The scope each service needs (the brief's table, kept independent of app.ts on purpose). */
const SCOPE_OF: Record<Service, Scope> = { stow: 'write', upload: 'write', qido: 'read', wado: 'read', delete: 'delete', meta: 'read' };
const SCOPES: Scope[] = ['read', 'write', 'delete'];
const others = (s: Scope) => SCOPES.filter((x) => x !== s);

/** Synthetic values for the path parameters; unknown names get a harmless token. */
const SAMPLE: Record<string, () => string> = { study: uid, series: uid, instance: uid, frames: () => '1', path: () => '7FE00010' };
const concretePath = (route: Route) => route.path.replace(/\{(\w+)\}/g, (_, n: string) => encodeURIComponent(SAMPLE[n]?.() ?? `synthetic-${n}-1`));

/** The event aimed at another resource, with the given authorizer context (undefined: none at all). */
function retarget(event: APIGatewayProxyEventV2, method: string, rawPath: string, authorizer: unknown, rawQueryString = ''): APIGatewayProxyEventV2 {
  const moved = retargetEvent(event, method, rawPath, rawQueryString);
  const requestContext: Record<string, unknown> = { ...moved.requestContext };
  if (authorizer === undefined) delete requestContext.authorizer;
  else requestContext.authorizer = authorizer;
  return { ...moved, requestContext } as unknown as APIGatewayProxyEventV2;
}

/** What the JWT authorizer forwards, in two spellings. */
const AUTHORIZER_STYLES: Record<string, (scopes: Scope[]) => unknown> = {
  'Cognito: `scope` claim + `scopes`': (scopes) => ({
    jwt: { claims: { client_id: 'edge-gw-client', sub: 'edge-gw-client', token_use: 'access', scope: scopes.map((s) => `dicomweb/${s}`).join(' ') }, scopes: scopes.map((s) => `dicomweb/${s}`) },
    principalId: '',
    integrationLatency: 0,
  }),
  'OIDC: flattened `scp` claim, no `scopes`': (scopes) => ({ jwt: { claims: { sub: 'oidc-user-1', scp: `[${scopes.join(' ')}]` }, scopes: null }, principalId: '', integrationLatency: 0 }),
};

const codeOf = (r: APIGatewayProxyStructuredResultV2) => {
  try {
    return resultJson(r).code as string | undefined;
  } catch {
    return undefined;
  }
};

describe('Lambda handlers: API Gateway JWT authorizer claims → scopes', () => {
  let lambdas: LambdaBundles;
  let routes: Route[];
  const invoke = (name: HandlerName, event: APIGatewayProxyEventV2) => lambdas.invoke(name, event);
  const template = () => loadEvent('jwt-cognito-client-credentials', { study: uid() });
  /** A fresh bundle instance (a cold start) under extra environment variables. */
  const coldStart = (name: HandlerName, env: Record<string, string | undefined>): LambdaHandler => {
    const saved = { ...process.env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
    const fresh = lambdas.coldStart(name);
    // The handler reads the environment at its first invocation: restore after the call.
    return async (event, context) => {
      try {
        for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
        else process.env[k] = v;
        return await fresh(event, context);
      } finally {
        for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
      }
    };
  };
  /** The bundle that serves a route in AWS: its service's own; 'meta' routes go to every handler (qido here). */
  const handlerFor = (route: Route): HandlerName | undefined => {
    const name = route.service === 'meta' ? 'qido' : route.service;
    return lambdas.built.some((b) => b.name === name) ? (name as HandlerName) : undefined;
  };

  beforeAll(async () => {
    const archive = await startTestArchive();
    routes = archive.app.routes;
    await archive.stop();
    // AUTH_MODE unset: the default, jwt.
    lambdas = await startLambdaBundles('auth-lambda-bundles-', { DICOMWEB_BASE_PATH: '/dicom-web', AUTH_MODE: undefined, AUTH_SCOPE_PREFIX: undefined });
  }, 60_000);

  afterAll(() => lambdas?.stop());

  it('every route has a bundled handler; the bundles carry no JWT library (API Gateway verifies)', () => {
    const unserved = routes.filter((r) => !handlerFor(r)).map((r) => `${r.method} ${r.path} (${r.service})`);
    console.log(`[auth] ${routes.length} routes; without a Lambda bundle: ${unserved.length ? unserved.join(', ') : 'none'}`);
    for (const s of ['stow', 'qido', 'wado', 'delete'] as const) expect(routes.some((r) => r.service === s && handlerFor(r) === s)).toBe(true);
    for (const b of lambdas.built) {
      const meta = JSON.parse(fs.readFileSync(path.join(path.dirname(b.file), 'meta.json'), 'utf8')) as { inputs: Record<string, unknown> };
      expect(Object.keys(meta.inputs).filter((i) => i.includes('node_modules/jose/'))).toEqual([]);
    }
  });

  describe.each(Object.keys(AUTHORIZER_STYLES))('every route, %s', (style) => {
    it('no authorizer → 401 + WWW-Authenticate; other scopes → 403; its scope → allowed', async () => {
      const problems: string[] = [];
      for (const route of routes) {
        const name = handlerFor(route);
        if (!name) continue;
        const scope = SCOPE_OF[route.service];
        const rawPath = `/dicom-web${concretePath(route)}`;
        const label = `${name}: ${route.method} ${route.path} (needs ${scope})`;
        const none = await invoke(name, retarget(template(), route.method, rawPath, undefined));
        if (none.statusCode !== 401 || !/^Bearer\b/.test(String(none.headers?.['www-authenticate'] ?? '')) || codeOf(none) !== 'UNAUTHORIZED') {
          problems.push(`${label}: no authorizer → ${none.statusCode} ${none.body}`);
        }
        const wrong = await invoke(name, retarget(template(), route.method, rawPath, AUTHORIZER_STYLES[style]!(others(scope))));
        if (wrong.statusCode !== 403 || codeOf(wrong) !== 'FORBIDDEN') problems.push(`${label}: ${others(scope).join('+')} → ${wrong.statusCode}, not 403`);
        const right = await invoke(name, retarget(template(), route.method, rawPath, AUTHORIZER_STYLES[style]!([scope])));
        if ([401, 403].includes(right.statusCode ?? 0)) problems.push(`${label}: ${scope} → ${right.statusCode} ${right.body}`);
      }
      expect(problems).toEqual([]);
    });
  });

  describe('recorded Cognito events', () => {
    it('edge gateway (client credentials, read+write): QIDO 200, DELETE 403', async () => {
      const study = uid();
      const event = loadEvent('jwt-cognito-client-credentials', { study });
      const res = await invoke('qido', event);
      expect(res.statusCode).toBe(200);
      expect(resultJson(res)).toEqual([]);
      const del = await invoke('delete', retarget(event, 'DELETE', `/dicom-web/studies/${study}`, (event.requestContext as unknown as { authorizer: unknown }).authorizer));
      expect(del.statusCode).toBe(403);
      expect(resultJson(del).message).toMatch(/"delete" scope/);
    });

    it('viewer user (authorization code + PKCE, openid profile dicomweb/read): QIDO 200, STOW 403', async () => {
      const event = loadEvent('jwt-cognito-viewer-user', { study: uid() });
      expect((await invoke('qido', event)).statusCode).toBe(200);
      const authorizer = (event.requestContext as unknown as { authorizer: unknown }).authorizer;
      expect((await invoke('stow', retarget(event, 'POST', '/dicom-web/studies', authorizer))).statusCode).toBe(403);
    });

    it('the same events without the authorizer context → 401, whatever the headers say', async () => {
      const forged = retarget(loadEvent('jwt-cognito-client-credentials', { study: uid() }), 'GET', '/dicom-web/studies', undefined);
      const allScopes = JSON.stringify({ jwt: { claims: { sub: 'mallory', scope: 'dicomweb/read dicomweb/write dicomweb/delete' }, scopes: ['dicomweb/read', 'dicomweb/write', 'dicomweb/delete'] } });
      forged.headers = {
        ...forged.headers,
        'x-amzn-oidc-data': 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.',
        'x-apigateway-authorizer': allScopes,
        'x-jwt-claims': allScopes,
        'x-amzn-requestcontext': JSON.stringify({ authorizer: JSON.parse(allScopes) }),
        'x-api-key': 'anything',
      };
      const res = await invoke('qido', forged);
      expect(res.statusCode).toBe(401);
      expect(res.headers?.['www-authenticate']).toMatch(/^Bearer/);
    });

    it('claims without sub or client_id → 401', async () => {
      const event = retarget(template(), 'GET', '/dicom-web/studies', { jwt: { claims: { iss: 'x', scope: 'dicomweb/read' }, scopes: ['dicomweb/read'] } });
      expect((await invoke('qido', event)).statusCode).toBe(401);
    });
  });

  describe('OPTIONS', () => {
    const read = AUTHORIZER_STYLES['Cognito: `scope` claim + `scopes`']!;
    it('CORS preflight is not blocked', async () => {
      const event = retarget(template(), 'OPTIONS', '/dicom-web/studies', undefined);
      event.headers = { ...event.headers, origin: 'https://viewer.example.test', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' };
      const res = await invoke('qido', event);
      expect([401, 403]).not.toContain(res.statusCode);
      expect(res.statusCode).toBeLessThan(300);
    });

    it('the capabilities document needs authentication and the read scope', async () => {
      const none = await invoke('qido', retarget(template(), 'OPTIONS', '/dicom-web', undefined));
      expect(none.statusCode).toBe(401);
      expect((await invoke('qido', retarget(template(), 'OPTIONS', '/dicom-web', read(['write', 'delete'])))).statusCode).toBe(403);
      const ok = await invoke('qido', retarget(template(), 'OPTIONS', '/dicom-web', read(['read'])));
      expect(ok.statusCode).toBe(200);
      expect(ok.headers?.['content-type']).toBe('application/vnd.sun.wadl+xml');
    });
  });

  describe('configuration (cold starts)', () => {
    const noAuthorizer = () => retarget(template(), 'GET', '/dicom-web/studies', undefined, 'limit=1');

    it('AUTH_MODE=none: no authentication (the tests of the unauthenticated behaviour)', async () => {
      const res = await coldStart('qido', { AUTH_MODE: 'none' })(noAuthorizer(), lambdaContext('dicomweb-qido-none'));
      expect(res.statusCode).toBe(200);
    });

    it('AUTH_MODE=jwt explicitly: 401 without claims', async () => {
      const res = await coldStart('qido', { AUTH_MODE: 'jwt' })(noAuthorizer(), lambdaContext('dicomweb-qido-jwt'));
      expect(res.statusCode).toBe(401);
    });

    it('an unknown AUTH_MODE fails closed: 500 without internals', async () => {
      const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
      try {
        const res = await coldStart('qido', { AUTH_MODE: 'off' })(noAuthorizer(), lambdaContext('dicomweb-qido-bad-mode'));
        expect(res.statusCode).toBe(500);
        expect(resultJson(res)).toEqual({ code: 'INTERNAL', message: 'Internal server error.' });
      } finally {
        errors.mockRestore();
      }
    });

    it('AUTH_SCOPE_PREFIX: a custom resource-server prefix; plain names still count', async () => {
      const handler = coldStart('qido', { AUTH_SCOPE_PREFIX: 'https://dicom.example.test/' });
      const withScope = (scope: string) => retarget(template(), 'GET', '/dicom-web/studies', { jwt: { claims: { sub: 'c1', scope }, scopes: null } }, 'limit=1');
      expect((await handler(withScope('https://dicom.example.test/read'), lambdaContext('p1'))).statusCode).toBe(200);
      expect((await handler(withScope('read'), lambdaContext('p2'))).statusCode).toBe(200);
      expect((await handler(withScope('dicomweb/read'), lambdaContext('p3'))).statusCode).toBe(403);
    });
  });

  it('logs: one PHI-free `auth` line per authenticated request with the principal id, nothing from the token', () => {
    const lines = lambdas.logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const auth = lines.filter((l) => l.message === 'auth');
    expect(auth.length).toBeGreaterThan(0);
    const ids = new Set(auth.map((l) => l.principal));
    expect(ids).toContain('4lq1oa0u2n8b5cgd7kfs0edge1');
    expect(ids).toContain('7c0e4b1a-2d3f-4e5a-8b9c-0d1e2f3a4b5c');
    const all = lambdas.logLines.join('');
    expect(all).not.toMatch(/synthetic\.radiologist|radiologists|cognito-idp|eyJ[A-Za-z0-9_-]{10,}|mallory/);
  });
});
