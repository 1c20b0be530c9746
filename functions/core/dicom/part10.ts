/**
 * DICOM Part 10 reader (PS3.10 §7): preamble + "DICM" + file meta (group 0002, Explicit VR
 * LE), then the data set in its transfer syntax (PS3.5 §7, §10, Annex A), out as DICOM JSON
 * (PS3.18 F.2) plus byte ranges for pixel data and bulk data.
 *
 * Untrusted input: every declared length is checked against the bytes that are really
 * there before anything is read or allocated; element count, nesting depth and inflated
 * size are bounded (ParseLimits). Works on offsets over one DataView: values are decoded
 * only to build the JSON, binary values are never copied except to base64 small ones.
 *
 * Decisions (in doubt strict, per PS3.5):
 * - No preamble/"DICM" (no_meta.dcm, ExplVR_*NoMeta.dcm) → NOT_PART10: STOW requires Part 10.
 * - Explicit VR whose two VR bytes are not upper-case letters → MALFORMED (it is not DICOM
 *   we can decode safely). Two letters that are not a VR we know → read as UN with the
 *   32-bit length form, which PS3.5 §6.2 reserves for VRs defined in the future.
 *   (badVR.dcm has no bad VR code; it has an IS value "1A", kept as a string per F.2.3.)
 * - UN with undefined length is a sequence encoded as Implicit VR LE (PS3.5 §6.2.2) → "SQ".
 * - Stray item delimiters (FFFE,E00D) outside an undefined-length item are skipped.
 * - Group length elements (gggg,0000) are left out of `dataset` (kept in `fileMeta`).
 */
import { inflateRawSync, inflateSync } from 'node:zlib';
import { bytesToBase64 } from './base64';
import { decodeLatin1, decodeText, parseSpecificCharacterSet, DEFAULT_CHARACTER_SET, type CharacterSet, type DelimiterMode } from './charset';
import { implicitVR, lookupTag } from './dictionary';
import type { DicomJsonDataset, DicomJsonElement, DicomJsonValue, PersonNameValue } from './json-model';
import {
  DEFAULT_PARSE_LIMITS,
  DicomParseError,
  type BulkDataRef,
  type ParsedPart10,
  type ParseLimits,
  type PixelDataLayout,
} from './part10-types';
import { attachScanState, nativeFrames, PixelDataScanner } from './pixel-data';
import { Tag } from './tags';
import { transferSyntaxEncoding, type TransferSyntaxEncoding } from './transfer-syntax';
import { swapBytesPerWord } from '../bytes';

export { PixelDataScanner } from './pixel-data';

export interface ParsePart10Options {
  limits?: Partial<ParseLimits>;
  /** Stop at the top-level pixel data (header-only fast path). Default true. Ignored for deflated objects. */
  stopAtPixelData?: boolean;
  /**
   * True (default) when `bytes` is the whole object. False for a prefix of a stream: running out
   * of bytes then throws 'NEED_MORE_DATA' instead of 'TRUNCATED', and the pixel data layout is
   * provisional (encapsulated frames empty) until a PixelDataScanner has seen the rest.
   */
  final?: boolean;
}

const UNDEFINED_LENGTH = 0xffffffff;

/** VRs with the 32-bit length form in Explicit VR (PS3.5 §7.1.2, Table 7.1-1). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const KNOWN_VRS = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV', 'OW',
  'PN', 'SH', 'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);
/** Text VRs whose values use the Specific Character Set (PS3.5 §6.1.2.3). */
const CHARSET_VRS = new Set(['SH', 'LO', 'ST', 'LT', 'UC', 'UT', 'PN']);
/** Single-valued text: backslash is a character, not a delimiter (PS3.5 Table 6.2-1). */
const SINGLE_TEXT_VRS = new Set(['LT', 'ST', 'UT', 'UR']);
/** Leading spaces are insignificant too (PS3.5 Table 6.2-1). */
const TRIM_LEADING_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'SH', 'TM', 'UI']);
const BINARY_WORD: Record<string, number> = { OB: 1, UN: 1, OW: 2, OF: 4, OL: 4, OD: 8, OV: 8 };
const PIXEL_TAGS = new Set([0x7fe00010, 0x7fe00008, 0x7fe00009]);
/** LUT descriptors: first and third values always US whatever PixelRepresentation (PS3.3 C.11.1.1.1). */
const US_DESCRIPTORS = new Set([0x00281101, 0x00281102, 0x00281103, 0x00281104, 0x00283002]);

