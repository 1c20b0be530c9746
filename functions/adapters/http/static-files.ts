/**
 * The embedded server's static files: the web UI at `/` and the OHIF viewer
 * at `/viewer` (in AWS the same files come from S3 through CloudFront,
 * infra/lib/constructs/web-hosting.ts). Everything under the DICOMweb base
 * path stays with the archive's route table.
 *
 * Only GET/HEAD. Paths are resolved inside the served directory and refused
 * when a segment is `..`, empty-dot, holds a backslash, NUL or an encoded
 * slash, so nothing outside can be named. The UI gets a strict
 * Content-Security-Policy (scripts and connections only to itself, the API
 * and the OIDC issuer); OHIF gets the other headers (it needs inline script
 * and WebAssembly, so a CSP would have to allow most of what it forbids).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { WebConfig } from '../../../web/src/config';
import { cachedWebUi } from '../../../web/build';
import { OHIF_BASE_PATH, installedOhifDist, ohifAppConfig } from '../../../web/ohif';

export interface WebSettings {
  /** The archive wants credentials (API keys or tokens are configured). */
  authRequired: boolean;
  /** OIDC login in the UI (authorization code + PKCE). */
  oidc?: { issuer: string; clientId: string; scope: string };
  /** OHIF thumbnails: the archive's thumbnail resources, or rendered by the viewer from frames (default). */
  thumbnailRendering?: 'thumbnail' | 'wadors';
  /** Where the UI is built (default: node_modules/.cache). */
  cacheDir?: string;
  /** OHIF's dist directory (default: the one web/ohif.ts fetched, if it did). */
  viewerDir?: string;
  /** Largest STOW request the UI sends, and the size from which files take the upload API. */
  stowMaxBytes?: number;
  uploadApiFromBytes?: number;
}

export interface StaticFiles {
  /** True for requests this serves (GET/HEAD outside the DICOMweb base path). */
  matches(request: Request): boolean;
  handle(request: Request): Promise<Response>;
}

/**
 * The UI settings from the environment of `npm start`: OIDC login when
 * WEB_OIDC_CLIENT_ID is set (issuer WEB_OIDC_ISSUER, else AUTH_ISSUER; scope
 * WEB_OIDC_SCOPE), WEB_THUMBNAILS=thumbnail|wadors for OHIF.
 */
export function webSettingsFromEnv(env: NodeJS.ProcessEnv, authRequired: boolean): WebSettings {
  const clientId = env.WEB_OIDC_CLIENT_ID?.trim();
  const issuer = (env.WEB_OIDC_ISSUER ?? env.AUTH_ISSUER)?.trim();
  const prefix = env.AUTH_SCOPE_PREFIX ?? 'dicomweb/';
  const scope = env.WEB_OIDC_SCOPE?.trim() || `openid ${['read', 'write', 'delete'].map((s) => prefix + s).join(' ')}`;
  const thumbs = env.WEB_THUMBNAILS?.trim();
  return {
    authRequired,
    oidc: clientId && issuer ? { issuer, clientId, scope } : undefined,
    thumbnailRendering: thumbs === 'thumbnail' || thumbs === 'wadors' ? thumbs : undefined,
  };
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.xml': 'application/xml',
  '.txt': 'text/plain; charset=utf-8',
};

const COMMON_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

function uiHeaders(config: WebConfig): Record<string, string> {
  const issuer = config.auth.oidc ? new URL(config.auth.oidc.issuer).origin : '';
  const api = /^https?:/.test(config.dicomWebRoot) ? new URL(config.dicomWebRoot).origin : '';
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    `connect-src 'self' ${api} ${issuer}`.trim(),
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
    `form-action 'self' ${issuer}`.trim(),
  ].join('; ');
  return { ...COMMON_HEADERS, 'Content-Security-Policy': csp, 'X-Frame-Options': 'DENY' };
}

/** A path below `root` for the URL path `rel` (already stripped of its prefix), or undefined when it could escape. */
function safeJoin(root: string, rel: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rel);
  } catch {
    return undefined;
  }
  if (/[\\\0]/.test(decoded) || /%2f|%5c/i.test(rel)) return undefined;
  const segments = decoded.split('/').filter((s) => s.length > 0);
  if (segments.some((s) => s === '..' || s === '.' || s.length > 255)) return undefined;
  const full = path.join(root, ...segments);
  return full.startsWith(root + path.sep) || full === root ? full : undefined;
}

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { ...COMMON_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...headers } });
}

function generated(request: Request, body: string, type: string, headers: Record<string, string>): Response {
  const bytes = Buffer.from(body);
  return new Response(request.method === 'HEAD' ? null : bytes, {
    status: 200,
    headers: { ...headers, 'Content-Type': type, 'Content-Length': String(bytes.length), 'Cache-Control': 'no-cache' },
  });
}

