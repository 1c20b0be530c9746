/**
 * The embedded archive: the same core over local disk (FsBlobStore) and an
 * embedded SQLite index, for `npm start` and the tests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_LIMITS, type ArchiveContext, type ArchiveLimits, type Logger } from '../../core/archive/context';
import { createDicomWebApp, type Authenticator } from '../../core/archive/app';
import { createUploadRoutes, type UploadRoutesOptions } from '../../core/archive/upload-routes';
import { createRenderRoutes } from '../../core/archive/render-routes';
import { createWadoUriRoutes } from '../../core/archive/wado-uri';
import { createZipDownloadRoutes } from '../../core/archive/zip-download';
import { createIngestQueue, unfinishedUploads } from '../../core/archive/ingest';
import { DEFAULT_UPLOAD_SETTINGS } from '../../core/archive/upload';
import type { DownloadSettings } from '../../core/archive/download';
import { FsBlobStore } from './fs-blob-store';
import { SqliteIndex } from './sqlite-index';
import { jsonLogger, newObjectId, sha256 } from '../node-runtime';
import { startServer } from '../http/node-server';
import { createStaticFiles, type WebSettings } from '../http/static-files';
import { isLoopbackHost } from '../auth/embedded-auth';
import { AuthConfigError } from '../auth/config-error';
import { LOOPBACK_PRINCIPAL, auditing } from '../auth/scopes';

export interface EmbeddedOptions {
  dataDir: string;
  host?: string;
  port?: number;
  basePath?: string;
  limits?: Partial<ArchiveLimits>;
  log?: Logger;
  /**
   * Authenticates every request but CORS preflight (docs/auth.md). Required
   * unless `host` is loopback; there, without one, the local user has every
   * scope (principal `loopback`).
   */
  authenticate?: Authenticator;
  /** Direct uploads (docs/upload-api.md): limits, and the key of the signed part URLs (random per process by default). */
  uploads?: Omit<UploadRoutesOptions, 'onCompleted'>;
  /** Serve the web UI at `/` and the OHIF viewer at `/viewer` (static-files.ts); off unless given. */
  web?: WebSettings;
  /** Download manifests (…/download): page size. No inline limit here: the server streams answers of any size. */
  downloads?: Partial<Pick<DownloadSettings, 'pageSize'>>;
}

export function createEmbeddedContext(options: EmbeddedOptions): { ctx: ArchiveContext; close: () => void } {
  fs.mkdirSync(options.dataDir, { recursive: true });
  const index = new SqliteIndex(path.join(options.dataDir, 'index.sqlite'));
  const ctx: ArchiveContext = {
    blobs: new FsBlobStore(path.join(options.dataDir, 'blobs')),
    index,
    createHash: sha256,
    newObjectId,
    now: () => new Date(),
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    log: options.log ?? jsonLogger(),
  };
  return { ctx, close: () => index.close() };
}

export async function startEmbeddedArchive(options: EmbeddedOptions) {
  const host = options.host ?? '127.0.0.1';
  if (!options.authenticate && !isLoopbackHost(host)) throw new AuthConfigError(`refusing to bind ${host} without authentication`);
  const { ctx, close } = createEmbeddedContext(options);
  const basePath = options.basePath ?? '/dicom-web';
  const authenticate: Authenticator = options.authenticate ? auditing(options.authenticate, ctx.log) : async () => LOOPBACK_PRINCIPAL;
  // Completed uploads are ingested in-process, one at a time (in AWS: S3 event → SQS → the ingest function).
  const ingest = createIngestQueue(ctx, { maxUploadBytes: options.uploads?.settings?.maxUploadBytes ?? DEFAULT_UPLOAD_SETTINGS.maxUploadBytes });
  const upload = createUploadRoutes(ctx, { ...options.uploads, onCompleted: (key) => ingest.enqueue(key) });
  const app = createDicomWebApp(ctx, { basePath, authenticate, extraRoutes: [...upload.routes, ...createRenderRoutes(ctx), ...createWadoUriRoutes(ctx), ...createZipDownloadRoutes(ctx)], downloads: options.downloads });
  // Upload part URLs carry their own credential (a signature, like presigned S3 URLs): served beside the authenticated app.
  const parts = createDicomWebApp(ctx, { basePath, services: ['upload'], extraRoutes: upload.signedRoutes });
  const isPart = (request: Request) => {
    const p = new URL(request.url).pathname;
    return p.startsWith(basePath) && upload.signedRoutes.some((r) => r.method === request.method && r.pattern.test(p.slice(basePath.length)));
  };
  const web = options.web ? await createStaticFiles(options.web, basePath) : undefined;
  const server = await startServer((request) => (web?.matches(request) ? web.handle(request) : isPart(request) ? parts.handle(request) : app.handle(request)), { host, port: options.port ?? 8080 });
  // Uploads the previous process completed but did not ingest (it died first): queued now, served meanwhile.
  const recovery = (async () => {
    let queued = 0;
    for await (const key of unfinishedUploads(ctx)) {
      ingest.enqueue(key);
      queued += 1;
    }
    if (queued > 0) ctx.log.info('upload.recovery.queued', { uploads: queued });
    return queued;
  })().catch((error: unknown) => {
    ctx.log.error('upload.recovery.failed', { error: (error as Error | undefined)?.name });
    return 0;
  });
  return {
    url: server.url,
    dicomWebUrl: `${server.url}${basePath}`,
    ctx,
    app,
    ingest,
    /** Resolves, once the start-up scan is done, to the number of unfinished uploads it queued for ingest. */
    recovery,
    close: async () => {
      await server.close();
      await recovery;
      await ingest.idle();
      close();
    },
  };
}