const DS_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const IS_RE = /^[+-]?\d+$/;

const KEYS = new Map<number, string>();
/** JSON key of a tag; cached, since the same few thousand tags come back in every object. */
function hex8(tag: number): string {
  let k = KEYS.get(tag);
  if (k === undefined) {
    k = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
    if (KEYS.size < 16_384) KEYS.set(tag, k);
  }
  return k;
}

/** Internal: top-level pixel data as the reader found it. */
interface PixelHeader {
  tag: number;
  vr: string;
  valueOffset: number;
  valueLength?: number;
}

class Reader {
  readonly dv: DataView;
  readonly size: number;
  elements = 0;
  le: boolean;
  explicit: boolean;
  readonly bulk: BulkDataRef[] = [];
  pixel: PixelHeader | undefined;
  stoppedAtPixel = false;
  extendedOffsets: number[] | undefined;
  pixelRepresentation: number | undefined;
  /** byte order of the transfer syntax (this.le changes inside UN sequences) */
  fileLittleEndian: boolean;

  constructor(
    readonly bytes: Uint8Array,
    readonly limits: ParseLimits,
    readonly final: boolean,
    readonly stopAtPixelData: boolean,
    enc: { explicitVR: boolean; littleEndian: boolean },
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.size = bytes.length;
    this.le = enc.littleEndian;
    this.explicit = enc.explicitVR;
    this.fileLittleEndian = enc.littleEndian;
  }

  /** Ran out of bytes: an error now, or a request for more when the caller streams. */
  short(what: string, needed: number): never {
    if (!this.final) throw new DicomParseError('NEED_MORE_DATA', `need ${needed} bytes for ${what}, have ${this.size}`);
    throw new DicomParseError('TRUNCATED', `${what} needs ${needed} bytes, the object has ${this.size}`);
  }

  /** Declared end beyond what is there: truncated file, or overrun of the enclosing item. */
  checkEnd(end: number, limit: number, what: string): void {
    // Past a defined-length container that is all there: broken structure, whatever the file length.
    if (end > limit && limit < this.size) throw new DicomParseError('MALFORMED', `${what} runs past the end of its container`);
    if (end > this.size) this.short(what, end);
    if (end > limit) throw new DicomParseError('MALFORMED', `${what} runs past the end of its container`);
  }

  countElement(): void {
    if (++this.elements > this.limits.maxElements) {
      throw new DicomParseError('LIMIT_EXCEEDED', `more than ${this.limits.maxElements} elements`);
    }
  }

