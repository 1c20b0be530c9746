import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { parsePart10, PixelDataScanner, inflatePart10 } from '../../../functions/core/dicom/part10';
import { DicomParseError, type ParsedPart10 } from '../../../functions/core/dicom/part10-types';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import { PYDICOM_DIR } from '../../helpers/paths';
import { TS, UNDEFINED, concat, el, elImplicit, encapsulated, item, part10, seq, u16, u32, ascii } from './build';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'OK';
  } catch (e) {
    if (e instanceof DicomParseError) return e.code;
    throw e;
  }
};
const parse = (ds: Uint8Array, ts: string = TS.explicitLE, opts = {}): ParsedPart10 => parsePart10(part10(ds, ts), { stopAtPixelData: false, ...opts });
const f64 = (...v: number[]) => {
  const b = new Uint8Array(v.length * 8);
  v.forEach((x, i) => new DataView(b.buffer).setFloat64(i * 8, x, true));
  return b;
};

describe('Part 10 envelope', () => {
  it('rejects data without preamble + DICM', () => {
    expect(codeOf(() => parsePart10(new Uint8Array(10)))).toBe('NOT_PART10');
    expect(codeOf(() => parsePart10(new Uint8Array(300)))).toBe('NOT_PART10');
    expect(codeOf(() => parsePart10(new Uint8Array(10), { final: false }))).toBe('NEED_MORE_DATA');
  });

  it('requires a transfer syntax, and one we know the encoding of', () => {
    const pre = new Uint8Array(132);
    pre.set([0x44, 0x49, 0x43, 0x4d], 128);
    expect(codeOf(() => parsePart10(concat(pre, el(0x00020002, 'UI', '1.2'), el(0x00080060, 'CS', 'OT'))))).toBe('MISSING_TRANSFER_SYNTAX');
    expect(codeOf(() => parsePart10(concat(pre, el(0x00080060, 'CS', 'OT'))))).toBe('NOT_PART10');
    expect(codeOf(() => parse(el(0x00080060, 'CS', 'OT'), '1.2.3.4.5.6.7'))).toBe('UNSUPPORTED_TRANSFER_SYNTAX');
    expect(codeOf(() => parse(el(0x00080060, 'CS', 'OT'), '1.2.840.10008.1.2.4.94'))).toBe('UNSUPPORTED_TRANSFER_SYNTAX'); // JPIP referenced
    for (const ts of ['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.102.1', '1.2.840.10008.1.2.5', '1.2.840.10008.1.2.1.98', '1.2.840.10008.1.2.4.110']) {
      expect(parse(el(0x00080060, 'CS', 'OT'), ts).dataset['00080060'].Value).toEqual(['OT']);
    }
  });

  it('reads a file meta without group length, ending where group 0002 ends', () => {
    const b = new Uint8Array(readFileSync(path.join(PYDICOM_DIR, 'no_meta_group_length.dcm')));
    const p = parsePart10(b);
    expect(p.fileMeta['00020000']).toBeUndefined();
    expect(p.transferSyntaxUID).toBe('1.2.840.10008.1.2');
  });

  it('an empty data set is fine', () => {
    const p = parse(new Uint8Array(0));
    expect(p.dataset).toEqual({});
    expect(p.pixelData).toBeUndefined();
  });
});

