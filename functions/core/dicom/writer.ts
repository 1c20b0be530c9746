/**
 * DICOM Part 10 writer (PS3.10 §7): DICOM JSON (PS3.18 F.2) in, file bytes out.
 *
 * Self-contained on purpose: every element carries its VR in the JSON model, so
 * no dictionary is needed. Pure (Uint8Array / DataView / TextEncoder only) so the
 * core can use it, and tests and the data generator can build objects with it.
 *
 * What it does, and the choices it makes:
 * - 128-byte preamble (zeros unless given), "DICM", file meta group 0002 in
 *   Explicit VR Little Endian with a correct group length (PS3.10 §7.1).
 *   MediaStorageSOPClass/InstanceUID are copied from the data set's
 *   SOPClassUID/SOPInstanceUID. UIDs are NOT validated: the malformed-input
 *   fixtures need to write bad ones.
 * - Data set encoded per PS3.5 §7 in the chosen transfer syntax, elements
 *   sorted by tag at every nesting level. Group 0000/0002 elements and group
 *   length elements (gggg,0000) in the input are dropped: the file meta is
 *   built here, and retired group lengths would be wrong after re-encoding.
 * - Values padded to even length (PS3.5 §6.2): space for text VRs, NUL for UI
 *   and binary VRs.
 * - PN objects become "Alphabetic=Ideographic=Phonetic" (trailing empty groups
 *   dropped); numbers become DS (≤ 16 chars) / IS strings.
 * - Text is always encoded as UTF-8. When any string in the data set is not
 *   ASCII, SpecificCharacterSet (0008,0005) is set to "ISO_IR 192" at the top
 *   level (added if absent) and in any item that declares its own, since the
 *   bytes written are UTF-8 whatever the input claimed (PS3.5 §6.1.2.3).
 * - InlineBinary is decoded from base64. DICOM JSON binary is little endian
 *   (PS3.18 F.2.7), so for Explicit VR Big Endian OW/OF/OL/OD/OV values are
 *   byte-swapped by word size; OB/UN are not.
 * - Native pixel data given in `options.pixelData` is also taken as little
 *   endian and swapped the same way (OW only) for Big Endian.
 * - Encapsulated pixel data (PS3.5 A.4) is written for any transfer syntax
 *   that is not one of the native ones; the data set itself is then Explicit
 *   VR Little Endian, as every encapsulated syntax requires.
 * - Deflated Explicit VR LE (1.2.840.10008.1.2.1.99) needs `options.deflateRaw`
 *   (the core has no zlib); the data set is encoded explicit LE then deflated.
 */
import type { DicomJsonDataset, DicomJsonElement, DicomJsonValue, PersonNameValue } from './json-model';
import { swapBytesPerWord } from '../bytes';

/** Implementation Class UID of this archive's writer (under the project's synthetic root). */
export const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1234.0.1';
/** Implementation Version Name (SH, ≤ 16 chars). */
export const IMPLEMENTATION_VERSION_NAME = 'DWSLS_WRITER_0.1';

const TS_IMPLICIT_LE = '1.2.840.10008.1.2';
const TS_EXPLICIT_LE = '1.2.840.10008.1.2.1';
const TS_EXPLICIT_BE = '1.2.840.10008.1.2.2';
const TS_DEFLATED = '1.2.840.10008.1.2.1.99';

export type NativeTransferSyntaxUID = typeof TS_EXPLICIT_LE | typeof TS_IMPLICIT_LE | typeof TS_EXPLICIT_BE;

export type DicomWriteErrorCode =
  | 'INVALID_OPTIONS'
  | 'INVALID_TAG'
  | 'INVALID_VR'
  | 'INVALID_VALUE'
  | 'VALUE_TOO_LONG'
  | 'MISSING_SOP_UIDS'
  | 'UNRESOLVED_BULK_DATA';

export class DicomWriteError extends Error {
  readonly code: DicomWriteErrorCode;
  constructor(code: DicomWriteErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'DicomWriteError';
  }
}

