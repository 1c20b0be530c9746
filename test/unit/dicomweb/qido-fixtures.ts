/** Builders for DICOM JSON test records, by PS3.6 keyword (shared by the qido*.test.ts files). */
import type { DicomJsonDataset, DicomJsonElement, DicomJsonValue } from '../../../functions/core/dicom/json-model';
import { resolveAttribute } from '../../../functions/core/dicomweb/qido-attributes';

type Simple = string | number | { Alphabetic?: string; Ideographic?: string; Phonetic?: string } | DicomJsonDataset;

/** `{ PatientName: 'Doe^John', ModalitiesInStudy: ['CT', 'PT'], … }` → DICOM JSON. PN strings are Alphabetic. */
export function ds(values: Record<string, Simple | Simple[] | null>): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  for (const [keyword, value] of Object.entries(values)) {
    const attribute = resolveAttribute(keyword);
    if (!attribute) throw new Error(`fixture: unknown keyword ${keyword}`);
    const element: DicomJsonElement = { vr: attribute.vr };
    if (value !== null) {
      const list = Array.isArray(value) ? value : [value];
      element.Value = list.map((v): DicomJsonValue => (attribute.vr === 'PN' && typeof v === 'string' ? { Alphabetic: v } : (v as DicomJsonValue)));
    }
    out[attribute.tag] = element;
  }
  return out;
}
