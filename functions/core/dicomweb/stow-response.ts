/**
 * The STOW-RS response data set (PS3.18 §10.5.3, Store Instances Response
 * Module, PS3.4 CC.2.3 / Table 10.5.3-*). Built from per-instance outcomes
 * (values, not exceptions).
 */
import type { DicomJsonDataset } from '../dicom/json-model';
import { Tag } from '../dicom/tags';

/** FailureReason / WarningReason codes used by the archive (PS3.18 Table 10.5.3-2/-3, PS3.4 B.2.3, PS3.7 C). */
export const FailureReason = {
  /** Refused: out of resources (storage unavailable). */
  OutOfResources: 0xa700,
  /** Error: data set does not match SOP Class (incl. Study Instance UID ≠ the one in the URL, missing/invalid UIDs). */
  DataSetDoesNotMatchSOPClass: 0xa900,
  /** Error: cannot understand (not a PS3.10 file, truncated, malformed, limits exceeded). */
  CannotUnderstand: 0xc000,
  /** Referenced transfer syntax not supported. */
  TransferSyntaxNotSupported: 0xc122,
  /** Processing failure (index unavailable while committing). */
  ProcessingFailure: 0x0110,
  /** Duplicate SOP Instance: a different object already holds this SOP Instance UID (PS3.7 C.4.2). */
  DuplicateSOPInstance: 0x0111,
  /** SOP Class not supported. */
  SOPClassNotSupported: 0x0122,
} as const;

export type StoreOutcome =
  | { kind: 'stored'; sopClassUID: string; sopInstanceUID: string; retrieveURL: string; warningReason?: number }
  | { kind: 'failed'; sopClassUID?: string; sopInstanceUID?: string; failureReason: number };

export interface StoreResponse {
  status: 200 | 202 | 409;
  body: DicomJsonDataset;
}

/** 200 all stored without warnings, 202 some failed or warned, 409 none stored (PS3.18 §10.5.3.1). */
export function buildStoreResponse(outcomes: StoreOutcome[], studyRetrieveURL: string | undefined): StoreResponse {
  const referenced: DicomJsonDataset[] = [];
  const failed: DicomJsonDataset[] = [];
  let warned = false;
  for (const o of outcomes) {
    if (o.kind === 'stored') {
      const item: DicomJsonDataset = {
        [Tag.ReferencedSOPClassUID]: { vr: 'UI', Value: [o.sopClassUID] },
        [Tag.ReferencedSOPInstanceUID]: { vr: 'UI', Value: [o.sopInstanceUID] },
        [Tag.RetrieveURL]: { vr: 'UR', Value: [o.retrieveURL] },
      };
      if (o.warningReason !== undefined) {
        warned = true;
        item[Tag.WarningReason] = { vr: 'US', Value: [o.warningReason] };
      }
      referenced.push(item);
    } else {
      const item: DicomJsonDataset = {
        [Tag.ReferencedSOPClassUID]: o.sopClassUID ? { vr: 'UI', Value: [o.sopClassUID] } : { vr: 'UI' },
        [Tag.ReferencedSOPInstanceUID]: o.sopInstanceUID ? { vr: 'UI', Value: [o.sopInstanceUID] } : { vr: 'UI' },
        [Tag.FailureReason]: { vr: 'US', Value: [o.failureReason] },
      };
      failed.push(item);
    }
  }
  const body: DicomJsonDataset = {};
  if (studyRetrieveURL && referenced.length > 0) body[Tag.RetrieveURL] = { vr: 'UR', Value: [studyRetrieveURL] };
  if (failed.length > 0) body[Tag.FailedSOPSequence] = { vr: 'SQ', Value: failed };
  if (referenced.length > 0) body[Tag.ReferencedSOPSequence] = { vr: 'SQ', Value: referenced };
  const status = referenced.length === 0 ? 409 : failed.length > 0 || warned ? 202 : 200;
  return { status, body };
}
