/**
 * Pixel data layout: where each frame's bytes are in the file, without copying them.
 *
 * Native (PS3.5 §8.1.1): frame i starts at valueOffset + i × frame size.
 * Encapsulated (PS3.5 A.4): a sequence of items, the first the Basic Offset Table, then
 * fragments; frames found from the Extended Offset Table (PS3.3 C.7.6.3.1.8), the Basic
 * Offset Table, one fragment per frame, all fragments for one frame, or JPEG/J2K start
 * markers — in that order; otherwise the frames are unknown.
 *
 * `PixelDataScanner` walks the item headers of a stream of chunks (STOW bodies are
 * streamed), so the whole file never has to be in memory.
 */
import type { DicomJsonDataset } from './json-model';
import { base64ToBytes } from './base64';
import { DEFAULT_PARSE_LIMITS, DicomParseError, type ByteRange, type ParsedPart10, type PixelDataLayout } from './part10-types';
import { isVideoTransferSyntax } from './transfer-syntax';
import { Tag } from './tags';

/** What the reader leaves on a ParsedPart10 (non-enumerable: never serialised) for the scanner. */
export interface ScanState {
  /** the bytes the header parse saw (no copy) */
  head?: Uint8Array;
  /** Extended Offset Table values, decoded even when the element went to bulk data */
  extendedOffsets?: number[];
  littleEndian: boolean;
  maxElements: number;
}
export const SCAN_STATE: unique symbol = Symbol('dicom.part10.scanState');
type WithScanState = ParsedPart10 & { [SCAN_STATE]?: ScanState };

export function attachScanState(parsed: ParsedPart10, state: ScanState): void {
  Object.defineProperty(parsed, SCAN_STATE, { value: state, enumerable: false, configurable: true });
}

interface FrameInfo {
  rows?: number;
  columns?: number;
  samplesPerPixel?: number;
  bitsAllocated?: number;
  /** undefined = absent; NaN = present but not a valid number */
  numberOfFrames?: number;
  photometric?: string;
}

function firstNumber(ds: DicomJsonDataset, key: string): number | undefined {
  const v = ds[key]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return NaN;
  return undefined;
}

function frameInfo(ds: DicomJsonDataset): FrameInfo {
  const photometric = ds[Tag.PhotometricInterpretation]?.Value?.[0];
  return {
    rows: firstNumber(ds, Tag.Rows),
    columns: firstNumber(ds, Tag.Columns),
    samplesPerPixel: firstNumber(ds, Tag.SamplesPerPixel),
    bitsAllocated: firstNumber(ds, Tag.BitsAllocated),
    numberOfFrames: firstNumber(ds, Tag.NumberOfFrames),
    photometric: typeof photometric === 'string' ? photometric : undefined,
  };
}

const positive = (n: number | undefined): n is number => n !== undefined && Number.isInteger(n) && n > 0;

/** Native frames, from Rows × Columns × Samples × BitsAllocated (PS3.5 §8.1.1, PS3.3 C.7.6.3.1.2). */
export function nativeFrames(ds: DicomJsonDataset, valueOffset: number, valueLength: number): Pick<PixelDataLayout, 'frames' | 'bitOffsets' | 'framesUnknown'> {
  const fi = frameInfo(ds);
  if (!positive(fi.rows) || !positive(fi.columns) || !positive(fi.bitsAllocated)) {
    return valueLength === 0 ? { frames: [] } : { frames: [], framesUnknown: true };
  }
  let samples = positive(fi.samplesPerPixel) ? fi.samplesPerPixel : 1;
  // YBR_FULL_422 / YBR_PARTIAL_422 native: two luminance samples share one Cb and Cr,
  // so a pixel takes 2 samples, not 3 (PS3.3 C.7.6.3.1.2).
  if (samples === 3 && (fi.photometric === 'YBR_FULL_422' || fi.photometric === 'YBR_PARTIAL_422')) samples = 2;
  const bitsPerFrame = fi.rows * fi.columns * samples * fi.bitsAllocated;
  const totalBits = valueLength * 8;
  let n: number;
  if (fi.numberOfFrames === undefined) n = 1;
  else if (positive(fi.numberOfFrames)) n = fi.numberOfFrames;
  else if (fi.numberOfFrames === 0) return { frames: [] };
  else if (totalBits % bitsPerFrame === 0) n = totalBits / bitsPerFrame; // invalid IS (e.g. "1A"): trust the value length
  else return { frames: [], framesUnknown: true };
  if (n * bitsPerFrame > totalBits) {
    throw new DicomParseError('MALFORMED', `pixel data holds ${valueLength} bytes, ${n} frame(s) need ${Math.ceil((n * bitsPerFrame) / 8)}`);
  }
  const frames: ByteRange[][] = [];
  if (fi.bitsAllocated === 1) {
    const bitOffsets: number[] = [];
    for (let i = 0; i < n; i++) {
      const bit = i * bitsPerFrame;
      const bitOffset = bit % 8;
      frames.push([{ offset: valueOffset + Math.floor(bit / 8), length: Math.ceil((bitOffset + bitsPerFrame) / 8) }]);
      bitOffsets.push(bitOffset);
    }
    return { frames, bitOffsets };
  }
  const frameBytes = bitsPerFrame / 8;
  for (let i = 0; i < n; i++) frames.push([{ offset: valueOffset + i * frameBytes, length: frameBytes }]);
  return { frames };
}

