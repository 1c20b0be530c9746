/**
 * Every file of the public pydicom corpus either parses (header-only and full) or is
 * rejected with a DicomParseError whose code is listed here.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { parsePart10, PixelDataScanner } from '../../../functions/core/dicom/part10';
import { DicomParseError, type ParsedPart10 } from '../../../functions/core/dicom/part10-types';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import { PYDICOM_DIR } from '../../helpers/paths';

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** *.dcm everywhere, and every file of dicomdirtests (DICOMDIR and images have no extension). */
const FILES = walk(PYDICOM_DIR)
  .filter((f) => f.endsWith('.dcm') || (f.includes(`${path.sep}dicomdirtests${path.sep}`) && !/README/i.test(path.basename(f))))
  .map((f) => path.relative(PYDICOM_DIR, f))
  .sort();

const EXPECTED_REJECTS: Record<string, string> = {
  'no_meta.dcm': 'NOT_PART10', // no preamble / DICM
  'ExplVR_BigEndNoMeta.dcm': 'NOT_PART10',
  'ExplVR_LitEndNoMeta.dcm': 'NOT_PART10',
  'rtstruct.dcm': 'NOT_PART10', // a bare implicit VR data set
  'meta_missing_tsyntax.dcm': 'MISSING_TRANSFER_SYNTAX',
  'MR_truncated.dcm': 'TRUNCATED', // pixel data 8192 bytes, 62 missing
  'rtplan_truncated.dcm': 'TRUNCATED',
  // meta says Explicit VR LE, data set is Implicit VR LE (highdicom 0.1.0 bug): VR bytes 0x18 0x00
  'SC_rgb_jpeg.dcm': 'MALFORMED',
  // records removed, lengths not fixed: the last item's declared length runs past the end of the file
  [path.join('dicomdirtests', 'DICOMDIR-nooffset')]: 'TRUNCATED',
};

const cache = new Map<string, Uint8Array>();
const read = (f: string): Uint8Array => {
  let b = cache.get(f);
  if (!b) cache.set(f, (b = new Uint8Array(readFileSync(path.join(PYDICOM_DIR, f)))));
  return b;
};

function outcome(fn: () => ParsedPart10): ParsedPart10 | string {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof DicomParseError)) throw e;
    return e.code;
  }
}

const ok = (r: ParsedPart10 | string): r is ParsedPart10 => typeof r !== 'string';

describe('pydicom corpus', () => {
  it('finds the corpus', () => {
    expect(FILES.length).toBeGreaterThan(140);
    for (const f of Object.keys(EXPECTED_REJECTS)) expect(FILES).toContain(f);
  });

  describe.each(FILES)('%s', (file) => {
    it('parses header-only and full, or is rejected with the expected code', () => {
      const bytes = read(file);
      const header = outcome(() => parsePart10(bytes));
      const full = outcome(() => parsePart10(bytes, { stopAtPixelData: false }));
      const expected = EXPECTED_REJECTS[file];
      if (expected) {
        expect(header).toBe(expected);
        expect(full).toBe(expected);
        return;
      }
      if (!ok(header) || !ok(full)) throw new Error(`${file}: ${String(ok(header) ? full : header)}`);
      // The header-only data set is the full one minus what follows the pixel data.
      for (const [k, v] of Object.entries(header.dataset)) expect(full.dataset[k]).toEqual(v);
      expect(header.pixelData).toEqual(full.pixelData);
      expect(header.headerOnly).toBe(!!header.pixelData && !header.deflated);
      expect(full.headerOnly).toBe(false);
      expect(header.transferSyntaxUID).toMatch(/^[0-9.]+$/);
      // Every bulk data range lies inside the file (or the inflated data set).
      if (!full.deflated) for (const b of full.bulkData) expect(b.offset + b.length).toBeLessThanOrEqual(bytes.length);
      // Same layout when the rest of the file is streamed through a scanner.
      if (header.pixelData) {
        const scanner = new PixelDataScanner(header);
        for (let o = 0; o < bytes.length; o += 1000) scanner.push(bytes.subarray(o, o + 1000), o);
        expect(scanner.finish(bytes.length)).toEqual(header.pixelData);
      }
    });
  });
});

