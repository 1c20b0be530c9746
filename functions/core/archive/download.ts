/**
 * Large retrieves (docs/architecture.md §Download). A Lambda response carries
 * at most 6 MB (≈ 4.5 MB of binary once base64-encoded) and API Gateway HTTP
 * APIs cannot stream, while one CT series is hundreds of MB. So where an
 * answer would not fit, the bytes go straight from the store to the client:
 *
 * - one instance asked for as `application/dicom` (its stored bytes): 303 See
 *   Other to a short-lived presigned GET of the stored object;
 * - a study or series: a manifest (`GET …/download`, not DICOMweb) listing each
 *   instance with a URL to GET its bytes from: presigned store URLs where the
 *   store can sign them (S3), else the archive's own instance URLs (embedded
 *   mode streams, so there the URLs are the WADO-RS instance resources);
 * - the standard multipart routes answer 413 RESPONSE_TOO_LARGE naming these.
 *
 * Frames and bulk data stay ranged reads through the function (small by
 * nature). URLs carry UIDs (in the object key) and nothing else of the data
 * set; they expire after `urlExpiresInSeconds` (and never outlive the signing
 * credentials of the function's role).
 */
import type { ArchiveContext } from './context';
import { ArchiveError } from './errors';
import { directDownloadsOf, type InstanceRecord } from './ports';
import type { ResourceUrls } from '../dicomweb/urls';

export interface DownloadSettings {
  /**
   * Largest WADO-RS instance, series or study answer served in one response
   * (Lambda: what fits 6 MB after base64). Undefined: no limit (the embedded
   * server streams answers of any size).
   */
  maxInlineBytes?: number;
  /** Lifetime of presigned download URLs (short: a URL is a bearer credential for the object). */
  urlExpiresInSeconds: number;
  /** Instances per manifest page (a presigned URL with a session token is ≈ 1.5 kB). */
  pageSize: number;
}

export const DEFAULT_DOWNLOAD_SETTINGS: DownloadSettings = { urlExpiresInSeconds: 300, pageSize: 1000 };

/** The media type of every manifest URL's answer: the instance's Part 10 bytes in its stored transfer syntax. */
export const DOWNLOAD_MEDIA_TYPE = 'application/dicom';

/** Bytes a multipart/related answer of these records takes, roughly (part headers and boundaries included). */
export function estimatedAnswerBytes(records: readonly InstanceRecord[]): number {
  return records.reduce((n, r) => n + r.size + 512, 64);
}

export interface DownloadEntry {
  seriesInstanceUID: string;
  sopInstanceUID: string;
  sopClassUID: string;
  transferSyntaxUID: string;
  /** Bytes the URL answers with (for a presigned URL: exactly; for an archive URL: the stored size). */
  size: number;
  /** GET this for the instance's bytes (`mediaType`). */
  url: string;
  /** The WADO-RS instance resource (PS3.18 §10.4.1.1.2). */
  retrieveURL: string;
}

export interface DownloadManifest {
  studyInstanceUID: string;
  seriesInstanceUID?: string;
  /** Instances in the study/series, all pages together. */
  instanceCount: number;
  /** Their stored bytes, all pages together. */
  totalSize: number;
  mediaType: typeof DOWNLOAD_MEDIA_TYPE;
  /**
   * Like Fetch's `credentials`: "omit" — the URLs are presigned, send no
   * Authorization with them (S3 refuses a request that carries both);
   * "include" — they are archive URLs, send the same credentials as here.
   */
  credentials: 'omit' | 'include';
  /** When the URLs stop working (presigned only): ask for the manifest again after that. */
  urlsExpireAt?: string;
  offset: number;
  /** The next page, when there are more instances than one page holds. */
  next?: string;
  instances: DownloadEntry[];
}

/** PS3.18 §8.3.3.1 accept query parameter: a plain GET of an archive URL then answers the stored bytes. */
const STORED_BYTES_QUERY = `accept=${encodeURIComponent(`${DOWNLOAD_MEDIA_TYPE}; transfer-syntax=*`)}`;

export async function downloadManifest(
  ctx: ArchiveContext,
  records: readonly InstanceRecord[],
  scope: { study: string; series?: string },
  urls: ResourceUrls,
  settings: DownloadSettings,
  offset: number,
): Promise<DownloadManifest> {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new ArchiveError('INVALID_QUERY', 'offset must be a non-negative integer');
  const presigner = directDownloadsOf(ctx.blobs);
  const page = records.slice(offset, offset + settings.pageSize);
  const expiresAt = new Date(ctx.now().getTime() + settings.urlExpiresInSeconds * 1000);
  const instances = await Promise.all(
    page.map(async (r): Promise<DownloadEntry> => {
      const retrieveURL = urls.instance(r.studyInstanceUID, r.seriesInstanceUID, r.sopInstanceUID);
      const url = presigner ? await presigner.presignGet(r.blobKey, { expiresInSeconds: settings.urlExpiresInSeconds, contentType: DOWNLOAD_MEDIA_TYPE }) : `${retrieveURL}?${STORED_BYTES_QUERY}`;
      return { seriesInstanceUID: r.seriesInstanceUID, sopInstanceUID: r.sopInstanceUID, sopClassUID: r.sopClassUID, transferSyntaxUID: r.transferSyntaxUID, size: r.size, url, retrieveURL };
    }),
  );
  const self = scope.series ? urls.series(scope.study, scope.series) : urls.study(scope.study);
  const nextOffset = offset + page.length;
  return {
    studyInstanceUID: scope.study,
    ...(scope.series ? { seriesInstanceUID: scope.series } : {}),
    instanceCount: records.length,
    totalSize: records.reduce((n, r) => n + r.size, 0),
    mediaType: DOWNLOAD_MEDIA_TYPE,
    credentials: presigner ? 'omit' : 'include',
    ...(presigner ? { urlsExpireAt: expiresAt.toISOString() } : {}),
    offset,
    ...(nextOffset < records.length ? { next: `${self}/download?offset=${nextOffset}` } : {}),
    instances,
  };
}

/** A presigned URL of one instance's stored bytes, or undefined when the store cannot sign one. */
export async function presignedInstanceUrl(ctx: ArchiveContext, record: InstanceRecord, settings: DownloadSettings): Promise<string | undefined> {
  const presigner = directDownloadsOf(ctx.blobs);
  return presigner?.presignGet(record.blobKey, { expiresInSeconds: settings.urlExpiresInSeconds, contentType: DOWNLOAD_MEDIA_TYPE });
}
