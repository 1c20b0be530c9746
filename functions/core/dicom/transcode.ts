/**
 * Conversion of a whole Part 10 object among the uncompressed transfer syntaxes
 * (Implicit VR LE, Explicit VR LE, Explicit VR BE — PS3.5 §7.1, Annex A.1-A.3).
 *
 * - Values are copied, byte-swapped by VR when the byte order changes (PS3.5 §7.3):
 *   OW/US/SS/AT by 2, OL/UL/SL/FL/OF by 4, FD/OD/SV/UV/OV by 8; text, OB and UN never.
 *   Native pixel data (OW) is swapped by BitsAllocated/8 when BitsAllocated > 8 (so a
 *   32-bit dose grid stays 32-bit values, as pydicom and DCMTK-converted files have it).
 * - Explicit target from an Implicit source takes the VR from the dictionary (UN when
 *   unknown, LO for private creators); a value too long for a 16-bit length field becomes
 *   UN (PS3.5 §6.2.2). Pixel data: OW when BitsAllocated > 8, else OB.
 * - Sequences and items are written with undefined length (valid in every syntax, and no
 *   length to recompute); UN of undefined length becomes SQ. Data set group lengths
 *   (gggg,0000, retired) are dropped since sizes change.
 * - File meta: Transfer Syntax UID replaced, group length recomputed, preamble zeroed.
 * Encapsulated or deflated sources → DicomParseError 'UNSUPPORTED_TRANSFER_SYNTAX'.
 */
import { implicitVR } from './dictionary';
import { DEFAULT_PARSE_LIMITS, DicomParseError } from './part10-types';
import { readFileMeta } from './part10';
import { UNCOMPRESSED_TRANSFER_SYNTAXES } from './tags';
import { transferSyntaxEncoding } from './transfer-syntax';

const UNDEFINED_LENGTH = 0xffffffff;
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const KNOWN_VRS = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV', 'OW',
  'PN', 'SH', 'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);
const SWAP_SIZE: Record<string, number> = {
  OW: 2, US: 2, SS: 2, AT: 2,
  OL: 4, UL: 4, SL: 4, FL: 4, OF: 4,
  FD: 8, OD: 8, SV: 8, UV: 8, OV: 8,
};
const US_DESCRIPTORS = new Set([0x00281101, 0x00281102, 0x00281103, 0x00281104, 0x00283002]);