export type EncapsulatedPixelData = {
  fragments: Uint8Array[];
  /**
   * Basic Offset Table (PS3.5 A.4): false/absent → empty BOT item;
   * true → one entry per fragment (one fragment per frame);
   * number[] → indexes of the fragments that start each frame.
   */
  offsetTable?: boolean | number[];
};

export interface WritePart10Options {
  /** Default Explicit VR Little Endian. Any non-native UID means encapsulated pixel data. */
  transferSyntaxUID?: NativeTransferSyntaxUID | (string & {});
  /** Replaces any (7FE0,0010) of the data set. Native bytes are little endian. */
  pixelData?: Uint8Array | EncapsulatedPixelData;
  implementationClassUID?: string;
  implementationVersionName?: string;
  sourceApplicationEntityTitle?: string;
  /** Exactly 128 bytes; default zeros. */
  preamble?: Uint8Array;
  /** Override the MediaStorage UIDs otherwise taken from (0008,0016)/(0008,0018). */
  mediaStorageSOPClassUID?: string;
  mediaStorageSOPInstanceUID?: string;
  /** Write sequences and items with undefined length + delimiters (default: defined lengths). */
  undefinedLengthSequences?: boolean;
  /** Resolves a BulkDataURI to its little-endian bytes; without it a BulkDataURI is an error. */
  resolveBulkData?: (uri: string, vr: string, tag: string) => Uint8Array;
  /** Raw deflate (RFC 1951), required for the Deflated Explicit VR LE transfer syntax. */
  deflateRaw?: (data: Uint8Array) => Uint8Array;
}

export interface WritePart10HeaderOptions extends Omit<WritePart10Options, 'pixelData' | 'deflateRaw'> {
  /** Byte length of the pixel data value the caller will append (even, < 2^32 - 1). */
  pixelDataLength: number;
  /** Default: OW when BitsAllocated > 8, else OB. Ignored for implicit VR. */
  pixelVR?: 'OW' | 'OB';
}

// ---------------------------------------------------------------------------
// Public API

/**
 * Encode a whole Part 10 file.
 * @throws DicomWriteError
 */
export function writePart10(dataset: DicomJsonDataset, options: WritePart10Options = {}): Uint8Array {
  const tsUID = options.transferSyntaxUID ?? TS_EXPLICIT_LE;
  const syntax = syntaxOf(tsUID);
  const pixel = options.pixelData;
  if (pixel && !(pixel instanceof Uint8Array)) {
    if (!syntax.encapsulated) {
      throw new DicomWriteError('INVALID_OPTIONS', `encapsulated pixel data needs an encapsulated transfer syntax, not ${tsUID}`);
    }
  } else if (pixel && syntax.encapsulated) {
    throw new DicomWriteError('INVALID_OPTIONS', `native pixel data cannot be written in transfer syntax ${tsUID}`);
  }
  if (syntax.deflated && !options.deflateRaw) {
    throw new DicomWriteError('INVALID_OPTIONS', 'deflated transfer syntax needs options.deflateRaw');
  }

  const ctx = makeContext(dataset, syntax, options);
  const entries = sortedEntries(ctx.root);
  const before = entries.filter(([tag]) => !pixel || tag < PIXEL_DATA_TAG);
  const after = pixel ? entries.filter(([tag]) => tag > PIXEL_DATA_TAG) : [];

  const head = new ByteSink(1 << 14);
  encodeEntries(head, before, ctx, 0);
  let pixelBytes: Uint8Array | undefined;
  if (pixel instanceof Uint8Array) {
    const vr = nativePixelVR(ctx.root, syntax);
    writeHeader(head, PIXEL_DATA_TAG, vr, evenLength(pixel.length), ctx);
    pixelBytes = syntax.le || vr !== 'OW' ? pixel : swapBytesPerWord(pixel, 2);
  } else if (pixel) {
    encodeEncapsulated(head, pixel);
  }
  const tail = new ByteSink(after.length ? 1024 : 16);
  encodeEntries(tail, after, ctx, 0);

  let body: Uint8Array;
  const bodyLength = head.pos + (pixelBytes ? evenLength(pixelBytes.length) : 0) + tail.pos;
  if (!pixelBytes && tail.pos === 0) {
    body = head.result();
  } else {
    body = new Uint8Array(bodyLength);
    body.set(head.result(), 0);
    if (pixelBytes) body.set(pixelBytes, head.pos);
    body.set(tail.result(), bodyLength - tail.pos);
  }
  if (syntax.deflated) {
    body = options.deflateRaw!(body);
  }

  const meta = encodeFileMeta(dataset, tsUID, options);
  const out = new Uint8Array(meta.length + body.length);
  out.set(meta, 0);
  out.set(body, meta.length);
  return out;
}

