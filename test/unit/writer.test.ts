import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createInflateRaw, deflateRawSync } from 'node:zlib';
import type { DicomJsonDataset } from '../../functions/core/dicom/json-model';
import {
  DicomWriteError,
  IMPLEMENTATION_CLASS_UID,
  decodeBase64,
  encodeDataset,
  formatDS,
  writePart10,
  writePart10Header,
} from '../../functions/core/dicom/writer';
import {
  BAD_UIDS,
  CHARSET_NAMES,
  SYNTH_UID_ROOT,
  TS,
  crInstance,
  ctSeries,
  deepNesting,
  deflateBomb,
  elementCountBomb,
  encapsulatedInstance,
  frameNumberOf,
  hugeDeclaredLength,
  largeInstance,
  malformedFiles,
  missingTransferSyntax,
  mrInstance,
  multiFrameInstance,
  notPart10,
  patientWithName,
  badUidInstance,
  resetUidCounter,
  truncatedFile,
  uid,
  wrongStudyInstance,
} from '../fixtures/synthetic';
import { makeTempDir } from '../helpers/tmp';

const DCMDUMP = '/usr/bin/dcmdump';
const tmp = makeTempDir('writer-test-');
afterAll(() => tmp.cleanup());
let fileNo = 0;

function save(bytes: Uint8Array): string {
  const file = path.join(tmp.dir, `f${++fileNo}.dcm`);
  fs.writeFileSync(file, bytes);
  return file;
}

