/**
 * Pixel layouts through HTTP (the stored-frame reader, bulk-data LUTs, deflated
 * data sets): PALETTE COLOR with a 4096-entry 16-bit palette (large enough to be
 * bulk data, read by range), MONOCHROME1, a deflated object, a big-endian one.
 */
import { deflateRawSync } from 'node:zlib';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestArchive, stow, type TestArchive } from '../helpers/archive';
import { PYDICOM_DIR } from '../helpers/paths';
import { uid } from '../fixtures/synthetic';
import { writePart10 } from '../../functions/core/dicom/writer';
import type { DicomJsonDataset } from '../../functions/core/dicom';
import { readPng } from '../unit/imaging/image-files';
import { loadImage, frameBytes } from '../unit/imaging/corpus-helpers';
import { renderFrame } from '../../functions/core/imaging';

let archive: TestArchive;
const study = uid();
const series = uid();
const us = (...v: number[]) => ({ vr: 'US', Value: v });
const ui = (v: string) => ({ vr: 'UI', Value: [v] });
const cs = (v: string) => ({ vr: 'CS', Value: [v] });

function image(sop: string, extra: DicomJsonDataset, pixels: Uint8Array, ts = '1.2.840.10008.1.2.1'): Uint8Array {
  const ds: DicomJsonDataset = {
    '00080016': ui('1.2.840.10008.5.1.4.1.1.7'),
    '00080018': ui(sop),
    '00080060': cs('OT'),
    '00100010': { vr: 'PN', Value: [{ Alphabetic: 'SYNTH^PIXELS' }] },
    '00100020': { vr: 'LO', Value: ['SYN-PX'] },
    '0020000D': ui(study),
    '0020000E': ui(series),
    '00280002': us(1),
    '00280010': us(2),
    '00280011': us(2),
    ...extra,
  };
  return writePart10(ds, { transferSyntaxUID: ts, pixelData: pixels, deflateRaw: (b) => deflateRawSync(b) });
}

const palette = uid();
const mono1 = uid();
const deflated = uid();
const url = (sop: string) => `${archive.dicomWebUrl}/studies/${study}/series/${series}/instances/${sop}`;

beforeAll(async () => {
  archive = await startTestArchive();
  // 4096 entries × 2 bytes per colour = 8 KiB each: stored as bulk data, not inline.
  const lut = (f: (i: number) => number) => ({ vr: 'OW', InlineBinary: Buffer.from(new Uint16Array(Array.from({ length: 4096 }, (_, i) => f(i))).buffer).toString('base64') });
  const paletteImage = image(
    palette,
    {
      '00280004': cs('PALETTE COLOR'),
      '00280100': us(16),
      '00280101': us(12),
      '00280102': us(11),
      '00280103': us(0),
      '00281101': us(4096, 0, 16),
      '00281102': us(4096, 0, 16),
      '00281103': us(4096, 0, 16),
      '00281201': lut((i) => i * 16),
      '00281202': lut((i) => 65535 - i * 16),
      '00281203': lut(() => 0x8000),
    },
    new Uint8Array(new Uint16Array([0, 4095, 2048, 1024]).buffer),
  );
  const mono1Image = image(mono1, { '00280004': cs('MONOCHROME1'), '00280100': us(8), '00280101': us(8), '00280102': us(7), '00280103': us(0) }, new Uint8Array([0, 255, 100, 200]));
  const deflatedImage = image(deflated, { '00280004': cs('MONOCHROME2'), '00280100': us(8), '00280101': us(8), '00280102': us(7), '00280103': us(0) }, new Uint8Array([0, 255, 100, 200]), '1.2.840.10008.1.2.1.99');
  const r = await stow(archive.dicomWebUrl, [paletteImage, mono1Image, deflatedImage, new Uint8Array(fs.readFileSync(path.join(PYDICOM_DIR, 'MR_small_bigendian.dcm')))]);
  expect(r.status).toBe(200);
});
afterAll(async () => archive?.stop());

test('PALETTE COLOR with bulk-data lookup tables renders through them', async () => {
  const meta = await (await fetch(`${url(palette)}/metadata`, { headers: { Accept: 'application/dicom+json' } })).json();
  expect(meta[0]['00281201'].BulkDataURI).toBeDefined(); // the LUT is bulk data, read by range when rendering
  const png = readPng(Buffer.from(await (await fetch(`${url(palette)}/rendered`, { headers: { Accept: 'image/png' } })).arrayBuffer()));
  expect(png.channels).toBe(3);
  expect(Array.from(png.pixels)).toEqual([0, 255, 128, 255, 0, 128, 128, 127, 128, 64, 191, 128]);
});

test('MONOCHROME1 is inverted; a deflated object renders', async () => {
  const m1 = readPng(Buffer.from(await (await fetch(`${url(mono1)}/rendered`, { headers: { Accept: 'image/png' } })).arrayBuffer()));
  expect(Array.from(m1.pixels)).toEqual([255, 0, 155, 55]);
  const d = await fetch(`${url(deflated)}/rendered`, { headers: { Accept: 'image/png' } });
  expect(d.status).toBe(200);
  expect(Array.from(readPng(Buffer.from(await d.arrayBuffer())).pixels)).toEqual([0, 255, 100, 200]);
});

test('a big-endian object renders like its little-endian twin would', async () => {
  const q = await (await fetch(`${archive.dicomWebUrl}/instances?SOPInstanceUID=1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457&includefield=0020000E`, { headers: { Accept: 'application/dicom+json' } })).json();
  const be = `${archive.dicomWebUrl}/studies/${q[0]['0020000D'].Value[0]}/series/${q[0]['0020000E'].Value[0]}/instances/1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457`;
  const r = await fetch(`${be}/rendered?window=600,1200`, { headers: { Accept: 'image/png' } });
  expect(r.status).toBe(200);
  const png = readPng(Buffer.from(await r.arrayBuffer()));
  expect([png.width, png.height]).toEqual([64, 64]);
  // The same pixels as the little-endian twin rendered by the core directly.
  const twin = await loadImage('MR_small.dcm');
  const expected = readPng(await renderFrame(twin.parsed.transferSyntaxUID, frameBytes(twin, 0), twin.description, { mediaType: 'image/png', window: { center: 600, width: 1200 } }));
  expect(Buffer.compare(Buffer.from(png.pixels), Buffer.from(expected.pixels))).toBe(0);
  expect(new Set(png.pixels).size).toBeGreaterThan(50);
});
