/** Readers for the images the renderer writes (PNG, filter 0) and dcmtk's dcmj2pnm writes (binary PGM/PPM), for tests. */
import { unzlibSync } from 'fflate';

export interface Raster {
  width: number;
  height: number;
  channels: number;
  pixels: Uint8Array;
}

/** A PNG as written by functions/core/imaging/png.ts: checks the signature and every chunk's CRC. */
export function readPng(bytes: Uint8Array): Raster {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (!sig.every((b, i) => bytes[i] === b)) throw new Error('not a PNG');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Uint8Array[] = [];
  for (;;) {
    const len = view.getUint32(o);
    const type = String.fromCharCode(...bytes.subarray(o + 4, o + 8));
    const data = bytes.subarray(o + 8, o + 8 + len);
    const crc = view.getUint32(o + 8 + len);
    let c = 0xffffffff;
    for (const b of bytes.subarray(o + 4, o + 8 + len)) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    if (((c ^ 0xffffffff) >>> 0) !== crc) throw new Error(`bad CRC in ${type}`);
    if (type === 'IHDR') {
      width = view.getUint32(o + 8);
      height = view.getUint32(o + 12);
      channels = data[9] === 2 ? 3 : 1;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    o += 12 + len;
  }
  const raw = unzlibSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    if (raw[y * (stride + 1)] !== 0) throw new Error('unexpected PNG filter');
    pixels.set(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return { width, height, channels, pixels };
}

/** Binary PGM (P5) or PPM (P6) with maxval 255. */
export function readPnm(bytes: Uint8Array): Raster {
  const text = Buffer.from(bytes.subarray(0, 64)).toString('latin1');
  const m = /^(P[56])\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(text);
  if (!m) throw new Error('not a binary PNM');
  const width = Number(m[2]);
  const height = Number(m[3]);
  const channels = m[1] === 'P6' ? 3 : 1;
  return { width, height, channels, pixels: bytes.subarray(m[0].length, m[0].length + width * height * channels) };
}

export function maxPixelDifference(a: Raster, b: Raster): number {
  if (a.width !== b.width || a.height !== b.height || a.channels !== b.channels) return Infinity;
  let max = 0;
  for (let i = 0; i < a.pixels.length; i++) max = Math.max(max, Math.abs(a.pixels[i]! - b.pixels[i]!));
  return max;
}

/** Mean absolute difference (for lossy comparisons). */
export function meanPixelDifference(a: Raster, b: Raster): number {
  let sum = 0;
  for (let i = 0; i < a.pixels.length; i++) sum += Math.abs(a.pixels[i]! - b.pixels[i]!);
  return sum / a.pixels.length;
}
