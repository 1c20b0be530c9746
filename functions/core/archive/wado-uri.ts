/**
 * WADO-URI (PS3.18 §9, the URI service of older viewers and of report links):
 *
 *   GET {wadoPath}?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…
 *       [&contentType=application/dicom|image/jpeg|image/png[,…]]
 *       [&transferSyntax=UID] [&frameNumber=n] [&rows=n] [&columns=n]
 *       [&region=x1,y1,x2,y2] [&windowCenter=c&windowWidth=w] [&imageQuality=1…100]
 *
 * Service 'wado' (scope read). application/dicom answers one Part 10 object
 * (not multipart), in `transferSyntax` (default Explicit VR Little Endian,
 * §9.1.2.2.1: "*" or the stored UID serve the stored bytes); images are
 * rendered like WADO-RS rendered resources. `anonymize=yes` is refused (not
 * supported), as are `annotation` and `presentationUID` (§9.1.2.4 lets a
 * server refuse what it does not do rather than ignore it).
 */
import type { ArchiveContext } from './context';
import { defineRoute, type Route, type RouteContext } from './app';
import { ArchiveError } from './errors';
import { oneRecord } from './lookup';
import { isRenderable, storedFrame } from './stored-frames';
import { instanceParts, servableTransferSyntaxes } from './retrieve';
import { renderStoredFrame } from './render-routes';
import { toReadableStream } from '../bytes';
import { isValidUID } from '../dicom/uid';
import { TransferSyntax } from '../dicom/tags';
import { parseQuality, type RenderOptions, type RenderedMediaType, type Viewport, MAX_VIEWPORT } from '../imaging';

export interface WadoUriOptions {
  /** Path under the DICOMweb base path (default "/wado"). */
  path?: string;
}

export const DEFAULT_WADO_URI_PATH = '/wado';

const IMAGE_TYPES: RenderedMediaType[] = ['image/jpeg', 'image/png'];

function single(q: URLSearchParams, name: string): string | undefined {
  const all = q.getAll(name);
  if (all.length > 1) throw new ArchiveError('INVALID_QUERY', `${name} may be given once`);
  return all[0];
}

function positiveInt(text: string | undefined, name: string, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1 || Number(text) > max) throw new ArchiveError('INVALID_QUERY', `${name} must be an integer from 1 to ${max}`);
  return Number(text);
}

function finite(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text.trim())) throw new ArchiveError('INVALID_QUERY', `${name} must be a number`);
  return Number(text);
}

/**
 * contentType: a comma-separated list in preference order (§9.1.2.1.1);
 * entries may carry q-values; wildcards (image/*, *\/*) take the first we offer.
 */
