/**
 * Rendered images (PS3.18 §8.3.5 / §9.5 / §10.4.1.1.3): parameters as the
 * request spells them, a source region and viewport (§8.3.5.1.3), and the
 * consumer media types image/jpeg and image/png (§8.7.4).
 */
import { decodeFrame, encodeJpegImage } from './codecs';
import { encodePng } from './png';
import { ImagingError } from './errors';
import type { PixelDescription, VoiLutFunction } from './pixel-description';
import { toDisplay, type DisplayImage, type WindowRequest } from './pixel-pipeline';

export type RenderedMediaType = 'image/jpeg' | 'image/png';

export interface Viewport {
  /** viewport width and height in pixels */
  vw: number;
  vh: number;
  /** source region (in image pixels); sw/sh negative flip the image (§8.3.5.1.3) */
  sx?: number;
  sy?: number;
  sw?: number;
  sh?: number;
}

export interface RenderOptions {
  mediaType: RenderedMediaType;
  window?: WindowRequest;
  viewport?: Viewport;
  /** JPEG quality 1–100 (§8.3.5.1.2); ignored for PNG */
  quality?: number;
}

/** Largest output raster: a viewport is a display, not a way to allocate memory. */
export const MAX_VIEWPORT = 8192;
export const DEFAULT_JPEG_QUALITY = 90;

function numberList(text: string, what: string, count: [number, number]): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length < count[0] || parts.length > count[1] || parts.some((p) => !/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(p))) {
    throw new ImagingError('INVALID_PARAMETER', `${what} is malformed`);
  }
  return parts.map(Number);
}

/** `window=center,width[,function]` (PS3.18 §8.3.5.1.4: function linear | linear-exact | sigmoid). */
export function parseWindow(text: string): WindowRequest {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length < 2 || parts.length > 3) throw new ImagingError('INVALID_PARAMETER', 'window must be center,width[,function]');
  const [center, width] = numberList(parts.slice(0, 2).join(','), 'window', [2, 2]) as [number, number];
  if (width < 1 && parts[2]?.toLowerCase() !== 'linear-exact') throw new ImagingError('INVALID_PARAMETER', 'window width must be at least 1');
  if (width <= 0) throw new ImagingError('INVALID_PARAMETER', 'window width must be positive');
  const fn = (parts[2] ?? 'linear').toLowerCase();
  const map: Record<string, VoiLutFunction> = { linear: 'LINEAR', 'linear-exact': 'LINEAR_EXACT', linear_exact: 'LINEAR_EXACT', sigmoid: 'SIGMOID' };
  if (!map[fn]) throw new ImagingError('INVALID_PARAMETER', 'window function must be linear, linear-exact or sigmoid');
  return { center, width, function: map[fn] };
}

/** `viewport=vw,vh[,sx,sy,sw,sh]` (PS3.18 §8.3.5.1.3). */
export function parseViewport(text: string): Viewport {
  const v = numberList(text, 'viewport', [2, 6]);
  if (v.length !== 2 && v.length !== 6) throw new ImagingError('INVALID_PARAMETER', 'viewport must be vw,vh or vw,vh,sx,sy,sw,sh');
  const [vw, vh, sx, sy, sw, sh] = v;
  if (!Number.isInteger(vw) || !Number.isInteger(vh) || vw! < 1 || vh! < 1 || vw! > MAX_VIEWPORT || vh! > MAX_VIEWPORT) {
    throw new ImagingError('INVALID_PARAMETER', `viewport width and height must be integers from 1 to ${MAX_VIEWPORT}`);
  }
  return v.length === 6 ? { vw: vw!, vh: vh!, sx, sy, sw, sh } : { vw: vw!, vh: vh! };
}

/** `quality=1…100` (PS3.18 §8.3.5.1.2). */
export function parseQuality(text: string): number {
  if (!/^\d{1,3}$/.test(text.trim()) || Number(text) < 1 || Number(text) > 100) throw new ImagingError('INVALID_PARAMETER', 'quality must be an integer from 1 to 100');
  return Number(text);
}

/**
 * Crop to the source region, then scale to fit the viewport keeping the aspect
 * ratio (the rendered image may be smaller than the viewport in one dimension).
 * Downscaling averages the covered source pixels (box filter); upscaling is
 * bilinear.
 */
