/**
 * API Gateway HTTP API (payload format 2.0) ⇄ Web Request/Response.
 * Lambda's synchronous invoke carries at most 6 MB each way (base64 included
 * for binary bodies), so larger answers are refused with a clear 413 instead
 * of a platform error; the large-object path (presigned S3 URLs) is the way
 * for those. Text answers are gzipped when the client accepts it
 * (content-coding.ts): the limit applies to the encoded (and base64) body, so
 * the metadata of a large series fits. API Gateway HTTP APIs do not compress
 * by themselves.
 */
import type {
  APIGatewayEventRequestContextJWTAuthorizer,
  APIGatewayEventRequestContextV2WithAuthorizer,
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
} from 'aws-lambda';
import { concatBytes } from '../../core/bytes';
import type { JwtAuthorizerContext } from '../auth/api-gateway-jwt';
import { gzipResponse, shouldGzip } from '../content-coding';

/** Lambda's response payload limit is 6 MB; keep headroom for headers and JSON framing. */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024 - 64 * 1024;

/** Binary bodies go out base64-encoded (4 bytes per 3): the most binary bytes one response can carry. */
export const MAX_BINARY_RESPONSE_BYTES = Math.floor(MAX_RESPONSE_BYTES / 4) * 3;

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
    body: JSON.stringify({
      code: 'RESPONSE_TOO_LARGE',
      message: 'The response exceeds the 6 MB Lambda limit: send Accept-Encoding: gzip for metadata; for instances use GET …/studies/{study}[/series/{series}]/download (docs/architecture.md §Download), frames or byte ranges.',
    }),
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

export interface ResultOptions {
  /** The request's method (only GET and HEAD answers are gzipped). */
  method?: string;
  /** The request's Accept-Encoding: text bodies are gzipped when it allows. */
  acceptEncoding?: string | null;
  /** The request's If-None-Match (a 304 echoes the weak tag of a gzipped representation). */
  ifNoneMatch?: string | null;
}

/** Text bodies up to this size go out as they are (like CloudFront's 1,000 bytes): gzip would save little, and the answer stays readable. */
export const GZIP_MIN_BYTES = 1024;

/**
 * The first bytes of a body (more than `min`, or all of it if shorter), and a
 * stream of the whole body that replays them, for deciding on the size.
 */
async function peek(body: ReadableStream<Uint8Array>, min: number): Promise<{ whole: Uint8Array | undefined; stream: ReadableStream<Uint8Array> }> {
  const reader = body.getReader();
  const head: Uint8Array[] = [];
  let size = 0;
  while (size <= min) {
    const { done, value } = await reader.read();
    if (done) return { whole: concatBytes(head, size), stream: new Blob(head as BlobPart[]).stream() };
    head.push(value);
    size += value.byteLength;
  }
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = head.shift();
        if (next) return controller.enqueue(next);
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  return { whole: undefined, stream };
}

export async function responseToResult(original: Response, options: ResultOptions = {}): Promise<APIGatewayProxyStructuredResultV2> {
  let response: Response;
  const coding = { ...options, method: options.method ?? 'GET' };
  if (coding.method === 'GET' && shouldGzip(original, options.acceptEncoding)) {
    const { whole, stream } = await peek(original.body!, GZIP_MIN_BYTES);
    const init = { status: original.status, statusText: original.statusText, headers: original.headers };
    response = whole ? new Response(whole as unknown as BodyInit, init) : gzipResponse(new Response(stream, init), coding);
  } else {
    response = gzipResponse(original, coding);
  }
  const headers: Record<string, string> = {};
  response.headers.forEach((v, k) => (headers[k] = v));
  const contentType = headers['content-type'] ?? '';
  const isText = TEXT.test(contentType) && !headers['content-encoding'];
  // Binary bodies go out base64-encoded: 4 bytes per 3.
  const maxRaw = isText ? MAX_RESPONSE_BYTES : MAX_BINARY_RESPONSE_BYTES;
  const bytes = response.body ? await readLimited(response.body, maxRaw) : new Uint8Array(0);
  if (bytes === undefined) return tooLarge();
  return {
    statusCode: response.status,
    headers,
    body: isText ? new TextDecoder().decode(bytes) : Buffer.from(bytes).toString('base64'),
    isBase64Encoded: !isText,
  };
}