/**
 * Everything up to and including the Pixel Data element header (tag, VR,
 * length), so a caller can stream `pixelDataLength` bytes after it without
 * holding them in memory. The streamed bytes must already be in the transfer
 * syntax's byte order. Native transfer syntaxes only; data set elements after
 * (7FE0,0010) are an error.
 * @throws DicomWriteError
 */
export function writePart10Header(dataset: DicomJsonDataset, options: WritePart10HeaderOptions): Uint8Array {
  const tsUID = options.transferSyntaxUID ?? TS_EXPLICIT_LE;
  const syntax = syntaxOf(tsUID);
  if (syntax.encapsulated || syntax.deflated) {
    throw new DicomWriteError('INVALID_OPTIONS', `writePart10Header supports native transfer syntaxes only, not ${tsUID}`);
  }
  const len = options.pixelDataLength;
  if (!Number.isInteger(len) || len < 0 || len % 2 !== 0 || len >= 0xffffffff) {
    throw new DicomWriteError('INVALID_OPTIONS', `pixelDataLength must be an even integer below 2^32 - 1, got ${len}`);
  }
  const ctx = makeContext(dataset, syntax, options);
  const entries = sortedEntries(ctx.root);
  if (entries.some(([tag]) => tag > PIXEL_DATA_TAG)) {
    throw new DicomWriteError('INVALID_OPTIONS', 'data set has elements after Pixel Data; cannot stream');
  }
  const meta = encodeFileMeta(dataset, tsUID, options);
  const sink = new ByteSink(1 << 14);
  sink.bytes(meta);
  encodeEntries(sink, entries.filter(([tag]) => tag < PIXEL_DATA_TAG), ctx, 0);
  const vr = options.pixelVR ?? nativePixelVR(ctx.root, syntax);
  writeHeader(sink, PIXEL_DATA_TAG, vr, len, ctx);
  return sink.result().slice();
}

/**
 * Preamble + "DICM" + file meta group (PS3.10 §7.1), always Explicit VR LE.
 * Exported for fixtures that assemble unusual files by hand.
 */