/** A fragment found by the scanner. */
interface Fragment {
  /** offset of the item tag */
  item: number;
  /** offset and length of the fragment's bytes */
  offset: number;
  length: number;
  /** first bytes start a JPEG (SOI), JPEG 2000 code stream (SOC) or JP2 file */
  startMarker: boolean;
}

function hasStartMarker(b: Uint8Array): boolean {
  if (b.length >= 2 && b[0] === 0xff && (b[1] === 0xd8 || b[1] === 0x4f)) return true; // JPEG/JPEG-LS SOI, J2K SOC
  // JP2 signature box (non-conformant but seen: GDCMJ2K_TextGBR.dcm)
  return b.length >= 8 && b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 0x0c && b[4] === 0x6a && b[5] === 0x50 && b[6] === 0x20 && b[7] === 0x20;
}

/** Maps frame start offsets (relative to the first fragment's item tag) to fragment groups; undefined if they do not line up. */
function framesFromOffsets(offsets: number[], fragments: Fragment[]): ByteRange[][] | undefined {
  if (offsets.length === 0 || fragments.length === 0) return undefined;
  const base = fragments[0].item;
  const index = new Map<number, number>();
  fragments.forEach((f, i) => index.set(f.item - base, i));
  const starts: number[] = [];
  for (const o of offsets) {
    const i = index.get(o);
    if (i === undefined || (starts.length && i <= starts[starts.length - 1])) return undefined;
    starts.push(i);
  }
  if (starts[0] !== 0) return undefined;
  return starts.map((s, k) => fragments.slice(s, k + 1 < starts.length ? starts[k + 1] : fragments.length).map(range));
}

const range = (f: Fragment): ByteRange => ({ offset: f.offset, length: f.length });

function encapsulatedFrames(
  ds: DicomJsonDataset,
  transferSyntaxUID: string,
  bot: number[],
  eot: number[] | undefined,
  fragments: Fragment[],
): Pick<PixelDataLayout, 'frames' | 'framesUnknown'> {
  if (fragments.length === 0) return { frames: [] };
  const declared = frameInfo(ds).numberOfFrames;
  const n = declared === undefined ? 1 : positive(declared) ? declared : undefined;
  const agrees = (frames: ByteRange[][] | undefined): frames is ByteRange[][] => !!frames && (n === undefined || frames.length === n);

  const fromEot = eot ? framesFromOffsets(eot, fragments) : undefined;
  if (agrees(fromEot)) return { frames: fromEot };
  const fromBot = framesFromOffsets(bot, fragments);
  if (agrees(fromBot)) return { frames: fromBot };
  if (n === 1) return { frames: [fragments.map(range)] };
  if (n !== undefined && fragments.length === n) return { frames: fragments.map((f) => [range(f)]) };
  if (!isVideoTransferSyntax(transferSyntaxUID) && fragments[0].startMarker) {
    const groups: ByteRange[][] = [];
    for (const f of fragments) {
      if (f.startMarker) groups.push([]);
      groups[groups.length - 1].push(range(f));
    }
    if (n === undefined || groups.length === n) return { frames: groups };
  }
  return { frames: [], framesUnknown: true };
}

