/**
 * Decode and render time of one 512×512 16-bit CT frame per transfer syntax
 * (docs/benchmarks.md, "Rendering"). The frame is a synthetic CT slice
 * (test/fixtures/synthetic.ts) encoded losslessly by our own encoders; JPEG
 * extended 12-bit (lossy) has no encoder here, so its row uses the corpus
 * frame JPEG-lossy.dcm (1024×256 = the same number of pixels).
 *
 *   npx tsx scripts/measure-render.ts [--runs 15]
 *
 * Prints a markdown table: median decode ms, median render ms (decode +
 * window + JPEG q90 / PNG encode of the full frame), encoded size.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ctSeries } from '../test/fixtures/synthetic';
import { parsePart10 } from '../functions/core/dicom';
import { describePixels, decodeFrame, encodeFrame, loadCodecs, renderFrame, TS, type PixelDescription } from '../functions/core/imaging';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(runs: number, f: () => Promise<unknown>): Promise<number> {
  await f(); // warm-up (WASM compile, JIT)
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await f();
    out.push(performance.now() - t);
  }
  return median(out);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string' } } });
  const runs = Number(values.runs ?? 15);
  const t0 = performance.now();
  await loadCodecs();
  const wasmLoad = performance.now() - t0;
  const [ct] = ctSeries({ count: 1, rows: 512, columns: 512 });
  const parsed = parsePart10(ct!.bytes);
  const d = await describePixels(parsed.dataset);
  const range = parsed.pixelData!.frames[0]![0]!;
  const native = ct!.bytes.subarray(range.offset, range.offset + range.length);
  const decoded = await decodeFrame(TS.ExplicitVRLittleEndian, native, d);
  const rows: { name: string; ts: string; frame: Uint8Array; d: PixelDescription }[] = [{ name: 'Explicit VR Little Endian', ts: TS.ExplicitVRLittleEndian, frame: native, d }];
  for (const [name, ts] of [
    ['RLE Lossless', TS.RLELossless],
    ['JPEG Lossless SV1', TS.JPEGLosslessSV1],
    ['JPEG-LS Lossless', TS.JPEGLSLossless],
    ['JPEG 2000 Lossless', TS.JPEG2000Lossless],
    ['HTJ2K Lossless', TS.HTJ2KLossless],
  ] as const) {
    rows.push({ name, ts, frame: await encodeFrame(ts, decoded, d), d });
  }
  const jpegFile = path.join(__dirname, '..', '..', 'shared', 'testdata', 'pydicom', 'JPEG-lossy.dcm');
  if (fs.existsSync(jpegFile)) {
    const bytes = new Uint8Array(fs.readFileSync(jpegFile));
    const p = parsePart10(bytes);
    const frame = Buffer.concat(p.pixelData!.frames[0]!.map((r) => bytes.subarray(r.offset, r.offset + r.length)));
    rows.push({ name: 'JPEG Extended 12-bit (corpus, 1024×256)', ts: p.transferSyntaxUID, frame, d: await describePixels(p.dataset) });
  }
  console.log(`WASM codecs load: ${wasmLoad.toFixed(0)} ms (once per process); median of ${runs} runs, node ${process.version}\n`);
  console.log('| transfer syntax | encoded bytes | decode ms | render JPEG ms | render PNG ms |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    const dec = await time(runs, () => decodeFrame(r.ts, r.frame, r.d));
    const jpeg = await time(runs, () => renderFrame(r.ts, r.frame, r.d, { mediaType: 'image/jpeg', quality: 90 }));
    const png = await time(runs, () => renderFrame(r.ts, r.frame, r.d, { mediaType: 'image/png' }));
    console.log(`| ${r.name} | ${r.frame.byteLength} | ${dec.toFixed(1)} | ${jpeg.toFixed(1)} | ${png.toFixed(1)} |`);
  }
  const thumb = await time(runs, () => renderFrame(TS.HTJ2KLossless, rows.find((r) => r.ts === TS.HTJ2KLossless)!.frame, d, { mediaType: 'image/jpeg', viewport: { vw: 128, vh: 128 } }));
  console.log(`\n128×128 JPEG thumbnail from the HTJ2K frame: ${thumb.toFixed(1)} ms`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