export function encodeFileMeta(
  dataset: DicomJsonDataset,
  transferSyntaxUID: string,
  options: Pick<
    WritePart10Options,
    | 'preamble'
    | 'implementationClassUID'
    | 'implementationVersionName'
    | 'sourceApplicationEntityTitle'
    | 'mediaStorageSOPClassUID'
    | 'mediaStorageSOPInstanceUID'
  > = {},
): Uint8Array {
  const sopClass = options.mediaStorageSOPClassUID ?? stringValue(dataset['00080016']);
  const sopInstance = options.mediaStorageSOPInstanceUID ?? stringValue(dataset['00080018']);
  if (sopClass === undefined || sopInstance === undefined) {
    throw new DicomWriteError('MISSING_SOP_UIDS', 'data set needs SOPClassUID and SOPInstanceUID for the file meta');
  }
  const metaDs: DicomJsonDataset = {
    '00020001': { vr: 'OB', InlineBinary: 'AAE=' }, // version 00 01
    '00020002': { vr: 'UI', Value: [sopClass] },
    '00020003': { vr: 'UI', Value: [sopInstance] },
    '00020010': { vr: 'UI', Value: [transferSyntaxUID] },
    '00020012': { vr: 'UI', Value: [options.implementationClassUID ?? IMPLEMENTATION_CLASS_UID] },
    '00020013': { vr: 'SH', Value: [options.implementationVersionName ?? IMPLEMENTATION_VERSION_NAME] },
  };
  if (options.sourceApplicationEntityTitle !== undefined) {
    metaDs['00020016'] = { vr: 'AE', Value: [options.sourceApplicationEntityTitle] };
  }
  const ctx: Ctx = { explicit: true, le: true, undefinedLength: false, utf8: false, root: metaDs, resolveBulkData: undefined };
  const group = new ByteSink(512);
  encodeEntries(group, sortedEntries(metaDs, true), ctx, 0);

  const preamble = options.preamble ?? new Uint8Array(128);
  if (preamble.length !== 128) {
    throw new DicomWriteError('INVALID_OPTIONS', `preamble must be 128 bytes, got ${preamble.length}`);
  }
  const out = new ByteSink(128 + 4 + 12 + group.pos);
  out.bytes(preamble);
  out.bytes(new Uint8Array([0x44, 0x49, 0x43, 0x4d])); // "DICM"
  writeHeader(out, 0x00020000, 'UL', 4, ctx);
  out.u32(group.pos, true);
  out.bytes(group.result());
  return out.result().slice();
}

/**
 * Encode a data set (no preamble, no file meta) in a native transfer syntax.
 * Exported for fixtures that splice raw elements between encoded ones.
 */
export function encodeDataset(
  dataset: DicomJsonDataset,
  options: Pick<WritePart10Options, 'transferSyntaxUID' | 'undefinedLengthSequences' | 'resolveBulkData'> = {},
): Uint8Array {
  const syntax = syntaxOf(options.transferSyntaxUID ?? TS_EXPLICIT_LE);
  const ctx = makeContext(dataset, syntax, options);
  const sink = new ByteSink(1 << 12);
  encodeEntries(sink, sortedEntries(ctx.root), ctx, 0);
  return sink.result().slice();
}

/**
 * Format a number as a Decimal String value (PS3.5 §6.2: at most 16 bytes).
 * @throws DicomWriteError for NaN / Infinity
 */
export function formatDS(n: number): string {
  if (!Number.isFinite(n)) throw new DicomWriteError('INVALID_VALUE', `DS cannot encode ${n}`);
  let s = String(n);
  if (s.length <= 16) return s;
  for (let p = 15; p >= 1; p--) {
    s = n.toPrecision(p);
    if (s.includes('e')) s = s.replace(/\.?0+e/, 'e'); // "1.200e+25" → "1.2e+25"
    else if (s.includes('.')) s = s.replace(/\.?0+$/, '');
    if (s.length <= 16) return s;
  }
  throw new DicomWriteError('INVALID_VALUE', `DS cannot encode ${n} in 16 characters`);
}

// ---------------------------------------------------------------------------
// Internals

const PIXEL_DATA_TAG = 0x7fe00010;
const ITEM = 0xfffee000;
const ITEM_DELIM = 0xfffee00d;
const SEQ_DELIM = 0xfffee0dd;
const UNDEFINED = 0xffffffff;

/** VRs with a 2-byte reserved field and 4-byte length in explicit VR (PS3.5 Table 7.1-1). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const TEXT_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DT', 'LO', 'LT', 'SH', 'ST', 'TM', 'UC', 'UR', 'UT']);
const BINARY_NUMBER_SIZE: Record<string, number> = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, SV: 8, UV: 8 };
/** Bulk VRs and the word size used to swap them for big endian. */
const BULK_WORD_SIZE: Record<string, number> = { OB: 1, UN: 1, OW: 2, OF: 4, OL: 4, OD: 8, OV: 8 };
const ALL_VRS = new Set([
  ...TEXT_VRS,
  ...Object.keys(BINARY_NUMBER_SIZE),
  ...Object.keys(BULK_WORD_SIZE),
  'AT',
  'DS',
  'IS',
  'PN',
  'SQ',
  'UI',
]);

