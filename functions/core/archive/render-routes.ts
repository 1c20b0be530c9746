/**
 * Rendered resources and thumbnails (PS3.18 §10.4.1.1.3 Rendered, §10.4.1.1.6
 * Thumbnail), service 'wado' (scope read), added to the route table with
 * `extraRoutes`:
 *
 *   GET {study}/rendered, {series}/rendered            multipart/related of images, one per instance (first frame)
 *   GET {instance}/rendered                             one image (first frame)
 *   GET {instance}/frames/{list}/rendered               one image, or multipart/related for several frames
 *   GET {study|series|instance}/thumbnail, {frames}/thumbnail   one small image of a representative frame
 *
 * Media types image/jpeg (default, also for *\/*) and image/png (§8.7.4,
 * Table 8.7.4-1); query parameters window, viewport, quality (§8.3.5.1);
 * `annotation` is refused with 400 (not supported: see docs/conformance.md).
 * Thumbnails of the default size are cached as derived objects (keys.ts,
 * docs/storage-layout.md), made lazily on the first request.
 */
import type { ArchiveContext } from './context';
import { acceptOf, CACHE_AGGREGATE, CACHE_INSTANCE, defineRoute, entityTag, multipartResponse, primed, withValidators, type Route, type RouteContext } from './app';
import { ArchiveError } from './errors';
import { derivedObject } from './derived';
import { allRecords, oneRecord } from './lookup';
import type { InstanceRecord } from './ports';
import type { OutPart } from './retrieve';
import { instanceDescription, isRenderable, rangeReader, storedFrame, type StoredFrame } from './stored-frames';
import { negotiate, type Offer } from '../dicomweb/accept';
import {
  parseQuality,
  parseViewport,
  parseWindow,
  renderFrame,
  type RenderOptions,
  type RenderedMediaType,
} from '../imaging';

export interface RenderRoutesOptions {
  /** Edge of the default thumbnail (pixels); the image fits in a square of this size. */
  thumbnailSize?: number;
}

export const DEFAULT_THUMBNAIL_SIZE = 128;

const MEDIA: RenderedMediaType[] = ['image/jpeg', 'image/png'];
const EXTENSION: Record<RenderedMediaType, string> = { 'image/jpeg': 'jpg', 'image/png': 'png' };
/** Most instances one multipart rendered answer carries: a study render is a preview, not an export. */
export const MAX_RENDERED_PARTS = 1000;

export async function renderStoredFrame(f: StoredFrame, options: RenderOptions): Promise<Uint8Array> {
  return renderFrame(f.transferSyntaxUID, f.bytes, f.description, options, f.bitOffset);
}

/** Rendering parameters of the query (PS3.18 §8.3.5.1), validated. */
export function renderParameters(url: URL): Omit<RenderOptions, 'mediaType'> {
  const q = url.searchParams;
  if (q.has('annotation')) throw new ArchiveError('INVALID_QUERY', 'annotation is not supported: burned-in patient or technique text is never rendered (docs/conformance.md)');
  const out: Omit<RenderOptions, 'mediaType'> = {};
  const w = q.get('window');
  if (w !== null) out.window = parseWindow(w);
  const v = q.get('viewport');
  if (v !== null) out.viewport = parseViewport(v);
  const quality = q.get('quality');
  if (quality !== null) out.quality = parseQuality(quality);
  return out;
}

/** Accept negotiation for a rendered resource: image/jpeg first (*\/* → JPEG), single images or multipart/related of them. */
function chooseMedia(rc: RouteContext, multipart: 'no' | 'yes' | 'either'): { mediaType: RenderedMediaType; multipart: boolean } {
  const offers: Offer[] = [];
  if (multipart !== 'yes') offers.push(...MEDIA.map((m) => ({ mediaType: m })));
  if (multipart !== 'no') offers.push(...MEDIA.map((m) => ({ mediaType: 'multipart/related', type: m })));
  const chosen = negotiate(acceptOf(rc).header, acceptOf(rc).query, offers);
  if (!chosen) throw new ArchiveError('NOT_ACCEPTABLE', `rendered resources are available as ${multipart === 'no' ? '' : 'multipart/related; type='}image/jpeg or image/png`);
  const multi = chosen.mediaType === 'multipart/related';
  return { mediaType: (multi ? chosen.type ?? 'image/jpeg' : chosen.mediaType) as RenderedMediaType, multipart: multi };
}

/** 304 when If-None-Match names the tag; `private`: images carry PHI (app.ts withValidators). */
function cached(rc: RouteContext, etag: string, aggregate: boolean, make: () => Promise<Response>): Promise<Response> {
  return withValidators(rc, etag, aggregate ? CACHE_AGGREGATE : CACHE_INSTANCE, make);
}

function numberOf(r: InstanceRecord, key: string): number {
  const v = (r.metadata ?? r.instanceAttributes)[key]?.Value?.[0];
  return typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : Number.NaN;
}

