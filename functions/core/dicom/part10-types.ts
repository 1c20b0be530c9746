/**
 * What the Part 10 reader (PS3.10 §7) tells the rest of the archive about one
 * stored object. Offsets are absolute byte offsets into the *original* file,
 * so WADO can serve frames and bulk data with ranged reads of the stored
 * bytes and never re-parse (except for deflated data sets, see `deflated`).
 */
import type { DicomJsonDataset } from './json-model';

export interface ByteRange {
  /** absolute offset in the stored file */
  offset: number;
  length: number;
}

export interface PixelDataLayout {
  /** Tag of the pixel data element (7FE00010, or float/double pixel data). */
  tag: string;
  vr: string;
  /** Offset of the element's value (after tag/VR/length) in the file. */
  valueOffset: number;
  /** Value length; undefined for encapsulated (undefined length) pixel data. */
  valueLength?: number;
  encapsulated: boolean;
  /**
   * One entry per frame. Native: one range per frame (frames may not start on a
   * byte boundary when BitsAllocated=1: then `bitOffset` is set). Encapsulated:
   * the fragments of that frame, in order (PS3.5 A.4), found from the Basic or
   * Extended Offset Table, or one fragment per frame, or all fragments for a
   * single-frame image.
   */
  frames: ByteRange[][];
  /** BitsAllocated=1 native frames: bit offset of each frame within its first byte. */
  bitOffsets?: number[];
  /**
   * Encapsulated: every fragment after the Basic Offset Table, in order (item values only).
   * Lets a caller serve the whole stream (video) even when frames cannot be told apart.
   */
  fragments?: ByteRange[];
  /**
   * True when the frames cannot be located (e.g. NumberOfFrames disagrees with the
   * offset tables and fragments, video syntaxes, missing Rows/Columns): `frames` is then empty.
   */
  framesUnknown?: boolean;
}

export interface BulkDataRef extends ByteRange {
  /** Dotted path of JSON keys to the element, e.g. "00540016.0.00181072" for nested ones. */
  path: string;
  vr: string;
}

export interface ParsedPart10 {
  /** PS3.10 file meta (group 0002) as DICOM JSON. */
  fileMeta: DicomJsonDataset;
  transferSyntaxUID: string;
  /** The data set without pixel data/bulk values, text decoded to UTF-8. */
  dataset: DicomJsonDataset;
  /** Byte offset where the data set (after the file meta) starts. */
  datasetOffset: number;
  /** Present when the object has pixel data. */
  pixelData?: PixelDataLayout;
  /** Large binary values left out of `dataset` (BulkDataURI targets). */
  bulkData: BulkDataRef[];
  /**
   * True for Deflated Explicit VR LE: offsets refer to the *inflated* data set bytes, counted
   * as if the inflated data set followed the file meta (i.e. offsets into
   * `original[0, datasetOffset) + inflate(original[datasetOffset…])`, see `inflatePart10`).
   */
  deflated: boolean;
  /** True when parsing stopped at pixel data (header-only fast path). */
  headerOnly: boolean;
}

/** Limits on untrusted input; every one is enforced before allocating. */
export interface ParseLimits {
  /** max elements in the whole data set (all nesting levels) */
  maxElements: number;
  /** max sequence nesting depth */
  maxDepth: number;
  /** max inflated size / deflated size */
  maxInflateRatio: number;
  /** max inflated bytes in absolute terms */
  maxInflatedBytes: number;
  /** values longer than this (binary VRs) become bulk data refs instead of inline values */
  bulkDataThreshold: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = {
  maxElements: 200_000,
  maxDepth: 16,
  maxInflateRatio: 200,
  maxInflatedBytes: 2 * 1024 * 1024 * 1024,
  bulkDataThreshold: 1024,
};

/** Stable error codes of the reader; the STOW use case maps them to PS3.18 failure reasons. */
export type DicomParseErrorCode =
  | 'NOT_PART10' // no preamble + "DICM", or no usable file meta
  | 'MISSING_TRANSFER_SYNTAX'
  | 'UNSUPPORTED_TRANSFER_SYNTAX'
  | 'TRUNCATED' // declared length runs past the end of the bytes
  | 'MALFORMED' // structure that cannot be parsed (bad VR, bad delimiters…)
  | 'LIMIT_EXCEEDED' // element count, depth, inflate ratio/size
  | 'NEED_MORE_DATA'; // incremental parse: call again with more bytes

export class DicomParseError extends Error {
  readonly code: DicomParseErrorCode;
  constructor(code: DicomParseErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'DicomParseError';
  }
}
