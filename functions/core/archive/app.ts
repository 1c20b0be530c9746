/**
 * The DICOMweb HTTP surface (PS3.18 §10) over Web-standard Request/Response:
 * one route table used by the embedded server and by every Lambda handler.
 * Routes parse and validate the request, call a transaction, and shape the
 * response; errors become statuses only here, through the one error table.
 */
import type { ArchiveContext } from './context';
import { ArchiveError, ERRORS, toArchiveError } from './errors';
import { iterate, once, toReadableStream } from '../bytes';
import { storeInstance } from './store';
import { searchForInstances, searchForSeries, searchForStudies, type SearchResult, type SearchScope } from './search';
import {
  bulkDataParts,
  commonTransferSyntaxes,
  frameMediaType,
  frameParts,
  frameTransferSyntax,
  instanceParts,
  parseFrameList,
  type OutPart,
} from './retrieve';
import { deleteResources } from './delete';
import { frameTranscodeOffers, transcodedFrameParts } from './transcoded';
import type { InstanceRecord, StoredMetadata } from './ports';
import { metadataJson } from './metadata';
import { allMetadata, allRecords, oneRecord } from './lookup';
import { isValidUID } from '../dicom/uid';
import { TransferSyntax } from '../dicom/tags';
import { ResourceUrls, requestOrigin } from '../dicomweb/urls';
import { buildStoreResponse, type StoreOutcome } from '../dicomweb/stow-response';
import { parseQidoQuery, type QidoLevel, type QidoQuery } from '../dicomweb/qido-query';
import { readMultipart, parseMultipartRelated, writeMultipart } from '../dicomweb/multipart';
import { parseMediaType } from '../dicomweb/media-type';
import { negotiate, type Offer } from '../dicomweb/accept';
import { capabilitiesDocument } from '../dicomweb/capabilities';
import { DEFAULT_DOWNLOAD_SETTINGS, DOWNLOAD_MEDIA_TYPE, downloadManifest, estimatedAnswerBytes, presignedInstanceUrl, type DownloadSettings } from './download';

export type Service = 'stow' | 'qido' | 'wado' | 'delete' | 'upload' | 'meta';

/** OAuth-style scopes (read / write / delete) each route needs. */
export type Scope = 'read' | 'write' | 'delete';

const SCOPE_OF: Record<Service, Scope> = { stow: 'write', upload: 'write', qido: 'read', wado: 'read', delete: 'delete', meta: 'read' };

/** Who is calling: established by an Authenticator (JWT, API key, or loopback trust). */
export interface Principal {
  /** PHI-free identifier for logs (a client id or key name), never a patient attribute. */
  id: string;
  scopes: ReadonlySet<Scope>;
}

/**
 * Establishes the caller of a request. Returns undefined when the request
 * carries no credentials (→ 401) and throws ArchiveError('UNAUTHORIZED') for
 * bad ones; routes then require their scope (→ 403 without it).
 */
export type Authenticator = (request: Request) => Promise<Principal | undefined>;

export interface RouteContext {
  request: Request;
  principal?: Principal;
  url: URL;
  params: Record<string, string>;
  urls: ResourceUrls;
}

export interface Route {
  method: string;
  /** template, e.g. /studies/{study}/series */
  path: string;
  pattern: RegExp;
  names: string[];
  service: Service;
  name: string;
  run: (rc: RouteContext) => Promise<Response>;
}

export interface DicomWebAppOptions {
  /** Path prefix of the DICOMweb root, e.g. "/dicom-web". */
  basePath: string;
  /** Only serve routes of these services (a Lambda handler serves one). */
  services?: Service[];
  /** When set, every request but CORS preflight must authenticate; routes check their scope. */
  authenticate?: Authenticator;
  /** More routes (e.g. the large-object upload API), built with `defineRoute`. */
  extraRoutes?: Route[];
  /** Large retrieves (core/archive/download.ts): the inline limit (Lambda) and presigned URL lifetime. */
  downloads?: Partial<DownloadSettings>;
}

const JSON_TYPE = 'application/dicom+json';
const UID = '([^/]+)';

export function defineRoute(method: string, path: string, service: Service, name: string, run: Route['run']): Route {
  return route(method, path, service, name, run);
}

function route(method: string, path: string, service: Service, name: string, run: Route['run']): Route {
  const names: string[] = [];
  const source = path.replace(/\{(\w+)\}/g, (_, n: string) => {
    names.push(n);
    return UID;
  });
  return { method, path, pattern: new RegExp(`^${source}/?$`), names, service, name, run };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': JSON_TYPE, ...headers } });
}

