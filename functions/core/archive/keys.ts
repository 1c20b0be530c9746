/**
 * Every storage key is spelled here and nowhere else, and every UID is
 * validated before a key is built from it (a UID from the wire such as
 * "../../etc" must never reach a path or an object key).
 */
import { assertValidUID } from '../dicom/uid';

/** Original bytes of one stored object. `objectId` is random per write, so a write never overwrites another object. */
export function instanceBlobKey(studyInstanceUID: string, seriesInstanceUID: string, sopInstanceUID: string, objectId: string): string {
  assertValidUID(studyInstanceUID);
  assertValidUID(seriesInstanceUID);
  assertValidUID(sopInstanceUID);
  if (!/^[0-9a-z]{8,64}$/.test(objectId)) throw new Error('invalid object id');
  return `studies/${studyInstanceUID}/series/${seriesInstanceUID}/instances/${sopInstanceUID}/${objectId}.dcm`;
}

export function studyBlobPrefix(studyInstanceUID: string): string {
  assertValidUID(studyInstanceUID);
  return `studies/${studyInstanceUID}/`;
}

// ---------------------------------------------------------------- direct uploads (docs/upload-api.md)

const UPLOAD_ID = /^[0-9a-z]{16,64}$/;
const UPLOAD_KEY = /^uploads\/(\d{4})\/(\d{2})\/(\d{2})\/([0-9a-z]{16,64})\.dcm$/;
const UPLOAD_STAGES = ['created', 'completed', 'result'] as const;
export type UploadStage = (typeof UPLOAD_STAGES)[number];

export function isValidUploadId(id: string): boolean {
  return UPLOAD_ID.test(id);
}

/** The object a direct upload writes, and where its instance stays once indexed (no copy): uploads/<yyyy>/<mm>/<dd>/<uploadId>.dcm (UTC date of creation). */
export function uploadObjectKey(uploadId: string, created: Date): string {
  if (!isValidUploadId(uploadId)) throw new Error('invalid upload id');
  const iso = created.toISOString();
  return `uploads/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${uploadId}.dcm`;
}

/** The upload id of an upload object key, or undefined when the key is not one. */
export function uploadIdOfKey(key: string): string | undefined {
  return UPLOAD_KEY.exec(key)?.[4];
}

/** Status records of an upload: one small immutable JSON object per stage (never rewritten by another stage's writer). */
export function uploadStatusKey(uploadId: string, stage: UploadStage): string {
  if (!isValidUploadId(uploadId)) throw new Error('invalid upload id');
  if (!UPLOAD_STAGES.includes(stage)) throw new Error('invalid upload stage');
  return `uploads-status/${uploadId}/${stage}.json`;
}

/** Prefix of every upload's status records (listing it finds every upload ever created). */
export const UPLOAD_STATUS_PREFIX = 'uploads-status/';

const UPLOAD_STATUS_KEY = /^uploads-status\/([0-9a-z]{16,64})\/(created|completed|result)\.json$/;

/** The upload and stage of a status record key, or undefined when the key is not one. */
export function uploadStatusOfKey(key: string): { uploadId: string; stage: UploadStage } | undefined {
  const m = UPLOAD_STATUS_KEY.exec(key);
  return m ? { uploadId: m[1]!, stage: m[2] as UploadStage } : undefined;
}

// ---------------------------------------------------------------- derived objects (docs/storage-layout.md)

/**
 * Derived objects (thumbnails, transcoded copies) are caches: made lazily from an
 * instance's stored bytes, never the only copy of anything, removed with the
 * instance. They sit under one prefix per study so a delete finds them without
 * the index. `contentHash` (the instance's sha-256) is part of the name, so a
 * derived object can never outlive the bytes it was made from under the same
 * name (a UID deleted and stored again with other content gets new names).
 */
export function derivedPrefix(studyInstanceUID: string, seriesInstanceUID?: string, sopInstanceUID?: string): string {
  assertValidUID(studyInstanceUID);
  let prefix = `derived/studies/${studyInstanceUID}/`;
  if (seriesInstanceUID !== undefined) {
    assertValidUID(seriesInstanceUID);
    prefix += `series/${seriesInstanceUID}/`;
    if (sopInstanceUID !== undefined) {
      assertValidUID(sopInstanceUID);
      prefix += `instances/${sopInstanceUID}/`;
    }
  }
  return prefix;
}

const DERIVED_NAME = /^[0-9a-z][0-9a-z.\-]{0,127}$/;

/** One derived object of an instance, e.g. name "thumbnail-128x128.jpg" or "1.2.840.10008.1.2.4.90.dcm". */
export function derivedObjectKey(studyInstanceUID: string, seriesInstanceUID: string, sopInstanceUID: string, contentHash: string, name: string): string {
  if (!/^[0-9a-f]{16,128}$/.test(contentHash)) throw new Error('invalid content hash');
  if (!DERIVED_NAME.test(name)) throw new Error('invalid derived object name');
  return `${derivedPrefix(studyInstanceUID, seriesInstanceUID, sopInstanceUID)}${contentHash.slice(0, 16)}-${name}`;
}