class Out {
  buf: Uint8Array;
  dv: DataView;
  len = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
    this.dv = new DataView(this.buf.buffer);
  }
  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  u16(v: number, le: boolean): void {
    this.ensure(2);
    this.dv.setUint16(this.len, v, le);
    this.len += 2;
  }
  u32(v: number, le: boolean): void {
    this.ensure(4);
    this.dv.setUint32(this.len, v, le);
    this.len += 4;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

interface Mode {
  le: boolean;
  explicit: boolean;
}

class Transcoder {
  readonly dv: DataView;
  bitsAllocated = 0;
  pixelRepresentation: number | undefined;
  elements = 0;

  constructor(
    readonly src: Uint8Array,
    readonly out: Out,
    readonly target: Mode,
  ) {
    this.dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  }

  need(end: number, limit: number): void {
    if (end > limit) {
      throw new DicomParseError(limit >= this.src.length ? 'TRUNCATED' : 'MALFORMED', `value runs past ${limit === this.src.length ? 'the end of the object' : 'its container'}`);
    }
  }

  count(): void {
    if (++this.elements > DEFAULT_PARSE_LIMITS.maxElements) throw new DicomParseError('LIMIT_EXCEEDED', 'too many elements');
  }

  writeHeader(group: number, element: number, vr: string, length: number): void {
    const { out } = this;
    const le = this.target.le;
    out.u16(group, le);
    out.u16(element, le);
    if (!this.target.explicit || group === 0xfffe) {
      out.u32(length, le);
      return;
    }
    out.bytes(new Uint8Array([vr.charCodeAt(0), vr.charCodeAt(1)]));
    if (LONG_VRS.has(vr)) {
      out.u16(0, le);
      out.u32(length, le);
    } else {
      out.u16(length, le);
    }
  }

  copyValue(off: number, len: number, swap: number, srcLE: boolean): void {
    const value = this.src.subarray(off, off + len);
    if (swap <= 1 || srcLE === this.target.le) {
      this.out.bytes(value);
      return;
    }
    this.out.ensure(len);
    const dst = this.out.buf;
    const base = this.out.len;
    const n = len - (len % swap);
    for (let i = 0; i < n; i += swap) for (let k = 0; k < swap; k++) dst[base + i + k] = value[i + swap - 1 - k];
    dst.set(value.subarray(n), base + n);
    this.out.len += len;
  }

  /** Re-encodes a data set; returns the source position after it. */
  dataset(pos: number, limit: number, delimited: boolean, mode: Mode, depth: number, top: boolean): number {
    const { dv, src } = this;
    for (;;) {
      if (pos >= limit) {
        if (delimited) throw new DicomParseError(limit >= src.length ? 'TRUNCATED' : 'MALFORMED', 'item without delimitation item');
        return pos;
      }
      this.need(pos + 8, limit);
      const group = dv.getUint16(pos, mode.le);
      const element = dv.getUint16(pos + 2, mode.le);
      const tag = ((group << 16) | element) >>> 0;
      this.count();
      if (group === 0xfffe) {
        if (element === 0xe00d) {
          if (delimited) return pos + 8;
          pos += 8;
          continue;
        }
        throw new DicomParseError('MALFORMED', `unexpected item tag in a data set at ${pos}`);
      }
      let vr: string;
      let length: number;
      let hdr: number;
      if (mode.explicit) {
        vr = String.fromCharCode(src[pos + 4], src[pos + 5]);
        if (!/^[A-Z]{2}$/.test(vr)) throw new DicomParseError('MALFORMED', `invalid VR at ${pos}`);
        if (!KNOWN_VRS.has(vr) || LONG_VRS.has(vr)) {
          this.need(pos + 12, limit);
          length = dv.getUint32(pos + 8, mode.le);
          hdr = 12;
          if (!KNOWN_VRS.has(vr)) vr = 'UN';
        } else {
          length = dv.getUint16(pos + 6, mode.le);
          hdr = 8;
        }
      } else {
        length = dv.getUint32(pos + 4, mode.le);
        hdr = 8;
        vr = US_DESCRIPTORS.has(tag) ? 'US' : implicitVR(tag, this.pixelRepresentation);
      }
      const off = pos + hdr;

      if (length === UNDEFINED_LENGTH) {
        if (vr === 'SQ' || vr === 'UN') {
          if (depth + 1 > DEFAULT_PARSE_LIMITS.maxDepth) throw new DicomParseError('LIMIT_EXCEEDED', 'sequences nested too deep');
          this.writeHeader(group, element, 'SQ', UNDEFINED_LENGTH);
          // UN of undefined length holds Implicit VR LE items (PS3.5 §6.2.2)
          const inner: Mode = vr === 'UN' ? { le: true, explicit: false } : mode;
          pos = this.sequence(off, limit, true, inner, depth + 1);
          continue;
        }
        if (vr === 'OB' || vr === 'OW') {
          // encapsulated data in a native syntax (e.g. an icon): copy the items as they are
          this.writeHeader(group, element, 'OB', UNDEFINED_LENGTH);
          pos = this.encapsulated(off, limit, mode);
          continue;
        }
        throw new DicomParseError('MALFORMED', `undefined length for VR ${vr}`);
      }
      const end = off + length;
      this.need(end, limit);
      pos = end;
      if (vr === 'SQ') {
        if (depth + 1 > DEFAULT_PARSE_LIMITS.maxDepth) throw new DicomParseError('LIMIT_EXCEEDED', 'sequences nested too deep');
        this.writeHeader(group, element, 'SQ', UNDEFINED_LENGTH);
        this.sequence(off, end, false, mode, depth + 1);
        continue;
      }
      if (element === 0x0000) continue; // group length: dropped (sizes change)

      if (top && tag === 0x00280100 && length >= 2) this.bitsAllocated = dv.getUint16(off, mode.le);
      if (top && tag === 0x00280103 && length >= 2) this.pixelRepresentation = dv.getUint16(off, mode.le);

      let outVR = vr;
      let swap = SWAP_SIZE[vr] ?? 1;
      if (top && tag === 0x7fe00010) {
        // Native pixel data: OW (swapped by sample size) above 8 bits, OB otherwise (PS3.5 A.1-A.3).
        const ba = this.bitsAllocated;
        outVR = ba > 8 ? 'OW' : 'OB';
        swap = ba > 8 ? Math.max(2, Math.min(8, Math.ceil(ba / 8))) : 1;
      }
      if (this.target.explicit && !LONG_VRS.has(outVR) && length > 0xffff) outVR = 'UN'; // PS3.5 §6.2.2
      this.writeHeader(group, element, outVR, length);
      this.copyValue(off, length, swap, mode.le);
    }
  }

  sequence(pos: number, limit: number, delimited: boolean, mode: Mode, depth: number): number {
    const { dv } = this;
    const le = this.target.le;
    for (;;) {
      if (!delimited && pos >= limit) break;
      this.need(pos + 8, limit);
      const group = dv.getUint16(pos, mode.le);
      const element = dv.getUint16(pos + 2, mode.le);
      const length = dv.getUint32(pos + 4, mode.le);
      this.count();
      if (group === 0xfffe && element === 0xe0dd) {
        pos += 8;
        if (delimited) break;
        continue;
      }
      if (group !== 0xfffe || element !== 0xe000) throw new DicomParseError('MALFORMED', `expected an item at ${pos}`);
      this.writeHeader(0xfffe, 0xe000, '', UNDEFINED_LENGTH);
      if (length === UNDEFINED_LENGTH) {
        pos = this.dataset(pos + 8, limit, true, mode, depth, false);
      } else {
        const end = pos + 8 + length;
        this.need(end, limit);
        this.dataset(pos + 8, end, false, mode, depth, false);
        pos = end;
      }
      this.out.u16(0xfffe, le);
      this.out.u16(0xe00d, le);
      this.out.u32(0, le);
    }
    this.out.u16(0xfffe, le);
    this.out.u16(0xe0dd, le);
    this.out.u32(0, le);
    return pos;
  }

  encapsulated(pos: number, limit: number, mode: Mode): number {
    const { dv } = this;
    for (;;) {
      this.need(pos + 8, limit);
      const group = dv.getUint16(pos, mode.le);
      const element = dv.getUint16(pos + 2, mode.le);
      const length = dv.getUint32(pos + 4, mode.le);
      this.count();
      if (group === 0xfffe && element === 0xe0dd) {
        this.writeHeader(0xfffe, 0xe0dd, '', 0);
        return pos + 8;
      }
      if (group !== 0xfffe || element !== 0xe000 || length === UNDEFINED_LENGTH) throw new DicomParseError('MALFORMED', `bad encapsulated item at ${pos}`);
      this.need(pos + 8 + length, limit);
      this.writeHeader(0xfffe, 0xe000, '', length);
      this.out.bytes(this.src.subarray(pos + 8, pos + 8 + length));
      pos += 8 + length;
    }
  }
}

/**
 * Converts a Part 10 object in an uncompressed syntax to another uncompressed syntax
 * (1.2.840.10008.1.2, .1.2.1, .1.2.2). Returns new bytes; the input is not modified.
 */
export function transcodeNative(bytes: Uint8Array, targetTransferSyntaxUID: string): Uint8Array {
  if (!UNCOMPRESSED_TRANSFER_SYNTAXES.includes(targetTransferSyntaxUID)) {
    throw new DicomParseError('UNSUPPORTED_TRANSFER_SYNTAX', `cannot convert to ${targetTransferSyntaxUID.slice(0, 64)}`);
  }
  const meta = readFileMeta(bytes);
  const source = meta.encoding;
  if (source.encapsulated || source.deflated) {
    throw new DicomParseError('UNSUPPORTED_TRANSFER_SYNTAX', `cannot convert from ${meta.transferSyntaxUID} without a codec`);
  }
  const targetEnc = transferSyntaxEncoding(targetTransferSyntaxUID)!;
  const out = new Out(Math.max(1024, Math.ceil(bytes.length * 1.1) + 256));

  // Preamble (zeroed: PS3.10 §7.1 allows any content; we never pass on what we did not write) + "DICM".
  out.ensure(132);
  out.len = 128;
  out.bytes(new Uint8Array([0x44, 0x49, 0x43, 0x4d]));

  // File meta: always Explicit VR LE. Copy every element but the group length and the syntax.
  const metaOut = new Out(512);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 132;
  let wroteTs = false;
  const writeTs = (): void => {
    let uid = new TextEncoder().encode(targetTransferSyntaxUID);
    if (uid.length % 2) uid = Uint8Array.from([...uid, 0]); // UI padded with NUL (PS3.5 §6.2)
    metaOut.u16(0x0002, true);
    metaOut.u16(0x0010, true);
    metaOut.bytes(new Uint8Array([0x55, 0x49])); // "UI"
    metaOut.u16(uid.length, true);
    metaOut.bytes(uid);
    wroteTs = true;
  };
  while (pos < meta.datasetOffset) {
    const element = dv.getUint16(pos + 2, true);
    const vr = String.fromCharCode(bytes[pos + 4], bytes[pos + 5]);
    const long = !KNOWN_VRS.has(vr) || LONG_VRS.has(vr);
    const length = long ? dv.getUint32(pos + 8, true) : dv.getUint16(pos + 6, true);
    const end = pos + (long ? 12 : 8) + length;
    if (element === 0x0010) writeTs();
    else if (element !== 0x0000) {
      if (!wroteTs && element > 0x0010) writeTs();
      metaOut.bytes(bytes.subarray(pos, end));
    }
    pos = end;
  }
  if (!wroteTs) writeTs();
  const metaBytes = metaOut.result();
  out.u16(0x0002, true);
  out.u16(0x0000, true);
  out.bytes(new Uint8Array([0x55, 0x4c])); // "UL"
  out.u16(4, true);
  out.u32(metaBytes.length, true);
  out.bytes(metaBytes);

  const t = new Transcoder(bytes, out, { le: targetEnc.littleEndian, explicit: targetEnc.explicitVR });
  t.dataset(meta.datasetOffset, bytes.length, false, { le: source.littleEndian, explicit: source.explicitVR }, 0, true);
  return out.result();
}