  /**
   * Reads a data set from `pos` up to `limit` (delimited = until an Item Delimitation Item).
   * `onlyGroup`: stop before the first element of another group (reading the file meta).
   */
  readDataset(
    pos: number,
    limit: number,
    delimited: boolean,
    depth: number,
    pathPrefix: string,
    cs: CharacterSet,
    top: boolean,
    ds: DicomJsonDataset,
    onlyGroup?: number,
  ): number {
    const { dv, bytes } = this;
    for (;;) {
      if (pos >= limit) {
        if (pos > limit) throw new DicomParseError('MALFORMED', 'element runs past the end of its item');
        if (delimited) {
          if (limit >= this.size) this.short('item delimitation item', pos + 8);
          throw new DicomParseError('MALFORMED', 'item without delimitation item');
        }
        // A stream prefix may go on with more elements (or more file meta).
        if (top && !this.final) this.short('more elements (stream not final)', pos + 1);
        return pos;
      }
      if (onlyGroup !== undefined) {
        if (pos + 2 > this.size) this.short('element tag', pos + 2);
        if (dv.getUint16(pos, true) !== onlyGroup) return pos;
      }
      if (pos + 8 > limit) {
        if (limit >= this.size) this.short('element header', pos + 8);
        throw new DicomParseError('MALFORMED', 'element header runs past the end of its item');
      }
      const le = this.le;
      const group = dv.getUint16(pos, le);
      const element = dv.getUint16(pos + 2, le);
      const tag = ((group << 16) | element) >>> 0;

      if (group === 0xfffe) {
        // Item tags carry no VR, even in Explicit VR (PS3.5 §7.5).
        if (element === 0xe00d) {
          this.countElement();
          if (delimited) return pos + 8;
          pos += 8; // stray item delimiter: skip
          continue;
        }
        throw new DicomParseError('MALFORMED', `unexpected (FFFE,${element.toString(16).toUpperCase()}) in a data set at ${pos}`);
      }

      let vr: string;
      let length: number;
      let hdr: number;
      if (this.explicit) {
        const c0 = bytes[pos + 4];
        const c1 = bytes[pos + 5];
        if (c0 < 0x41 || c0 > 0x5a || c1 < 0x41 || c1 > 0x5a) {
          throw new DicomParseError('MALFORMED', `invalid VR bytes ${c0.toString(16)} ${c1.toString(16)} for ${hex8(tag)} at ${pos}`);
        }
        vr = String.fromCharCode(c0, c1);
        const known = KNOWN_VRS.has(vr);
        if (!known || LONG_VRS.has(vr)) {
          if (pos + 12 > limit) {
            if (limit >= this.size) this.short('element header', pos + 12);
            throw new DicomParseError('MALFORMED', 'element header runs past the end of its item');
          }
          length = dv.getUint32(pos + 8, le);
          hdr = 12;
          if (!known) vr = 'UN'; // PS3.5 §6.2: future VRs use the 32-bit length form
        } else {
          length = dv.getUint16(pos + 6, le);
          hdr = 8;
        }
      } else {
        length = dv.getUint32(pos + 4, le);
        hdr = 8;
        vr = US_DESCRIPTORS.has(tag) ? 'US' : implicitVR(tag, this.pixelRepresentation);
      }
      this.countElement();
      const valueOffset = pos + hdr;
      const key = hex8(tag);

      // Top-level pixel data: record where it is, and stop (header-only) or step over it.
      if (top && onlyGroup === undefined && PIXEL_TAGS.has(tag) && !this.pixel) {
        const encapsulated = length === UNDEFINED_LENGTH;
        const pvr = encapsulated ? 'OB' : this.explicit ? vr : tag === 0x7fe00010 ? 'OW' : vr;
        this.pixel = { tag, vr: pvr, valueOffset, valueLength: encapsulated ? undefined : length };
        ds[key] = { vr: pvr, BulkDataURI: key };
        if (this.stopAtPixelData) {
          this.stoppedAtPixel = true;
          return valueOffset;
        }
        if (!encapsulated) {
          this.checkEnd(valueOffset + length, limit, 'pixel data');
          pos = valueOffset + length;
        } else {
          pos = this.skipEncapsulated(valueOffset, limit);
        }
        continue;
      }

      if (length === UNDEFINED_LENGTH) {
        if (vr === 'SQ' || vr === 'UN') {
          // UN of undefined length: a sequence in Implicit VR LE (PS3.5 §6.2.2)
          const saved = [this.le, this.explicit] as const;
          if (vr === 'UN') {
            this.le = true;
            this.explicit = false;
          }
          const items: DicomJsonDataset[] = [];
          pos = this.readSequence(valueOffset, limit, true, depth + 1, pathPrefix + key, cs, items);
          [this.le, this.explicit] = saved;
          ds[key] = items.length ? { vr: 'SQ', Value: items } : { vr: 'SQ' };
          continue;
        }
        if (vr === 'OB' || vr === 'OW') {
          // Encapsulated data that is not the top-level pixel data (e.g. an icon image).
          const end = this.skipEncapsulated(valueOffset, limit);
          const path = pathPrefix + key;
          this.bulk.push({ path, vr: 'OB', offset: valueOffset, length: end - valueOffset });
          ds[key] = { vr: 'OB', BulkDataURI: path };
          pos = end;
          continue;
        }
        throw new DicomParseError('MALFORMED', `undefined length for VR ${vr} (${key})`);
      }

      const end = valueOffset + length;
      this.checkEnd(end, limit, `element ${key}`);
      if (vr === 'SQ') {
        const items: DicomJsonDataset[] = [];
        this.readSequence(valueOffset, end, false, depth + 1, pathPrefix + key, cs, items);
        ds[key] = items.length ? { vr: 'SQ', Value: items } : { vr: 'SQ' };
        pos = end;
        continue;
      }
      pos = end;

      if (element === 0 && onlyGroup === undefined) continue; // group lengths: retired, omitted (PS3.5 §7.2)
      if (top && tag === 0x7fe00001) this.extendedOffsets = this.readUint64s(valueOffset, length);
      let jsonVR = vr;
      if (vr === 'UN' && this.fileLittleEndian && !(group & 1)) {
        // A standard element that reached us as UN: decode it with its dictionary VR (PS3.5 §6.2.2).
        const dvr = lookupTag(tag)?.vr;
        if (dvr && dvr.length === 2 && dvr !== 'SQ') jsonVR = dvr;
      }
      const el = this.value(jsonVR, valueOffset, length, cs, pathPrefix, key, jsonVR !== vr);
      ds[key] = el;
      if (tag === 0x00080005) cs = parseSpecificCharacterSet((el.Value ?? []) as string[]);
      else if (tag === 0x00280103 && top) this.pixelRepresentation = el.Value?.[0] as number | undefined;
    }
  }