function errorResponse(error: ArchiveError): Response {
  // PS3.18 §8.6.3 lets the body explain; never include internals for a 500.
  const message = error.code === 'INTERNAL' ? ERRORS.INTERNAL.message : error.detail ?? ERRORS[error.code].message;
  return new Response(JSON.stringify({ code: error.code, message }), {
    status: error.status,
    headers: { 'Content-Type': 'application/json' },
  });
}

function requireUIDs(params: Record<string, string>): void {
  for (const [name, value] of Object.entries(params)) {
    if (['study', 'series', 'instance'].includes(name) && !isValidUID(value)) throw new ArchiveError('INVALID_UID', `invalid ${name} UID in the path`);
  }
}

export function acceptOf(rc: RouteContext): { header?: string; query?: string[] } {
  const q = rc.url.searchParams.getAll('accept');
  return { header: rc.request.headers.get('accept') ?? undefined, query: q.length ? q : undefined };
}

export function multipartResponse(type: string, parts: AsyncIterable<OutPart>, extra: Record<string, string> = {}): Response {
  const out = writeMultipart(parts);
  return new Response(out.stream, { status: 200, headers: { 'Content-Type': out.contentType(type), ...extra } });
}

/** Pull the first part before answering, so an error (404/406) becomes a status, not a broken 200. */
export async function primed(parts: AsyncGenerator<OutPart>): Promise<AsyncIterable<OutPart>> {
  const first = await parts.next();
  return (async function* () {
    if (first.done) return;
    yield first.value;
    yield* parts;
  })();
}

/**
 * HTTP caching (RFC 9111) for retrieve responses. Stored instances never change
 * in place (a different object cannot take an existing SOP Instance UID), so an
 * entity tag derived from the content hashes and the chosen representation is
 * exact. `private`: responses carry PHI and must not sit in shared caches (CDNs,
 * proxies). Instance-level resources may be reused for an hour without asking;
 * study/series resources grow as instances arrive, so clients revalidate
 * (`no-cache`) and get 304 when nothing changed.
 */
export const CACHE_INSTANCE = 'private, max-age=3600';
export const CACHE_AGGREGATE = 'private, no-cache';

export function entityTag(ctx: ArchiveContext, records: ReadonlyArray<Pick<InstanceRecord, 'sopInstanceUID' | 'contentHash'>>, representation: string): string {
  const h = ctx.createHash();
  const enc = new TextEncoder();
  for (const r of records) h.update(enc.encode(`${r.sopInstanceUID}:${r.contentHash};`));
  h.update(enc.encode(representation));
  return `"${h.digest().slice(0, 32)}"`;
}

/** 304 when If-None-Match names the current tag (RFC 9110 §13.1.2); otherwise the response with its validators. */
export async function withValidators(rc: RouteContext, etag: string, cacheControl: string, make: () => Promise<Response>): Promise<Response> {
  const headers = { ETag: etag, 'Cache-Control': cacheControl, Vary: 'Accept' };
  const inm = rc.request.headers.get('if-none-match');
  if (inm && (inm.trim() === '*' || inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag))) {
    return new Response(null, { status: 304, headers });
  }
  const response = await make();
  for (const [k, v] of Object.entries(headers)) response.headers.set(k, v);
  return response;
}

