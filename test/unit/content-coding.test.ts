import { gunzipSync } from 'node:zlib';
import { acceptsGzip, gzippedHeaders, gzipResponse, shouldGzip } from '../../functions/adapters/content-coding';
import { GZIP_MIN_BYTES, MAX_RESPONSE_BYTES, responseToResult } from '../../functions/adapters/lambda/api-gateway';

describe('Accept-Encoding (RFC 9110 §12.5.3)', () => {
  it.each([
    ['gzip', true],
    ['gzip, deflate, br', true],
    ['br;q=1.0, gzip;q=0.8, *;q=0.1', true],
    ['GZIP', true],
    ['x-gzip', true],
    ['*', true],
    ['identity', false],
    ['gzip;q=0', false],
    ['gzip;q=0.000', false],
    ['*;q=0, br', false],
    ['gzip;q=0, *', false],
    ['', false],
    [null, false],
  ])('%j → %s', (value, expected) => expect(acceptsGzip(value)).toBe(expected));
});

describe('gzip of text responses', () => {
  const json = (body: string, headers: Record<string, string> = {}, status = 200) => new Response(body, { status, headers: { 'Content-Type': 'application/dicom+json', ...headers } });

  it('compresses JSON and XML, never DICOM bytes, empty answers or already-encoded bodies', () => {
    expect(shouldGzip(json('[]'), 'gzip')).toBe(true);
    expect(shouldGzip(new Response('<x/>', { headers: { 'Content-Type': 'application/vnd.sun.wadl+xml' } }), 'gzip')).toBe(true);
    expect(shouldGzip(new Response('x', { headers: { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=b' } }), 'gzip')).toBe(false);
    expect(shouldGzip(new Response(null, { status: 204 }), 'gzip')).toBe(false);
    expect(shouldGzip(json('[]', { 'Content-Encoding': 'br' }), 'gzip')).toBe(false);
    expect(shouldGzip(json('[]'), 'identity')).toBe(false);
  });

  it('sets Content-Encoding, adds Accept-Encoding to Vary, weakens a strong ETag, drops Content-Length', () => {
    const h = gzippedHeaders(new Headers({ ETag: '"abc"', Vary: 'Accept', 'Content-Length': '10' }));
    expect(h.get('content-encoding')).toBe('gzip');
    expect(h.get('vary')).toBe('Accept, Accept-Encoding');
    expect(h.get('etag')).toBe('W/"abc"');
    expect(h.has('content-length')).toBe(false);
    expect(gzippedHeaders(new Headers({ Vary: 'accept-encoding' })).get('vary')).toBe('accept-encoding');
  });

  it('only GET answers are coded: a PUT answer keeps its entity tag verbatim (the upload API returns part ETags)', () => {
    const big = 'x'.repeat(4096);
    const put = gzipResponse(new Response(big, { headers: { 'Content-Type': 'application/json', ETag: '"part"' } }), { method: 'PUT', acceptEncoding: 'gzip' });
    expect(put.headers.get('etag')).toBe('"part"');
    expect(put.headers.has('content-encoding')).toBe(false);
    const get = gzipResponse(new Response(big, { headers: { 'Content-Type': 'application/json', ETag: '"e"' } }), { method: 'GET', acceptEncoding: 'gzip' });
    expect(get.headers.get('content-encoding')).toBe('gzip');
  });

  it('a 304 echoes the weak tag the client holds', () => {
    const r = gzipResponse(new Response(null, { status: 304, headers: { ETag: '"abc"' } }), { method: 'GET', acceptEncoding: 'gzip', ifNoneMatch: 'W/"abc"' });
    expect(r.headers.get('etag')).toBe('W/"abc"');
    expect(r.headers.has('content-encoding')).toBe(false);
  });
});

describe('Lambda results: the 6 MB limit applies to the encoded body', () => {
  // ~20 MB of DICOM JSON-like text: far over the limit raw, a fraction of it gzipped.
  const big = JSON.stringify(Array.from({ length: 40_000 }, (_, i) => ({ '00080018': { vr: 'UI', Value: [`2.25.${1000000 + i}`] }, '00080060': { vr: 'CS', Value: ['CT'] }, '00204000': { vr: 'LT', Value: ['synthetic '.repeat(40)] } })));
  const response = () => new Response(big, { headers: { 'Content-Type': 'application/dicom+json', ETag: '"e"' } });

  it('without Accept-Encoding: 413 (too large for one response)', async () => {
    expect(big.length).toBeGreaterThan(MAX_RESPONSE_BYTES);
    const result = await responseToResult(response());
    expect(result.statusCode).toBe(413);
  });

  it('with Accept-Encoding: gzip: 200, base64 of gzip, under the limit, decoding to the same JSON', async () => {
    const result = await responseToResult(response(), { method: 'GET', acceptEncoding: 'gzip, deflate, br' });
    expect(result.statusCode).toBe(200);
    expect(result.isBase64Encoded).toBe(true);
    expect(result.headers).toMatchObject({ 'content-encoding': 'gzip', vary: 'Accept-Encoding', etag: 'W/"e"' });
    expect(result.body!.length).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
    expect(gunzipSync(Buffer.from(result.body!, 'base64')).toString()).toBe(big);
  });

  it('small text answers stay plain text even when gzip is accepted', async () => {
    const small = '{"code":"NOT_FOUND","message":"x"}';
    expect(small.length).toBeLessThan(GZIP_MIN_BYTES);
    const result = await responseToResult(new Response(small, { status: 404, headers: { 'Content-Type': 'application/json' } }), { method: 'GET', acceptEncoding: 'gzip' });
    expect(result).toMatchObject({ statusCode: 404, body: small, isBase64Encoded: false });
    expect(result.headers?.['content-encoding']).toBeUndefined();
  });
});