  readSequence(pos: number, limit: number, delimited: boolean, depth: number, path: string, cs: CharacterSet, items: DicomJsonDataset[]): number {
    if (depth > this.limits.maxDepth) throw new DicomParseError('LIMIT_EXCEEDED', `sequences nested deeper than ${this.limits.maxDepth}`);
    const { dv } = this;
    for (;;) {
      if (!delimited && pos >= limit) {
        if (pos > limit) throw new DicomParseError('MALFORMED', 'item runs past the end of its sequence');
        return pos;
      }
      if (pos + 8 > limit) {
        if (limit >= this.size) this.short('item header', pos + 8);
        throw new DicomParseError('MALFORMED', 'item header runs past the end of its sequence');
      }
      const group = dv.getUint16(pos, this.le);
      const element = dv.getUint16(pos + 2, this.le);
      const length = dv.getUint32(pos + 4, this.le);
      this.countElement();
      if (group === 0xfffe && element === 0xe0dd) {
        if (delimited) return pos + 8;
        pos += 8; // delimiter in a defined-length sequence: tolerated
        continue;
      }
      if (group !== 0xfffe || element !== 0xe000) {
        throw new DicomParseError('MALFORMED', `expected an item in sequence ${path}, found (${hex4(group)},${hex4(element)}) at ${pos}`);
      }
      const item: DicomJsonDataset = {};
      const prefix = `${path}.${items.length}.`;
      if (length === UNDEFINED_LENGTH) {
        pos = this.readDataset(pos + 8, limit, true, depth, prefix, cs, false, item);
      } else {
        const end = pos + 8 + length;
        this.checkEnd(end, limit, 'item');
        this.readDataset(pos + 8, end, false, depth, prefix, cs, false, item);
        pos = end;
      }
      items.push(item);
    }
  }

  /** Steps over encapsulated items (PS3.5 A.4) up to and including the sequence delimiter. */
  skipEncapsulated(pos: number, limit: number): number {
    const { dv } = this;
    for (;;) {
      if (pos + 8 > limit) {
        if (limit >= this.size) this.short('encapsulated item header', pos + 8);
        throw new DicomParseError('MALFORMED', 'encapsulated data runs past the end of its item');
      }
      const group = dv.getUint16(pos, this.le);
      const element = dv.getUint16(pos + 2, this.le);
      const length = dv.getUint32(pos + 4, this.le);
      this.countElement();
      if (group === 0xfffe && element === 0xe0dd) return pos + 8;
      if (group !== 0xfffe || element !== 0xe000 || length === UNDEFINED_LENGTH) {
        throw new DicomParseError('MALFORMED', `bad item (${hex4(group)},${hex4(element)}) in encapsulated data at ${pos}`);
      }
      this.checkEnd(pos + 8 + length, limit, 'encapsulated fragment');
      pos += 8 + length;
    }
  }

