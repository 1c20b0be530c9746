import { createHandler } from './create-handler';
import { createUploadRoutes } from '../core/archive/upload-routes';

/**
 * Lambda entry point for the upload API (docs/upload-api.md; API Gateway HTTP
 * API, payload 2.0): hands out presigned S3 URLs and records completion. The
 * bytes go straight to S3; the bucket's event notification (→ SQS → ingest.ts)
 * ingests them. MAX_UPLOAD_BYTES (default 50 GiB) caps the declared size.
 */
export const handler = createHandler('upload', {
  extraRoutes: (ctx) => createUploadRoutes(ctx, { settings: process.env.MAX_UPLOAD_BYTES ? { maxUploadBytes: Number(process.env.MAX_UPLOAD_BYTES) } : {} }).routes,
});
