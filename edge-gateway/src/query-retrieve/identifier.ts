/**
 * Reading C-FIND / C-MOVE / C-GET identifiers (PS3.4 C.4.1.1.3, C.4.2.1.4,
 * C.4.3.1.3) in their DICOM JSON form: the Query/Retrieve level, the unique
 * keys each level and information model requires (PS3.4 C.4.1.2.2.1
 * hierarchical search, Tables C.6-1…C.6-10), and a key's value as the
 * matching string QIDO expects (PS3.18 §8.3.4.1 uses the PS3.4 C.2.2.2
 * syntax: `*` `?`, `\` lists, `a-b` ranges).
 */
import type { DicomJsonDataset, DicomJsonElement, PersonNameValue } from '../../../functions/core/dicom/json-model';
import { isValidUID } from '../../../functions/core/dicom/uid';
import { lookupTagKey } from '../../../functions/core/dicom/dictionary';
import { QueryRetrieveError } from './errors';

/** Patient Root or Study Root Query/Retrieve Information Model (PS3.4 C.6.1, C.6.2). */
export type InformationModel = 'PATIENT' | 'STUDY';
export type QueryLevel = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';

export const QR_TAGS = {
  QueryRetrieveLevel: '00080052',
  SpecificCharacterSet: '00080005',
  RetrieveAETitle: '00080054',
  QueryRetrieveView: '00080053',
  InstanceAvailability: '00080056',
  PatientID: '00100020',
  IssuerOfPatientID: '00100021',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018',
  SOPClassUID: '00080016',
} as const;

export const LEVELS: readonly QueryLevel[] = ['PATIENT', 'STUDY', 'SERIES', 'IMAGE'];

/** The unique key of each level (PS3.4 C.6.1.1.2–5 / C.6.2.1.2–4). */
export const UNIQUE_KEY: Record<QueryLevel, string> = {
  PATIENT: QR_TAGS.PatientID,
  STUDY: QR_TAGS.StudyInstanceUID,
  SERIES: QR_TAGS.SeriesInstanceUID,
  IMAGE: QR_TAGS.SOPInstanceUID,
};

/** The Query/Retrieve level of an identifier; INVALID_IDENTIFIER / UNSUPPORTED_LEVEL when absent or not in the model. */
export function queryLevelOf(model: InformationModel, identifier: DicomJsonDataset): QueryLevel {
  const raw = identifier[QR_TAGS.QueryRetrieveLevel]?.Value?.[0];
  const level = typeof raw === 'string' ? raw.trim().toUpperCase() : '';
  if (level === '') throw new QueryRetrieveError('INVALID_IDENTIFIER', 'the identifier has no Query/Retrieve Level (0008,0052)');
  if (!(LEVELS as readonly string[]).includes(level)) throw new QueryRetrieveError('UNSUPPORTED_LEVEL', 'Query/Retrieve Level must be PATIENT, STUDY, SERIES or IMAGE');
  // PS3.4 C.6.2: the Study Root model has no patient level.
  if (model === 'STUDY' && level === 'PATIENT') throw new QueryRetrieveError('UNSUPPORTED_LEVEL', 'the Study Root information model has no PATIENT level');
  return level as QueryLevel;
}

/** Levels strictly above `level` whose unique keys the identifier must give (hierarchical: PS3.4 C.4.1.2.2.1, C.4.2.2.1). */
export function levelsAbove(model: InformationModel, level: QueryLevel): QueryLevel[] {
  const start = model === 'PATIENT' ? 0 : 1;
  return LEVELS.slice(start, LEVELS.indexOf(level));
}

/** Non-empty string values of an element (PN as "A=I=P"); numbers as text. */
export function stringValues(element: DicomJsonElement | undefined): string[] {
  const out: string[] = [];
  for (const v of element?.Value ?? []) {
    if (v === null || v === undefined) continue;
    if (typeof v === 'string') {
      const t = v.trim();
      if (t !== '') out.push(t);
    } else if (typeof v === 'number') out.push(String(v));
    else if (typeof v === 'object' && isPersonName(v)) {
      const text = personNameString(v);
      if (text !== '') out.push(text);
    }
  }
  return out;
}

export function isPersonName(v: object): v is PersonNameValue {
  return 'Alphabetic' in v || 'Ideographic' in v || 'Phonetic' in v;
}

/** PS3.5 §6.2.1.1: component groups joined by "=", trailing empty groups dropped. */
export function personNameString(pn: PersonNameValue): string {
  const groups = [pn.Alphabetic ?? '', pn.Ideographic ?? '', pn.Phonetic ?? ''];
  while (groups.length > 0 && groups[groups.length - 1] === '') groups.pop();
  return groups.join('=');
}

/**
 * The matching value of a key, or undefined for Universal Matching (no
 * value, or only `*`: PS3.4 C.2.2.2.3/C.2.2.2.4). Several values are a list
 * (`\`): UID List Matching (C.2.2.2.2), any-of for other VRs.
 */
export function matchingValue(element: DicomJsonElement | undefined): string | undefined {
  const values = stringValues(element);
  if (values.length === 0) return undefined;
  if (values.some((v) => /^\*+$/.test(v))) return undefined;
  return values.join('\\');
}

/**
 * The single value of a unique key above the query level (hierarchical
 * search and retrieve: exactly one value, no wild card, a valid UID).
 */
export function requireSingleUniqueKey(identifier: DicomJsonDataset, level: QueryLevel, what: string): string {
  const tag = UNIQUE_KEY[level];
  const keyword = lookupTagKey(tag)?.keyword ?? tag;
  const values = stringValues(identifier[tag]);
  if (values.length === 0) throw new QueryRetrieveError('INVALID_IDENTIFIER', `${what}: ${keyword} is required at this level and must have a value`);
  if (values.length > 1) throw new QueryRetrieveError('INVALID_IDENTIFIER', `${what}: ${keyword} must be a single value above the query level`);
  const v = values[0]!;
  if (v.includes('*') || v.includes('?')) throw new QueryRetrieveError('INVALID_IDENTIFIER', `${what}: ${keyword} must not contain wild cards`);
  if (level !== 'PATIENT' && !isValidUID(v)) throw new QueryRetrieveError('INVALID_IDENTIFIER', `${what}: ${keyword} is not a valid UID`);
  return v;
}

/** UIDs of a list key at the retrieve level (PS3.4 C.4.2.2.1: single value or UID list; no wild cards). */
export function requireUidList(identifier: DicomJsonDataset, level: Exclude<QueryLevel, 'PATIENT'>, what: string): string[] {
  const tag = UNIQUE_KEY[level];
  const keyword = lookupTagKey(tag)?.keyword ?? tag;
  const values = stringValues(identifier[tag]).flatMap((v) => v.split('\\')).map((v) => v.trim()).filter(Boolean);
  if (values.length === 0) throw new QueryRetrieveError('INVALID_IDENTIFIER', `${what}: ${keyword} is required at this level`);
  for (const v of values) {
    if (!isValidUID(v)) throw new QueryRetrieveError('INVALID_IDENTIFIER', `${what}: ${keyword} holds a value that is not a valid UID (wild cards are not allowed)`);
  }
  return [...new Set(values)];
}