interface Syntax {
  explicit: boolean;
  le: boolean;
  encapsulated: boolean;
  deflated: boolean;
}

function syntaxOf(uid: string): Syntax {
  switch (uid) {
    case TS_IMPLICIT_LE:
      return { explicit: false, le: true, encapsulated: false, deflated: false };
    case TS_EXPLICIT_LE:
      return { explicit: true, le: true, encapsulated: false, deflated: false };
    case TS_EXPLICIT_BE:
      return { explicit: true, le: false, encapsulated: false, deflated: false };
    case TS_DEFLATED:
      return { explicit: true, le: true, encapsulated: false, deflated: true };
    default:
      if (!uid) throw new DicomWriteError('INVALID_OPTIONS', 'empty transfer syntax UID');
      return { explicit: true, le: true, encapsulated: true, deflated: false };
  }
}

interface Ctx {
  explicit: boolean;
  le: boolean;
  undefinedLength: boolean;
  /** Text has non-ASCII characters: SpecificCharacterSet becomes ISO_IR 192. */
  utf8: boolean;
  root: DicomJsonDataset;
  resolveBulkData: WritePart10Options['resolveBulkData'];
}

function makeContext(
  dataset: DicomJsonDataset,
  syntax: Syntax,
  options: Pick<WritePart10Options, 'undefinedLengthSequences' | 'resolveBulkData'>,
): Ctx {
  const utf8 = hasNonAscii(dataset, 0);
  const root = utf8 ? { ...dataset, '00080005': { vr: 'CS', Value: ['ISO_IR 192'] } } : dataset;
  return {
    explicit: syntax.explicit,
    le: syntax.le,
    undefinedLength: options.undefinedLengthSequences ?? false,
    utf8,
    root,
    resolveBulkData: options.resolveBulkData,
  };
}

