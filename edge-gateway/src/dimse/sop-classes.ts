/**
 * Which abstract syntaxes (SOP classes) and transfer syntaxes the gateway
 * negotiates (PS3.7 §D.3.3, PS3.8 §9.3.2.2). UIDs from PS3.6 Annex A.
 */
import { transferSyntaxEncoding } from '../../../functions/core/dicom/transfer-syntax';

export const SopClass = {
  Verification: '1.2.840.10008.1.1',
  StorageCommitmentPushModel: '1.2.840.10008.1.20.1',
  PatientRootFind: '1.2.840.10008.5.1.4.1.2.1.1',
  PatientRootMove: '1.2.840.10008.5.1.4.1.2.1.2',
  PatientRootGet: '1.2.840.10008.5.1.4.1.2.1.3',
  StudyRootFind: '1.2.840.10008.5.1.4.1.2.2.1',
  StudyRootMove: '1.2.840.10008.5.1.4.1.2.2.2',
  StudyRootGet: '1.2.840.10008.5.1.4.1.2.2.3',
} as const;

/** Well-known SOP Instance UID of the Storage Commitment Push Model (PS3.4 J.3.5). */
export const STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE = '1.2.840.10008.1.20.1.1';

/**
 * Storage SOP classes (PS3.4 Annex B, Table B.5-1). Nearly all live under
 * 1.2.840.10008.5.1.4.1.1.; these are the ones that do not.
 */
const STORAGE_OUTSIDE_ARC = new Set([
  '1.2.840.10008.5.1.4.34.7', // RT Beams Delivery Instruction Storage
  '1.2.840.10008.5.1.4.34.10', // RT Brachy Application Setup Delivery Instruction Storage
  '1.2.840.10008.5.1.4.38.1', // Hanging Protocol Storage
  '1.2.840.10008.5.1.4.39.1', // Color Palette Storage
  '1.2.840.10008.5.1.4.43.1', // Generic Implant Template Storage
  '1.2.840.10008.5.1.4.44.1', // Implant Assembly Template Storage
  '1.2.840.10008.5.1.4.45.1', // Implant Template Group Storage
]);

const STORAGE_ARC = /^1\.2\.840\.10008\.5\.1\.4\.1\.1\.[0-9][0-9.]*$/;

export function isStorageSopClass(uid: string): boolean {
  return STORAGE_ARC.test(uid) || STORAGE_OUTSIDE_ARC.has(uid);
}

export const QUERY_RETRIEVE_FIND = new Set<string>([SopClass.PatientRootFind, SopClass.StudyRootFind]);
export const QUERY_RETRIEVE_MOVE = new Set<string>([SopClass.PatientRootMove, SopClass.StudyRootMove]);
export const QUERY_RETRIEVE_GET = new Set<string>([SopClass.PatientRootGet, SopClass.StudyRootGet]);

export const IMPLICIT_VR_LE = '1.2.840.10008.1.2';
export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';

/** Transfer syntaxes for everything but storage: we encode identifiers ourselves (PS3.5 A.1, A.2). */
export const COMMAND_TRANSFER_SYNTAXES: readonly string[] = [EXPLICIT_VR_LE, IMPLICIT_VR_LE];

/**
 * Storage transfer syntaxes: the gateway stores the bytes unchanged, so any
 * syntax whose encoding the archive's parser knows is fine — implicit/explicit
 * LE, explicit BE, deflate, RLE, the JPEG, JPEG-LS, JPEG 2000, HTJ2K, JPEG XL
 * families and MPEG/HEVC video (core/dicom/transfer-syntax.ts).
 */
export function isKnownStorageTransferSyntax(uid: string): boolean {
  return transferSyntaxEncoding(uid) !== undefined;
}

export type AbstractSyntaxKind = 'verification' | 'storage' | 'find' | 'move' | 'get' | 'commitment' | 'unknown';

export function abstractSyntaxKind(uid: string): AbstractSyntaxKind {
  if (uid === SopClass.Verification) return 'verification';
  if (isStorageSopClass(uid)) return 'storage';
  if (QUERY_RETRIEVE_FIND.has(uid)) return 'find';
  if (QUERY_RETRIEVE_MOVE.has(uid)) return 'move';
  if (QUERY_RETRIEVE_GET.has(uid)) return 'get';
  if (uid === SopClass.StorageCommitmentPushModel) return 'commitment';
  return 'unknown';
}
