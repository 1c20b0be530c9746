/**
 * The HTTP surface of direct uploads (docs/upload-api.md), service 'upload'
 * (scope write), added to the DICOMweb route table with `extraRoutes`:
 *
 *   POST   /uploads                      {size, studyInstanceUID?, partSize?} → 201 upload + part targets
 *   GET    /uploads/{id}[?partNumberMarker=n]   status; while uploading, fresh targets for missing parts
 *   POST   /uploads/{id}/complete        {parts: [{partNumber, etag}]} → 202 (ingest follows)
 *   DELETE /uploads/{id}                 abort → 204
 *   PUT    /uploads/{id}/parts/{n}?expires&signature   only for stores the archive serves itself (embedded)
 *
 * Not DICOMweb (PS3.18 has no resumable upload); the outcome of an ingest is
 * reported as the STOW-RS response data set would report it (PS3.18 §10.5.3).
 */
import type { ArchiveContext } from './context';
import { defineRoute, type Route, type RouteContext } from './app';
import { ArchiveError, errorCodeOf } from './errors';
import { directUploadsOf } from './ports';
import { createUploadService, readJsonBody, type UploadServiceOptions, type UploadStatus } from './upload';
import { buildStoreResponse, type StoreOutcome } from '../dicomweb/stow-response';
import type { ResourceUrls } from '../dicomweb/urls';

export type UploadRoutesOptions = Omit<UploadServiceOptions, 'uploads'>;

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers } });
}

/** Status as the client sees it: the result also as a STOW-RS response data set (RetrieveURL / FailureReason). */
function present(s: UploadStatus, urls: ResourceUrls): Record<string, unknown> {
  const out: Record<string, unknown> = { ...s, statusUrl: `${urls.base}/uploads/${s.uploadId}` };
  if (s.state === 'uploading') out.completeUrl = `${urls.base}/uploads/${s.uploadId}/complete`;
  const r = s.result;
  let outcome: StoreOutcome | undefined;
  if (r?.state === 'stored') {
    const retrieveURL = urls.instance(r.studyInstanceUID, r.seriesInstanceUID, r.sopInstanceUID);
    outcome = { kind: 'stored', sopClassUID: r.sopClassUID, sopInstanceUID: r.sopInstanceUID, retrieveURL };
    out.retrieveURL = retrieveURL;
  } else if (r?.state === 'failed' && r.failureReason !== undefined) {
    outcome = { kind: 'failed', sopClassUID: r.sopClassUID, sopInstanceUID: r.sopInstanceUID, failureReason: r.failureReason };
    out.failureReason = r.failureReason;
  }
  if (r) out.result = { ...r, ...(outcome ? { stow: buildStoreResponse([outcome], undefined).body } : {}) };
  return out;
}

/** Bytes of a refused part body still read (and discarded) before answering. */
const DRAIN_LIMIT = 64 * 1024 * 1024;

/**
 * The request body as chunks. A consumer that stops early (a part too long) does
 * not cancel the stream — cancelling would reset the connection before the
 * answer is out — so the rest can still be drained.
 */
function requestBody(request: Request): { chunks: AsyncIterable<Uint8Array>; drain: (limit: number) => Promise<void> } {
  const reader = request.body?.getReader();
  return {
    chunks: {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const r = await reader?.read();
          if (!r || r.done) return;
          yield r.value;
        }
      },
    },
    async drain(limit) {
      for (let n = 0; reader && n <= limit; ) {
        const r = await reader.read();
        if (r.done) return;
        n += r.value.byteLength;
      }
    },
  };
}

export interface UploadRoutes {
  /** For the authenticated route table (`extraRoutes`). */
  routes: Route[];
  /**
   * The part route, only for stores the archive serves itself (embedded). Its URL
   * is the credential (HMAC-signed, expiring, like a presigned S3 URL), so it is
   * served by an app without an Authenticator, beside the authenticated one —
   * every route of the authenticated table keeps requiring credentials.
   */
  signedRoutes: Route[];
}

/** The upload routes; none when the archive's blob store cannot take direct uploads. */
export function createUploadRoutes(ctx: ArchiveContext, options: UploadRoutesOptions = {}): UploadRoutes {
  const uploads = directUploadsOf(ctx.blobs);
  if (!uploads) return { routes: [], signedRoutes: [] };
  const service = createUploadService(ctx, { ...options, uploads });

  const create = async (rc: RouteContext): Promise<Response> => {
    const body = await readJsonBody(rc.request);
    const out = await service.create(body, rc.urls.base);
    const { created } = out;
    const statusUrl = `${rc.urls.base}/uploads/${created.uploadId}`;
    return json(
      201,
      {
        uploadId: created.uploadId,
        state: 'uploading',
        size: created.size,
        partSize: created.partSize,
        partCount: created.partCount,
        parts: out.parts,
        nextPartNumberMarker: out.nextPartNumberMarker,
        completeUrl: `${statusUrl}/complete`,
        statusUrl,
        urlsExpireAt: out.urlsExpireAt,
        expiresAt: created.expiresAt,
      },
      { Location: statusUrl },
    );
  };

  const status = async (rc: RouteContext): Promise<Response> => {
    const marker = rc.url.searchParams.get('partNumberMarker');
    if (marker !== null && !/^\d{1,5}$/.test(marker)) throw new ArchiveError('BAD_REQUEST', 'partNumberMarker must be a part number');
    return json(200, present(await service.status(rc.params.id!, rc.urls.base, Number(marker ?? 0)), rc.urls));
  };

  const complete = async (rc: RouteContext): Promise<Response> => {
    const body = await readJsonBody(rc.request);
    const s = await service.complete(rc.params.id!, body, rc.urls.base);
    const statusUrl = `${rc.urls.base}/uploads/${s.uploadId}`;
    return json(202, present(s, rc.urls), { Location: statusUrl });
  };

  const abort = async (rc: RouteContext): Promise<Response> => {
    await service.abort(rc.params.id!);
    return new Response(null, { status: 204 });
  };

  const routes = [
    defineRoute('POST', '/uploads', 'upload', 'createUpload', create),
    defineRoute('GET', '/uploads/{id}', 'upload', 'retrieveUploadStatus', status),
    defineRoute('POST', '/uploads/{id}/complete', 'upload', 'completeUpload', complete),
    defineRoute('DELETE', '/uploads/{id}', 'upload', 'abortUpload', abort),
  ];
  const signedRoutes: Route[] = [];
  if (service.relays) {
    const part = async (rc: RouteContext): Promise<Response> => {
      const body = requestBody(rc.request);
      try {
        const { partNumber, etag } = await service.receivePart(rc.params.id!, rc.params.part!, rc.url.searchParams, body.chunks, rc.request.headers.get('content-length'));
        // Like S3's UploadPart: the entity tag in the ETag header (browsers need it exposed for CORS).
        return json(200, { partNumber, etag }, { ETag: etag, 'Access-Control-Expose-Headers': 'ETag' });
      } catch (error) {
        // A body that broke off is the client's problem, not a 500.
        if (['ECONNRESET', 'ABORT_ERR'].includes(errorCodeOf(error) ?? '')) throw new ArchiveError('BAD_REQUEST', 'the part body broke off', { cause: error });
        // Answer after reading what was sent (bounded), as STOW does: the client then sees the status, and its connection stays usable.
        await body.drain(DRAIN_LIMIT).catch(() => undefined);
        throw error;
      }
    };
    signedRoutes.push(defineRoute('PUT', '/uploads/{id}/parts/{part}', 'upload', 'uploadPart', part));
  }
  return { routes, signedRoutes };
}
