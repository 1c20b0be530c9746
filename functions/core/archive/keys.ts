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