describe('DICOM JSON values (PS3.18 F.2)', () => {
  const ds = parse(
    concat(
      el(0x00080000, 'UL', u32(1234)), // group length: omitted
      el(0x00080005, 'CS', 'ISO_IR 100'),
      el(0x00080008, 'CS', ' ORIGINAL \\PRIMARY\\\\AXIAL '),
      el(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.7'),
      el(0x00080050, 'SH', ''),
      el(0x00080090, 'PN', 'Doe^John=Ideo^Graphic=Pho^Netic\\Roe^Jane'),
      el(0x00081030, 'LO', '  study desc  '),
      el(0x00100010, 'PN', 'Smith^Ann=^'),
      el(0x00101010, 'AS', '042Y'),
      el(0x00101020, 'DS', ' 1.75 \\1e3\\-.5\\abc\\'),
      el(0x00101030, 'DS', 'NaN '),
      el(0x00104000, 'LT', '  line one\\still one  '),
      el(0x00200013, 'IS', '12 '),
      el(0x00200012, 'IS', '1.5'),
      el(0x00209165, 'AT', u16(0x0010, 0x0020, 0x7fe0, 0x0010)),
      el(0x00280010, 'US', u16(512)),
      el(0x00280011, 'US', u16(512, 7)),
      el(0x00281052, 'FD', f64(-1024.5)),
      el(0x00189219, 'SV', concat(u32(0xffffffff, 0xffffffff), u32(0, 0x00400000))), // -1, 2^54
      el(0x00189220, 'UV', concat(u32(5, 0), u32(0, 0x00200000))), // 5, 2^53
      el(0x00420011, 'OB', new Uint8Array(2000)),
      el(0x00091010, 'OB', Uint8Array.from([1, 2, 3, 4])),
      el(0x00283006, 'OW', u16(1, 2)),
      el(0x0040a160, 'UT', 'free text\\with backslash  '),
      el(0x00081190, 'UR', 'http://x/y '),
      seq(0x00540016, [item(concat(el(0x00181072, 'TM', '1200'), el(0x00181074, 'OB', new Uint8Array(1500)))), item(new Uint8Array(0))]),
      seq(0x00081115, [], false),
    ),
  );
  const d = ds.dataset;

  it('omits group lengths', () => expect(d['00080000']).toBeUndefined());
  it('multi-valued strings: trimmed, split, empty values as null', () => {
    expect(d['00080008']).toEqual({ vr: 'CS', Value: ['ORIGINAL', 'PRIMARY', null, 'AXIAL'] });
    expect(d['00081030'].Value).toEqual(['study desc']);
  });
  it('UI loses its NUL padding', () => expect(d['00080016'].Value).toEqual(['1.2.840.10008.5.1.4.1.1.7']));
  it('empty element: no Value', () => expect(d['00080050']).toEqual({ vr: 'SH' }));
  it('PN component groups', () => {
    expect(d['00080090'].Value).toEqual([{ Alphabetic: 'Doe^John', Ideographic: 'Ideo^Graphic', Phonetic: 'Pho^Netic' }, { Alphabetic: 'Roe^Jane' }]);
    expect(d['00100010'].Value).toEqual([{ Alphabetic: 'Smith^Ann', Ideographic: '^' }]);
  });
  it('DS / IS: numbers, or the string when not a number', () => {
    expect(d['00101020'].Value).toEqual([1.75, 1000, -0.5, 'abc', null]);
    expect(d['00101030'].Value).toEqual(['NaN']);
    expect(d['00200013'].Value).toEqual([12]);
    expect(d['00200012'].Value).toEqual(['1.5']);
  });
  it('LT/UT/UR: one value, backslash kept, leading spaces kept', () => {
    expect(d['00104000'].Value).toEqual(['  line one\\still one']);
    expect(d['0040A160'].Value).toEqual(['free text\\with backslash']);
    expect(d['00081190'].Value).toEqual(['http://x/y']);
  });
  it('AT as 8 hex digits', () => expect(d['00209165'].Value).toEqual(['00100020', '7FE00010']));
  it('binary numbers', () => {
    expect(d['00280010']).toEqual({ vr: 'US', Value: [512] });
    expect(d['00280011'].Value).toEqual([512, 7]);
    expect(d['00281052'].Value).toEqual([-1024.5]);
    expect(d['00189219'].Value).toEqual([-1, '18014398509481984']);
    expect(d['00189220'].Value).toEqual([5, '9007199254740992']);
  });
  it('small binary inline (base64), large binary as bulk data with its byte range', () => {
    expect(d['00091010']).toEqual({ vr: 'OB', InlineBinary: 'AQIDBA==' });
    expect(d['00283006']).toEqual({ vr: 'OW', InlineBinary: 'AQACAA==' });
    expect(d['00420011']).toEqual({ vr: 'OB', BulkDataURI: '00420011' });
    const ref = ds.bulkData.find((b) => b.path === '00420011')!;
    expect(ref).toMatchObject({ vr: 'OB', length: 2000 });
    const nested = d['00540016'].Value as DicomJsonDataset[];
    expect(nested[0]['00181074']).toEqual({ vr: 'OB', BulkDataURI: '00540016.0.00181074' });
    expect(ds.bulkData.map((b) => b.path)).toEqual(['00420011', '00540016.0.00181074']);
  });
  it('sequences: items as data sets, empty item {}, empty sequence without Value', () => {
    const items = d['00540016'].Value as DicomJsonDataset[];
    expect(items).toHaveLength(2);
    expect(items[0]['00181072']).toEqual({ vr: 'TM', Value: ['1200'] });
    expect(items[1]).toEqual({});
    expect(d['00081115']).toEqual({ vr: 'SQ' });
  });
  it('bulk data threshold is configurable', () => {
    const p = parsePart10(part10(el(0x00091010, 'OB', new Uint8Array(64))), { limits: { bulkDataThreshold: 16 } });
    expect(p.dataset['00091010'].BulkDataURI).toBe('00091010');
  });

  it('big endian: numbers right, InlineBinary swapped to little endian', () => {
    const be = (tag: number, vr: string, v: Uint8Array) => {
      const b = el(tag, vr, v);
      const dv = new DataView(b.buffer);
      dv.setUint16(0, tag >>> 16, false);
      dv.setUint16(2, tag & 0xffff, false);
      if (b.length - v.length === 12) dv.setUint32(8, v.length, false);
      else dv.setUint16(6, v.length, false);
      return b;
    };
    const p = parse(concat(be(0x00280010, 'US', Uint8Array.from([0x02, 0x00])), be(0x00283006, 'OW', Uint8Array.from([0x00, 0x01, 0x00, 0x02]))), TS.explicitBE);
    expect(p.dataset['00280010'].Value).toEqual([512]);
    expect(p.dataset['00283006'].InlineBinary).toBe('AQACAA==');
  });

  it('implicit VR: dictionary VRs, private creators LO, other private data UN', () => {
    const p = parse(
      concat(
        elImplicit(0x00100010, 'Doe^John'),
        elImplicit(0x00280010, u16(64)),
        elImplicit(0x00290010, 'ACME 1.0'),
        elImplicit(0x00291001, u16(7)),
        elImplicit(0x60003000, Uint8Array.from([1, 0])),
      ),
      TS.implicitLE,
    );
    expect(p.dataset['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Doe^John' }] });
    expect(p.dataset['00280010']).toEqual({ vr: 'US', Value: [64] });
    expect(p.dataset['00290010']).toEqual({ vr: 'LO', Value: ['ACME 1.0'] });
    expect(p.dataset['00291001']).toEqual({ vr: 'UN', InlineBinary: 'BwA=' });
    expect(p.dataset['60003000'].vr).toBe('OW'); // repeating group 60xx
  });

  it('explicit UN of a standard element is decoded with its dictionary VR', () => {
    const p = parse(el(0x00100010, 'UN', ascii('Doe^John')));
    expect(p.dataset['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Doe^John' }] });
  });
});

