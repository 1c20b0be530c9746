/**
 * The two ports of the archive. Everything DICOMweb needs from storage goes
 * through these; adapters exist for local disk + SQLite (embedded mode) and
 * S3 + DynamoDB (AWS). One contract test suite (test/contract) runs against
 * every adapter, so behaviour cannot drift between modes.
 */
import type { DicomJsonDataset } from '../dicom/json-model';
import type { PixelDataLayout, BulkDataRef } from '../dicom/part10-types';
import { Tag } from '../dicom/tags';

// ---------------------------------------------------------------- blob store

export interface ByteRangeRequest {
  start: number;
  /** inclusive; omitted = to the end */
  end?: number;
}

export interface BlobInfo {
  size: number;
}

/**
 * Immutable byte objects (the original Part 10 files and derived objects).
 * `put` is atomic: a reader sees the whole object or none of it.
 * Missing keys make get/getBytes reject with an error whose `code` is 'BLOB_NOT_FOUND'.
 */
export interface BlobStore {
  put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, options?: { contentType?: string }): Promise<BlobInfo>;
  get(key: string, range?: ByteRangeRequest): Promise<AsyncIterable<Uint8Array>>;
  getBytes(key: string, range?: ByteRangeRequest): Promise<Uint8Array>;
  head(key: string): Promise<BlobInfo | undefined>;
  /** Idempotent: deleting a missing key succeeds. */
  delete(key: string): Promise<void>;
  /** Keys under a prefix, in lexicographic order. */
  list(prefix: string): AsyncIterable<string>;
}

// ---------------------------------------------------------------- direct uploads (optional capability)

/** Where (and how) a client sends one part of a direct upload. */
export interface UploadPartTarget {
  partNumber: number;
  /** Bytes of this part: every part is `partSize` long except the last. */
  size: number;
  /** Absolute URL, or a path relative to the DICOMweb base URL (stores the archive serves itself). */
  url: string;
  method: 'PUT';
  /** Headers the request must carry exactly as given (they are part of the signature). */
  headers: Record<string, string>;
}

export interface UploadedPart {
  partNumber: number;
  /** Entity tag the store gave the part; the client sends it back at completion. */
  etag: string;
  size: number;
}

/**
 * Optional BlobStore capability: large objects go from the client straight into
 * the store, in parts (S3 multipart semantics), so bytes never pass through a
 * function (Lambda carries 6 MB per call). `uploadId` is the store's own id of an
 * open multipart upload; a store may leave it undefined for a single-part
 * upload (S3: one presigned PutObject). The object appears at `key`
 * atomically: for a multipart upload only at `completeUpload`; a single PUT
 * straight to the store is the object as soon as it is sent (completion then
 * only checks it is there). test/contract/direct-uploads.contract.ts is the
 * executable form of this contract.
 *
 * Stores that hand out their own signed URLs (S3) implement `presignPart`;
 * stores the archive serves itself (embedded) implement `putPart`, and the
 * archive's signed part route relays the bytes to it.
 *
 * Errors the client caused (missing parts, wrong entity tags or sizes) carry
 * `code: 'UPLOAD_INVALID'`; an upload the store does not know (aborted,
 * completed, never created), `code: 'UPLOAD_NOT_FOUND'`.
 */
export interface DirectUploads {
  createUpload(key: string, options: { size: number; partSize: number; contentType?: string }): Promise<{ uploadId?: string }>;
  presignPart?(key: string, uploadId: string | undefined, part: { partNumber: number; size: number }, expiresInSeconds: number): Promise<UploadPartTarget>;
  putPart?(key: string, uploadId: string | undefined, partNumber: number, body: AsyncIterable<Uint8Array>, size: number): Promise<{ etag: string }>;
  /** Parts received so far, by part number (empty once the upload is completed or aborted). */
  listParts(key: string, uploadId: string | undefined): Promise<UploadedPart[]>;
  /** Assemble the parts (in part-number order) into the object at `key`; etags must match what the store gave. */
  completeUpload(key: string, uploadId: string | undefined, parts: { partNumber: number; etag: string }[]): Promise<void>;
  /** Idempotent: drops received parts (never a completed object). */
  abortUpload(key: string, uploadId: string | undefined): Promise<void>;
}

