/**
 * DIMSE data sets (identifiers, action/event information) ⇄ DICOM JSON, with
 * the archive core's parser and writer. A DIMSE data set has no preamble and
 * no file meta (PS3.7 §6.3.1), so decoding puts a file meta in front and lets
 * the Part 10 reader do the rest (same limits, charsets, VR rules as STOW).
 */
import { DicomParseError } from '../../../functions/core/dicom/part10-types';
import { parsePart10 } from '../../../functions/core/dicom/part10';
import { encodeDataset, encodeFileMeta } from '../../../functions/core/dicom/writer';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';

export class DatasetError extends Error {
  readonly code = 'INVALID_DATASET';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatasetError';
  }
}

/** Identifiers are small; nothing in them should be bulk data. */
const LIMITS = { maxElements: 20_000, maxDepth: 8, bulkDataThreshold: 1 << 20 };

export function decodeDimseDataset(bytes: Uint8Array, transferSyntaxUID: string): DicomJsonDataset {
  const meta = encodeFileMeta({}, transferSyntaxUID, { mediaStorageSOPClassUID: '1.2', mediaStorageSOPInstanceUID: '1.2' });
  const whole = new Uint8Array(meta.length + bytes.length);
  whole.set(meta, 0);
  whole.set(bytes, meta.length);
  try {
    return parsePart10(whole, { stopAtPixelData: false, limits: LIMITS }).dataset;
  } catch (e) {
    if (e instanceof DicomParseError) throw new DatasetError(`unreadable data set (${e.code}): ${e.message}`, { cause: e });
    throw e;
  }
}

export function encodeDimseDataset(dataset: DicomJsonDataset, transferSyntaxUID: string): Uint8Array {
  return encodeDataset(dataset, { transferSyntaxUID });
}