describe('structure', () => {
  it('undefined-length sequences and items, nested, with delimiters', () => {
    const inner = seq(0x0040a730, [item(el(0x0040a040, 'CS', 'TEXT'), true)], true);
    const p = parse(concat(seq(0x0040a730, [item(concat(el(0x0040a010, 'CS', 'CONTAINS'), inner), true), item(el(0x0040a040, 'CS', 'CODE'))], true), el(0x00100020, 'LO', 'ID1')));
    const items = p.dataset['0040A730'].Value as DicomJsonDataset[];
    expect(items).toHaveLength(2);
    expect(((items[0]['0040A730'].Value as DicomJsonDataset[])[0]['0040A040'].Value)).toEqual(['TEXT']);
    expect(p.dataset['00100020'].Value).toEqual(['ID1']);
  });

  it('UN with undefined length is read as an implicit VR LE sequence (PS3.5 §6.2.2)', () => {
    const implicitItem = concat(u16(0xfffe, 0xe000), u32(UNDEFINED), elImplicit(0x00100020, 'ABC '), u16(0xfffe, 0xe00d), u32(0));
    const p = parse(concat(el(0x00091001, 'UN', new Uint8Array(0), UNDEFINED), implicitItem, u16(0xfffe, 0xe0dd), u32(0), el(0x00100030, 'DA', '20000101')));
    expect(p.dataset['00091001'].vr).toBe('SQ');
    expect((p.dataset['00091001'].Value as DicomJsonDataset[])[0]['00100020'].Value).toEqual(['ABC']);
    expect(p.dataset['00100030'].Value).toEqual(['20000101']);
  });

  it('garbage VR bytes → MALFORMED; unknown but well-formed VR → UN with 32-bit length', () => {
    const bad = concat(u16(0x0010, 0x0010), Uint8Array.from([0x00, 0x01]), u16(4), ascii('ABCD'));
    expect(codeOf(() => parse(bad))).toBe('MALFORMED');
    const future = concat(u16(0x0011, 0x1001), ascii('ZZ'), u16(0), u32(4), ascii('ABCD'), el(0x00110010, 'LO', 'X'));
    expect(parse(future).dataset['00111001']).toEqual({ vr: 'UN', InlineBinary: 'QUJDRA==' });
  });

  it('undefined length on a VR that cannot have it → MALFORMED', () => {
    expect(codeOf(() => parse(el(0x00100010, 'UT', new Uint8Array(0), UNDEFINED)))).toBe('MALFORMED');
  });

  it('an item that overruns its sequence → MALFORMED; a value past the end → TRUNCATED', () => {
    const body = concat(u16(0xfffe, 0xe000), u32(100), el(0x00100020, 'LO', 'ID'));
    const over = concat(el(0x00081115, 'SQ', body), el(0x00100010, 'PN', 'A'.repeat(120)));
    expect(codeOf(() => parse(over))).toBe('MALFORMED');
    expect(codeOf(() => parse(el(0x00100010, 'PN', ascii('AB'), 60000)))).toBe('TRUNCATED');
    expect(codeOf(() => parse(el(0x00100010, 'PN', ascii('AB'), 60000), TS.explicitLE, { final: false }))).toBe('NEED_MORE_DATA');
  });

  it('a huge declared length in a 200-byte buffer → TRUNCATED, quickly, without allocating', () => {
    for (const vr of ['OB', 'UN', 'UT', 'SQ']) {
      const b = part10(el(0x00091010, vr, new Uint8Array(8), 0xfffffff0));
      expect(b.length).toBeLessThan(300);
      const t0 = Date.now();
      expect(codeOf(() => parsePart10(b, { stopAtPixelData: false }))).toBe('TRUNCATED');
      expect(Date.now() - t0).toBeLessThan(50);
    }
    // pixel data value, and an encapsulated BOT / fragment claiming 4 GB
    expect(codeOf(() => parsePart10(part10(el(0x7fe00010, 'OW', new Uint8Array(8), 0xfffffff0))))).toBe('TRUNCATED');
    expect(codeOf(() => parsePart10(part10(concat(el(0x7fe00010, 'OB', new Uint8Array(0), UNDEFINED), u16(0xfffe, 0xe000), u32(0xfffffff0), new Uint8Array(16)), TS.rle)))).toBe('TRUNCATED');
  });

  it('stray item delimiter is skipped; items/delimiters in encapsulated data must be items', () => {
    expect(parse(concat(el(0x00100010, 'PN', 'A'), u16(0xfffe, 0xe00d), u32(0), el(0x00100020, 'LO', 'B'))).dataset['00100020'].Value).toEqual(['B']);
    const badItem = concat(el(0x7fe00010, 'OB', new Uint8Array(0), UNDEFINED), item(new Uint8Array(0)), el(0x00100010, 'PN', 'AB'));
    expect(codeOf(() => parsePart10(part10(badItem, TS.rle)))).toBe('MALFORMED');
  });
});