export function createDicomWebApp(ctx: ArchiveContext, options: DicomWebAppOptions) {
  const basePath = options.basePath.replace(/\/$/, '');

  const store = async (rc: RouteContext): Promise<Response> => {
    const contentType = rc.request.headers.get('content-type');
    if (!contentType) throw new ArchiveError('UNSUPPORTED_MEDIA_TYPE', 'Content-Type is required');
    const declared = Number(rc.request.headers.get('content-length') ?? '0');
    if (declared > ctx.limits.maxRequestBytes) {
      throw new ArchiveError('PAYLOAD_TOO_LARGE', `a STOW request may carry at most ${ctx.limits.maxRequestBytes} bytes: send larger objects with the upload API (POST ${basePath}/uploads, see docs/upload-api.md)`);
    }
    const mt = parseMediaType(contentType);
    const outcomes: StoreOutcome[] = [];
    const study = rc.params.study;
    const storeRequest = { studyInstanceUID: study, instanceURL: (a: string, b: string, c: string) => rc.urls.instance(a, b, c) };
    const body = rc.request.body ? iterate(rc.request.body) : (async function* () {})();
    if (mt.type === 'application/dicom') {
      outcomes.push(await storeInstance(ctx, body, storeRequest));
    } else if (mt.type === 'multipart/related') {
      const { boundary, type } = parseMultipartRelated(contentType);
      if (type !== undefined && type.toLowerCase() !== 'application/dicom') {
        throw new ArchiveError('UNSUPPORTED_MEDIA_TYPE', 'only type="application/dicom" is accepted by STOW-RS here');
      }
      for await (const part of readMultipart(body, boundary, { maxParts: ctx.limits.maxParts, maxHeaderBytes: 16 * 1024, maxBodyBytes: ctx.limits.maxRequestBytes })) {
        const partType = part.contentType ? parseMediaType(part.contentType).type : 'application/dicom';
        if (partType !== 'application/dicom') {
          for await (const _ of part.body) { /* drain */ }
          outcomes.push({ kind: 'failed', failureReason: 0xc000 });
          continue;
        }
        outcomes.push(await storeInstance(ctx, part.body, storeRequest));
      }
      if (outcomes.length === 0) throw new ArchiveError('MULTIPART_MALFORMED', 'the body has no parts');
    } else {
      throw new ArchiveError('UNSUPPORTED_MEDIA_TYPE', 'use multipart/related; type="application/dicom"');
    }
    const result = buildStoreResponse(outcomes, study ? rc.urls.study(study) : undefined);
    ctx.log.info('stow.done', { stored: outcomes.filter((o) => o.kind === 'stored').length, failed: outcomes.filter((o) => o.kind === 'failed').length });
    return json(result.status, result.body);
  };

  const search = (level: QidoLevel, run: (q: QidoQuery, scope: SearchScope, urls: ResourceUrls) => Promise<SearchResult>) =>
    async (rc: RouteContext): Promise<Response> => {
      const chosen = negotiate(acceptOf(rc).header, acceptOf(rc).query, [{ mediaType: JSON_TYPE }, { mediaType: 'application/json' }]);
      if (!chosen) throw new ArchiveError('NOT_ACCEPTABLE', 'QIDO-RS answers application/dicom+json');
      const scope: SearchScope = { studyInstanceUID: rc.params.study, seriesInstanceUID: rc.params.series };
      const params = new URLSearchParams(rc.url.searchParams);
      params.delete('accept');
      const query = parseQidoQuery(params, level, {
        scope,
        limits: { defaultLimit: ctx.limits.defaultQueryLimit, maxLimit: ctx.limits.maxQueryLimit },
      });
      const { results, more } = await run(query, scope, rc.urls);
      const headers: Record<string, string> = {};
      // PS3.18 §8.3.4.4 / §10.6.3.3: tell the client the list was cut.
      if (more || query.limitCapped) headers['Warning'] = '299 dicomweb "There are additional results that can be requested"';
      // Current PS3.18 §10.6.3.2: no match is 200 with an empty array (older editions said 204).
      return json(200, results, headers);
    };

  const downloads: DownloadSettings = { ...DEFAULT_DOWNLOAD_SETTINGS, ...options.downloads };

  /** The download manifest route of a study or series (GET …/download). */
  const downloadPath = (rc: RouteContext) => `${rc.params.series ? rc.urls.series(rc.params.study!, rc.params.series) : rc.urls.study(rc.params.study!)}/download`;

  const retrieveInstances = async (rc: RouteContext, records: InstanceRecord[]): Promise<Response> => {
    const syntaxes = commonTransferSyntaxes(records);
    const single = records.length === 1 && rc.params.instance !== undefined;
    const offers: Offer[] = [{ mediaType: 'multipart/related', type: 'application/dicom', transferSyntaxes: syntaxes, defaultTransferSyntax: TransferSyntax.ExplicitVRLittleEndian }];
    // One instance may also be asked for as its bytes alone (single part; extension, docs/conformance.md).
    if (single) offers.push({ mediaType: DOWNLOAD_MEDIA_TYPE, transferSyntaxes: syntaxes, defaultTransferSyntax: TransferSyntax.ExplicitVRLittleEndian });
    const chosen = negotiate(acceptOf(rc).header, acceptOf(rc).query, offers);
    if (!chosen) throw new ArchiveError('NOT_ACCEPTABLE', `available transfer syntaxes: ${syntaxes.join(', ') || 'mixed: use transfer-syntax=*'}`);
    const ts = chosen.transferSyntax ?? TransferSyntax.ExplicitVRLittleEndian;
    const singlePart = chosen.mediaType === DOWNLOAD_MEDIA_TYPE;
    if (downloads.maxInlineBytes !== undefined && estimatedAnswerBytes(records) > downloads.maxInlineBytes) {
      // Too large for one response (Lambda): the stored bytes by redirect, or the download manifest.
      const record = records[0]!;
      if (single && singlePart && (ts === '*' || ts === record.transferSyntaxUID)) {
        const location = await presignedInstanceUrl(ctx, record, downloads);
        // 303 (RFC 9110 §15.4.4): GET the representation there. The URL expires: never cache the redirect.
        if (location) return new Response(null, { status: 303, headers: { Location: location, 'Cache-Control': 'no-store', Vary: 'Accept' } });
      }
      const hint = single
        ? `ask for Accept: application/dicom; transfer-syntax=* (a redirect to the stored bytes), or GET ${downloadPath({ ...rc, params: { study: rc.params.study!, series: record.seriesInstanceUID } })}`
        : `GET ${downloadPath(rc)} lists a direct URL per instance`;
      throw new ArchiveError('RESPONSE_TOO_LARGE', `the answer (${estimatedAnswerBytes(records)} bytes) exceeds the ${downloads.maxInlineBytes}-byte response limit: ${hint}; frames and bulk data are served by range`);
    }
    const etag = entityTag(ctx, records, `${singlePart ? 'single' : 'dicom'};${ts}`);
    return withValidators(rc, etag, single ? CACHE_INSTANCE : CACHE_AGGREGATE, async () => {
      const parts = await primed(instanceParts(ctx, records, ts, rc.urls));
      if (!singlePart) return multipartResponse('application/dicom', parts);
      for await (const part of parts) return new Response(toReadableStream(part.body instanceof Uint8Array ? once(part.body) : part.body), { status: 200, headers: { 'Content-Type': part.contentType, 'Content-Location': part.headers?.['Content-Location'] ?? '' } });
      throw new ArchiveError('NOT_FOUND');
    });
  };

  const download = async (rc: RouteContext): Promise<Response> => {
    const chosen = negotiate(acceptOf(rc).header, acceptOf(rc).query, [{ mediaType: 'application/json' }]);
    if (!chosen) throw new ArchiveError('NOT_ACCEPTABLE', 'the download manifest is application/json');
    const offsetText = rc.url.searchParams.get('offset') ?? '0';
    if (!/^\d{1,9}$/.test(offsetText)) throw new ArchiveError('INVALID_QUERY', 'offset must be a non-negative integer');
    const records = await allRecords(ctx, rc.params.study!, rc.params.series);
    const manifest = await downloadManifest(ctx, records, { study: rc.params.study!, series: rc.params.series }, rc.urls, downloads, Number(offsetText));
    // The URLs are credentials that expire: never cached.
    return new Response(JSON.stringify(manifest), { status: 200, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' } });
  };

  const metadata = async (rc: RouteContext, records: Array<InstanceRecord | StoredMetadata>): Promise<Response> => {
    const chosen = negotiate(acceptOf(rc).header, acceptOf(rc).query, [{ mediaType: JSON_TYPE }, { mediaType: 'application/json' }]);
    if (!chosen) throw new ArchiveError('NOT_ACCEPTABLE', 'metadata is served as application/dicom+json');
    const etag = entityTag(ctx, records, `metadata;${rc.urls.base}`);
    return withValidators(rc, etag, rc.params.instance ? CACHE_INSTANCE : CACHE_AGGREGATE, async () =>
      new Response(toReadableStream(metadataJson(records, rc.urls)), { status: 200, headers: { 'Content-Type': JSON_TYPE } }),
    );
  };

  const frames = async (rc: RouteContext): Promise<Response> => {
    const list = parseFrameList(rc.params.frames!);
    const record = await oneRecord(ctx, rc.params);
    const ts = frameTransferSyntax(record);
    const media = frameMediaType(ts);
    const offers: Offer[] = [{ mediaType: 'multipart/related', type: media, transferSyntaxes: [ts], defaultTransferSyntax: media === 'application/octet-stream' ? TransferSyntax.ExplicitVRLittleEndian : ts }];
    if (media !== 'application/octet-stream') offers.push({ mediaType: 'multipart/related', type: 'application/octet-stream', transferSyntaxes: [ts], defaultTransferSyntax: TransferSyntax.ExplicitVRLittleEndian });
    // Other syntaxes through a codec, after the stored one (transcoded.ts): decoded, or re-encoded losslessly.
    offers.push(...frameTranscodeOffers(record));
    const chosen = negotiate(acceptOf(rc).header, acceptOf(rc).query, offers);
    if (!chosen) throw new ArchiveError('NOT_ACCEPTABLE', `frames are available as ${media}; transfer-syntax=${ts}`);
    const type = chosen.type ?? media;
    const target = chosen.transferSyntax === undefined || chosen.transferSyntax === '*' ? ts : chosen.transferSyntax;
    return withValidators(rc, entityTag(ctx, [record], `frames;${list.join(',')};${type}${target === ts ? '' : `;${target}`}`), CACHE_INSTANCE, async () =>
      multipartResponse(type, await primed(target === ts ? frameParts(ctx, record, list, rc.urls) : transcodedFrameParts(ctx, record, list, target, rc.urls))),
    );
  };

  const bulk = async (rc: RouteContext): Promise<Response> => {
    const path = rc.params.path!;
    if (!/^[0-9A-Fa-f]{8}(\.[0-9]{1,6}\.[0-9A-Fa-f]{8})*$/.test(path)) throw new ArchiveError('NOT_FOUND');
    const record = await oneRecord(ctx, rc.params);
    const chosen = negotiate(acceptOf(rc).header, acceptOf(rc).query, [
      { mediaType: 'multipart/related', type: 'application/octet-stream', transferSyntaxes: [frameTransferSyntax(record)], defaultTransferSyntax: TransferSyntax.ExplicitVRLittleEndian },
    ]);
    if (!chosen) throw new ArchiveError('NOT_ACCEPTABLE');
    return withValidators(rc, entityTag(ctx, [record], `bulk;${path.toUpperCase()}`), CACHE_INSTANCE, async () =>
      multipartResponse('application/octet-stream', await primed(bulkDataParts(ctx, record, path.toUpperCase(), rc.urls))),
    );
  };

  const remove = async (rc: RouteContext): Promise<Response> => {
    await deleteResources(ctx, rc.params.study!, rc.params.series, rc.params.instance);
    return new Response(null, { status: 204 });
  };

  const routes: Route[] = [
    route('POST', '/studies', 'stow', 'storeInstances', store),
    route('POST', '/studies/{study}', 'stow', 'storeInstances', store),

    route('GET', '/studies', 'qido', 'searchForStudies', search('study', (q, _scope, urls) => searchForStudies(ctx, q, urls))),
    route('GET', '/series', 'qido', 'searchForSeries', search('series', (q, scope, urls) => searchForSeries(ctx, q, scope, urls))),
    route('GET', '/instances', 'qido', 'searchForInstances', search('instance', (q, scope, urls) => searchForInstances(ctx, q, scope, urls))),
    route('GET', '/studies/{study}/series', 'qido', 'searchForSeries', search('series', (q, scope, urls) => searchForSeries(ctx, q, scope, urls))),
    route('GET', '/studies/{study}/instances', 'qido', 'searchForInstances', search('instance', (q, scope, urls) => searchForInstances(ctx, q, scope, urls))),
    route('GET', '/studies/{study}/series/{series}/instances', 'qido', 'searchForInstances', search('instance', (q, scope, urls) => searchForInstances(ctx, q, scope, urls))),

    route('GET', '/studies/{study}', 'wado', 'retrieveStudy', async (rc) => retrieveInstances(rc, await allRecords(ctx, rc.params.study!))),
    route('GET', '/studies/{study}/series/{series}', 'wado', 'retrieveSeries', async (rc) => retrieveInstances(rc, await allRecords(ctx, rc.params.study!, rc.params.series))),
    route('GET', '/studies/{study}/series/{series}/instances/{instance}', 'wado', 'retrieveInstance', async (rc) => retrieveInstances(rc, [await oneRecord(ctx, rc.params)])),
    route('GET', '/studies/{study}/metadata', 'wado', 'retrieveStudyMetadata', async (rc) => metadata(rc, await allMetadata(ctx, rc.params.study!))),
    route('GET', '/studies/{study}/series/{series}/metadata', 'wado', 'retrieveSeriesMetadata', async (rc) => metadata(rc, await allMetadata(ctx, rc.params.study!, rc.params.series))),
    route('GET', '/studies/{study}/series/{series}/instances/{instance}/metadata', 'wado', 'retrieveInstanceMetadata', async (rc) => metadata(rc, [await oneRecord(ctx, rc.params, true)])),
    route('GET', '/studies/{study}/series/{series}/instances/{instance}/frames/{frames}', 'wado', 'retrieveInstanceFrames', frames),
    route('GET', '/studies/{study}/series/{series}/instances/{instance}/bulkdata/{path}', 'wado', 'retrieveBulkData', bulk),
    // Not DICOMweb: direct URLs per instance for retrieves too large for one response (core/archive/download.ts).
    route('GET', '/studies/{study}/download', 'wado', 'retrieveStudyDownload', download),
    route('GET', '/studies/{study}/series/{series}/download', 'wado', 'retrieveSeriesDownload', download),

    route('DELETE', '/studies/{study}', 'delete', 'deleteStudy', remove),
    route('DELETE', '/studies/{study}/series/{series}', 'delete', 'deleteSeries', remove),
    route('DELETE', '/studies/{study}/series/{series}/instances/{instance}', 'delete', 'deleteInstance', remove),
  ];
  routes.push(...(options.extraRoutes ?? []));
  const served = routes.filter((r) => !options.services || options.services.includes(r.service));

  async function handle(request: Request): Promise<Response> {
    const started = Date.now();
    let routeName = 'none';
    try {
      const url = new URL(request.url);
      if (!url.pathname.startsWith(basePath)) throw new ArchiveError('ROUTE_NOT_FOUND');
      const path = url.pathname.slice(basePath.length) || '/';
      const method = request.method === 'HEAD' ? 'GET' : request.method;
      // CORS preflight carries no credentials by design (Fetch standard); everything else must authenticate.
      const preflight = method === 'OPTIONS' && request.headers.has('access-control-request-method');
      let principal: Principal | undefined;
      if (options.authenticate && !preflight) {
        principal = await options.authenticate(request);
        if (!principal) throw new ArchiveError('UNAUTHORIZED');
      }
      if (method === 'OPTIONS') {
        if (path === '/' || path === '') {
          if (principal && !principal.scopes.has('read')) throw new ArchiveError('FORBIDDEN', 'the capabilities document needs the "read" scope');
          return new Response(capabilitiesDocument(routes, `${requestOrigin(url, request.headers)}${basePath}`), {
            status: 200,
            headers: { 'Content-Type': 'application/vnd.sun.wadl+xml', Allow: 'GET, POST, DELETE, OPTIONS' },
          });
        }
        const allowed = routes.filter((r) => r.pattern.test(path)).map((r) => r.method);
        if (allowed.length === 0) throw new ArchiveError('ROUTE_NOT_FOUND');
        return new Response(null, { status: 204, headers: { Allow: [...new Set([...allowed, 'OPTIONS'])].join(', ') } });
      }
      const candidates = served.filter((r) => r.pattern.test(path));
      const match = candidates.find((r) => r.method === method);
      if (!match) throw new ArchiveError(candidates.length > 0 ? 'METHOD_NOT_ALLOWED' : 'ROUTE_NOT_FOUND');
      routeName = match.name;
      if (principal && !principal.scopes.has(SCOPE_OF[match.service])) throw new ArchiveError('FORBIDDEN', `this route needs the "${SCOPE_OF[match.service]}" scope`);
      const m = match.pattern.exec(path)!;
      const params: Record<string, string> = {};
      match.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1]!)));
      requireUIDs(params);
      const urls = new ResourceUrls(`${requestOrigin(url, request.headers)}${basePath}`);
      const response = await match.run({ request, principal, url, params, urls });
      ctx.log.info('request', { route: routeName, status: response.status, ms: Date.now() - started });
      return response;
    } catch (error) {
      const e = toArchiveError(error);
      if (e.status >= 500) ctx.log.error('request.failed', { route: routeName, code: e.code, cause: (error as Error)?.name, stack: (error as Error)?.stack?.split('\n').slice(0, 4).join(' | ') });
      else ctx.log.info('request', { route: routeName, status: e.status, code: e.code, ms: Date.now() - started });
      const response = errorResponse(e);
      // RFC 6750 §3: tell the client how to authenticate.
      if (e.code === 'UNAUTHORIZED') response.headers.set('WWW-Authenticate', 'Bearer realm="dicomweb"');
      return response;
    }
  }

  return { handle, routes: served };
}

export type DicomWebApp = ReturnType<typeof createDicomWebApp>;
