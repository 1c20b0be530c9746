import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parsePart10 } from '../../../functions/core/dicom/part10';
import { transcodeNative } from '../../../functions/core/dicom/transcode';
import { DicomParseError, type ParsedPart10 } from '../../../functions/core/dicom/part10-types';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import { PYDICOM_DIR } from '../../helpers/paths';
import { TS, concat, elImplicit, part10 } from './build';

const NATIVE = [TS.implicitLE, TS.explicitLE, TS.explicitBE];
const read = (f: string) => new Uint8Array(readFileSync(path.join(PYDICOM_DIR, f)));
const full = (b: Uint8Array) => parsePart10(b, { stopAtPixelData: false });

/** Native corpus files that parse. */
const FILES = readdirSync(PYDICOM_DIR)
  .filter((f) => f.endsWith('.dcm'))
  .concat(readdirSync(path.join(PYDICOM_DIR, 'charset_files')).map((f) => `charset_files/${f}`))
  .filter((f) => {
    try {
      const p = parsePart10(read(f));
      return NATIVE.includes(p.transferSyntaxUID as (typeof NATIVE)[number]);
    } catch {
      return false;
    }
  });

/** Data set without what legitimately changes: pixel data VR (OB/OW), and private VRs when implicit is involved. */
function comparable(ds: DicomJsonDataset, dropPrivate: boolean): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  for (const [k, v] of Object.entries(ds)) {
    if (dropPrivate && parseInt(k.slice(0, 4), 16) & 1) continue;
    if (k === '7FE00010') continue;
    out[k] = v.vr === 'SQ' && v.Value ? { vr: 'SQ', Value: (v.Value as DicomJsonDataset[]).map((i) => comparable(i, dropPrivate)) } : v;
  }
  return out;
}

function pixelBytes(b: Uint8Array, p: ParsedPart10): Uint8Array {
  const px = p.pixelData!;
  return b.subarray(px.valueOffset, px.valueOffset + px.valueLength!);
}

describe('transcodeNative', () => {
  it('has native files to work on', () => expect(FILES.length).toBeGreaterThan(30));

  describe.each(FILES)('%s', (file) => {
    it.each(NATIVE)('→ %s and back gives the same data set', (target) => {
      const src = read(file);
      const orig = full(src);
      const out = transcodeNative(src, target);
      const mid = full(out);
      expect(mid.transferSyntaxUID).toBe(target);
      const back = full(transcodeNative(out, orig.transferSyntaxUID));
      const viaImplicit = target === TS.implicitLE && orig.transferSyntaxUID !== TS.implicitLE;
      expect(comparable(back.dataset, viaImplicit)).toEqual(comparable(orig.dataset, viaImplicit));
      if (orig.pixelData && !orig.pixelData.encapsulated) {
        expect(pixelBytes(transcodeNative(out, orig.transferSyntaxUID), back)).toEqual(pixelBytes(src, orig));
        expect(mid.pixelData!.frames.length).toBe(orig.pixelData.frames.length);
      }
      // The file meta is rewritten, not re-invented.
      expect(mid.fileMeta['00020003']).toEqual(orig.fileMeta['00020003']);
      expect(mid.fileMeta['00020010'].Value).toEqual([target]);
      expect(out.subarray(0, 128).every((x) => x === 0)).toBe(true);
    });
  });

  it('writes a correct file meta group length', () => {
    const out = transcodeNative(read('MR_small.dcm'), TS.implicitLE);
    const p = full(out);
    const metaLength = p.fileMeta['00020000'].Value![0] as number;
    expect(132 + 12 + metaLength).toBe(p.datasetOffset);
  });

  it('swaps pixel data by BitsAllocated/8 for big endian (16 and 32 bits)', () => {
    for (const [le, be] of [['MR_small.dcm', 'MR_small_bigendian.dcm'], ['rtdose.dcm', 'rtdose_expb.dcm']]) {
      const ours = transcodeNative(read(le), TS.explicitBE);
      expect(pixelBytes(ours, full(ours))).toEqual(pixelBytes(read(be), full(read(be))));
    }
  });

  it('explicit from implicit: dictionary VRs; over-long 16-bit-length values become UN (PS3.5 §6.2.2)', () => {
    const long = 'x'.repeat(70_000);
    const src = part10(concat(elImplicit(0x00100010, 'Doe^John'), elImplicit(0x00104000, long), elImplicit(0x00091001, Uint8Array.from([1, 2]))), TS.implicitLE);
    const out = transcodeNative(src, TS.explicitLE);
    const p = full(out);
    expect(p.dataset['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Doe^John' }] });
    // written as UN; read back with its dictionary VR
    expect(p.dataset['00104000'].Value).toEqual([long]);
    const i = out.findIndex((_, k) => out[k] === 0x10 && out[k + 1] === 0x00 && out[k + 2] === 0x00 && out[k + 3] === 0x40);
    expect(String.fromCharCode(out[i + 4], out[i + 5])).toBe('UN');
    expect(p.dataset['00091001']).toEqual({ vr: 'UN', InlineBinary: 'AQI=' });
  });

  it('refuses encapsulated and deflated sources, and non-native targets', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
        return 'OK';
      } catch (e) {
        return e instanceof DicomParseError ? e.code : String(e);
      }
    };
    expect(code(() => transcodeNative(read('SC_rgb_rle.dcm'), TS.explicitLE))).toBe('UNSUPPORTED_TRANSFER_SYNTAX');
    expect(code(() => transcodeNative(read('image_dfl.dcm'), TS.explicitLE))).toBe('UNSUPPORTED_TRANSFER_SYNTAX');
    expect(code(() => transcodeNative(read('MR_small.dcm'), TS.jpegBaseline))).toBe('UNSUPPORTED_TRANSFER_SYNTAX');
    expect(code(() => transcodeNative(read('no_meta.dcm'), TS.explicitLE))).toBe('NOT_PART10');
  });

  const dcmdump = spawnSync('dcmdump', ['--version']).status === 0;
  (dcmdump ? it : it.skip)('dcmdump reads every output without errors', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'transcode-'));
    try {
      for (const file of ['MR_small.dcm', 'rtplan.dcm', 'rtdose_expb.dcm', 'test-SR.dcm', 'waveform_ecg.dcm', 'priv_SQ.dcm', 'charset_files/chrSQEncoding.dcm']) {
        for (const target of NATIVE) {
          const out = path.join(dir, 'out.dcm');
          writeFileSync(out, transcodeNative(read(file), target));
          const r = spawnSync('dcmdump', ['-dc', out], { encoding: 'utf8' });
          expect({ file, target, status: r.status, errors: r.stderr.split('\n').filter((l) => l.startsWith('E:')) }).toEqual({ file, target, status: 0, errors: [] });
          expect(execFileSync('dcmdump', ['-Un', '-s', '+P', '0002,0010', out], { encoding: 'utf8' })).toContain(`[${target}]`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