describe('limits', () => {
  it('depth bomb → LIMIT_EXCEEDED', () => {
    let inner = el(0x00100010, 'PN', 'X');
    for (let i = 0; i < 40; i++) inner = seq(0x0040a730, [item(inner, true)], true);
    expect(codeOf(() => parse(inner))).toBe('LIMIT_EXCEEDED');
    expect(codeOf(() => parse(inner, TS.explicitLE, { limits: { maxDepth: 64 } }))).toBe('OK');
  });

  it('element-count bomb → LIMIT_EXCEEDED', () => {
    const one = el(0x00111001, 'LO', ''); // 8 bytes, zero length
    const n = 200_001;
    const bomb = new Uint8Array(one.length * n);
    for (let i = 0; i < n; i++) bomb.set(one, i * one.length);
    expect(codeOf(() => parse(bomb))).toBe('LIMIT_EXCEEDED');
    expect(codeOf(() => parse(bomb.subarray(0, 8 * 1000), TS.explicitLE, { limits: { maxElements: 999 } }))).toBe('LIMIT_EXCEEDED');
    expect(codeOf(() => parse(bomb.subarray(0, 8 * 1000)))).toBe('OK');
  });

  it('items count as elements (empty-item bomb)', () => {
    const items = Array.from({ length: 2000 }, () => item(new Uint8Array(0)));
    expect(codeOf(() => parse(seq(0x00081115, items), TS.explicitLE, { limits: { maxElements: 1000 } }))).toBe('LIMIT_EXCEEDED');
  });

  it('deflate bomb → LIMIT_EXCEEDED (ratio and absolute size)', () => {
    const dataset = concat(el(0x00100010, 'PN', 'Doe^John'), el(0x00091010, 'OB', new Uint8Array(8 * 1024 * 1024)));
    const file = part10(deflateRawSync(dataset), TS.deflated);
    expect(file.length).toBeLessThan(20_000); // ratio ≈ 1000
    expect(codeOf(() => parsePart10(file))).toBe('LIMIT_EXCEEDED');
    expect(codeOf(() => parsePart10(file, { limits: { maxInflateRatio: 10_000, maxInflatedBytes: 1024 * 1024 } }))).toBe('LIMIT_EXCEEDED');
    const p = parsePart10(file, { limits: { maxInflateRatio: 10_000 } });
    expect(p.deflated).toBe(true);
    expect(p.dataset['00100010'].Value).toEqual([{ Alphabetic: 'Doe^John' }]);
    const ref = p.bulkData[0];
    const inflated = inflatePart10(file, p.datasetOffset, { limits: { maxInflateRatio: 10_000 } });
    expect(ref.offset + ref.length).toBeLessThanOrEqual(inflated.length);
    expect(inflated.subarray(ref.offset - 12 - 8, ref.offset - 12)).toEqual(ascii('Doe^John'));
  });

  it('deflated: incomplete stream → NEED_MORE_DATA / TRUNCATED; not deflate → MALFORMED', () => {
    const file = part10(deflateRawSync(concat(el(0x00100010, 'PN', 'Doe^John'), el(0x00100020, 'LO', 'X'.repeat(500)))), TS.deflated);
    const cut = file.subarray(0, file.length - 20);
    expect(codeOf(() => parsePart10(cut, { final: false }))).toBe('NEED_MORE_DATA');
    expect(codeOf(() => parsePart10(cut))).toBe('TRUNCATED');
    expect(codeOf(() => parsePart10(part10(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x12]), TS.deflated)))).toBe('MALFORMED');
  });
});