/** The store's direct-upload capability, if it has one. */
export function directUploadsOf(blobs: BlobStore): DirectUploads | undefined {
  const u = blobs as Partial<DirectUploads>;
  const ok = typeof u.createUpload === 'function' && typeof u.listParts === 'function' && typeof u.completeUpload === 'function' && typeof u.abortUpload === 'function';
  return ok && (typeof u.presignPart === 'function' || typeof u.putPart === 'function') ? (blobs as BlobStore & DirectUploads) : undefined;
}

// ---------------------------------------------------------------- direct downloads (optional capability)

/**
 * Optional BlobStore capability: a short-lived URL the client GETs an object
 * from straight out of the store (S3 presigned GET), for answers too large to
 * pass through a function (core/archive/download.ts). The URL must name the
 * object by its key only (keys hold UIDs, never patient attributes) and expire
 * after `expiresInSeconds`.
 */
export interface DirectDownloads {
  presignGet(key: string, options: { expiresInSeconds: number; contentType?: string }): Promise<string>;
}

/** The store's direct-download capability, if it has one. */
export function directDownloadsOf(blobs: BlobStore): DirectDownloads | undefined {
  return typeof (blobs as Partial<DirectDownloads>).presignGet === 'function' ? (blobs as BlobStore & DirectDownloads) : undefined;
}

// ---------------------------------------------------------------- index

/** Where an instance's frames and bulk data sit inside its stored bytes. */
export interface InstanceLayout {
  datasetOffset: number;
  deflated: boolean;
  pixelData?: PixelDataLayout;
  bulkData: BulkDataRef[];
}

export interface InstanceRecord {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  sopClassUID: string;
  /** Transfer syntax of the stored bytes. */
  transferSyntaxUID: string;
  /** Blob key of the original Part 10 bytes. */
  blobKey: string;
  size: number;
  /** sha-256 (hex) of the stored bytes: identical re-sends are recognised by it. */
  contentHash: string;
  /** ISO 8601 time of the commit. */
  storedAt: string;
  /** Patient + study level attributes of this instance (what QIDO returns at study level). */
  studyAttributes: DicomJsonDataset;
  /** Series level attributes (Modality, SeriesNumber, …). */
  seriesAttributes: DicomJsonDataset;
  /** Instance level attributes (SOPClassUID, InstanceNumber, Rows, …). */
  instanceAttributes: DicomJsonDataset;
  /**
   * Full WADO-RS metadata (PS3.18 F.2) as served: attributes in tag order,
   * Available Transfer Syntax UID (0008,3002) added, bulk values replaced by
   * BulkDataURI paths relative to the instance ("7FE00010" for
   * "{instance}/bulkdata/7FE00010"), made absolute at response time. Only
   * returned when asked for (`withMetadata: true`), since it is large.
   */
  metadata?: DicomJsonDataset;
  layout: InstanceLayout;
}

export type PutInstanceResult =
  /** newly recorded */
  | { status: 'created' }
  /** the same SOP Instance UID is already recorded with the same content hash: nothing changed */
  | { status: 'identical'; existing: InstanceRecord }
  /** the SOP Instance UID is already recorded with different content: nothing changed */
  | { status: 'conflict'; existing: InstanceRecord };

/**
 * Hints an adapter may use to narrow a study search with its keys. Adapters
 * MUST return a superset of the matching studies (the core re-checks every
 * candidate with the one QIDO matcher) and MUST NOT scan when a hint is given
 * that a key can answer.
 */
export interface StudySearchHints {
  studyInstanceUIDs?: string[];
  /**
   * Studies holding any of these SOP Instance UIDs (an instance-level search
   * by UID without a study, e.g. a gateway's storage commitment lookups).
   */
  sopInstanceUIDs?: string[];
  /** exact Patient ID */
  patientID?: string;
  /** inclusive YYYYMMDD bounds */
  studyDateFrom?: string;
  studyDateTo?: string;
  /** upper-cased, accent-free prefix of the PN family name (text before the first wildcard) */
  patientNamePrefix?: string;
  /** exact Accession Number */
  accessionNumber?: string;
  /** studies with a series of any of these Modality values (ModalitiesInStudy, exact values; an adapter may ignore it) */
  modalitiesInStudy?: string[];
}

export interface StudySummary {
  studyInstanceUID: string;
  studyAttributes: DicomJsonDataset;
}

export interface InstanceRef {
  studyInstanceUID: string;
  seriesInstanceUID?: string;
  sopInstanceUID: string;
}

/**
 * One instance's WADO-RS metadata as the index keeps it: the JSON text of
 * `InstanceRecord.metadata`, with only what serving and validating it needs.
 * A series' metadata is served by splicing these texts (core/archive/metadata.ts),
 * without parsing and re-serializing hundreds of data sets per request.
 */