describe('streaming: prefix parse (final=false) then scanner', () => {
  const withPixels = FILES.filter((f) => !EXPECTED_REJECTS[f] && !f.includes('dicomdirtests') && parsePart10(read(f)).pixelData && !parsePart10(read(f)).deflated);

  it.each(withPixels)('%s', (file) => {
    const bytes = read(file);
    const whole = parsePart10(bytes);
    // Smallest prefix (in 64-byte steps) the header parse accepts; shorter ones ask for more.
    let cut = 0;
    let parsed: ParsedPart10 | undefined;
    for (cut = 64; cut <= bytes.length + 64; cut += 64) {
      const r = outcome(() => parsePart10(bytes.subarray(0, Math.min(cut, bytes.length)), { final: false }));
      if (ok(r)) {
        parsed = r;
        break;
      }
      expect(r).toBe('NEED_MORE_DATA');
    }
    expect(parsed).toBeDefined();
    expect(parsed!.dataset).toEqual(whole.dataset);
    // Feed the rest the way STOW does: the prefix again from 0, then odd-sized chunks.
    const scanner = new PixelDataScanner(parsed!);
    const head = Math.min(cut, bytes.length);
    scanner.push(bytes.subarray(0, head), 0);
    for (let o = head; o < bytes.length; o += 97) scanner.push(bytes.subarray(o, o + 97), o);
    expect(scanner.finish(bytes.length)).toEqual(whole.pixelData);
    // A scanner built from the prefix parse alone (no re-push of the prefix) gets the same.
    const s2 = new PixelDataScanner(parsed!);
    s2.push(bytes.subarray(head), head);
    expect(s2.finish(bytes.length)).toEqual(whole.pixelData);
  });

  it('files without pixel data need the final flag', () => {
    const bytes = read('rtplan.dcm');
    expect(outcome(() => parsePart10(bytes, { final: false }))).toBe('NEED_MORE_DATA');
    expect(ok(outcome(() => parsePart10(bytes, { final: true })))).toBe(true);
  });

  it('a truncated pixel data value is caught by the scanner', () => {
    const bytes = read('MR_small.dcm');
    const parsed = parsePart10(bytes.subarray(0, 2000), { final: false });
    const px = parsed.pixelData!;
    const cut = px.valueOffset + px.valueLength! - 10; // MR_small has elements after its pixel data
    const scanner = new PixelDataScanner(parsed);
    scanner.push(bytes.subarray(0, cut), 0);
    expect(() => scanner.finish(cut)).toThrow(expect.objectContaining({ code: 'TRUNCATED' }));
    expect(() => parsePart10(bytes.subarray(0, cut))).toThrow(expect.objectContaining({ code: 'TRUNCATED' }));
  });

  it('a truncated encapsulated pixel data sequence is caught by the scanner', () => {
    const bytes = read('SC_rgb_rle_2frame.dcm');
    const parsed = parsePart10(bytes.subarray(0, 1500), { final: false });
    for (const cut of [bytes.length - 8, bytes.length - 4, bytes.length - 200]) {
      const scanner = new PixelDataScanner(parsed);
      scanner.push(bytes.subarray(0, cut), 0);
      expect(() => scanner.finish(cut)).toThrow(expect.objectContaining({ code: 'TRUNCATED' }));
    }
  });
});

describe('frames', () => {
  const frames = (f: string) => parsePart10(read(f)).pixelData!;

  it.each([
    ['SC_rgb_rle_2frame.dcm', 2],
    ['SC_rgb_rle_16bit_2frame.dcm', 2],
    ['SC_rgb_rle_32bit_2frame.dcm', 2],
    ['SC_rgb_rle.dcm', 1],
    ['rtdose.dcm', 15],
    ['rtdose_expb.dcm', 15],
    ['rtdose_rle.dcm', 15],
    ['rtdose_1frame.dcm', 1],
    ['rtdose_rle_1frame.dcm', 1],
    ['liver_1frame.dcm', 1],
    ['liver_expb_1frame.dcm', 1],
    ['badVR.dcm', 15], // NumberOfFrames "1A": frames from the value length
    ['JPEG2000.dcm', 1],
    ['MR_small.dcm', 1],
    ['image_dfl.dcm', 1],
    ['SC_ybr_full_422_uncompressed.dcm', 1],
  ])('%s has %d frame(s)', (f, n) => {
    const px = frames(f);
    expect(px.frames).toHaveLength(n);
    expect(px.framesUnknown).toBeUndefined();
  });

  it('native frames are consecutive ranges of Rows × Columns × Samples × BitsAllocated/8', () => {
    const px = frames('rtdose.dcm'); // 10 × 10, 32 bits
    px.frames.forEach((f, i) => expect(f).toEqual([{ offset: px.valueOffset + i * 400, length: 400 }]));
    expect(px.valueLength).toBe(6000);
  });

  it('RLE frames start with an RLE header; JPEG frames with SOI', () => {
    const bytes = read('rtdose_rle.dcm');
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    for (const [f] of frames('rtdose_rle.dcm').frames) {
      const segments = dv.getUint32(f.offset, true);
      expect(segments).toBeGreaterThanOrEqual(1);
      expect(segments).toBeLessThanOrEqual(15);
      expect(dv.getUint32(f.offset + 4, true)).toBe(64); // first segment right after the 64-byte header
    }
    for (const file of ['SC_rgb_jpeg_dcmtk.dcm', 'JPGExtended.dcm', 'MR_small_jpeg_ls_lossless.dcm']) {
      const b = read(file);
      const [f] = frames(file).frames[0];
      expect([b[f.offset], b[f.offset + 1]]).toEqual([0xff, 0xd8]);
    }
  });

  it('JPEG2000-embedded-sequence-delimiter: item lengths, not delimiter bytes, end fragments', () => {
    const a = frames('JPEG2000.dcm');
    const b = frames('JPEG2000-embedded-sequence-delimiter.dcm');
    expect(b.frames).toEqual(a.frames);
  });

  it('encapsulated layout lists fragments; pixel data in the JSON points to the layout', () => {
    const p = parsePart10(read('SC_rgb_rle_2frame.dcm'));
    expect(p.pixelData!.encapsulated).toBe(true);
    expect(p.pixelData!.valueLength).toBeUndefined();
    expect(p.pixelData!.fragments).toHaveLength(2);
    expect(p.dataset['7FE00010']).toEqual({ vr: 'OB', BulkDataURI: '7FE00010' });
    const native = parsePart10(read('MR_small_implicit.dcm'));
    expect(native.dataset['7FE00010']).toEqual({ vr: 'OW', BulkDataURI: '7FE00010' });
  });

  it('deflated: offsets refer to the inflated bytes', () => {
    const p = parsePart10(read('image_dfl.dcm'));
    expect(p.deflated).toBe(true);
    expect(p.headerOnly).toBe(false);
    expect(p.transferSyntaxUID).toBe('1.2.840.10008.1.2.1.99');
    const px = p.pixelData!;
    expect(px.frames[0][0].offset).toBe(px.valueOffset);
    expect(px.valueOffset).toBeGreaterThan(p.datasetOffset);
    expect(typeof (p.dataset['00100010']?.Value?.[0] as { Alphabetic?: string } | undefined)?.Alphabetic).toBe('string');
  });
});

