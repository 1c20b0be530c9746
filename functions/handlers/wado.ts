import { createHandler } from './create-handler';
import { createRenderRoutes } from '../core/archive/render-routes';
import { createWadoUriRoutes } from '../core/archive/wado-uri';
import { createZipDownloadRoutes } from '../core/archive/zip-download';
import { MAX_BINARY_RESPONSE_BYTES } from '../adapters/lambda/api-gateway';
import { DEFAULT_DOWNLOAD_SETTINGS } from '../core/archive/download';

/**
 * Lambda entry point for the WADO service (API Gateway HTTP API, payload 2.0).
 * Answers that would not fit one Lambda response (6 MB, base64) go straight
 * from S3 (docs/architecture.md §Download): a 303 to a presigned URL for one
 * instance's bytes, a manifest of presigned URLs at …/download for a study or
 * series. DOWNLOAD_URL_EXPIRES_SECONDS sets the URLs' lifetime (default 300).
 */
function urlLifetime(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_DOWNLOAD_SETTINGS.urlExpiresInSeconds;
  const n = Number(value);
  // Fail the cold start, not each request: the stack sets a validated value (infra/lib/config.ts).
  if (!Number.isInteger(n) || n < 1 || n > 3600) throw new Error('DOWNLOAD_URL_EXPIRES_SECONDS must be an integer from 1 to 3600');
  return n;
}

/**
 * Beside the WADO-RS table: rendered resources and thumbnails (render-routes.ts),
 * WADO-URI at {base}/wado (wado-uri.ts) and ZIP downloads (zip-download.ts; a
 * study larger than one response gets 413 pointing at …/download). Decoding
 * needs dcmjs-native-codecs.wasm beside index.js (scripts/build-functions.ts copies it).
 */
export const handler = createHandler('wado', {
  downloads: { maxInlineBytes: MAX_BINARY_RESPONSE_BYTES, urlExpiresInSeconds: urlLifetime(process.env.DOWNLOAD_URL_EXPIRES_SECONDS) },
  extraRoutes: (ctx) => [...createRenderRoutes(ctx), ...createWadoUriRoutes(ctx), ...createZipDownloadRoutes(ctx, { maxInlineBytes: MAX_BINARY_RESPONSE_BYTES })],
});