function chooseContentType(text: string | undefined, isImage: boolean): 'application/dicom' | RenderedMediaType {
  // §9.1.2.1.1: the default is image/jpeg for single images and application/dicom otherwise (e.g. SR).
  if (text === undefined || text.trim() === '') return isImage ? 'image/jpeg' : 'application/dicom';
  const ranges = text
    .split(',')
    .map((entry, i) => {
      const [type, ...params] = entry.split(';').map((s) => s.trim().toLowerCase());
      const q = params.find((p) => p.startsWith('q='));
      return { type: type ?? '', q: q ? Number(q.slice(2)) : 1, i };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const r of ranges) {
    if (r.type === 'application/dicom') return 'application/dicom';
    if (!isImage) continue;
    if ((IMAGE_TYPES as string[]).includes(r.type)) return r.type as RenderedMediaType;
    if (r.type === 'image/*' || r.type === '*/*') return 'image/jpeg';
  }
  if (ranges.some((r) => r.type === '*/*')) return 'application/dicom';
  throw new ArchiveError('NOT_ACCEPTABLE', isImage ? 'contentType must include application/dicom, image/jpeg or image/png' : 'this object is only available as application/dicom');
}

export function createWadoUriRoutes(ctx: ArchiveContext, options: WadoUriOptions = {}): Route[] {
  const path = options.path ?? DEFAULT_WADO_URI_PATH;

  const wado = async (rc: RouteContext): Promise<Response> => {
    const q = rc.url.searchParams;
    if (single(q, 'requestType') !== 'WADO') throw new ArchiveError('INVALID_QUERY', 'requestType=WADO is required (PS3.18 §9.1.2.1)');
    const study = single(q, 'studyUID');
    const series = single(q, 'seriesUID');
    const object = single(q, 'objectUID');
    if (!study || !series || !object) throw new ArchiveError('INVALID_QUERY', 'studyUID, seriesUID and objectUID are required');
    for (const u of [study, series, object]) if (!isValidUID(u)) throw new ArchiveError('INVALID_UID', 'a UID parameter is not a valid DICOM UID');
    if (['yes', 'true'].includes((single(q, 'anonymize') ?? '').toLowerCase())) throw new ArchiveError('INVALID_QUERY', 'anonymize is not supported');
    if (q.has('annotation')) throw new ArchiveError('INVALID_QUERY', 'annotation is not supported: burned-in patient or technique text is never rendered');
    if (q.has('presentationUID')) throw new ArchiveError('INVALID_QUERY', 'presentation states are not applied (presentationUID)');

    const record = await oneRecord(ctx, { study, series, instance: object }, true);
    const contentType = chooseContentType(single(q, 'contentType'), isRenderable(record));
    const headers = { 'Cache-Control': 'private, max-age=3600' };

    if (contentType === 'application/dicom') {
      for (const p of ['frameNumber', 'rows', 'columns', 'region', 'windowCenter', 'windowWidth', 'imageQuality']) {
        if (q.has(p)) throw new ArchiveError('INVALID_QUERY', `${p} applies to images, not to contentType=application/dicom`);
      }
      const requested = single(q, 'transferSyntax') ?? TransferSyntax.ExplicitVRLittleEndian;
      if (requested !== '*' && !isValidUID(requested)) throw new ArchiveError('INVALID_QUERY', 'transferSyntax must be a UID');
      const ts = requested === '*' ? '*' : requested;
      if (ts !== '*' && ts !== record.transferSyntaxUID && !servableTransferSyntaxes(record).includes(ts)) {
        throw new ArchiveError('NOT_ACCEPTABLE', `the object cannot be served in ${ts}`);
      }
      const parts = instanceParts(ctx, [record], ts, rc.urls);
      const first = await parts.next();
      if (first.done) throw new ArchiveError('NOT_FOUND');
      const body = first.value.body;
      const stream = toReadableStream(
        body instanceof Uint8Array
          ? (async function* () {
              yield body;
            })()
          : body,
      );
      return new Response(stream, { status: 200, headers: { ...headers, 'Content-Type': first.value.contentType.replace(/; transfer-syntax=.*/, ''), 'Content-Disposition': `attachment; filename="${object}.dcm"` } });
    }

    if (q.has('transferSyntax')) throw new ArchiveError('INVALID_QUERY', 'transferSyntax applies to contentType=application/dicom only');
    const frameNumber = positiveInt(single(q, 'frameNumber'), 'frameNumber', 1_000_000_000) ?? 1;
    const rows = positiveInt(single(q, 'rows'), 'rows', MAX_VIEWPORT);
    const columns = positiveInt(single(q, 'columns'), 'columns', MAX_VIEWPORT);
    const wc = finite(single(q, 'windowCenter'), 'windowCenter');
    const ww = finite(single(q, 'windowWidth'), 'windowWidth');
    if ((wc === undefined) !== (ww === undefined)) throw new ArchiveError('INVALID_QUERY', 'windowCenter and windowWidth go together');
    if (ww !== undefined && ww < 1) throw new ArchiveError('INVALID_QUERY', 'windowWidth must be at least 1');
    const qualityText = single(q, 'imageQuality');
    const render: RenderOptions = { mediaType: contentType, ...(qualityText !== undefined ? { quality: parseQuality(qualityText) } : {}) };
    if (wc !== undefined && ww !== undefined) render.window = { center: wc, width: ww, function: 'LINEAR' };

    const frame = await storedFrame(ctx, record, frameNumber);
    const d = frame.description;
    // region=x1,y1,x2,y2 in [0,1] of the image (§9.1.2.4.5), then rows/columns bound the output (§9.1.2.4.3/4).
    const regionText = single(q, 'region');
    let source = { sx: 0, sy: 0, sw: d.columns, sh: d.rows };
    if (regionText !== undefined) {
      const r = regionText.split(',').map((s) => Number(s.trim()));
      if (r.length !== 4 || r.some((v) => !Number.isFinite(v) || v < 0 || v > 1) || r[0]! >= r[2]! || r[1]! >= r[3]!) {
        throw new ArchiveError('INVALID_QUERY', 'region must be x1,y1,x2,y2 with 0 ≤ x1 < x2 ≤ 1 and 0 ≤ y1 < y2 ≤ 1');
      }
      source = { sx: Math.floor(r[0]! * d.columns), sy: Math.floor(r[1]! * d.rows), sw: Math.max(1, Math.round((r[2]! - r[0]!) * d.columns)), sh: Math.max(1, Math.round((r[3]! - r[1]!) * d.rows)) };
    }
    if (regionText !== undefined || rows !== undefined || columns !== undefined) {
      // Only one of rows/columns: the other follows from the aspect ratio (§9.1.2.4.3).
      const vw = columns ?? (rows !== undefined ? Math.min(MAX_VIEWPORT, Math.max(1, Math.round((rows * source.sw) / source.sh))) : source.sw);
      const vh = rows ?? (columns !== undefined ? Math.min(MAX_VIEWPORT, Math.max(1, Math.round((columns * source.sh) / source.sw))) : source.sh);
      const viewport: Viewport = { vw: Math.min(vw, MAX_VIEWPORT), vh: Math.min(vh, MAX_VIEWPORT), ...source };
      render.viewport = viewport;
    }
    const bytes = await renderStoredFrame(frame, render);
    return new Response(bytes as Uint8Array<ArrayBuffer>, { status: 200, headers: { ...headers, 'Content-Type': contentType } });
  };

  return [defineRoute('GET', path, 'wado', 'retrieveWadoUri', wado)];
}
