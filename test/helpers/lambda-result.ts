/**
 * The body of an API Gateway (payload 2.0) Lambda result as a client receives
 * it: base64 undone (API Gateway does that), gzip undone (the HTTP client does
 * that when it sent Accept-Encoding: gzip, as the recorded events do).
 */
import { gunzipSync } from 'node:zlib';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

export function resultBytes(result: APIGatewayProxyStructuredResultV2): Buffer {
  const raw = Buffer.from(result.body ?? '', result.isBase64Encoded ? 'base64' : 'utf8');
  return result.headers?.['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
}

export function resultJson(result: APIGatewayProxyStructuredResultV2): any {
  return JSON.parse(resultBytes(result).toString('utf8'));
}