export function applyViewport(img: DisplayImage, vp: Viewport | undefined): DisplayImage {
  if (!vp) return img;
  let sx = vp.sx ?? 0;
  let sy = vp.sy ?? 0;
  let sw = vp.sw ?? img.width - sx;
  let sh = vp.sh ?? img.height - sy;
  const flipX = sw < 0;
  const flipY = sh < 0;
  if (flipX) {
    sx += sw;
    sw = -sw;
  }
  if (flipY) {
    sy += sh;
    sh = -sh;
  }
  // Clip the region to the image.
  const x0 = Math.max(0, Math.min(img.width, sx));
  const y0 = Math.max(0, Math.min(img.height, sy));
  const x1 = Math.max(x0, Math.min(img.width, sx + sw));
  const y1 = Math.max(y0, Math.min(img.height, sy + sh));
  const rw = x1 - x0;
  const rh = y1 - y0;
  if (rw < 1 || rh < 1) throw new ImagingError('INVALID_PARAMETER', 'the viewport source region lies outside the image');
  const scale = Math.min(vp.vw / rw, vp.vh / rh);
  const ow = Math.max(1, Math.min(vp.vw, Math.round(rw * scale)));
  const oh = Math.max(1, Math.min(vp.vh, Math.round(rh * scale)));
  const c = img.channels;
  const out = new Uint8Array(ow * oh * c);
  const src = img.pixels;
  const stride = img.width * c;
  for (let oy = 0; oy < oh; oy++) {
    const ty = flipY ? oh - 1 - oy : oy;
    for (let ox = 0; ox < ow; ox++) {
      const tx = flipX ? ow - 1 - ox : ox;
      const o = (ty * ow + tx) * c;
      if (scale < 1) {
        const fx0 = x0 + (ox * rw) / ow;
        const fx1 = x0 + ((ox + 1) * rw) / ow;
        const fy0 = y0 + (oy * rh) / oh;
        const fy1 = y0 + ((oy + 1) * rh) / oh;
        const ix0 = Math.floor(fx0);
        const ix1 = Math.min(x1, Math.ceil(fx1));
        const iy0 = Math.floor(fy0);
        const iy1 = Math.min(y1, Math.ceil(fy1));
        for (let k = 0; k < c; k++) {
          let sum = 0;
          let count = 0;
          for (let y = iy0; y < iy1; y++) for (let x = ix0; x < ix1; x++) {
            sum += src[y * stride + x * c + k]!;
            count++;
          }
          out[o + k] = Math.round(sum / Math.max(count, 1));
        }
      } else {
        const fx = Math.min(x1 - 1, Math.max(x0, x0 + (ox + 0.5) / scale - 0.5));
        const fy = Math.min(y1 - 1, Math.max(y0, y0 + (oy + 0.5) / scale - 0.5));
        const ax = Math.floor(fx);
        const ay = Math.floor(fy);
        const bx = Math.min(x1 - 1, ax + 1);
        const by = Math.min(y1 - 1, ay + 1);
        const dx = fx - ax;
        const dy = fy - ay;
        for (let k = 0; k < c; k++) {
          const p00 = src[ay * stride + ax * c + k]!;
          const p10 = src[ay * stride + bx * c + k]!;
          const p01 = src[by * stride + ax * c + k]!;
          const p11 = src[by * stride + bx * c + k]!;
          out[o + k] = Math.round((p00 * (1 - dx) + p10 * dx) * (1 - dy) + (p01 * (1 - dx) + p11 * dx) * dy);
        }
      }
    }
  }
  return { width: ow, height: oh, channels: c, pixels: out };
}

/** Encode a display image as JPEG or PNG. */
export async function encodeImage(img: DisplayImage, mediaType: RenderedMediaType, quality = DEFAULT_JPEG_QUALITY): Promise<Uint8Array> {
  if (mediaType === 'image/png') return encodePng(img.pixels, img.width, img.height, img.channels);
  return encodeJpegImage(img.pixels, img.width, img.height, img.channels, quality);
}

/** Decode → display pipeline → viewport → encoding, for one frame as stored. */
export async function renderFrame(ts: string, frame: Uint8Array, d: PixelDescription, options: RenderOptions, bitOffset = 0): Promise<Uint8Array> {
  const decoded = await decodeFrame(ts, frame, d, bitOffset);
  const display = applyViewport(toDisplay(decoded, d, options.window), options.viewport);
  return encodeImage(display, options.mediaType, options.quality);
}
