/**
 * One thin Lambda handler per service: API Gateway event → Web Request →
 * the shared DICOMweb routes → API Gateway result. The archive is built once
 * per cold start. middy carries the cross-cutting parts: a PHI-free access
 * log line and a last-resort error boundary (500 without internals).
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { createDicomWebApp, type Service, type DicomWebApp, type Route } from '../core/archive/app';
import type { ArchiveContext } from '../core/archive/context';
import type { DownloadSettings } from '../core/archive/download';
import { createAwsContext } from '../adapters/aws/aws-context';
import { eventToRequest, jwtAuthorizerOf, responseToResult } from '../adapters/lambda/api-gateway';
import { authModeFromEnv, createApiGatewayJwtAuthenticator } from '../adapters/auth/api-gateway-jwt';
import { auditing, DEFAULT_SCOPE_PREFIX } from '../adapters/auth/scopes';

/**
 * The archive for one service. AUTH_MODE=jwt (default): API Gateway's JWT
 * authorizer validated the token; its claims become the Principal (scopes
 * `${AUTH_SCOPE_PREFIX}read` etc., docs/auth.md), and a request without them is a 401.
 */
function createApp(service: Service, options: HandlerOptions): DicomWebApp {
  const ctx = createAwsContext();
  const extraRoutes = options.extraRoutes?.(ctx);
  const authenticate =
    authModeFromEnv(process.env) === 'jwt'
      ? auditing(createApiGatewayJwtAuthenticator(jwtAuthorizerOf, { scopePrefix: process.env.AUTH_SCOPE_PREFIX ?? DEFAULT_SCOPE_PREFIX }), ctx.log)
      : undefined;
  return createDicomWebApp(ctx, { basePath: process.env.DICOMWEB_BASE_PATH ?? '/dicom-web', services: [service, 'meta'], authenticate, extraRoutes, downloads: options.downloads });
}

export interface HandlerOptions {
  /** Routes beyond the DICOMweb table (e.g. the upload API), built once per cold start with the archive. */
  extraRoutes?: (ctx: ArchiveContext) => Route[];
  /** Large retrieves: the inline limit and presigned URL lifetime (core/archive/download.ts). */
  downloads?: Partial<DownloadSettings>;
}

export function createHandler(service: Service, options: HandlerOptions = {}) {
  let app: DicomWebApp | undefined;
  const base = async (event: APIGatewayProxyEventV2, _context: Context): Promise<APIGatewayProxyStructuredResultV2> => {
    app ??= createApp(service, options);
    const request = eventToRequest(event);
    return responseToResult(await app.handle(request), { method: request.method, acceptEncoding: request.headers.get('accept-encoding'), ifNoneMatch: request.headers.get('if-none-match') });
  };
  return middy(base).onError(async (request) => {
    // Never echo the error: it may carry internals. The core already logged a PHI-free line.
    console.error(JSON.stringify({ level: 'error', message: 'handler.unhandled', name: (request.error as Error | undefined)?.name }));
    request.response = { statusCode: 500, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'INTERNAL', message: 'Internal server error.' }) };
  });
}
