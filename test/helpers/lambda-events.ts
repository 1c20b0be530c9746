/**
 * Recorded API Gateway HTTP API (payload 2.0) events of test/fixtures/events,
 * filled in, and a Lambda context, for invoking the bundled handlers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { SyntheticInstance } from '../fixtures/synthetic';
import { multipartBody } from './archive';

export type LambdaHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

const EVENTS_DIR = path.resolve(__dirname, '..', 'fixtures', 'events');

/** A recorded event template with its "{{name}}" placeholders replaced (all must be given). */
export function loadEvent<T = APIGatewayProxyEventV2>(name: string, values: Record<string, string> = {}): T {
  const fill = (v: unknown): unknown => {
    if (typeof v === 'string') {
      return v.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
        const value = values[key];
        if (value === undefined) throw new Error(`event ${name}: no value for {{${key}}}`);
        return value;
      });
    }
    if (Array.isArray(v)) return v.map(fill);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
    return v;
  };
  return fill(JSON.parse(fs.readFileSync(path.join(EVENTS_DIR, `${name}.json`), 'utf8'))) as T;
}

/** A STOW event carrying these instances as a base64 multipart/related body. */
export function stowEvent(instances: SyntheticInstance[]): APIGatewayProxyEventV2 {
  const { body, contentType } = multipartBody(instances.map((i) => i.bytes));
  return loadEvent('stow-studies', { body: body.toString('base64'), contentType, contentLength: String(body.length) });
}

/** The same event aimed at another resource (method, path, query), headers kept unless replaced. */
export function retarget(event: APIGatewayProxyEventV2, method: string, rawPath: string, rawQueryString = '', headers: Record<string, string | undefined> = {}): APIGatewayProxyEventV2 {
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...event.headers, ...headers })) if (v !== undefined) merged[k] = v;
  return {
    ...event,
    headers: merged,
    routeKey: '$default',
    rawPath,
    rawQueryString,
    pathParameters: undefined,
    queryStringParameters: undefined,
    requestContext: { ...event.requestContext, routeKey: '$default', http: { ...event.requestContext.http, method, path: rawPath } },
  };
}

let invocations = 0;
export function lambdaContext(functionName: string): Context {
  invocations += 1;
  const deadline = Date.now() + 30_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-central-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: `00000000-0000-4000-8000-${String(invocations).padStart(12, '0')}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2025/11/22/[$LATEST]0123456789abcdef0123456789abcdef',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