function hasNonAscii(ds: DicomJsonDataset, depth: number): boolean {
  if (depth > 1000) throw new DicomWriteError('INVALID_VALUE', 'sequence nesting too deep');
  for (const el of Object.values(ds)) {
    if (!el || !el.Value) continue;
    for (const v of el.Value) {
      if (typeof v === 'string') {
        if (!isAscii(v)) return true;
      } else if (v && typeof v === 'object') {
        if (el.vr === 'SQ') {
          if (hasNonAscii(v as DicomJsonDataset, depth + 1)) return true;
        } else {
          const pn = v as PersonNameValue;
          for (const s of [pn.Alphabetic, pn.Ideographic, pn.Phonetic]) if (s && !isAscii(s)) return true;
        }
      }
    }
  }
  return false;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function parseTag(key: string): number {
  if (!/^[0-9A-Fa-f]{8}$/.test(key)) throw new DicomWriteError('INVALID_TAG', `invalid tag key "${key}"`);
  return parseInt(key, 16) >>> 0;
}

/** Sorted [tag, element] pairs, without group 0000/0002 and group-length elements. */
function sortedEntries(ds: DicomJsonDataset, keepMeta = false): Array<[number, DicomJsonElement]> {
  const out: Array<[number, DicomJsonElement]> = [];
  for (const [key, el] of Object.entries(ds)) {
    const tag = parseTag(key);
    const group = tag >>> 16;
    if ((tag & 0xffff) === 0) continue;
    if (!keepMeta && (group === 0x0000 || group === 0x0002)) continue;
    out.push([tag, el]);
  }
  out.sort((a, b) => a[0] - b[0]);
  return out;
}

function encodeEntries(sink: ByteSink, entries: Array<[number, DicomJsonElement]>, ctx: Ctx, depth: number): void {
  for (const [tag, el] of entries) encodeElement(sink, tag, el, ctx, depth);
}

function encodeElement(sink: ByteSink, tag: number, el: DicomJsonElement, ctx: Ctx, depth: number): void {
  const vr = el?.vr;
  if (typeof vr !== 'string' || !ALL_VRS.has(vr)) {
    throw new DicomWriteError('INVALID_VR', `invalid VR "${String(vr)}" for ${hex8(tag)}`);
  }
  if (vr === 'SQ') {
    encodeSequence(sink, tag, el, ctx, depth);
    return;
  }
  if (ctx.utf8 && tag === 0x00080005) el = { vr: 'CS', Value: ['ISO_IR 192'] };
  const value = elementValue(tag, el, ctx);
  const len = evenLength(value.length);
  writeHeader(sink, tag, vr, len, ctx);
  sink.bytes(value);
  if (len !== value.length) sink.u8(vr === 'UI' || BULK_WORD_SIZE[vr] || BINARY_NUMBER_SIZE[vr] ? 0x00 : 0x20);
}

function encodeSequence(sink: ByteSink, tag: number, el: DicomJsonElement, ctx: Ctx, depth: number): void {
  if (depth > 1000) throw new DicomWriteError('INVALID_VALUE', 'sequence nesting too deep');
  const items = el.Value ?? [];
  writeHeader(sink, tag, 'SQ', ctx.undefinedLength ? UNDEFINED : 0, ctx);
  const seqLenAt = sink.pos - 4;
  const seqStart = sink.pos;
  for (const item of items) {
    if (item !== null && (typeof item !== 'object' || 'Alphabetic' in item)) {
      throw new DicomWriteError('INVALID_VALUE', `SQ ${hex8(tag)} item is not a data set`);
    }
    writeTag(sink, ITEM, ctx.le);
    sink.u32(ctx.undefinedLength ? UNDEFINED : 0, ctx.le);
    const itemLenAt = sink.pos - 4;
    const itemStart = sink.pos;
    encodeEntries(sink, sortedEntries((item ?? {}) as DicomJsonDataset), ctx, depth + 1);
    if (ctx.undefinedLength) {
      writeTag(sink, ITEM_DELIM, ctx.le);
      sink.u32(0, ctx.le);
    } else {
      sink.patchU32(itemLenAt, sink.pos - itemStart, ctx.le);
    }
  }
  if (ctx.undefinedLength) {
    writeTag(sink, SEQ_DELIM, ctx.le);
    sink.u32(0, ctx.le);
  } else {
    sink.patchU32(seqLenAt, sink.pos - seqStart, ctx.le);
  }
}

function encodeEncapsulated(sink: ByteSink, pixel: EncapsulatedPixelData): void {
  // PS3.5 A.4: OB, undefined length, Basic Offset Table item, one item per fragment, delimiter.
  // Encapsulated syntaxes are always explicit VR little endian.
  const le = true;
  writeTag(sink, PIXEL_DATA_TAG, le);
  sink.ascii('OB');
  sink.u16(0, le);
  sink.u32(UNDEFINED, le);
  const itemOffsets: number[] = [];
  let off = 0;
  for (const f of pixel.fragments) {
    itemOffsets.push(off);
    off += 8 + evenLength(f.length);
  }
  let starts: number[] = [];
  if (pixel.offsetTable === true) starts = itemOffsets;
  else if (Array.isArray(pixel.offsetTable)) {
    starts = pixel.offsetTable.map((i) => {
      const o = itemOffsets[i];
      if (o === undefined) throw new DicomWriteError('INVALID_OPTIONS', `offsetTable fragment index ${i} out of range`);
      return o;
    });
  }
  writeTag(sink, ITEM, le);
  sink.u32(starts.length * 4, le);
  for (const s of starts) sink.u32(s, le);
  for (const f of pixel.fragments) {
    writeTag(sink, ITEM, le);
    sink.u32(evenLength(f.length), le);
    sink.bytes(f);
    if (f.length % 2) sink.u8(0);
  }
  writeTag(sink, SEQ_DELIM, le);
  sink.u32(0, le);
}

function writeTag(sink: ByteSink, tag: number, le: boolean): void {
  sink.u16(tag >>> 16, le);
  sink.u16(tag & 0xffff, le);
}

function writeHeader(sink: ByteSink, tag: number, vr: string, length: number, ctx: Pick<Ctx, 'explicit' | 'le'>): void {
  writeTag(sink, tag, ctx.le);
  if (!ctx.explicit) {
    sink.u32(length, ctx.le);
    return;
  }
  sink.ascii(vr);
  if (LONG_VRS.has(vr)) {
    sink.u16(0, ctx.le);
    sink.u32(length, ctx.le);
  } else {
    if (length > 0xffff) {
      throw new DicomWriteError('VALUE_TOO_LONG', `${hex8(tag)} ${vr} value of ${length} bytes exceeds the 16-bit length field`);
    }
    sink.u16(length, ctx.le);
  }
}

const textEncoder = new TextEncoder();

function elementValue(tag: number, el: DicomJsonElement, ctx: Ctx): Uint8Array {
  const vr = el.vr;
  const wordSize = BULK_WORD_SIZE[vr];
  if (el.InlineBinary !== undefined || el.BulkDataURI !== undefined) {
    let bytes: Uint8Array;
    if (el.InlineBinary !== undefined) bytes = decodeBase64(el.InlineBinary);
    else if (ctx.resolveBulkData) bytes = ctx.resolveBulkData(el.BulkDataURI!, vr, hex8(tag));
    else throw new DicomWriteError('UNRESOLVED_BULK_DATA', `${hex8(tag)} has a BulkDataURI and no resolveBulkData was given`);
    const size = wordSize ?? BINARY_NUMBER_SIZE[vr] ?? (vr === 'AT' ? 2 : 1);
    return !ctx.le && size > 1 ? swapBytesPerWord(bytes, size) : bytes;
  }
  const values = el.Value ?? [];
  if (wordSize !== undefined) {
    if (values.length) throw new DicomWriteError('INVALID_VALUE', `${hex8(tag)} ${vr} needs InlineBinary, not Value`);
    return new Uint8Array(0);
  }
  const size = BINARY_NUMBER_SIZE[vr];
  if (size !== undefined) return binaryNumbers(tag, vr, size, values, ctx.le);
  if (vr === 'AT') {
    const out = new Uint8Array(values.length * 4);
    const dv = new DataView(out.buffer);
    values.forEach((v, i) => {
      const t = typeof v === 'number' ? v >>> 0 : typeof v === 'string' ? parseTag(v) : NaN;
      if (Number.isNaN(t)) throw new DicomWriteError('INVALID_VALUE', `${hex8(tag)} AT value is not a tag`);
      dv.setUint16(i * 4, t >>> 16, ctx.le);
      dv.setUint16(i * 4 + 2, t & 0xffff, ctx.le);
    });
    return out;
  }
  const strings = values.map((v) => stringOf(tag, vr, v));
  return textEncoder.encode(strings.join('\\'));
}

function stringOf(tag: number, vr: string, v: DicomJsonValue): string {
  if (v === null || v === undefined) return '';
  if (vr === 'PN') {
    if (typeof v === 'string') return v;
    if (typeof v === 'object') {
      const pn = v as PersonNameValue;
      const groups = [pn.Alphabetic ?? '', pn.Ideographic ?? '', pn.Phonetic ?? ''];
      while (groups.length && groups[groups.length - 1] === '') groups.pop();
      return groups.join('=');
    }
  }
  if (typeof v === 'number') {
    if (vr === 'DS') return formatDS(v);
    if (vr === 'IS') {
      if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
        throw new DicomWriteError('INVALID_VALUE', `${hex8(tag)} IS value ${v} is not a 32-bit integer`);
      }
      return String(v);
    }
    return String(v);
  }
  if (typeof v === 'string') return v;
  throw new DicomWriteError('INVALID_VALUE', `${hex8(tag)} ${vr} value is not a string`);
}

