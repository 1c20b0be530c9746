/**
 * The web UI when the archive requires credentials (docs/auth.md), in
 * headless Chromium: the API-key login form (a wrong key is refused and the
 * form says so; the key lives in sessionStorage), OIDC sign-in with the
 * authorization code flow + PKCE against a local issuer that checks the
 * code verifier, the token handed to OHIF, upload by drag and drop with a
 * large file taking the upload API.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import type * as Jose from 'jose';
import type { Page } from 'playwright-core';
import { createEmbeddedAuthenticator, embeddedAuthConfigFromEnv } from '../../functions/adapters/auth/embedded-auth';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import { ensureOhifDist } from '../../web/ohif';
import { ctSeries } from '../fixtures/synthetic';
import { getJson } from '../helpers/archive';
import { makeTempDir } from '../helpers/tmp';
import { PROJECT_ROOT } from '../helpers/paths';
import { chromiumInstalled, launchChromium } from './web-browser';

// jose is ESM-only and jest loads CommonJS: a CommonJS bundle of the real jose
// under its own name, as in auth-embedded.test.ts (the archive verifies tokens with it).
const joseDir = makeTempDir('jose-cjs-');
const JOSE_CJS = path.join(joseDir.dir, 'jose.cjs');
buildSync({ entryPoints: [path.join(PROJECT_ROOT, 'node_modules', 'jose', 'dist', 'webapi', 'index.js')], bundle: true, format: 'cjs', platform: 'node', target: 'node22', outfile: JOSE_CJS, logLevel: 'warning' });
jest.mock('jose', () => jest.requireActual(JOSE_CJS));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { SignJWT } = require('jose') as typeof Jose;

jest.setTimeout(180_000);

const run = chromiumInstalled() ? describe : describe.skip;

const API_KEY = randomBytes(32).toString('hex');
const JWT_SECRET = randomBytes(32).toString('hex');
const CLIENT_ID = 'web-ui-test';

/** A minimal OIDC issuer: discovery, an authorize endpoint that signs the user in at once, and a token endpoint that checks PKCE. */
async function startIssuer(): Promise<{ url: string; tokensIssued: () => number; close: () => Promise<void> }> {
  const codes = new Map<string, { challenge: string; method: string; redirectUri: string; clientId: string }>();
  let issued = 0;
  let base = '';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', base);
    const cors = { 'Access-Control-Allow-Origin': '*' };
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { ...cors, 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/.well-known/openid-configuration') return json(200, { issuer: base, authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/token` });
    if (url.pathname === '/authorize') {
      const p = url.searchParams;
      if (p.get('response_type') !== 'code' || p.get('client_id') !== CLIENT_ID || !p.get('code_challenge')) return json(400, { error: 'invalid_request' });
      const code = randomBytes(16).toString('hex');
      codes.set(code, { challenge: p.get('code_challenge')!, method: p.get('code_challenge_method') ?? 'plain', redirectUri: p.get('redirect_uri')!, clientId: p.get('client_id')! });
      const back = new URL(p.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', p.get('state') ?? '');
      res.writeHead(302, { Location: back.toString() });
      return res.end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        void (async () => {
          const form = new URLSearchParams(body);
          const grant = codes.get(form.get('code') ?? '');
          codes.delete(form.get('code') ?? '');
          const verifier = form.get('code_verifier') ?? '';
          const s256 = createHash('sha256').update(verifier).digest('base64url');
          if (!grant || form.get('grant_type') !== 'authorization_code' || grant.method !== 'S256' || s256 !== grant.challenge || form.get('redirect_uri') !== grant.redirectUri || form.get('client_id') !== grant.clientId) {
            return json(400, { error: 'invalid_grant' });
          }
          issued += 1;
          const token = await new SignJWT({ scope: 'openid dicomweb/read dicomweb/write dicomweb/delete', client_id: CLIENT_ID })
            .setProtectedHeader({ alg: 'HS256' })
            .setIssuer(base)
            .setAudience(CLIENT_ID)
            .setSubject('reader-1')
            .setIssuedAt()
            .setExpirationTime('10m')
            .sign(new TextEncoder().encode(JWT_SECRET));
          json(200, { access_token: token, token_type: 'Bearer', expires_in: 600 });
        })();
      });
      return;
    }
    json(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: base, tokensIssued: () => issued, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

run('web UI with authentication (API key, OIDC + PKCE) in Chromium', () => {
  const tmp = makeTempDir('web-auth-');
  let issuer: Awaited<ReturnType<typeof startIssuer>>;
  let archive: Awaited<ReturnType<typeof startEmbeddedArchive>>;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;
  const archiveRequests: { url: string; authorization?: string }[] = [];

  beforeAll(async () => {
    issuer = await startIssuer();
    const viewerDir = await ensureOhifDist();
    const auth = embeddedAuthConfigFromEnv({ API_KEYS: `ui:${API_KEY}:read+write+delete`, AUTH_JWT_SECRET: JWT_SECRET, AUTH_ISSUER: issuer.url, AUTH_AUDIENCE: CLIENT_ID })!;
    archive = await startEmbeddedArchive({
      dataDir: path.join(tmp.dir, 'data'),
      port: 0,
      log: silentLogger,
      authenticate: createEmbeddedAuthenticator(auth),
      // uploadApiFromBytes: the larger file below goes through the upload API.
      web: { authRequired: true, oidc: { issuer: issuer.url, clientId: CLIENT_ID, scope: 'openid dicomweb/read dicomweb/write dicomweb/delete' }, cacheDir: path.join(tmp.dir, 'cache'), uploadApiFromBytes: 40_000, viewerDir },
    });
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('request', (r) => {
      if (r.url().includes('/dicom-web/')) archiveRequests.push({ url: r.url(), authorization: r.headers()['authorization'] });
    });
  });

  afterAll(async () => {
    await browser?.close();
    await archive?.close();
    await issuer?.close();
    tmp.cleanup();
    joseDir.cleanup();
  });

  test('the static files need no credentials, the archive does', async () => {
    expect((await fetch(`${archive.url}/`)).status).toBe(200);
    const config = await (await fetch(`${archive.url}/config.json`)).json();
    expect(config.auth).toEqual({ required: true, oidc: { issuer: issuer.url, clientId: CLIENT_ID, scope: 'openid dicomweb/read dicomweb/write dicomweb/delete' } });
    expect((await fetch(`${archive.dicomWebUrl}/studies`)).status).toBe(401);
  });

  test('API key login: a wrong key is refused, the right one lists studies, sign-out forgets it', async () => {
    await page.goto(`${archive.url}/`);
    await page.waitForSelector('#login:not([hidden])');
    expect(await page.isVisible('#oidc-login')).toBe(true);
    expect(await page.isVisible('#app')).toBe(false);

    await page.fill('#token-input', 'not-the-key');
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('login-error')?.textContent === 'The archive did not accept the credentials; sign in again.');
    expect(await page.evaluate(() => sessionStorage.getItem('dicomweb.token'))).toBeNull();

    await page.fill('#token-input', API_KEY);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#app:not([hidden])');
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'No studies match.');
    expect(await page.evaluate(() => sessionStorage.getItem('dicomweb.token'))).toBe(API_KEY);
    const searches = archiveRequests.filter((r) => r.url.includes('/dicom-web/studies?'));
    expect(searches.at(-1)!.authorization).toBe(`Bearer ${API_KEY}`);

    await page.click('#sign-out');
    await page.waitForSelector('#login:not([hidden])');
    expect(await page.evaluate(() => sessionStorage.getItem('dicomweb.token'))).toBeNull();
  });

  test('OIDC sign-in (authorization code + PKCE), then drag-and-drop upload with a large file through the upload API', async () => {
    const before = archiveRequests.length;
    await page.goto(`${archive.url}/`);
    await page.waitForSelector('#oidc-login:not([hidden])');
    await page.click('#oidc-login');
    // To the issuer and back with ?code&state, traded for a token; the address bar is cleaned.
    await page.waitForSelector('#app:not([hidden])');
    expect(issuer.tokensIssued()).toBe(1);
    expect(new URL(page.url()).search).toBe('');
    const token = await page.evaluate(() => sessionStorage.getItem('dicomweb.token'));
    expect(token?.split('.')).toHaveLength(3);

    // One small and one large instance (over uploadApiFromBytes), dropped as files on the page.
    const [small] = ctSeries({ count: 1, rows: 64, columns: 64, patient: { name: 'DROP^SMALL', id: 'DROP1' } });
    const [large] = ctSeries({ count: 1, rows: 256, columns: 256, patient: { name: 'DROP^LARGE', id: 'DROP2' } });
    expect(large!.bytes.length).toBeGreaterThan(40_000);
    expect(small!.bytes.length).toBeLessThan(40_000);
    const files = [small!, large!].map((i, n) => ({ name: `f${n}.dcm`, b64: Buffer.from(i.bytes).toString('base64') }));
    await page.evaluate((list) => {
      const dt = new DataTransfer();
      for (const f of list) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: 'application/dicom' }));
      document.getElementById('drop-zone')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, files);
    await page.waitForSelector('#upload-status[data-done=true]', { timeout: 60_000 });
    expect(await page.textContent('#upload-status')).toBe('Upload finished: 2 stored, 0 failed, 0 skipped (not DICOM).');
    // The large one went through the upload API; every archive request carried the token, part URLs their signature instead.
    expect(archiveRequests.some((r) => r.url.endsWith('/dicom-web/uploads'))).toBe(true);
    const since = archiveRequests.slice(before);
    const parts = since.filter((r) => /\/uploads\/[0-9a-f]+\/parts\/\d+\?/.test(r.url));
    expect(parts.length).toBeGreaterThan(0);
    for (const r of parts) expect(r.authorization).toBeUndefined();
    const others = since.filter((r) => !parts.includes(r));
    expect(others.length).toBeGreaterThan(3);
    for (const r of others) expect(`${r.url} ${r.authorization}`).toBe(`${r.url} Bearer ${token}`);
    const headers = { Authorization: `Bearer ${API_KEY}` };
    for (const inst of [small!, large!]) {
      const found = await getJson(`${archive.dicomWebUrl}/instances?SOPInstanceUID=${inst.sopInstanceUID}`, headers);
      expect(found.json).toHaveLength(1);
    }
    await page.waitForFunction(() => document.querySelectorAll('tr.study').length === 2);
  });

  test('ZIP download with the token (fetched, then saved)', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('tr.study button.download-zip').first().click()]);
    const file = path.join(tmp.dir, 'auth.zip');
    await download.saveAs(file);
    const bytes = fs.readFileSync(file);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('PK\u0003\u0004');
    expect(await page.textContent('#status')).toBe('ZIP downloaded.');
  });

  test('the viewer link hands the token to OHIF, which loads the study with it', async () => {
    const token = await page.evaluate(() => sessionStorage.getItem('dicomweb.token'));
    await page.fill('#search input[name=name]', 'DROP^LARGE');
    await page.click('#search button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('tr.study').length === 1);
    const href = await page.locator('tr.study a.open-viewer').first().getAttribute('href');
    const url = new URL(href!, archive.url);
    expect(url.pathname).toBe('/viewer/viewer');
    expect(url.searchParams.get('token')).toBe(token);
    expect(url.searchParams.get('StudyInstanceUIDs')).toMatch(/^[0-9.]+$/);

    const viewer = await browser.context.newPage();
    const seen: { url: string; authorization?: string; status?: number }[] = [];
    viewer.on('response', (r) => {
      if (r.url().includes('/dicom-web/')) seen.push({ url: r.url(), authorization: r.request().headers()['authorization'], status: r.status() });
    });
    await viewer.goto(url.toString());
    await viewer.waitForFunction(
      () => {
        const canvas = document.querySelector('canvas.cornerstone-canvas') as HTMLCanvasElement | null;
        if (!canvas || canvas.width < 16) return false;
        const c = document.createElement('canvas');
        c.width = canvas.width;
        c.height = canvas.height;
        const g = c.getContext('2d')!;
        g.drawImage(canvas, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        let lit = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i]! + d[i + 1]! + d[i + 2]! > 30) lit += 1;
        return lit > (d.length / 4) * 0.1;
      },
      undefined,
      { timeout: 120_000, polling: 500 },
    );
    // OHIF took the token out of the address bar and sent it on every archive request, none refused.
    expect(new URL(viewer.url()).searchParams.get('token')).toBeNull();
    expect(seen.some((r) => r.url.includes('/frames/'))).toBe(true);
    for (const r of seen) expect(`${r.url} ${r.authorization} ${r.status}`).toBe(`${r.url} Bearer ${token} ${r.status === 304 ? 304 : 200}`);
    await viewer.close();
  });
});