function extendedOffsetsFromJson(ds: DicomJsonDataset): number[] | undefined {
  const b64 = ds[Tag.ExtendedOffsetTable]?.InlineBinary;
  if (!b64) return undefined;
  const bytes = base64ToBytes(b64); // JSON binary is little endian (PS3.18 F.2.7)
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let i = 0; i + 8 <= bytes.length; i += 8) out.push(Number(dv.getBigUint64(i, true)));
  return out;
}

type ScanPhase = 'header' | 'bot' | 'fragment' | 'done';

/**
 * Completes and validates a pixel data layout from the bytes that follow the header.
 *
 * Feed it chunks in order with their absolute offsets (chunks, or parts of chunks, before
 * the position it needs are ignored, so feeding the whole file from offset 0 is fine).
 * `finish(totalLength)` throws DicomParseError 'TRUNCATED' when the value or the item
 * structure runs past the end, 'MALFORMED' for a broken item structure. Whatever follows
 * the pixel data (trailing padding, signatures) is ignored.
 */
export class PixelDataScanner {
  private readonly base: PixelDataLayout;
  private readonly dataset: DicomJsonDataset;
  private readonly transferSyntaxUID: string;
  private readonly deflatedLayout: PixelDataLayout | undefined;
  private readonly littleEndian: boolean;
  private readonly maxItems: number;
  private readonly extendedOffsets: number[] | undefined;

  private pos: number;
  private phase: ScanPhase = 'header';
  private readonly header = new Uint8Array(8);
  private headerFill = 0;
  private remaining = 0; // bytes left in the current BOT / fragment
  private botParts: Uint8Array[] = [];
  private botSeen = false;
  private sniff = new Uint8Array(8);
  private sniffFill = 0;
  private readonly fragments: Fragment[] = [];
  private end: number | undefined;

  constructor(parsed: ParsedPart10) {
    if (!parsed.pixelData) throw new Error('PixelDataScanner: the parsed object has no pixel data');
    const state = (parsed as WithScanState)[SCAN_STATE];
    this.base = parsed.pixelData;
    this.dataset = parsed.dataset;
    this.transferSyntaxUID = parsed.transferSyntaxUID;
    // Deflated objects were parsed whole (inflated): the stored bytes are compressed and tell us nothing more.
    this.deflatedLayout = parsed.deflated ? parsed.pixelData : undefined;
    this.littleEndian = state?.littleEndian ?? parsed.transferSyntaxUID !== '1.2.840.10008.1.2.2';
    this.maxItems = state?.maxElements ?? DEFAULT_PARSE_LIMITS.maxElements;
    this.extendedOffsets = state?.extendedOffsets ?? extendedOffsetsFromJson(parsed.dataset);
    this.pos = this.base.valueOffset;
    if (!this.base.encapsulated) {
      this.phase = 'done';
      this.end = this.base.valueOffset + (this.base.valueLength ?? 0);
    }
    if (state?.head && !this.deflatedLayout) this.push(state.head, 0);
  }

  /** Absolute offset just past the pixel data (after the sequence delimiter), once seen. */
  get endOffset(): number | undefined {
    return this.end;
  }

  push(chunk: Uint8Array, absoluteOffset: number): void {
    if (this.phase === 'done' || this.deflatedLayout) return;
    const chunkEnd = absoluteOffset + chunk.length;
    if (chunkEnd <= this.pos) return;
    if (absoluteOffset > this.pos) {
      // Fragment bytes past the first few may be skipped; item headers may not.
      if (this.phase === 'fragment' && this.sniffFill >= this.sniff.length && absoluteOffset <= this.pos + this.remaining) {
        this.remaining -= absoluteOffset - this.pos;
        this.pos = absoluteOffset;
      } else {
        throw new Error(`PixelDataScanner: chunk at ${absoluteOffset} leaves a gap (next byte needed: ${this.pos})`);
      }
    }
    let i = this.pos - absoluteOffset;
    // (phase changes inside onHeader(); read it through a function so TS does not narrow it)
    const phase = (): ScanPhase => this.phase;
    while (i < chunk.length && phase() !== 'done') {
      const avail = chunk.length - i;
      if (this.phase === 'header') {
        const n = Math.min(8 - this.headerFill, avail);
        this.header.set(chunk.subarray(i, i + n), this.headerFill);
        this.headerFill += n;
        i += n;
        this.pos += n;
        if (this.headerFill === 8) this.onHeader();
      } else if (this.phase === 'bot') {
        const n = Math.min(this.remaining, avail);
        this.botParts.push(chunk.slice(i, i + n));
        i += n;
        this.pos += n;
        this.remaining -= n;
        if (this.remaining === 0) this.phase = 'header';
      } else {
        // fragment: keep its first bytes (start-marker sniffing), skip the rest
        const frag = this.fragments[this.fragments.length - 1];
        if (this.sniffFill < this.sniff.length) {
          const n = Math.min(this.sniff.length - this.sniffFill, this.remaining, avail);
          this.sniff.set(chunk.subarray(i, i + n), this.sniffFill);
          this.sniffFill += n;
          frag.startMarker = hasStartMarker(this.sniff.subarray(0, this.sniffFill));
          i += n;
          this.pos += n;
          this.remaining -= n;
        }
        const n = Math.min(this.remaining, chunk.length - i);
        i += n;
        this.pos += n;
        this.remaining -= n;
        if (this.remaining === 0) this.phase = 'header';
      }
    }
  }