/** Series in SeriesNumber order, instances in InstanceNumber order (then UID): the order a viewer shows. */
function displayOrder(records: InstanceRecord[]): InstanceRecord[] {
  const key = (r: InstanceRecord, k: string) => {
    const n = numberOf(r, k);
    return Number.isNaN(n) ? Number.MAX_SAFE_INTEGER : n;
  };
  return [...records].sort(
    (a, b) =>
      key(a, '00200011') - key(b, '00200011') ||
      (a.seriesInstanceUID < b.seriesInstanceUID ? -1 : a.seriesInstanceUID > b.seriesInstanceUID ? 1 : 0) ||
      key(a, '00200013') - key(b, '00200013') ||
      (a.sopInstanceUID < b.sopInstanceUID ? -1 : a.sopInstanceUID > b.sopInstanceUID ? 1 : 0),
  );
}

/**
 * The instance and frame a thumbnail shows (PS3.18 §10.4.1.1.6 leaves the choice
 * to the server): for a series, the middle image in InstanceNumber order; for a
 * study, the middle image of its first series (SeriesNumber order) that has
 * images; for a multi-frame instance, its middle frame.
 */
export function representativeFrame(records: InstanceRecord[]): { record: InstanceRecord; frame: number } {
  const images = displayOrder(records.filter(isRenderable));
  if (images.length === 0) throw new ArchiveError('NOT_ACCEPTABLE', 'there is no image to make a thumbnail of');
  const series = images[0]!.seriesInstanceUID;
  const inSeries = images.filter((r) => r.seriesInstanceUID === series);
  const record = inSeries[Math.floor((inSeries.length - 1) / 2)]!;
  const frames = record.layout.pixelData!.frames.length;
  return { record, frame: Math.floor((frames - 1) / 2) + 1 };
}

