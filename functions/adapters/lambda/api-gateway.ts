/**
 * API Gateway HTTP API (payload format 2.0) ⇄ Web Request/Response.
 * Lambda's synchronous invoke carries at most 6 MB each way (base64 included
 * for binary bodies), so larger answers are refused with a clear 413 instead
 * of a platform error; the large-object path (presigned S3 URLs) is the way
 * for those.
 */
import type {
  APIGatewayEventRequestContextJWTAuthorizer,
  APIGatewayEventRequestContextV2WithAuthorizer,
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
} from 'aws-lambda';
import { concatBytes } from '../../core/bytes';
import type { JwtAuthorizerContext } from '../auth/api-gateway-jwt';

/** Lambda's response payload limit is 6 MB; keep headroom for headers and JSON framing. */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024 - 64 * 1024;

/**
 * Claims of the JWT API Gateway's authorizer validated, kept beside the
 * Request they belong to. Not a header: headers come from the client, the
 * event's requestContext only from API Gateway.
 */
const JWT_AUTHORIZER = new WeakMap<Request, JwtAuthorizerContext>();

/** The authorizer context of a request made by eventToRequest, if the route had a JWT authorizer. */
export function jwtAuthorizerOf(request: Request): JwtAuthorizerContext | undefined {
  return JWT_AUTHORIZER.get(request);
}

export function eventToRequest(event: APIGatewayProxyEventV2): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers.set(k, v);
  if (event.cookies?.length) headers.set('cookie', event.cookies.join('; '));
  const host = headers.get('host') ?? event.requestContext.domainName ?? 'localhost';
  const proto = headers.get('x-forwarded-proto') ?? 'https';
  const query = event.rawQueryString ? `?${event.rawQueryString}` : '';
  const url = `${proto}://${host}${event.rawPath}${query}`;
  const method = event.requestContext.http.method;
  let body: Uint8Array | undefined;
  if (event.body !== undefined && event.body !== null && method !== 'GET' && method !== 'HEAD') {
    body = event.isBase64Encoded ? Buffer.from(event.body, 'base64') : new TextEncoder().encode(event.body);
  }
  const request = new Request(url, { method, headers, body: body as BodyInit | undefined });
  const jwt = (event.requestContext as Partial<APIGatewayEventRequestContextV2WithAuthorizer<APIGatewayEventRequestContextJWTAuthorizer>>).authorizer?.jwt;
  if (jwt && typeof jwt.claims === 'object' && jwt.claims !== null) JWT_AUTHORIZER.set(request, { claims: jwt.claims, scopes: Array.isArray(jwt.scopes) ? jwt.scopes : undefined });
  return request;
}

const TEXT = /^(application\/(dicom\+)?json|application\/vnd\.sun\.wadl\+xml|text\/)/;

function tooLarge(): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: 413,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code: 'PAYLOAD_TOO_LARGE', message: 'The response exceeds the 6 MB Lambda limit: retrieve fewer instances per request, frames, or use the large-object download path.' }),
  };
}

/**
 * The whole body, or undefined as soon as it passes maxBytes: the rest is
 * never read (a large series is not pulled from storage into memory only to
 * be refused).
 */
async function readLimited(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array | undefined> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return concatBytes(chunks, size);
}

export async function responseToResult(response: Response): Promise<APIGatewayProxyStructuredResultV2> {
  const headers: Record<string, string> = {};
  response.headers.forEach((v, k) => (headers[k] = v));
  const contentType = headers['content-type'] ?? '';
  const isText = TEXT.test(contentType);
  // Binary bodies go out base64-encoded: 4 bytes per 3.
  const maxRaw = isText ? MAX_RESPONSE_BYTES : Math.floor(MAX_RESPONSE_BYTES / 4) * 3;
  const bytes = response.body ? await readLimited(response.body, maxRaw) : new Uint8Array(0);
  if (bytes === undefined) return tooLarge();
  return {
    statusCode: response.status,
    headers,
    body: isText ? new TextDecoder().decode(bytes) : Buffer.from(bytes).toString('base64'),
    isBase64Encoded: !isText,
  };
}