  private onHeader(): void {
    this.headerFill = 0;
    const dv = new DataView(this.header.buffer);
    const le = this.littleEndian;
    const group = dv.getUint16(0, le);
    const element = dv.getUint16(2, le);
    const length = dv.getUint32(4, le);
    if (group === 0xfffe && element === 0xe0dd) {
      this.phase = 'done';
      this.end = this.pos;
      return;
    }
    if (group !== 0xfffe || element !== 0xe000) {
      throw new DicomParseError('MALFORMED', `unexpected (${hex4(group)},${hex4(element)}) in encapsulated pixel data at ${this.pos - 8}`);
    }
    if (length === 0xffffffff) throw new DicomParseError('MALFORMED', 'undefined-length item in encapsulated pixel data');
    if (this.fragments.length + 1 > this.maxItems) throw new DicomParseError('LIMIT_EXCEEDED', 'too many pixel data fragments');
    if (!this.botSeen) {
      // PS3.5 A.4: the first item is the Basic Offset Table, 4 bytes per frame.
      this.botSeen = true;
      if (length % 4 !== 0) throw new DicomParseError('MALFORMED', `basic offset table length ${length} is not a multiple of 4`);
      this.remaining = length;
      this.phase = length ? 'bot' : 'header';
      return;
    }
    this.fragments.push({ item: this.pos - 8, offset: this.pos, length, startMarker: false });
    this.remaining = length;
    this.sniffFill = 0;
    this.phase = length ? 'fragment' : 'header';
  }

  finish(totalLength: number): PixelDataLayout {
    if (this.deflatedLayout) return this.deflatedLayout;
    const b = this.base;
    if (!b.encapsulated) {
      const length = b.valueLength ?? 0;
      if (b.valueOffset + length > totalLength) {
        throw new DicomParseError('TRUNCATED', `pixel data needs ${b.valueOffset + length} bytes, the object has ${totalLength}`);
      }
      return { tag: b.tag, vr: b.vr, valueOffset: b.valueOffset, valueLength: b.valueLength, encapsulated: false, ...nativeFrames(this.dataset, b.valueOffset, length) };
    }
    if (this.phase !== 'done' || (this.end !== undefined && this.end > totalLength)) {
      throw new DicomParseError('TRUNCATED', 'encapsulated pixel data ends before its sequence delimiter');
    }
    const bot = this.basicOffsets();
    const result = encapsulatedFrames(this.dataset, this.transferSyntaxUID, bot, this.extendedOffsets, this.fragments);
    const layout: PixelDataLayout = { tag: b.tag, vr: b.vr, valueOffset: b.valueOffset, encapsulated: true, frames: result.frames, fragments: this.fragments.map(range) };
    if (result.framesUnknown) layout.framesUnknown = true;
    return layout;
  }

  private basicOffsets(): number[] {
    const total = this.botParts.reduce((s, p) => s + p.length, 0);
    const bytes = new Uint8Array(total);
    let o = 0;
    for (const p of this.botParts) {
      bytes.set(p, o);
      o += p.length;
    }
    const dv = new DataView(bytes.buffer);
    const out: number[] = [];
    for (let i = 0; i + 4 <= total; i += 4) out.push(dv.getUint32(i, this.littleEndian));
    return out;
  }
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}