function binaryNumbers(tag: number, vr: string, size: number, values: DicomJsonValue[], le: boolean): Uint8Array {
  const out = new Uint8Array(values.length * size);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => {
    const at = i * size;
    if (vr === 'SV' || vr === 'UV') {
      if (typeof v !== 'number' && typeof v !== 'string') throw badNumber(tag, vr, v);
      let big: bigint;
      try {
        big = BigInt(v);
      } catch (cause) {
        throw new DicomWriteError('INVALID_VALUE', `${hex8(tag)} ${vr} value is not an integer`, { cause });
      }
      if (vr === 'SV') dv.setBigInt64(at, big, le);
      else dv.setBigUint64(at, big, le);
      return;
    }
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || Number.isNaN(n)) throw badNumber(tag, vr, v);
    switch (vr) {
      case 'US':
        dv.setUint16(at, n, le);
        break;
      case 'SS':
        dv.setInt16(at, n, le);
        break;
      case 'UL':
        dv.setUint32(at, n, le);
        break;
      case 'SL':
        dv.setInt32(at, n, le);
        break;
      case 'FL':
        dv.setFloat32(at, n, le);
        break;
      case 'FD':
        dv.setFloat64(at, n, le);
        break;
    }
  });
  return out;
}

function badNumber(tag: number, vr: string, v: unknown): DicomWriteError {
  return new DicomWriteError('INVALID_VALUE', `${hex8(tag)} ${vr} value ${JSON.stringify(v)} is not a number`);
}

