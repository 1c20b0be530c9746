/**
 * The Image Pixel module (PS3.3 C.7.6.3) and the presentation attributes a
 * renderer needs (Modality LUT C.11.1, VOI LUT C.11.2, Palette Color C.7.6.3.1.5),
 * read from the DICOM JSON of an instance and checked before any buffer is
 * sized from them: none of these numbers is trusted as sent.
 */
import type { DicomJsonDataset, DicomJsonElement } from '../dicom/json-model';
import { base64ToBytes } from '../dicom/base64';
import { ImagingError } from './errors';

/** A lookup table (PS3.3 C.11.1.1.1 LUT Descriptor): entries map firstMapped… to `data`. */
export interface LookupTable {
  firstMapped: number;
  /** bits of each entry (the descriptor's third value, 1–16) */
  bits: number;
  data: Uint16Array;
}

export interface WindowSetting {
  center: number;
  width: number;
}

export type VoiLutFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';

export interface PixelDescription {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  /** 0 unsigned, 1 two's complement (PS3.3 C.7.6.3.1.) */
  pixelRepresentation: 0 | 1;
  photometricInterpretation: string;
  /** 0 interleaved (R1G1B1…), 1 planar (R…G…B…) */
  planarConfiguration: 0 | 1;
  numberOfFrames: number;
  rescaleSlope: number;
  rescaleIntercept: number;
  modalityLut?: LookupTable;
  windows: WindowSetting[];
  voiLutFunction: VoiLutFunction;
  voiLut?: LookupTable;
  palette?: { red: LookupTable; green: LookupTable; blue: LookupTable };
}

/** Loads a bulk data value by its relative path ("00281201", "00283010.0.00283006"). */
export type BulkLoader = (path: string) => Promise<Uint8Array>;

/** Largest frame the renderer decodes (samples × pixels): bounds memory for any one request. */
export const MAX_FRAME_SAMPLES = 64 * 1024 * 1024;

const num = (ds: DicomJsonDataset, key: string, index = 0): number | undefined => {
  const v = ds[key]?.Value?.[index];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
};
const str = (ds: DicomJsonDataset, key: string): string | undefined => {
  const v = ds[key]?.Value?.[0];
  return typeof v === 'string' ? v.trim().toUpperCase() : undefined;
};

async function elementBytes(el: DicomJsonElement | undefined, path: string, load: BulkLoader | undefined): Promise<Uint8Array | undefined> {
  if (!el) return undefined;
  if (el.InlineBinary !== undefined) return base64ToBytes(el.InlineBinary);
  if (el.BulkDataURI !== undefined && load) return load(path);
  // US/SS LUT data (PS3.3 C.11.1.1: LUT Data may be US or OW) comes as numbers.
  if (el.Value && el.Value.every((v) => typeof v === 'number')) {
    const words = new Uint16Array(el.Value.map((v) => (v as number) & 0xffff));
    return new Uint8Array(words.buffer);
  }
  return undefined;
}

/**
 * Reads a LUT from a descriptor and its data. The first descriptor value 0 means
 * 65536 entries (PS3.3 C.11.1.1.1); 8-bit entries may be packed two per word
 * in OW data (C.7.6.3.1.5: palette data of 8-bit entries).
 */
function readLut(descriptor: number[] | undefined, bytes: Uint8Array | undefined, firstMappedSigned: boolean): LookupTable | undefined {
  if (!descriptor || descriptor.length < 3 || !bytes) return undefined;
  const entries = descriptor[0] === 0 ? 65536 : descriptor[0]!;
  if (!Number.isInteger(entries) || entries < 1 || entries > 65536) return undefined;
  let firstMapped = descriptor[1]!;
  // The descriptor's second value is US or SS by the pixel representation; JSON gives it unsigned when VR was US.
  if (firstMappedSigned && firstMapped > 32767) firstMapped -= 65536;
  const bits = descriptor[2]!;
  if (bits < 1 || bits > 16) return undefined;
  const data = new Uint16Array(entries);
  if (bytes.byteLength >= entries * 2) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < entries; i++) data[i] = view.getUint16(i * 2, true);
    // Some writers declare 16 bits but fill only 8 (seen in the wild); treat values as declared.
  } else if (bytes.byteLength >= entries && bits <= 8) {
    for (let i = 0; i < entries; i++) data[i] = bytes[i]!;
  } else {
    return undefined;
  }
  return { firstMapped, bits, data };
}

function descriptorOf(ds: DicomJsonDataset, key: string): number[] | undefined {
  const v = ds[key]?.Value;
  if (!v || v.length < 3 || !v.every((x) => typeof x === 'number')) return undefined;
  return v as number[];
}

function firstItem(ds: DicomJsonDataset, key: string): DicomJsonDataset | undefined {
  const item = ds[key]?.Value?.[0];
  return item && typeof item === 'object' && !('Alphabetic' in item) ? (item as DicomJsonDataset) : undefined;
}

const ALLOWED_PHOTOMETRIC = new Set(['MONOCHROME1', 'MONOCHROME2', 'RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_PARTIAL_422', 'YBR_PARTIAL_420', 'YBR_ICT', 'YBR_RCT', 'PALETTE COLOR']);

/**
 * The description of an instance's pixels, or an ImagingError('NOT_AN_IMAGE' |
 * 'UNSUPPORTED_IMAGE') with a reason a client can act on.
 */