describe('pixel data layout', () => {
  const base = (rows: number, cols: number, ba: number, frames?: number, extra: Uint8Array[] = []) =>
    concat(
      el(0x00280002, 'US', u16(1)),
      ...(frames === undefined ? [] : [el(0x00280008, 'IS', String(frames))]),
      el(0x00280010, 'US', u16(rows)),
      el(0x00280011, 'US', u16(cols)),
      el(0x00280100, 'US', u16(ba)),
      ...extra,
    );

  it('BitsAllocated=1: frames not on byte boundaries get bit offsets', () => {
    // 3 × 3 = 9 bits per frame, 4 frames = 36 bits → 5 bytes (+1 padding)
    const p = parsePart10(part10(concat(base(3, 3, 1, 4), el(0x7fe00010, 'OB', new Uint8Array(6)))));
    const px = p.pixelData!;
    expect(px.bitOffsets).toEqual([0, 1, 2, 3]);
    expect(px.frames.map((f) => f[0].offset - px.valueOffset)).toEqual([0, 1, 2, 3]);
    expect(px.frames.map((f) => f[0].length)).toEqual([2, 2, 2, 2]);
  });

  it('native value shorter than the frames need → MALFORMED', () => {
    expect(codeOf(() => parsePart10(part10(concat(base(4, 4, 8, 3), el(0x7fe00010, 'OB', new Uint8Array(40))))))).toBe('MALFORMED');
  });

  it('no Rows/Columns: frames unknown', () => {
    const px = parsePart10(part10(el(0x7fe00010, 'OB', new Uint8Array(6)))).pixelData!;
    expect(px.framesUnknown).toBe(true);
    expect(px.frames).toEqual([]);
  });

  const frag = (n: number, marker = true) => {
    const f = new Uint8Array(n);
    if (marker) f.set([0xff, 0xd8]);
    return f;
  };

  it('encapsulated: frames from the Basic Offset Table', () => {
    // frame 1 = fragments 1+2, frame 2 = fragment 3; BOT offsets relative to the first fragment's item tag
    const frags = [frag(10), frag(20, false), frag(30)];
    const p = parsePart10(part10(concat(base(8, 8, 8, 2), encapsulated(frags, [0, 8 + 10 + 8 + 20])), TS.jpegBaseline));
    const px = p.pixelData!;
    expect(px.frames.map((f) => f.map((r) => r.length))).toEqual([[10, 20], [30]]);
    expect(px.fragments).toHaveLength(3);
  });

  it('encapsulated: frames from the Extended Offset Table (even as bulk data)', () => {
    // no start marker on fragment 3: only the EOT can tell the frames apart
    const frags = [frag(10), frag(20, false), frag(30, false)];
    const eot = concat(u32(0, 0), u32(8 + 10 + 8 + 20, 0));
    const ds = concat(base(8, 8, 8, 2), el(0x7fe00001, 'OV', eot), el(0x7fe00002, 'OV', concat(u32(38, 0), u32(30, 0))), encapsulated(frags));
    const bytes = part10(ds, TS.jpegBaseline);
    for (const threshold of [1024, 8]) {
      const p = parsePart10(bytes, { limits: { bulkDataThreshold: threshold } });
      expect(p.pixelData!.frames.map((f) => f.map((r) => r.length))).toEqual([[10, 20], [30]]);
      // A scanner built from a parse that went through JSON (storage) only knows an inline EOT.
      const fromJson = JSON.parse(JSON.stringify(p)) as ParsedPart10;
      const scanner = new PixelDataScanner(fromJson);
      scanner.push(bytes, 0);
      const layout = scanner.finish(bytes.length);
      if (threshold === 1024) expect(layout.frames.map((f) => f.length)).toEqual([2, 1]);
      else expect(layout.framesUnknown).toBe(true);
    }
  });

  it('encapsulated: one fragment per frame; all fragments for one frame; start markers; else unknown', () => {
    const one = parsePart10(part10(concat(base(8, 8, 8, 3), encapsulated([frag(4), frag(6), frag(8)])), TS.rle)).pixelData!;
    expect(one.frames.map((f) => f.length)).toEqual([1, 1, 1]);
    const single = parsePart10(part10(concat(base(8, 8, 8), encapsulated([frag(4), frag(6, false), frag(8, false)])), TS.jpegBaseline)).pixelData!;
    expect(single.frames.map((f) => f.length)).toEqual([3]);
    const markers = parsePart10(part10(concat(base(8, 8, 8, 2), encapsulated([frag(4), frag(6, false), frag(8), frag(2, false)])), TS.jpegBaseline)).pixelData!;
    expect(markers.frames.map((f) => f.length)).toEqual([2, 2]);
    const unknown = parsePart10(part10(concat(base(8, 8, 8, 5), encapsulated([frag(4), frag(6, false), frag(8)])), TS.jpegBaseline)).pixelData!;
    expect(unknown.framesUnknown).toBe(true);
    expect(unknown.frames).toEqual([]);
    expect(unknown.fragments).toHaveLength(3);
  });

  it('elements after the pixel data (trailing padding) are tolerated', () => {
    const ds = concat(base(2, 2, 8), encapsulated([frag(4)]), el(0xfffcfffc, 'OB', new Uint8Array(64)));
    const header = parsePart10(part10(ds, TS.rle));
    const full = parsePart10(part10(ds, TS.rle), { stopAtPixelData: false });
    expect(header.pixelData).toEqual(full.pixelData);
    expect(full.dataset['FFFCFFFC']).toBeDefined();
    expect(header.dataset['FFFCFFFC']).toBeUndefined();
  });

  it('scanner: a gap in item headers is a programming error; fragment payload may be skipped', () => {
    const file = part10(concat(base(2, 2, 8, 2), encapsulated([frag(400), frag(400)])), TS.rle);
    const p = parsePart10(file.subarray(0, file.length - 800), { final: false }); // cut 16 bytes into fragment 1
    const s = new PixelDataScanner(p);
    s.push(file.subarray(file.length - 700, file.length - 600), file.length - 700); // skipping payload: fine
    expect(() => s.push(file.subarray(file.length - 10), file.length - 10)).toThrow(/gap/);
  });
});

