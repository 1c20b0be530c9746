/**
 * DICOM JSON model (PS3.18 Annex F.2). The core's in-memory representation of
 * a data set's *attributes* is exactly this model, so what we index, match,
 * and return from QIDO / WADO metadata never needs another conversion step.
 *
 * Keys are 8 upper-case hex digits ("0020000D"). An element holds at most one
 * of Value, BulkDataURI, InlineBinary (F.2.2).
 */
export interface PersonNameValue {
  Alphabetic?: string;
  Ideographic?: string;
  Phonetic?: string;
}

export type DicomJsonValue = string | number | PersonNameValue | DicomJsonDataset | null;

export interface DicomJsonElement {
  vr: string;
  Value?: DicomJsonValue[];
  BulkDataURI?: string;
  InlineBinary?: string;
}

export type DicomJsonDataset = Record<string, DicomJsonElement>;

/** Tag key of the JSON model: 8 upper-case hex digits. */
export function tagKey(group: number, element: number): string {
  return ((group << 16) | element).toString(16).toUpperCase().padStart(8, '0');
}

/** First value of an element as a string, or undefined. PN yields the Alphabetic group. */
export function firstString(ds: DicomJsonDataset | undefined, key: string): string | undefined {
  const v = ds?.[key]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'object' && 'Alphabetic' in v) return (v as PersonNameValue).Alphabetic;
  return undefined;
}