export interface StoredMetadata {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  transferSyntaxUID: string;
  contentHash: string;
  metadataJson: string;
}

export interface ListOptions {
  withMetadata?: boolean;
}

/**
 * The archive's index. Study and series aggregates (counts, modalities, SOP
 * classes) are *derived* from the instance records by the core, never stored,
 * so they are exact under concurrent writers by construction.
 */
export interface ArchiveIndex {
  /**
   * Record an instance, claiming its SOP Instance UID (unique across the whole
   * archive, whatever study it claims). Creates the study entry if absent
   * (first writer's study attributes win).
   */
  putInstance(record: InstanceRecord): Promise<PutInstanceResult>;

  /** Look up one instance by SOP Instance UID; undefined unless it lies in the given study (and series, if given). */
  getInstance(ref: InstanceRef, options?: ListOptions): Promise<InstanceRecord | undefined>;

  /**
   * The instances of a study (optionally one series), ordered by
   * SeriesInstanceUID then SOPInstanceUID.
   */
  listInstances(studyInstanceUID: string, seriesInstanceUID?: string, options?: ListOptions): AsyncIterable<InstanceRecord>;

  /**
   * What a study search reports about a study's contents (its series and
   * instances, modalities and SOP classes): exactly what `studyContentsOf`
   * derives from `listInstances`, but an adapter may keep it in step with its
   * writes so that a search does not read every instance of every study it
   * answers with (a page of 100 CT studies can hold 60,000 instances).
   */
  summarizeStudy(studyInstanceUID: string): Promise<StudyContents>;

  /** The stored metadata of the same instances in the same order (instances stored without metadata are left out). */
  listMetadata(studyInstanceUID: string, seriesInstanceUID?: string): AsyncIterable<StoredMetadata>;

  /**
   * Candidate studies for a search, ordered by `studySortKey` descending
   * (newest StudyDate first), optionally continuing after a given sort key.
   */
  findStudies(hints: StudySearchHints, after?: string): AsyncIterable<StudySummary>;

  /**
   * Remove the index entries of an instance, a series (sop omitted) or a study
   * (series and sop omitted); drop the study entry when no instance is left.
   * Returns the removed records so the caller can delete their bytes.
   */
  deleteInstances(studyInstanceUID: string, seriesInstanceUID?: string, sopInstanceUID?: string): Promise<InstanceRecord[]>;
}

/** The contents of a study behind its QIDO aggregates (PS3.18 Table 10.6.3-3); lists sorted, without empty values. */
export interface StudyContents {
  series: number;
  instances: number;
  modalities: string[];
  sopClasses: string[];
}

/** The Modality (0008,0060) an instance record counts under ('' when absent). */
export function modalityOf(record: Pick<InstanceRecord, 'seriesAttributes'>): string {
  const v = record.seriesAttributes[Tag.Modality]?.Value?.[0];
  return typeof v === 'string' ? v : '';
}

/** One (series, modality, SOP class) group of a study's instances and how many instances (≥ 1) it has. */
export interface ContentsGroup {
  seriesInstanceUID: string;
  modality: string;
  sopClassUID: string;
  instances: number;
}

/** StudyContents from groups of instances (the reference every `summarizeStudy` must agree with). */
export function studyContentsFromGroups(groups: Iterable<ContentsGroup>): StudyContents {
  const series = new Set<string>();
  const modalities = new Set<string>();
  const sopClasses = new Set<string>();
  let instances = 0;
  for (const g of groups) {
    series.add(g.seriesInstanceUID);
    if (g.modality) modalities.add(g.modality);
    if (g.sopClassUID) sopClasses.add(g.sopClassUID);
    instances += g.instances;
  }
  return { series: series.size, instances, modalities: [...modalities].sort(), sopClasses: [...sopClasses].sort() };
}

/** StudyContents derived from instance records. */
export function studyContentsOf(records: Iterable<InstanceRecord>): StudyContents {
  return studyContentsFromGroups(Array.from(records, (r) => ({ seriesInstanceUID: r.seriesInstanceUID, modality: modalityOf(r), sopClassUID: r.sopClassUID, instances: 1 })));
}

/** The total order of studies in search results: newest StudyDate first, then UID. */
export function studySortKey(studyDate: string | undefined, studyInstanceUID: string): string {
  return `${(studyDate ?? '').padEnd(8, '0').slice(0, 8)}#${studyInstanceUID}`;
}