describe('robustness', () => {
  const files = ['MR_small.dcm', 'rtplan.dcm', 'SC_rgb_rle_2frame.dcm', 'test-SR.dcm', 'MR_small_implicit.dcm', 'ExplVR_BigEnd.dcm', 'image_dfl.dcm'];
  const read = (f: string) => new Uint8Array(readFileSync(path.join(PYDICOM_DIR, f)));

  it('every truncation gives a clean answer (never a crash)', () => {
    for (const f of files) {
      const b = read(f);
      const step = Math.max(1, Math.floor(b.length / 150));
      for (let cut = 0; cut < b.length; cut += step) {
        const part = b.subarray(0, cut);
        const final = codeOf(() => parsePart10(part, { stopAtPixelData: false }));
        expect(['OK', 'TRUNCATED', 'NOT_PART10', 'MISSING_TRANSFER_SYNTAX']).toContain(final);
        const streaming = codeOf(() => parsePart10(part, { final: false }));
        expect(['OK', 'NEED_MORE_DATA', 'NOT_PART10']).toContain(streaming);
      }
    }
  });

  it('random corruption gives DicomParseError or a result (never another exception)', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (const f of files) {
      const original = read(f);
      for (let i = 0; i < 150; i++) {
        const b = original.slice();
        const flips = 1 + Math.floor(rnd() * 4);
        for (let k = 0; k < flips; k++) b[132 + Math.floor(rnd() * (b.length - 132))] = Math.floor(rnd() * 256);
        codeOf(() => parsePart10(b, { stopAtPixelData: false }));
        codeOf(() => parsePart10(b));
      }
    }
  });
});