  readUint64s(offset: number, length: number): number[] {
    const out: number[] = [];
    for (let i = 0; i + 8 <= length; i += 8) out.push(Number(this.dv.getBigUint64(offset + i, this.le)));
    return out;
  }

  /** One element's value as DICOM JSON (PS3.18 F.2.3). `forceLE`: UN bytes reinterpreted (always LE). */
  value(vr: string, off: number, len: number, cs: CharacterSet, pathPrefix: string, key: string, forceLE: boolean): DicomJsonElement {
    if (len === 0) return { vr };
    const le = forceLE ? true : this.le;
    const { dv, bytes } = this;
    switch (vr) {
      case 'US':
      case 'SS':
      case 'UL':
      case 'SL':
      case 'FL':
      case 'FD':
      case 'SV':
      case 'UV': {
        const size = vr === 'US' || vr === 'SS' ? 2 : vr === 'FD' || vr === 'SV' || vr === 'UV' ? 8 : 4;
        const out: DicomJsonValue[] = [];
        for (let i = off; i + size <= off + len; i += size) {
          switch (vr) {
            case 'US': out.push(dv.getUint16(i, le)); break;
            case 'SS': out.push(dv.getInt16(i, le)); break;
            case 'UL': out.push(dv.getUint32(i, le)); break;
            case 'SL': out.push(dv.getInt32(i, le)); break;
            case 'FL': out.push(dv.getFloat32(i, le)); break;
            case 'FD': out.push(dv.getFloat64(i, le)); break;
            case 'SV': out.push(bigToJson(dv.getBigInt64(i, le))); break;
            case 'UV': out.push(bigToJson(dv.getBigUint64(i, le))); break;
          }
        }
        return out.length ? { vr, Value: out } : { vr };
      }
      case 'AT': {
        const out: DicomJsonValue[] = [];
        for (let i = off; i + 4 <= off + len; i += 4) out.push(hex8(((dv.getUint16(i, le) << 16) | dv.getUint16(i + 2, le)) >>> 0));
        return out.length ? { vr, Value: out } : { vr };
      }
      case 'OB':
      case 'OD':
      case 'OF':
      case 'OL':
      case 'OV':
      case 'OW':
      case 'UN': {
        if (len > this.limits.bulkDataThreshold) {
          const path = pathPrefix + key;
          this.bulk.push({ path, vr, offset: off, length: len });
          return { vr, BulkDataURI: path };
        }
        let data = bytes.subarray(off, off + len);
        const word = BINARY_WORD[vr] ?? 1;
        if (!le && word > 1) data = swapBytesPerWord(data, word); // JSON binary is little endian (PS3.18 F.2.7)
        return { vr, InlineBinary: bytesToBase64(data) };
      }
      case 'SQ':
        return { vr }; // not reached: sequences are read by readSequence
    }
    // Text VRs
    const raw = bytes.subarray(off, off + len);
    const charset = CHARSET_VRS.has(vr) ? cs : DEFAULT_CHARACTER_SET;
    if (SINGLE_TEXT_VRS.has(vr)) {
      const s = trimEnd(decodeText(raw, charset, 'text'));
      return s ? { vr, Value: [s] } : { vr };
    }
    const mode: DelimiterMode = vr === 'PN' ? 'pn' : 'multi';
    const text = charset === DEFAULT_CHARACTER_SET ? decodeLatin1(raw) : decodeText(raw, charset, mode);
    const parts = text.split('\\');
    const leading = TRIM_LEADING_VRS.has(vr);
    const out: DicomJsonValue[] = [];
    let any = false;
    for (const p of parts) {
      const s = leading ? trimEnd(p).trimStart() : trimEnd(p);
      let v: DicomJsonValue;
      if (s === '') v = null;
      else if (vr === 'PN') v = personName(s);
      else if (vr === 'DS') v = DS_RE.test(s) && Number.isFinite(Number(s)) ? Number(s) : s;
      else if (vr === 'IS') v = IS_RE.test(s) && Number.isSafeInteger(Number(s)) ? Number(s) : s;
      else v = s;
      if (v !== null) any = true;
      out.push(v);
    }
    return any ? { vr, Value: out } : { vr };
  }
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

function trimEnd(s: string): string {
  let e = s.length;
  while (e > 0) {
    const c = s.charCodeAt(e - 1);
    if (c !== 0x20 && c !== 0) break;
    e--;
  }
  return e === s.length ? s : s.slice(0, e);
}

/** PN (PS3.18 F.2.2): up to three component groups separated by '='. */
function personName(s: string): PersonNameValue | null {
  const groups = s.split('=');
  const pn: PersonNameValue = {};
  if (groups[0]) pn.Alphabetic = trimEnd(groups[0]);
  if (groups[1]) pn.Ideographic = trimEnd(groups[1]);
  if (groups[2]) pn.Phonetic = trimEnd(groups[2]);
  return pn.Alphabetic || pn.Ideographic || pn.Phonetic ? pn : null;
}

function bigToJson(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString();
}

// ---------------------------------------------------------------------------

export interface FileMetaInfo {
  fileMeta: DicomJsonDataset;
  datasetOffset: number;
  transferSyntaxUID: string;
  encoding: TransferSyntaxEncoding;
}

/** Reads preamble, "DICM" and the file meta (PS3.10 §7.1) and classifies the transfer syntax. */
export function readFileMeta(bytes: Uint8Array, limits: ParseLimits = DEFAULT_PARSE_LIMITS, final = true): FileMetaInfo {
  if (bytes.length < 132) {
    if (!final) throw new DicomParseError('NEED_MORE_DATA', 'need the 128-byte preamble and "DICM"');
    throw new DicomParseError('NOT_PART10', 'shorter than a preamble and "DICM" (PS3.10 §7.1)');
  }
  if (bytes[128] !== 0x44 || bytes[129] !== 0x49 || bytes[130] !== 0x43 || bytes[131] !== 0x4d) {
    throw new DicomParseError('NOT_PART10', 'no "DICM" prefix after the 128-byte preamble (PS3.10 §7.1)');
  }
  const reader = new Reader(bytes, limits, final, false, { explicitVR: true, littleEndian: true });
  const fileMeta: DicomJsonDataset = {};
  let datasetOffset: number;
  try {
    // File meta: group 0002 only, always Explicit VR LE; read element by element (the group length is often wrong).
    datasetOffset = reader.readDataset(132, bytes.length, false, 0, '', DEFAULT_CHARACTER_SET, true, fileMeta, 0x0002);
  } catch (e) {
    if (e instanceof DicomParseError && e.code === 'MALFORMED') throw new DicomParseError('NOT_PART10', `unreadable file meta: ${e.message}`, { cause: e });
    if (e instanceof DicomParseError && e.code === 'TRUNCATED' && bytes.length <= 140) throw new DicomParseError('NOT_PART10', 'no file meta', { cause: e });
    throw e;
  }
  if (Object.keys(fileMeta).length === 0) throw new DicomParseError('NOT_PART10', 'no file meta information (group 0002)');
  const tsValue = fileMeta[Tag.TransferSyntaxUID]?.Value?.[0];
  const transferSyntaxUID = typeof tsValue === 'string' ? tsValue.trim() : '';
  if (!transferSyntaxUID) throw new DicomParseError('MISSING_TRANSFER_SYNTAX', 'file meta has no Transfer Syntax UID (0002,0010)');
  const encoding = transferSyntaxEncoding(transferSyntaxUID);
  if (!encoding) throw new DicomParseError('UNSUPPORTED_TRANSFER_SYNTAX', `transfer syntax ${transferSyntaxUID.slice(0, 64)} is not supported`);
  return { fileMeta, datasetOffset, transferSyntaxUID, encoding };
}

/**
 * The inflated form of a Deflated Explicit VR LE object (PS3.5 A.5): the original bytes up to
 * the data set, then the inflated data set. Offsets of a deflated ParsedPart10 refer to these bytes.
 * Bounded by maxInflatedBytes and maxInflateRatio → 'LIMIT_EXCEEDED'.
 */
export function inflatePart10(bytes: Uint8Array, datasetOffset: number, options: { limits?: Partial<ParseLimits>; final?: boolean } = {}): Uint8Array {
  const limits = { ...DEFAULT_PARSE_LIMITS, ...options.limits };
  const final = options.final ?? true;
  const compressed = bytes.subarray(datasetOffset);
  if (compressed.length === 0) {
    if (!final) throw new DicomParseError('NEED_MORE_DATA', 'deflated data set not yet received');
    return bytes.slice(0, datasetOffset);
  }
  const maxOutputLength = Math.max(1, Math.min(limits.maxInflatedBytes, compressed.length * limits.maxInflateRatio, 2 ** 32));
  let inflated: Uint8Array;
  try {
    inflated = inflateRawSync(compressed, { maxOutputLength });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      throw new DicomParseError('LIMIT_EXCEEDED', `deflated data set inflates beyond ${maxOutputLength} bytes`, { cause: e });
    }
    if (code === 'Z_BUF_ERROR') {
      if (!final) throw new DicomParseError('NEED_MORE_DATA', 'deflated data set incomplete', { cause: e });
      throw new DicomParseError('TRUNCATED', 'deflated data set ends early', { cause: e });
    }
    // Some writers wrap the stream in a zlib header, against PS3.5 A.5: accept that too.
    try {
      inflated = inflateSync(compressed, { maxOutputLength });
    } catch (e2) {
      const code2 = (e2 as { code?: string }).code;
      if (code2 === 'ERR_BUFFER_TOO_LARGE') {
        throw new DicomParseError('LIMIT_EXCEEDED', `deflated data set inflates beyond ${maxOutputLength} bytes`, { cause: e2 });
      }
      throw new DicomParseError('MALFORMED', 'deflated data set is not a deflate stream', { cause: e });
    }
  }
  const out = new Uint8Array(datasetOffset + inflated.length);
  out.set(bytes.subarray(0, datasetOffset), 0);
  out.set(inflated, datasetOffset);
  return out;
}

