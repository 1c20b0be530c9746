/**
 * The embedded archive: the same core over local disk (FsBlobStore) and an
 * embedded SQLite index, for `npm start` and the tests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_LIMITS, type ArchiveContext, type ArchiveLimits, type Logger } from '../../core/archive/context';
import { createDicomWebApp } from '../../core/archive/app';
import { FsBlobStore } from './fs-blob-store';
import { SqliteIndex } from './sqlite-index';
import { jsonLogger, newObjectId, sha256 } from '../node-runtime';
import { startServer } from '../http/node-server';

export interface EmbeddedOptions {
  dataDir: string;
  host?: string;
  port?: number;
  basePath?: string;
  limits?: Partial<ArchiveLimits>;
  log?: Logger;
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
  const { ctx, close } = createEmbeddedContext(options);
  const basePath = options.basePath ?? '/dicom-web';
  const app = createDicomWebApp(ctx, { basePath });
  const server = await startServer(app.handle, { host: options.host ?? '127.0.0.1', port: options.port ?? 8080 });
  return {
    url: server.url,
    dicomWebUrl: `${server.url}${basePath}`,
    ctx,
    app,
    close: async () => {
      await server.close();
      close();
    },
  };
}
