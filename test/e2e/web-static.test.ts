/**
 * The embedded server's static files (functions/adapters/http/static-files.ts):
 * what is served where, with which headers, and that no request path
 * reaches a file outside the served directories. Raw HTTP requests, so the
 * client does not normalise `..` or encoded slashes away first.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import { makeTempDir } from '../helpers/tmp';

function raw(base: string, rawPath: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, method, headers }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('static files of the embedded server', () => {
  const tmp = makeTempDir('web-static-');
  const viewerDir = path.join(tmp.dir, 'viewer');
  const SECRET = 'SECRET-OUTSIDE-THE-VIEWER';
  let archive: Awaited<ReturnType<typeof startEmbeddedArchive>>;

  beforeAll(async () => {
    // A stand-in viewer, and a file beside it that must never be served.
    fs.mkdirSync(path.join(viewerDir, 'assets'), { recursive: true });
    fs.writeFileSync(path.join(viewerDir, 'index.html'), '<!doctype html><title>viewer index</title>');
    fs.writeFileSync(path.join(viewerDir, 'app.bundle.abc.js'), 'console.log(1)');
    fs.writeFileSync(path.join(viewerDir, 'codec.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d]));
    fs.writeFileSync(path.join(tmp.dir, 'secret.txt'), SECRET);
    archive = await startEmbeddedArchive({ dataDir: path.join(tmp.dir, 'data'), port: 0, log: silentLogger, web: { authRequired: false, viewerDir, cacheDir: path.join(tmp.dir, 'cache') } });
  });
  afterAll(async () => {
    await archive?.close();
    tmp.cleanup();
  });

  it('serves the UI with a strict CSP and the usual headers, revalidated by ETag', async () => {
    const index = await raw(archive.url, '/');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.body).toContain('<script type="module" src="app.js">');
    expect(index.headers['content-security-policy']).toContain("script-src 'self'");
    expect(index.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(index.headers['x-content-type-options']).toBe('nosniff');
    expect(index.headers['x-frame-options']).toBe('DENY');
    expect(index.headers['referrer-policy']).toBe('no-referrer');
    const app = await raw(archive.url, '/app.js');
    expect(app.status).toBe(200);
    expect(app.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(Number(app.headers['content-length'])).toBeGreaterThan(1000);
    const again = await raw(archive.url, '/app.js', 'GET', { 'If-None-Match': String(app.headers.etag) });
    expect(again.status).toBe(304);
    const head = await raw(archive.url, '/styles.css', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(JSON.parse((await raw(archive.url, '/config.json')).body)).toEqual({ dicomWebRoot: '/dicom-web', viewerUrl: '/viewer', auth: { required: false }, stowMaxBytes: 33554432, uploadApiFromBytes: 268435456 });
  });

  it('serves the viewer: files with their types, app-config.js for this archive, client routes as index.html', async () => {
    const wasm = await raw(archive.url, '/viewer/codec.wasm');
    expect(wasm.headers['content-type']).toBe('application/wasm');
    expect((await raw(archive.url, '/viewer/app.bundle.abc.js')).body).toBe('console.log(1)');
    for (const p of ['/viewer', '/viewer/', '/viewer/viewer', '/viewer/viewer/dicomweb']) {
      const r = await raw(archive.url, p);
      expect([p, r.status, r.body]).toEqual([p, 200, '<!doctype html><title>viewer index</title>']);
    }
    expect((await raw(archive.url, '/viewer/missing.bundle.js')).status).toBe(404);
    const redirect = await raw(archive.url, '/viewer?StudyInstanceUIDs=1.2.3');
    expect([redirect.status, redirect.headers.location]).toEqual([302, '/viewer/viewer?StudyInstanceUIDs=1.2.3']);

    const appConfig = await raw(archive.url, '/viewer/app-config.js');
    const sandbox = { window: {} as { config?: any } };
    vm.runInNewContext(appConfig.body, sandbox);
    const config = sandbox.window.config;
    expect(config.routerBasename).toBe('/viewer');
    const source = config.dataSources[0];
    expect(source.namespace).toBe('@ohif/extension-default.dataSourcesModule.dicomweb');
    expect(source.configuration).toMatchObject({ qidoRoot: '/dicom-web', wadoRoot: '/dicom-web', wadoUriRoot: '/dicom-web', imageRendering: 'wadors', thumbnailRendering: 'wadors', supportsFuzzyMatching: true, bulkDataURI: { enabled: true } });
    expect(config.defaultDataSourceName).toBe(source.sourceName);
  });

  it('never serves a file outside the served directories, whatever the path spelling', async () => {
    const attempts = [
      '/viewer/../secret.txt',
      '/viewer/..%2fsecret.txt',
      '/viewer/%2e%2e/secret.txt',
      '/viewer/%2E%2E%2Fsecret.txt',
      '/viewer/..%5csecret.txt',
      '/viewer/assets/../../secret.txt',
      '/viewer/%00/../secret.txt',
      '/viewer/secret.txt%00.js',
      '/viewer//..//secret.txt',
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/viewer/%',
      `/viewer/${'a'.repeat(300)}.js`,
    ];
    for (const p of attempts) {
      const r = await raw(archive.url, p);
      expect([p, r.body.includes(SECRET)]).toEqual([p, false]);
      expect([p, r.status === 404 || r.status === 400 || r.body.startsWith('<!doctype html><title>viewer index')]).toEqual([p, true]);
    }
  });

  it('leaves the DICOMweb base path and other methods to the archive', async () => {
    const qido = await raw(archive.url, '/dicom-web/studies', 'GET', { Accept: 'application/dicom+json' });
    expect([200, 204]).toContain(qido.status);
    const post = await raw(archive.url, '/', 'POST');
    expect(post.status).toBe(404);
    expect(post.headers['content-security-policy']).toBeUndefined();
    expect((await raw(archive.url, '/nothing-here')).status).toBe(404);
  });

  it('explains how to get the viewer when it is not installed', async () => {
    const bare = await startEmbeddedArchive({ dataDir: path.join(tmp.dir, 'data2'), port: 0, log: silentLogger, web: { authRequired: false, viewerDir: path.join(tmp.dir, 'no-viewer'), cacheDir: path.join(tmp.dir, 'cache') } });
    try {
      const r = await raw(bare.url, '/viewer/viewer');
      expect(r.status).toBe(503);
      expect(r.body).toContain('npm run build:web');
      expect((await raw(bare.url, '/')).status).toBe(200);
    } finally {
      await bare.close();
    }
  });
});