/**
 * Parses a Part 10 object. Throws DicomParseError with a stable code (see part10-types.ts).
 */
export function parsePart10(bytes: Uint8Array, options: ParsePart10Options = {}): ParsedPart10 {
  const limits: ParseLimits = { ...DEFAULT_PARSE_LIMITS, ...options.limits };
  const final = options.final ?? true;
  const meta = readFileMeta(bytes, limits, final);
  const { encoding } = meta;
  const deflated = encoding.deflated;
  const data = deflated ? inflatePart10(bytes, meta.datasetOffset, { limits, final }) : bytes;
  const stop = !deflated && (options.stopAtPixelData ?? true);
  // Inflated bytes are complete once inflate succeeded.
  const reader = new Reader(data, limits, deflated ? true : final, stop, encoding);
  const dataset: DicomJsonDataset = {};
  reader.readDataset(meta.datasetOffset, data.length, false, 0, '', DEFAULT_CHARACTER_SET, true, dataset);

  const parsed: ParsedPart10 = {
    fileMeta: meta.fileMeta,
    transferSyntaxUID: meta.transferSyntaxUID,
    dataset,
    datasetOffset: meta.datasetOffset,
    bulkData: reader.bulk,
    deflated,
    headerOnly: reader.stoppedAtPixel,
  };
  const px = reader.pixel;
  if (px) {
    const encapsulated = px.valueLength === undefined;
    const provisional: PixelDataLayout = { tag: hex8(px.tag), vr: px.vr, valueOffset: px.valueOffset, valueLength: px.valueLength, encapsulated, frames: [] };
    if (!encapsulated) Object.assign(provisional, nativeFrames(dataset, px.valueOffset, px.valueLength ?? 0));
    else delete provisional.valueLength;
    parsed.pixelData = provisional;
    const state = { extendedOffsets: reader.extendedOffsets, littleEndian: encoding.littleEndian, maxElements: limits.maxElements };
    if (final || deflated) {
      // Same code path as streaming: the scanner walks the bytes after the header.
      const whole: ParsedPart10 = { ...parsed, deflated: false, pixelData: provisional };
      attachScanState(whole, { ...state, head: data });
      parsed.pixelData = new PixelDataScanner(whole).finish(data.length);
      attachScanState(parsed, state);
    } else {
      // Keep (a reference to) the prefix: a scanner built from this result starts from it.
      attachScanState(parsed, { ...state, head: data });
    }
  }
  return parsed;
}
