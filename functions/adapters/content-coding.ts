/**
 * gzip content coding (RFC 9110 §8.4, §12.5.3) for the text responses of both
 * runtimes. The reason is Lambda's 6 MB response limit: the WADO-RS metadata
 * of a large series is several MB of JSON (≈ 5–10 KB per instance) and
 * shrinks about tenfold, so compressing it keeps it inside one response. The
 * embedded server does it too, for the same bytes on the wire.
 *
 * Only text (JSON, XML, text/*) is compressed: DICOM pixel data is either
 * compressed already or does not shrink enough to pay for the CPU.
 */

const COMPRESSIBLE = /^(application\/([a-z0-9.+-]+\+)?(json|xml)|text\/)/i;

/** Whether an Accept-Encoding field value (RFC 9110 §12.5.3) allows gzip: listed (or `*`) with a non-zero weight. */
export function acceptsGzip(acceptEncoding: string | null | undefined): boolean {
  if (!acceptEncoding) return false;
  let gzip: number | undefined;
  let any: number | undefined;
  for (const item of acceptEncoding.split(',')) {
    const [name, ...params] = item.trim().toLowerCase().split(';');
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]{1,5})\s*$/.exec(p);
      if (m) q = Number(m[1]);
    }
    if (!Number.isFinite(q)) q = 0;
    if (name === 'gzip' || name === 'x-gzip') gzip = q;
    else if (name === '*') any = q;
  }
  return (gzip ?? any ?? 0) > 0;
}

/** Whether to gzip this response for a request with this Accept-Encoding. */
export function shouldGzip(response: Response, acceptEncoding: string | null | undefined): boolean {
  if (!response.body || response.status === 204 || response.status === 304 || response.status < 200) return false;
  if (response.headers.has('content-encoding')) return false;
  if (!COMPRESSIBLE.test(response.headers.get('content-type') ?? '')) return false;
  return acceptsGzip(acceptEncoding);
}

/**
 * Headers of the gzipped representation: Content-Encoding, Vary gains
 * Accept-Encoding (caches must key on it), the length is unknown, and a strong
 * entity tag becomes weak — it named the unencoded bytes (RFC 9110 §8.8.1);
 * If-None-Match uses the weak comparison, so revalidation still works.
 */
export function gzippedHeaders(headers: Headers): Headers {
  const out = new Headers(headers);
  out.set('content-encoding', 'gzip');
  out.delete('content-length');
  const vary = out.get('vary');
  if (!vary) out.set('vary', 'Accept-Encoding');
  else if (!/(^|,)\s*(accept-encoding|\*)\s*(,|$)/i.test(vary)) out.set('vary', `${vary}, Accept-Encoding`);
  const etag = out.get('etag');
  if (etag && !etag.startsWith('W/')) out.set('etag', `W/${etag}`);
  return out;
}

export interface CodingRequest {
  /**
   * Only answers to GET (and HEAD) are coded: they are what grows large
   * (metadata, searches), and elsewhere an ETag is not a cache validator to
   * weaken — the upload API's part PUT answers with the part's entity tag,
   * which the client sends back verbatim.
   */
  method: string;
  acceptEncoding?: string | null;
  ifNoneMatch?: string | null;
}

/** The response gzipped (streaming: nothing is held beyond the compressor's window), or as it was when it should not be. */
export function gzipResponse(response: Response, request: CodingRequest): Response {
  const { acceptEncoding, ifNoneMatch } = request;
  if (request.method !== 'GET' && request.method !== 'HEAD') return response;
  // A 304 names the representation the client holds (RFC 9110 §15.4.5): the weak tag, if that is what it sent.
  const etag = response.headers.get('etag');
  if (response.status === 304 && etag && !etag.startsWith('W/') && ifNoneMatch?.includes(`W/${etag}`)) {
    const headers = gzippedHeaders(response.headers);
    headers.delete('content-encoding');
    return new Response(null, { status: 304, headers });
  }
  if (!shouldGzip(response, acceptEncoding)) return response;
  const body = response.body!.pipeThrough(new CompressionStream('gzip') as unknown as ReadableWritablePair<Uint8Array, Uint8Array>);
  return new Response(body, { status: response.status, statusText: response.statusText, headers: gzippedHeaders(response.headers) });
}