async function file(request: Request, full: string, headers: Record<string, string>, cacheControl: string): Promise<Response | undefined> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(full);
  } catch {
    return undefined;
  }
  if (!stat.isFile()) return undefined;
  const etag = `"${stat.size.toString(16)}-${Math.trunc(stat.mtimeMs).toString(16)}"`;
  const type = CONTENT_TYPES[path.extname(full).toLowerCase()] ?? 'application/octet-stream';
  const base = { ...headers, 'Content-Type': type, 'Cache-Control': cacheControl, ETag: etag };
  if (request.headers.get('if-none-match') === etag) return new Response(null, { status: 304, headers: base });
  const body = request.method === 'HEAD' ? null : (Readable.toWeb(fs.createReadStream(full)) as ReadableStream<Uint8Array>);
  return new Response(body, { status: 200, headers: { ...base, 'Content-Length': String(stat.size) } });
}

/**
 * Static files for the embedded server. Builds the UI (cached) before
 * returning; the viewer is served when web/ohif.ts has fetched it, otherwise
 * `/viewer` explains how to get it.
 */
export async function createStaticFiles(settings: WebSettings, dicomWebPath: string): Promise<StaticFiles> {
  const base = dicomWebPath.replace(/\/$/, '');
  const uiDir = await cachedWebUi(settings.cacheDir ?? path.join(__dirname, '..', '..', '..', 'node_modules', '.cache'));
  const configured = settings.viewerDir ?? installedOhifDist();
  const viewerDir = configured && fs.existsSync(path.join(configured, 'index.html')) ? path.resolve(configured) : undefined;
  const config: WebConfig = {
    dicomWebRoot: base,
    viewerUrl: '/viewer',
    auth: { required: settings.authRequired, oidc: settings.oidc },
    // The embedded server streams STOW bodies; batches stay moderate so progress moves and one failure costs little.
    stowMaxBytes: settings.stowMaxBytes ?? 32 * 1024 * 1024,
    uploadApiFromBytes: settings.uploadApiFromBytes ?? 256 * 1024 * 1024,
  };
  const configJson = JSON.stringify(config);
  const appConfig = ohifAppConfig({ dicomWebRoot: base, routerBasename: OHIF_BASE_PATH, thumbnailRendering: settings.thumbnailRendering ?? 'wadors' });
  // The unpacked viewer is already rebased to /viewer (web/ohif.ts).
  const ohifIndex = viewerDir ? fs.readFileSync(path.join(viewerDir, 'index.html'), 'utf8') : undefined;
  const ui = uiHeaders(config);
  const viewerHeaders = { ...COMMON_HEADERS, 'X-Frame-Options': 'SAMEORIGIN' };

  async function viewer(request: Request, rel: string, search: string): Promise<Response> {
    if (!viewerDir || !ohifIndex) {
      return text(503, 'The OHIF viewer is not installed here: run `npm run build:web` (fetches @ohif/app into node_modules/.cache), then restart.\n');
    }
    // `/viewer?StudyInstanceUIDs=…` is the viewer's mode route `/viewer/viewer?…` under its router base.
    if (rel === '' && search) return new Response(null, { status: 302, headers: { ...COMMON_HEADERS, Location: `/viewer/viewer${search}` } });
    if (rel === '/app-config.js') return generated(request, appConfig, CONTENT_TYPES['.js']!, viewerHeaders);
    if (rel === '' || rel === '/' || rel === '/index.html') return generated(request, ohifIndex, CONTENT_TYPES['.html']!, viewerHeaders);
    const full = safeJoin(viewerDir, rel);
    if (!full) return text(404, 'not found\n');
    const served = await file(request, full, viewerHeaders, 'public, max-age=3600');
    if (served) return served;
    // Client-side routes (`/viewer/viewer`, `/viewer/segmentation`…) are the app; missing files are not.
    if (!/\.[a-z0-9]{1,8}$/i.test(rel)) return generated(request, ohifIndex, CONTENT_TYPES['.html']!, viewerHeaders);
    return text(404, 'not found\n');
  }

  return {
    matches(request) {
      if (request.method !== 'GET' && request.method !== 'HEAD') return false;
      const p = new URL(request.url).pathname;
      return !(p === base || p.startsWith(`${base}/`));
    },
    async handle(request) {
      const url = new URL(request.url);
      const p = url.pathname;
      if (p === '/viewer' || p.startsWith('/viewer/')) return viewer(request, p.slice('/viewer'.length), url.search);
      if (p === '/config.json') return generated(request, configJson, CONTENT_TYPES['.json']!, ui);
      const name = p === '/' || p === '/index.html' ? 'index.html' : p.slice(1);
      if (name === 'index.html' || name === 'app.js' || name === 'styles.css') {
        const served = await file(request, path.join(uiDir, name), ui, 'no-cache');
        if (served) return served;
      }
      return text(404, 'not found\n');
    },
  };
}