export async function describePixels(ds: DicomJsonDataset, loadBulk?: BulkLoader): Promise<PixelDescription> {
  const rows = num(ds, '00280010');
  const columns = num(ds, '00280011');
  const bitsAllocated = num(ds, '00280100');
  if (!rows || !columns || !bitsAllocated) throw new ImagingError('NOT_AN_IMAGE', 'the instance has no Image Pixel module (Rows, Columns, Bits Allocated)');
  if (!Number.isInteger(rows) || !Number.isInteger(columns) || rows < 1 || columns < 1 || rows > 65535 || columns > 65535) throw new ImagingError('UNSUPPORTED_IMAGE', 'Rows/Columns out of range');
  if (![1, 8, 16, 32].includes(bitsAllocated)) throw new ImagingError('UNSUPPORTED_IMAGE', `Bits Allocated ${bitsAllocated} is not rendered`);
  const samplesPerPixel = num(ds, '00280002') ?? 1;
  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) throw new ImagingError('UNSUPPORTED_IMAGE', `Samples per Pixel ${samplesPerPixel} is not rendered`);
  const bitsStored = num(ds, '00280101') ?? bitsAllocated;
  if (!Number.isInteger(bitsStored) || bitsStored < 1 || bitsStored > bitsAllocated) throw new ImagingError('UNSUPPORTED_IMAGE', 'Bits Stored out of range');
  let highBit = num(ds, '00280102') ?? bitsStored - 1;
  if (!Number.isInteger(highBit) || highBit < bitsStored - 1 || highBit >= bitsAllocated) highBit = bitsStored - 1;
  const photometricInterpretation = str(ds, '00280004') ?? (samplesPerPixel === 3 ? 'RGB' : 'MONOCHROME2');
  if (!ALLOWED_PHOTOMETRIC.has(photometricInterpretation)) throw new ImagingError('UNSUPPORTED_IMAGE', `Photometric Interpretation ${photometricInterpretation} is not rendered`);
  const frames = num(ds, '00280008') ?? 1;
  const numberOfFrames = Number.isInteger(frames) && frames >= 1 ? frames : 1;
  if (rows * columns * samplesPerPixel > MAX_FRAME_SAMPLES) throw new ImagingError('UNSUPPORTED_IMAGE', 'the frame is too large to render');
  const pixelRepresentation = num(ds, '00280103') === 1 ? 1 : 0;

  let rescaleSlope = num(ds, '00281053') ?? 1;
  let rescaleIntercept = num(ds, '00281052') ?? 0;
  if (rescaleSlope === 0) rescaleSlope = 1;
  // Enhanced multi-frame objects keep rescale in the Shared Functional Groups (PS3.3 C.7.6.16.2.9).
  const shared = firstItem(ds, '52009229');
  const sharedTransform = shared ? firstItem(shared, '00289145') : undefined;
  if (sharedTransform && ds['00281053'] === undefined) {
    rescaleSlope = num(sharedTransform, '00281053') ?? 1;
    rescaleIntercept = num(sharedTransform, '00281052') ?? 0;
  }
  const sharedVoi = shared ? firstItem(shared, '00289132') : undefined;

  const windows: WindowSetting[] = [];
  const voiSource = ds['00281050'] ? ds : sharedVoi ?? ds;
  const centers = voiSource['00281050']?.Value ?? [];
  for (let i = 0; i < centers.length; i++) {
    const center = num(voiSource, '00281050', i);
    const width = num(voiSource, '00281051', i);
    if (center !== undefined && width !== undefined && width >= 1) windows.push({ center, width });
  }
  const fn = str(voiSource, '00281056');
  const voiLutFunction: VoiLutFunction = fn === 'SIGMOID' ? 'SIGMOID' : fn === 'LINEAR_EXACT' ? 'LINEAR_EXACT' : 'LINEAR';

  const signedFirst = pixelRepresentation === 1;
  let modalityLut: LookupTable | undefined;
  const mItem = firstItem(ds, '00283000');
  if (mItem) modalityLut = readLut(descriptorOf(mItem, '00283002'), await elementBytes(mItem['00283006'], '00283000.0.00283006', loadBulk), signedFirst);
  let voiLut: LookupTable | undefined;
  const vItem = firstItem(ds, '00283010');
  if (vItem) voiLut = readLut(descriptorOf(vItem, '00283002'), await elementBytes(vItem['00283006'], '00283010.0.00283006', loadBulk), signedFirst && !modalityLut);

  let palette: PixelDescription['palette'];
  if (photometricInterpretation === 'PALETTE COLOR') {
    const red = readLut(descriptorOf(ds, '00281101'), await elementBytes(ds['00281201'], '00281201', loadBulk), false);
    const green = readLut(descriptorOf(ds, '00281102'), await elementBytes(ds['00281202'], '00281202', loadBulk), false);
    const blue = readLut(descriptorOf(ds, '00281103'), await elementBytes(ds['00281203'], '00281203', loadBulk), false);
    if (!red || !green || !blue) throw new ImagingError('UNSUPPORTED_IMAGE', 'PALETTE COLOR without usable palette lookup tables (segmented palettes are not rendered)');
    palette = { red, green, blue };
  }

  return {
    rows,
    columns,
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    highBit,
    pixelRepresentation,
    photometricInterpretation,
    planarConfiguration: num(ds, '00280006') === 1 ? 1 : 0,
    numberOfFrames,
    rescaleSlope,
    rescaleIntercept,
    modalityLut,
    windows,
    voiLutFunction,
    voiLut,
    palette,
  };
}

/** Bytes of one native frame (PS3.5 §8.1.1); YBR_*_422 native frames hold 2 samples per pixel. */
export function nativeFrameBytes(d: PixelDescription): number {
  let samples = d.samplesPerPixel;
  if (samples === 3 && (d.photometricInterpretation === 'YBR_FULL_422' || d.photometricInterpretation === 'YBR_PARTIAL_422')) samples = 2;
  return Math.ceil((d.rows * d.columns * samples * d.bitsAllocated) / 8);
}