describe('JSON from real files', () => {
  const ds = (f: string): DicomJsonDataset => parsePart10(read(f), { stopAtPixelData: false }).dataset;

  it('UN of undefined length becomes a sequence (UN_sequence.dcm, PS3.5 §6.2.2)', () => {
    const d = ds('UN_sequence.dcm');
    const sq = d['4453100C'];
    expect(sq.vr).toBe('SQ');
    const inner = (sq.Value as DicomJsonDataset[])[0]['00081115'].Value as DicomJsonDataset[];
    expect(inner[0]['0020000E'].Value?.[0]).toMatch(/^1\.2\.840\.113619/);
  });

  it('implicit VR private sequence (priv_SQ.dcm, nested_priv_SQ.dcm)', () => {
    expect(ds('priv_SQ.dcm')['3F030010']).toEqual({ vr: 'LO', Value: ['aaabbbccc MEDICAL SYSTEMS'] });
    const nested = ds('nested_priv_SQ.dcm')['00010001'];
    expect(nested.vr).toBe('SQ');
  });

  it('file meta keeps its group length; the data set drops group lengths', () => {
    const p = parsePart10(read('charset_files/chrJapMulti.dcm'));
    expect(p.fileMeta['00020000'].vr).toBe('UL');
    expect(Object.keys(p.dataset).some((k) => k.endsWith('0000'))).toBe(false);
  });

  it('big endian values read as numbers; InlineBinary is little endian', () => {
    const le = ds('MR_small.dcm');
    const be = ds('MR_small_bigendian.dcm');
    expect(be['00280010']).toEqual(le['00280010']);
    expect(be['00280030']).toEqual(le['00280030']);
    const rle = parsePart10(read('rtdose.dcm')).dataset;
    const rbe = parsePart10(read('rtdose_expb.dcm')).dataset;
    expect(rbe['3004000C']).toEqual(rle['3004000C']);
  });

  it('SR: deep nesting, text, codes', () => {
    const d = ds('test-SR.dcm');
    expect(d['0040A730'].vr).toBe('SQ');
    expect((d['0040A730'].Value as DicomJsonDataset[]).length).toBeGreaterThan(0);
  });

  it('waveform: large binary values become bulk data with byte ranges', () => {
    const p = parsePart10(read('waveform_ecg.dcm'));
    expect(p.bulkData.length).toBeGreaterThan(0);
    for (const b of p.bulkData) {
      const parts = b.path.split('.');
      let node: DicomJsonDataset = p.dataset;
      for (let i = 0; i < parts.length - 1; i += 2) node = (node[parts[i]].Value as DicomJsonDataset[])[Number(parts[i + 1])];
      expect(node[parts[parts.length - 1]]).toEqual({ vr: b.vr, BulkDataURI: b.path });
    }
    expect(p.bulkData.map((b) => b.path)).toContain('54000100.0.54001010');
  });
});