export function createRenderRoutes(ctx: ArchiveContext, options: RenderRoutesOptions = {}): Route[] {
  const thumbnailSize = options.thumbnailSize ?? DEFAULT_THUMBNAIL_SIZE;

  const imageResponse = (bytes: Uint8Array, mediaType: string, location?: string) =>
    new Response(bytes as Uint8Array<ArrayBuffer>, { status: 200, headers: { 'Content-Type': mediaType, ...(location ? { 'Content-Location': location } : {}) } });

  // Render the first part before answering, so a 406/404 is a status, not a broken 200.
  const multipartImages = async (mediaType: RenderedMediaType, parts: AsyncGenerator<OutPart>): Promise<Response> => multipartResponse(mediaType, await primed(parts));

  const renderedFrame = async (r: InstanceRecord, n: number, render: RenderOptions) => renderStoredFrame(await storedFrame(ctx, r, n), render);

  /** {study}/rendered and {series}/rendered: the first frame of each image instance. */
  const renderedAggregate = async (rc: RouteContext): Promise<Response> => {
    const params = renderParameters(rc.url);
    const media = chooseMedia(rc, 'either');
    const records = displayOrder((await allRecords(ctx, rc.params.study!, rc.params.series, true)).filter(isRenderable));
    if (records.length === 0) throw new ArchiveError('NOT_ACCEPTABLE', 'none of the instances is an image');
    if (records.length > MAX_RENDERED_PARTS) throw new ArchiveError('RESPONSE_TOO_LARGE', `at most ${MAX_RENDERED_PARTS} instances are rendered in one answer: render series or instances`);
    const render: RenderOptions = { ...params, mediaType: media.mediaType };
    return cached(rc, entityTag(ctx, records, `rendered;${media.mediaType};${rc.url.search}`), true, async () => {
      if (!media.multipart) {
        // A single image was asked for: the first one (PS3.18 §8.7.4 allows a single-part answer).
        return imageResponse(await renderedFrame(records[0]!, 1, render), media.mediaType);
      }
      return multipartImages(
        media.mediaType,
        (async function* () {
          for (const r of records) {
            yield { contentType: media.mediaType, headers: { 'Content-Location': `${rc.urls.instance(r.studyInstanceUID, r.seriesInstanceUID, r.sopInstanceUID)}/rendered` }, body: await renderedFrame(r, 1, render) };
          }
        })(),
      );
    });
  };

  const renderedInstance = async (rc: RouteContext): Promise<Response> => {
    const params = renderParameters(rc.url);
    const media = chooseMedia(rc, 'either');
    const record = await oneRecord(ctx, rc.params, true);
    const render: RenderOptions = { ...params, mediaType: media.mediaType };
    return cached(rc, entityTag(ctx, [record], `rendered;${media.mediaType};${media.multipart};${rc.url.search}`), false, async () => {
      const bytes = await renderedFrame(record, 1, render);
      if (!media.multipart) return imageResponse(bytes, media.mediaType);
      return multipartImages(media.mediaType, (async function* () { yield { contentType: media.mediaType, body: bytes }; })());
    });
  };

  const renderedFrames = async (rc: RouteContext): Promise<Response> => {
    const list = parseFrames(rc.params.frames!);
    const params = renderParameters(rc.url);
    const media = chooseMedia(rc, list.length > 1 ? 'yes' : 'either');
    const record = await oneRecord(ctx, rc.params, true);
    const frames = record.layout.pixelData?.frames.length ?? 0;
    for (const n of list) if (n > frames) throw new ArchiveError('FRAME_OUT_OF_RANGE');
    const render: RenderOptions = { ...params, mediaType: media.mediaType };
    return cached(rc, entityTag(ctx, [record], `frames-rendered;${list.join(',')};${media.mediaType};${media.multipart};${rc.url.search}`), false, async () => {
      if (!media.multipart) return imageResponse(await renderedFrame(record, list[0]!, render), media.mediaType);
      const read = rangeReader(ctx, record);
      const description = await instanceDescription(ctx, record, read);
      const base = rc.urls.instance(record.studyInstanceUID, record.seriesInstanceUID, record.sopInstanceUID);
      return multipartImages(
        media.mediaType,
        (async function* () {
          for (const n of list) yield { contentType: media.mediaType, headers: { 'Content-Location': `${base}/frames/${n}/rendered` }, body: await renderStoredFrame(await storedFrame(ctx, record, n, read, description), render) };
        })(),
      );
    });
  };

  /**
   * A thumbnail: the representative frame fitted into `thumbnailSize` (or the
   * request's viewport). Default-size thumbnails without other parameters
   * (a viewport of exactly the default size counts as none) are cached as
   * derived objects; others are rendered each time.
   */
  const thumbnail = async (rc: RouteContext): Promise<Response> => {
    const params = renderParameters(rc.url);
    const media = chooseMedia(rc, 'no');
    let record: InstanceRecord;
    let frame: number;
    if (rc.params.instance) {
      record = await oneRecord(ctx, rc.params, true);
      const frames = record.layout.pixelData?.frames.length ?? 0;
      if (rc.params.frames) {
        const list = parseFrames(rc.params.frames);
        if (list.length !== 1) throw new ArchiveError('INVALID_FRAME_LIST', 'a thumbnail is of one frame');
        frame = list[0]!;
        if (frame > frames) throw new ArchiveError('FRAME_OUT_OF_RANGE');
      } else {
        frame = Math.floor((Math.max(frames, 1) - 1) / 2) + 1;
      }
    } else {
      ({ record, frame } = representativeFrame(await allRecords(ctx, rc.params.study!, rc.params.series, true)));
    }
    const render: RenderOptions = { viewport: { vw: thumbnailSize, vh: thumbnailSize }, ...params, mediaType: media.mediaType };
    // The default thumbnail, asked for with or without its size spelled out (the web UI sends viewport=128,128).
    const v = params.viewport;
    const defaultSize = v === undefined || (v.vw === thumbnailSize && v.vh === thumbnailSize && v.sx === undefined);
    const cacheable = params.window === undefined && defaultSize && params.quality === undefined;
    return cached(rc, entityTag(ctx, [record], `thumbnail;${frame};${media.mediaType};${rc.url.search}`), !rc.params.instance, async () => {
      const make = () => renderedFrame(record, frame, render);
      const name = `thumbnail-f${frame}-${thumbnailSize}.${EXTENSION[media.mediaType]}`;
      return imageResponse(cacheable ? await derivedObject(ctx, record, name, media.mediaType, make) : await make(), media.mediaType);
    });
  };

  const I = '/studies/{study}/series/{series}/instances/{instance}';
  return [
    defineRoute('GET', '/studies/{study}/rendered', 'wado', 'retrieveRenderedStudy', renderedAggregate),
    defineRoute('GET', '/studies/{study}/series/{series}/rendered', 'wado', 'retrieveRenderedSeries', renderedAggregate),
    defineRoute('GET', `${I}/rendered`, 'wado', 'retrieveRenderedInstance', renderedInstance),
    defineRoute('GET', `${I}/frames/{frames}/rendered`, 'wado', 'retrieveRenderedFrames', renderedFrames),
    defineRoute('GET', '/studies/{study}/thumbnail', 'wado', 'retrieveStudyThumbnail', thumbnail),
    defineRoute('GET', '/studies/{study}/series/{series}/thumbnail', 'wado', 'retrieveSeriesThumbnail', thumbnail),
    defineRoute('GET', `${I}/thumbnail`, 'wado', 'retrieveInstanceThumbnail', thumbnail),
    defineRoute('GET', `${I}/frames/{frames}/thumbnail`, 'wado', 'retrieveFrameThumbnail', thumbnail),
  ];
}

/** "1,3,5" (PS3.18 §10.4.1.1.4): positive integers, at most 1000 for rendering. */
function parseFrames(text: string): number[] {
  const parts = text.split(',');
  if (parts.length > 1000) throw new ArchiveError('INVALID_FRAME_LIST', 'at most 1000 frames are rendered in one request');
  return parts.map((p) => {
    if (!/^[1-9][0-9]{0,8}$/.test(p.trim())) throw new ArchiveError('INVALID_FRAME_LIST');
    return Number(p);
  });
}