function nativePixelVR(ds: DicomJsonDataset, syntax: Syntax): 'OW' | 'OB' {
  if (!syntax.explicit) return 'OW'; // implicit VR: PS3.5 A.1 says OW
  const bits = ds['00280100']?.Value?.[0];
  return typeof bits === 'number' && bits <= 8 ? 'OB' : 'OW';
}

function stringValue(el: DicomJsonElement | undefined): string | undefined {
  const v = el?.Value?.[0];
  return typeof v === 'string' ? v : undefined;
}

function evenLength(n: number): number {
  return n + (n & 1);
}

function hex8(tag: number): string {
  return `(${(tag >>> 16).toString(16).toUpperCase().padStart(4, '0')},${(tag & 0xffff).toString(16).toUpperCase().padStart(4, '0')})`;
}

const B64 = (() => {
  const t = new Int16Array(256).fill(-1);
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = i;
  t['-'.charCodeAt(0)] = 62; // tolerate base64url
  t['_'.charCodeAt(0)] = 63;
  return t;
})();

/** Decode base64 (RFC 4648; whitespace ignored). */
export function decodeBase64(s: string): Uint8Array {
  const out = new Uint8Array(Math.floor((s.length * 3) / 4) + 3);
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x3d) break; // '='
    const v = c < 256 ? B64[c] : -1;
    if (v < 0) {
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
      throw new DicomWriteError('INVALID_VALUE', 'InlineBinary is not valid base64');
    }
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out.slice(0, n);
}

/** Growable byte buffer with little/big endian writers and back-patching. */
class ByteSink {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;

  constructor(initial: number) {
    this.buf = new Uint8Array(Math.max(16, initial));
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u16(v: number, le: boolean): void {
    this.ensure(2);
    this.view.setUint16(this.pos, v, le);
    this.pos += 2;
  }

  u32(v: number, le: boolean): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v >>> 0, le);
    this.pos += 4;
  }

  patchU32(at: number, v: number, le: boolean): void {
    this.view.setUint32(at, v >>> 0, le);
  }

  ascii(s: string): void {
    this.ensure(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}