/** dcmdump -dc +E: exit status and everything printed (errors are "E:" lines). */
function dcmdump(bytes: Uint8Array, ...extra: string[]): { status: number | null; out: string } {
  const r = spawnSync(DCMDUMP, ['-dc', '+E', ...extra, save(bytes)], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

function expectValid(bytes: Uint8Array): string {
  const { status, out } = dcmdump(bytes);
  expect(out).not.toMatch(/^[EFW]: /m);
  expect(status).toBe(0);
  return out;
}

/** Data set lines of a dump (after "# Dicom-Data-Set"), without the transfer syntax comment. */
function datasetLines(dump: string): string[] {
  const start = dump.indexOf('# Dicom-Data-Set');
  return dump
    .slice(start)
    .split('\n')
    .filter((l) => l.startsWith('(') || l.startsWith(' '))
    .map((l) => l.replace(/\s+#.*$/, '').trim());
}

interface WalkedElement {
  tag: number;
  vr: string;
  offset: number;
  length: number;
}

/** Top-level walk of an explicit VR LE file (no undefined lengths), stopping at the first overrun. */
function walkExplicitLE(bytes: Uint8Array): { elements: WalkedElement[]; overrun?: WalkedElement } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const long = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
  const elements: WalkedElement[] = [];
  let pos = 132;
  while (pos + 8 <= bytes.length) {
    const tag = ((dv.getUint16(pos, true) << 16) | dv.getUint16(pos + 2, true)) >>> 0;
    const vr = String.fromCharCode(bytes[pos + 4], bytes[pos + 5]);
    let length: number;
    let header = 8;
    if (long.has(vr)) {
      if (pos + 12 > bytes.length) return { elements, overrun: { tag, vr, offset: pos, length: 12 } };
      length = dv.getUint32(pos + 8, true);
      header = 12;
    } else {
      length = dv.getUint16(pos + 6, true);
    }
    const el = { tag, vr, offset: pos, length };
    if (length === 0xffffffff) throw new Error('undefined length not handled by this walker');
    if (pos + header + length > bytes.length) return { elements, overrun: el };
    elements.push(el);
    pos += header + length;
  }
  return { elements, overrun: pos < bytes.length ? { tag: 0, vr: '', offset: pos, length: 8 } : undefined };
}

function groupLengthIsExact(bytes: Uint8Array): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  expect(String.fromCharCode(...bytes.subarray(128, 132))).toBe('DICM');
  expect(dv.getUint16(132, true)).toBe(0x0002);
  expect(dv.getUint16(134, true)).toBe(0x0000);
  const groupLength = dv.getUint32(140, true);
  const end = 144 + groupLength;
  // Every element before `end` is group 0002, the first after it is not.
  const { elements } = walkExplicitLE(bytes.subarray(0, end));
  expect(elements.every((e) => e.tag >>> 16 === 0x0002)).toBe(true);
  expect(elements[elements.length - 1].offset + 8 + elements[elements.length - 1].length).toBeLessThanOrEqual(end);
  expect(dv.getUint16(end, true) === 0x0002 && dv.getUint16(end, false) === 0x0200).toBe(false);
}

function tagOf(bytes: Uint8Array, g: number, e: number, le = true): number {
  const needle = le ? [g & 0xff, g >> 8, e & 0xff, e >> 8] : [g >> 8, g & 0xff, e >> 8, e & 0xff];
  outer: for (let i = 132; i < bytes.length - 4; i++) {
    for (let j = 0; j < 4; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const baseDataset = (): DicomJsonDataset => ({
  '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] },
  '00080018': { vr: 'UI', Value: [uid()] },
  '00080020': { vr: 'DA', Value: ['20240102'] },
  '00080060': { vr: 'CS', Value: ['OT'] },
  '00080064': { vr: 'CS', Value: ['WSD'] },
  '00090010': { vr: 'LO', Value: ['SYNTH CREATOR'] },
  '00091001': { vr: 'OB', InlineBinary: 'AQID' }, // odd length → NUL padded
  '00091002': { vr: 'OW', InlineBinary: 'AQIDBA==' },
  '00091003': { vr: 'OF', InlineBinary: 'AACAPwAAAEA=' }, // 1.0f, 2.0f LE
  '00100010': { vr: 'PN', Value: [{ Alphabetic: 'SYNTH^PATIENT0001' }] },
  '00100020': { vr: 'LO', Value: ['SYN000001'] },
  '00181063': { vr: 'DS', Value: [33.3] },
  '00189087': { vr: 'FD', Value: [1.5] },
  '00189219': { vr: 'SS', Value: [-5] },
  '0020000D': { vr: 'UI', Value: [uid()] },
  '0020000E': { vr: 'UI', Value: [uid()] },
  '00200013': { vr: 'IS', Value: [7] },
  '00200032': { vr: 'DS', Value: [-0.1234567890123456, 1e-20, 12345678901234567890] },
  '00280002': { vr: 'US', Value: [1] },
  '00280004': { vr: 'CS', Value: ['MONOCHROME2'] },
  '00280009': { vr: 'AT', Value: ['00181063'] },
  '00280010': { vr: 'US', Value: [2] },
  '00280011': { vr: 'US', Value: [2] },
  '00280100': { vr: 'US', Value: [16] },
  '00280101': { vr: 'US', Value: [16] },
  '00280102': { vr: 'US', Value: [15] },
  '00280103': { vr: 'US', Value: [1] },
  '00281052': { vr: 'DS', Value: [-1024] },
  '00081161': { vr: 'UL', Value: [70000] },
  '00400275': {
    vr: 'SQ',
    Value: [
      {
        '00401001': { vr: 'SH', Value: ['RP0001'] },
        '00400008': { vr: 'SQ', Value: [{ '00080100': { vr: 'SH', Value: ['X1'] } }] },
      },
      {},
    ],
  },
  '00081110': { vr: 'SQ', Value: [] },
});

const pixels = new Uint8Array([1, 0, 2, 0, 0xfd, 0xff, 4, 1]);

describe('writePart10', () => {
  test.each([
    ['explicit VR little endian', TS.ExplicitVRLittleEndian, false],
    ['explicit VR little endian, undefined lengths', TS.ExplicitVRLittleEndian, true],
    ['implicit VR little endian', TS.ImplicitVRLittleEndian, false],
    ['implicit VR little endian, undefined lengths', TS.ImplicitVRLittleEndian, true],
    ['explicit VR big endian', TS.ExplicitVRBigEndian, false],
    ['explicit VR big endian, undefined lengths', TS.ExplicitVRBigEndian, true],
  ])('%s passes dcmdump', (_name, ts, undefinedLengthSequences) => {
    const bytes = writePart10(baseDataset(), { transferSyntaxUID: ts, pixelData: pixels, undefinedLengthSequences });
    const out = expectValid(bytes);
    groupLengthIsExact(bytes);
    expect(out).toContain(ts === TS.ExplicitVRBigEndian ? 'Big Endian Explicit' : ts === TS.ImplicitVRLittleEndian ? 'Little Endian Implicit' : 'Little Endian Explicit');
    expect(out).toMatch(/\(0020,0013\) IS \[7 \]/);
    expect(out).toMatch(/\(0028,0009\) AT \(0018,1063\)/);
    expect(out).toMatch(/\(0018,9219\) SS -5/);
    expect(out).toMatch(/\(0018,9087\) FD 1.5/);
    expect(out).toMatch(/\(0008,1161\) UL 70000/);
    expect(out).toMatch(/\(7fe0,0010\) OW 0001\\0002\\fffd\\0104/);
    expect(out).toContain(`[${IMPLEMENTATION_CLASS_UID}`);
  });

  test('little and big endian encode the same values', () => {
    const ds = baseDataset();
    const le = datasetLines(expectValid(writePart10(ds, { pixelData: pixels })));
    const be = datasetLines(expectValid(writePart10(ds, { pixelData: pixels, transferSyntaxUID: TS.ExplicitVRBigEndian })));
    expect(be).toEqual(le);
    expect(le.join('\n')).toContain('OF 1\\2');
    expect(le.join('\n')).toContain('OW 0201\\0403');
    // Implicit VR: same values; private tags lose their VR (dcmdump shows ??).
    const imp = datasetLines(expectValid(writePart10(ds, { pixelData: pixels, transferSyntaxUID: TS.ImplicitVRLittleEndian })));
    expect(imp.filter((l) => !l.startsWith('(0009'))).toEqual(le.filter((l) => !l.startsWith('(0009')));
  });

  test('big endian really swaps binary values', () => {
    const bytes = writePart10(baseDataset(), { pixelData: pixels, transferSyntaxUID: TS.ExplicitVRBigEndian });
    const rows = tagOf(bytes, 0x0028, 0x0010, false);
    expect(rows).toBeGreaterThan(0);
    expect(Array.from(bytes.subarray(rows, rows + 10))).toEqual([0x00, 0x28, 0x00, 0x10, 0x55, 0x53, 0x00, 0x02, 0x00, 0x02]);
    expect(Array.from(bytes.subarray(bytes.length - 8))).toEqual([0, 1, 0, 2, 0xff, 0xfd, 1, 4]);
  });

  test('elements are sorted by tag and padded to even length', () => {
    const bytes = writePart10(baseDataset(), { pixelData: pixels });
    const { elements, overrun } = walkExplicitLE(bytes);
    expect(overrun).toBeUndefined();
    const tags = elements.map((e) => e.tag);
    expect(tags).toEqual([...tags].sort((a, b) => a - b));
    expect(elements.every((e) => e.length % 2 === 0)).toBe(true);
    const ob = elements.find((e) => e.tag === 0x00091001)!;
    expect(Array.from(bytes.subarray(ob.offset + 12, ob.offset + 16))).toEqual([1, 2, 3, 0]);
    const withOddUid = walkExplicitLE(writePart10({ ...baseDataset(), '00080018': { vr: 'UI', Value: ['1.2.3'] } }));
    expect(withOddUid.elements.find((e) => e.tag === 0x00080018)!.length).toBe(6);
    const da = elements.find((e) => e.tag === 0x00100020)!; // "SYN000001" → space
    expect(bytes[da.offset + 8 + da.length - 1]).toBe(0x20);
  });

  test('file meta carries the SOP UIDs, transfer syntax and implementation', () => {
    const ds = baseDataset();
    const out = expectValid(writePart10(ds, { sourceApplicationEntityTitle: 'SYNTH_AE' }));
    expect(out).toContain(`(0002,0003) UI [${ds['00080018'].Value![0]}]`);
    expect(out).toMatch(/\(0002,0002\) UI =SecondaryCaptureImageStorage/);
    expect(out).toMatch(/\(0002,0010\) UI =LittleEndianExplicit/);
    expect(out).toMatch(/\(0002,0013\) SH \[DWSLS_WRITER_0.1\]/);
    expect(out).toMatch(/\(0002,0016\) AE \[SYNTH_AE\]/);
    expect(out).toMatch(/\(0002,0001\) OB 00\\01/);
  });

  test('preamble: default zeros, custom accepted, wrong size rejected', () => {
    const ds = baseDataset();
    expect(writePart10(ds).subarray(0, 128).every((b) => b === 0)).toBe(true);
    const pre = new Uint8Array(128).fill(0x41);
    expect(writePart10(ds, { preamble: pre }).subarray(0, 128).every((b) => b === 0x41)).toBe(true);
    expect(() => writePart10(ds, { preamble: new Uint8Array(10) })).toThrow(DicomWriteError);
  });

  test('non-ASCII text sets SpecificCharacterSet to ISO_IR 192 (UTF-8)', () => {
    for (const name of [CHARSET_NAMES.greek, CHARSET_NAMES.japanese, CHARSET_NAMES.korean]) {
      const inst = mrInstance({ patient: patientWithName(name), rows: 8, columns: 8 });
      const out = expectValid(inst.bytes);
      expect(out).toContain('(0008,0005) CS [ISO_IR 192]');
      const expected = typeof name === 'string' ? name : [name.Alphabetic, name.Ideographic, name.Phonetic].join('=');
      expect(out).toContain(`PN [${expected}]`);
    }
    // An input that claims Latin-1 but is given Unicode text is written as UTF-8 and says so.
    const ds = { ...baseDataset(), '00080005': { vr: 'CS', Value: ['ISO_IR 100'] }, '00081030': { vr: 'LO', Value: ['Étude'] } };
    expect(expectValid(writePart10(ds))).toContain('(0008,0005) CS [ISO_IR 192]');
    // All-ASCII data sets are left alone.
    expect(expectValid(writePart10(baseDataset()))).not.toContain('(0008,0005)');
    const nested = { ...baseDataset(), '00400275': { vr: 'SQ', Value: [{ '00321060': { vr: 'LO', Value: ['Ωmega'] } }] } };
    expect(expectValid(writePart10(nested))).toContain('(0008,0005) CS [ISO_IR 192]');
  });

  test('PN objects become Alphabetic=Ideographic=Phonetic, trailing empty groups dropped', () => {
    const ds = {
      ...baseDataset(),
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'A^B', Phonetic: 'a^b' }] },
      '00080090': { vr: 'PN', Value: [{ Alphabetic: 'C^D', Ideographic: '' }, null, 'E^F'] },
    };
    const out = expectValid(writePart10(ds));
    expect(out).toContain('PN [A^B==a^b]');
    expect(out).toContain('PN [C^D\\\\E^F]');
  });

  test('formatDS keeps values within 16 characters', () => {
    for (const n of [0, 1, -1, 33.3, -0.1234567890123456, 1e-20, 1.2345678901234567e-10, 12345678901234567890, -1.7976931348623157e308, 5e-324, 123456789.123456789]) {
      const s = formatDS(n);
      expect(s.length).toBeLessThanOrEqual(16);
      expect(s).toMatch(/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/);
      expect(Math.abs(Number(s) - n)).toBeLessThanOrEqual(Math.abs(n) * 1e-8);
    }
    expect(() => formatDS(NaN)).toThrow(DicomWriteError);
    expect(() => formatDS(Infinity)).toThrow(DicomWriteError);
  });

  test('invalid input is rejected with stable codes', () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return (e as DicomWriteError).code;
      }
      return undefined;
    };
    const ds = baseDataset();
    expect(code(() => writePart10({ ...ds, '00081030': { vr: 'LO', Value: ['x'.repeat(70000)] } }))).toBe('VALUE_TOO_LONG');
    expect(code(() => writePart10({ ...ds, '00081030': { vr: 'XX', Value: ['x'] } }))).toBe('INVALID_VR');
    expect(code(() => writePart10({ ...ds, ZZZZ0010: { vr: 'LO', Value: ['x'] } }))).toBe('INVALID_TAG');
    expect(code(() => writePart10({ ...ds, '00200013': { vr: 'IS', Value: [1.5] } }))).toBe('INVALID_VALUE');
    expect(code(() => writePart10({ ...ds, '00280010': { vr: 'US', Value: ['abc'] } }))).toBe('INVALID_VALUE');
    expect(code(() => writePart10({ '00100010': { vr: 'PN', Value: ['A'] } }))).toBe('MISSING_SOP_UIDS');
    expect(code(() => writePart10({ ...ds, '00091004': { vr: 'OB', BulkDataURI: 'http://x/y' } }))).toBe('UNRESOLVED_BULK_DATA');
    expect(code(() => writePart10(ds, { transferSyntaxUID: TS.RLELossless, pixelData: pixels }))).toBe('INVALID_OPTIONS');
    expect(code(() => writePart10(ds, { pixelData: { fragments: [pixels] } }))).toBe('INVALID_OPTIONS');
    expect(code(() => writePart10(ds, { transferSyntaxUID: TS.DeflatedExplicitVRLittleEndian }))).toBe('INVALID_OPTIONS');
  });

  test('BulkDataURI is resolved through the callback', () => {
    const ds = { ...baseDataset(), '00091004': { vr: 'OB', BulkDataURI: 'bulk://one' } };
    const out = expectValid(writePart10(ds, { resolveBulkData: (uri) => (uri === 'bulk://one' ? new Uint8Array([9, 8]) : new Uint8Array()) }));
    expect(out).toMatch(/\(0009,1004\) OB 09\\08/);
  });

  test('group 0002 and group length elements in the input are ignored', () => {
    const ds = {
      ...baseDataset(),
      '00020010': { vr: 'UI', Value: ['1.2.3'] },
      '00080000': { vr: 'UL', Value: [1] },
    };
    const out = expectValid(writePart10(ds));
    expect(out).not.toContain('(0008,0000)');
    expect(out).toMatch(/\(0002,0010\) UI =LittleEndianExplicit/);
  });

  test('deflated explicit VR little endian with a deflate callback', () => {
    const bytes = writePart10(baseDataset(), {
      transferSyntaxUID: TS.DeflatedExplicitVRLittleEndian,
      pixelData: pixels,
      deflateRaw: (d) => deflateRawSync(d),
    });
    const out = expectValid(bytes);
    expect(out).toContain('Deflated Explicit VR Little Endian'.split(' ')[0]);
    expect(out).toMatch(/\(7fe0,0010\) OW 0001\\0002/);
  });

  test('encapsulated pixel data with a Basic Offset Table', () => {
    const fragments = [new Uint8Array([1, 2, 3]), new Uint8Array([4, 5, 6, 7]), new Uint8Array([8])];
    const bytes = writePart10(baseDataset(), { transferSyntaxUID: TS.RLELossless, pixelData: { fragments, offsetTable: true } });
    const { out } = dcmdump(bytes);
    expect(out).toMatch(/\(7fe0,0010\) OB \(PixelSequence #=4\)/);
    expect(out).toMatch(/\(fffe,e000\) pi 00\\00\\00\\00\\0c\\00\\00\\00\\18\\00\\00\\00 /);
    const pos = tagOf(bytes, 0x7fe0, 0x0010);
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    expect(dv.getUint32(pos + 8, true)).toBe(0xffffffff);
    const frameStarts = writePart10(baseDataset(), { transferSyntaxUID: TS.RLELossless, pixelData: { fragments, offsetTable: [0, 2] } });
    expect(dcmdump(frameStarts).out).toMatch(/\(fffe,e000\) pi 00\\00\\00\\00\\18\\00\\00\\00 /);
    expect(dcmdump(writePart10(baseDataset(), { transferSyntaxUID: TS.RLELossless, pixelData: { fragments } })).out).toMatch(
      /\(fffe,e000\) pi \(no value available\)/,
    );
  });

  test('writePart10Header + streamed pixels equals writePart10', () => {
    const ds = baseDataset();
    for (const ts of [TS.ExplicitVRLittleEndian, TS.ImplicitVRLittleEndian, TS.ExplicitVRBigEndian]) {
      const whole = writePart10(ds, { transferSyntaxUID: ts, pixelData: pixels });
      const header = writePart10Header(ds, { transferSyntaxUID: ts, pixelDataLength: pixels.length });
      const streamedPixels = ts === TS.ExplicitVRBigEndian ? new Uint8Array([0, 1, 0, 2, 0xff, 0xfd, 1, 4]) : pixels;
      expect(Buffer.concat([header, streamedPixels]).equals(Buffer.from(whole))).toBe(true);
    }
    expect(() => writePart10Header(ds, { pixelDataLength: 3 })).toThrow(DicomWriteError);
    expect(() => writePart10Header({ ...ds, FFFCFFFC: { vr: 'OB', InlineBinary: 'AAA=' } }, { pixelDataLength: 2 })).toThrow(DicomWriteError);
  });

  test('elements after Pixel Data are written after it', () => {
    const bytes = writePart10({ ...baseDataset(), FFFCFFFC: { vr: 'OB', InlineBinary: 'AAAAAA==' } }, { pixelData: pixels });
    const out = expectValid(bytes);
    expect(out.indexOf('(fffc,fffc)')).toBeGreaterThan(out.indexOf('(7fe0,0010)'));
  });

  test('encodeDataset and decodeBase64 helpers', () => {
    expect(Array.from(decodeBase64('AQID'))).toEqual([1, 2, 3]);
    expect(Array.from(decodeBase64('AQIDBA=='))).toEqual([1, 2, 3, 4]);
    expect(Array.from(decodeBase64('AQ\nID'))).toEqual([1, 2, 3]);
    const ds = encodeDataset({ '00100020': { vr: 'LO', Value: ['SYN1'] } });
    expect(Array.from(ds)).toEqual([0x10, 0, 0x20, 0, 0x4c, 0x4f, 4, 0, 0x53, 0x59, 0x4e, 0x31]);
  });
});

describe('synthetic fixtures', () => {
  test('CT series of 300 slices of 512x512 in under 2 s', () => {
    const t0 = performance.now();
    const series = ctSeries({ count: 300 });
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(2000);
    expect(series).toHaveLength(300);
    expect(new Set(series.map((s) => s.sopInstanceUID)).size).toBe(300);
    expect(new Set(series.map((s) => s.seriesInstanceUID)).size).toBe(1);
    expect(series.every((s) => s.sopInstanceUID.startsWith(SYNTH_UID_ROOT))).toBe(true);
    expect(series[0].bytes.length).toBeGreaterThan(512 * 512 * 2);
    for (const i of [0, 299]) {
      const out = expectValid(series[i].bytes);
      expect(out).toContain('UI =CTImageStorage');
      expect(out).toMatch(/\(0010,0010\) PN \[SYNTH\^PATIENT0001 ?\]/);
      expect(out).toMatch(/\(0010,0020\) LO \[SYN000001 ?\]/);
      expect(out).toMatch(/\(0028,0103\) US 1/);
      expect(out).toMatch(/\(0028,1052\) DS \[-1024 \]/);
      expect(out).toMatch(/\(0028,1050\) DS \[40\]/);
    }
    const z = series.map((s) => (s.dataset['00200032'].Value as number[])[2]);
    expect(z[1] - z[0]).toBeCloseTo(-1.25);
    expect(z[299] - z[298]).toBeCloseTo(-1.25);
    // Pixel data is last: first pixel is the instance number (int16 LE).
    const firstPixel = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getInt16(b.length - 512 * 512 * 2, true);
    expect(firstPixel(series[0].bytes)).toBe(1);
    expect(firstPixel(series[299].bytes)).toBe(300);
  });

  test('CT options: given UIDs, start instance, big endian', () => {
    const studyInstanceUID = uid();
    const seriesInstanceUID = uid();
    const s = ctSeries({ count: 2, studyInstanceUID, seriesInstanceUID, startInstance: 10, rows: 32, columns: 32, transferSyntaxUID: TS.ExplicitVRBigEndian });
    expect(s.map((i) => i.instanceNumber)).toEqual([10, 11]);
    expect(s[0].studyInstanceUID).toBe(studyInstanceUID);
    expect(s[1].seriesInstanceUID).toBe(seriesInstanceUID);
    expect(expectValid(s[0].bytes)).toContain('Big Endian Explicit');
  });

  test('generators are deterministic for the same call order', () => {
    const run = (start: number) => {
      resetUidCounter(start);
      return mrInstance({ rows: 16, columns: 16 }).bytes;
    };
    expect(Buffer.from(run(1000)).equals(Buffer.from(run(1000)))).toBe(true);
  });

  test('MR and CR instances are valid', () => {
    const mr = mrInstance();
    expect(expectValid(mr.bytes)).toContain('UI =MRImageStorage');
    const cr = crInstance({ transferSyntaxUID: TS.ImplicitVRLittleEndian });
    const out = expectValid(cr.bytes);
    expect(out).toContain('UI =ComputedRadiographyImageStorage');
    expect(out).toMatch(/\(0028,0010\) US 1024/);
    expect(out).toMatch(/\(0028,0011\) US 880/);
  });

  test('multi-frame instance has 50 distinguishable frames', () => {
    const mf = multiFrameInstance({ frames: 50, rows: 32, columns: 32 });
    const out = expectValid(mf.bytes);
    expect(out).toMatch(/\(0028,0008\) IS \[50\]/);
    expect(out).toContain('UI =MultiframeGrayscaleWordSecondaryCaptureImageStorage');
    const pixelStart = mf.bytes.length - 50 * mf.frameLength;
    const frames = Array.from({ length: 50 }, (_, i) => mf.bytes.subarray(pixelStart + i * mf.frameLength, pixelStart + (i + 1) * mf.frameLength));
    expect(frames.map((f) => frameNumberOf(f))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(new Set(frames.map((f) => Buffer.from(f).toString('base64'))).size).toBe(50);
    // dcmtk agrees on where the pixel data is.
    const dir = path.join(tmp.dir, 'raw');
    fs.mkdirSync(dir);
    spawnSync(DCMDUMP, ['+W', dir, save(mf.bytes)]);
    const raw = fs.readFileSync(path.join(dir, fs.readdirSync(dir)[0]));
    expect(raw.equals(Buffer.from(mf.bytes.subarray(pixelStart)))).toBe(true);

    const byte = multiFrameInstance({ frames: 5, rows: 4, columns: 4, bitsAllocated: 8, transferSyntaxUID: TS.ExplicitVRBigEndian });
    expect(expectValid(byte.bytes)).toContain('UI =MultiframeGrayscaleByteSecondaryCaptureImageStorage');
    const start = byte.bytes.length - 5 * 16;
    expect(frameNumberOf(byte.bytes.subarray(start + 4 * 16))).toBe(5);
  });

  test('RLE encapsulated instance decodes (dcmdrle and our own decoder)', () => {
    const enc = encapsulatedInstance({ frames: 3, rows: 40, columns: 50 });
    const out = expectValid(enc.bytes);
    expect(out).toContain('=RLELossless');
    expect(out).toMatch(/PixelSequence #=4/);
    enc.fragments.forEach((f, i) => expect(Buffer.from(rleDecode(f, 40 * 50)).equals(Buffer.from(enc.decodedFrames[i]))).toBe(true));
    expect(enc.decodedFrames.map((f) => frameNumberOf(f))).toEqual([1, 2, 3]);
    const decoded = path.join(tmp.dir, 'rle-decoded.dcm');
    const r = spawnSync('/usr/bin/dcmdrle', [save(enc.bytes), decoded], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const pixelsOut = fs.readFileSync(decoded);
    const all = Buffer.concat(enc.decodedFrames);
    expect(pixelsOut.subarray(pixelsOut.length - all.length).equals(all)).toBe(true);
  });

  test('large instance streams header + frames', () => {
    const big = largeInstance({ bytes: 4 * 1024 * 1024, rows: 256, columns: 256 });
    expect(big.frames).toBe(32);
    const frames = Array.from({ length: big.frames }, (_, i) => Buffer.from(big.frame(i + 1)));
    expect(frames.map((f) => frameNumberOf(f))).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
    const bytes = Buffer.concat([big.header, ...frames]);
    expect(bytes.length).toBe(big.totalLength);
    expect(expectValid(bytes)).toMatch(/\(0028,0008\) IS \[32\]/);
  });
});

describe('malformed-input helpers', () => {
  test('truncated files are shorter than their declared lengths', () => {
    for (const at of ['pixel-data', 'element'] as const) {
      const bytes = truncatedFile(at);
      const { overrun } = walkExplicitLE(bytes);
      expect(overrun).toBeDefined();
      expect(overrun!.tag).toBe(at === 'pixel-data' ? 0x7fe00010 : 0x00100010);
    }
    const meta = truncatedFile('file-meta');
    const groupLength = new DataView(meta.buffer, meta.byteOffset).getUint32(140, true);
    expect(meta.length).toBeLessThan(144 + groupLength);
    expect(dcmdump(truncatedFile('pixel-data')).out).toMatch(/^E: /m);
  });

  test('huge declared lengths run far past the end', () => {
    for (const where of ['pixel-data', 'element'] as const) {
      const bytes = hugeDeclaredLength(where);
      const { overrun } = walkExplicitLE(bytes);
      expect(overrun?.length).toBe(0xfffffff0);
      expect(overrun?.tag).toBe(where === 'pixel-data' ? 0x7fe00010 : 0x00091010);
      expect(bytes.length).toBeLessThan(10_000);
    }
  });

  test('deep nesting has 200 nested sequences', () => {
    const out = expectValid(deepNesting(200));
    expect(out.match(/\(0040,a730\) SQ/g)).toHaveLength(200);
    expect(out).toContain('SYNTH DEEPEST');
    expect(expectValid(deepNesting(20, false)).match(/\(0040,a730\) SQ/g)).toHaveLength(20);
  });

  test('element-count bombs hold more than 200 000 elements', () => {
    // Structure checked by dcmtk on a small one, item count by a byte walk on the default one.
    const small = dcmdump(elementCountBomb('items', 1000)).out;
    expect(small).toMatch(/\(0040,a730\) SQ \(Sequence with undefined length #=1000\)/);
    expect(small).not.toMatch(/^[EW]: /m);
    const items = elementCountBomb('items');
    const seq = tagOf(items, 0x0040, 0xa730);
    const dv = new DataView(items.buffer, items.byteOffset);
    let count = 0;
    let pos = seq + 12;
    while (dv.getUint16(pos, true) === 0xfffe && dv.getUint16(pos + 2, true) === 0xe000) {
      count++;
      pos += 8 + dv.getUint32(pos + 4, true);
    }
    expect(count).toBe(250_000);
    expect(dv.getUint16(pos + 2, true)).toBe(0xe0dd);
    const flat = elementCountBomb('flat');
    const { elements, overrun } = walkExplicitLE(flat);
    expect(overrun).toBeUndefined();
    expect(elements.length).toBeGreaterThan(200_000);
    expect(flat.length).toBeLessThan(4 * 1024 * 1024);
  });

  test('deflate bomb: < 1 MB inflates to > 1 GB', async () => {
    const bomb = deflateBomb();
    expect(bomb.length).toBeLessThan(1_000_000);
    const metaLength = new DataView(bomb.buffer, bomb.byteOffset).getUint32(140, true);
    expect(Buffer.from(bomb.subarray(0, 144 + metaLength)).includes(Buffer.from(TS.DeflatedExplicitVRLittleEndian))).toBe(true);
    let inflated = 0;
    let head: Buffer | undefined;
    await new Promise<void>((resolve, reject) => {
      const z = createInflateRaw({ chunkSize: 1 << 20 });
      z.on('data', (d: Buffer) => {
        if (!head) head = Buffer.from(d.subarray(0, 1024));
        inflated += d.length;
      });
      z.on('end', () => resolve());
      z.on('error', reject);
      z.end(bomb.subarray(144 + metaLength));
    });
    expect(inflated).toBeGreaterThan(1_000_000_000);
    // The inflated data set starts with a real element: (0008,0008) CS ImageType.
    expect(Array.from(head!.subarray(0, 6))).toEqual([0x08, 0, 0x08, 0, 0x43, 0x53]);
  });

  test('not Part 10 / missing transfer syntax', () => {
    const np = notPart10();
    expect(Buffer.from(np.subarray(128, 132)).toString('latin1')).not.toBe('DICM');
    const nts = missingTransferSyntax();
    const out = dcmdump(nts).out;
    expect(out).toContain('(0002,0003)');
    expect(out).not.toContain('(0002,0010)');
    groupLengthIsExact(nts);
  });

  test('bad UIDs and wrong study', () => {
    expect(BAD_UIDS.tooLong).toHaveLength(65);
    for (const [kind, value] of Object.entries(BAD_UIDS)) {
      const inst = badUidInstance(kind as keyof typeof BAD_UIDS, 'study');
      expect(inst.studyInstanceUID).toBe(value);
      expect(Buffer.from(inst.bytes).includes(Buffer.from(value))).toBe(true);
    }
    const sop = badUidInstance('pathTraversal', 'sop');
    expect(dcmdump(sop.bytes).out).toMatch(/\(0002,0003\) UI \[\.\.\/\.\.\/etc\0?\]/);
    const expected = uid();
    const wrong = wrongStudyInstance(expected);
    expect(wrong.studyInstanceUID).not.toBe(expected);
    expect(wrong.expectedStudyInstanceUID).toBe(expected);
    expectValid(wrong.bytes);
  });

  test('the battery lists every case with bytes', () => {
    const cases = malformedFiles();
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    for (const c of cases.filter((x) => x.name !== 'deflate bomb')) expect(c.bytes().length).toBeGreaterThan(0);
  });
});

/** PS3.5 G.3.2 decoder for one-segment (8-bit) RLE frames, to check our encoder. */
function rleDecode(frame: Uint8Array, length: number): Uint8Array {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  expect(dv.getUint32(0, true)).toBe(1);
  const out = new Uint8Array(length);
  let i = dv.getUint32(4, true);
  let o = 0;
  while (o < length && i < frame.length) {
    const n = (frame[i++] << 24) >> 24;
    if (n >= 0) {
      out.set(frame.subarray(i, i + n + 1), o);
      i += n + 1;
      o += n + 1;
    } else if (n !== -128) {
      out.fill(frame[i++], o, o - n + 1);
      o += -n + 1;
    }
  }
  expect(o).toBe(length);
  return out;
}
