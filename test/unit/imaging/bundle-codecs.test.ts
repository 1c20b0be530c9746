/**
 * The codecs work inside an esbuild bundle as the Lambda functions are built
 * (scripts/build-functions.ts): dcmjs replaced by a stub, the .wasm beside the
 * bundle, loaded from another working directory in a fresh node process.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import { makeTempDir } from '../../helpers/tmp';
import { PROJECT_ROOT } from '../../helpers/paths';
import { dcmjsStub, CODECS_WASM } from '../../../scripts/build-functions';

test('a bundle with the stub decodes HTJ2K and JPEG 2000 and leaves dcmjs out', async () => {
  const tmp = makeTempDir('codec-bundle-');
  try {
    const entry = path.join(tmp.dir, 'entry.ts');
    fs.writeFileSync(
      entry,
      `import { decodeFrame, encodeFrame, TS } from ${JSON.stringify(path.join(PROJECT_ROOT, 'functions/core/imaging'))};
export async function run() {
  const d: any = { rows: 2, columns: 2, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 16, highBit: 15, pixelRepresentation: 0, photometricInterpretation: 'MONOCHROME2', planarConfiguration: 0 };
  const f = { data: new Uint8Array([1, 0, 2, 0, 3, 1, 4, 0]), bitsAllocated: 16, photometricInterpretation: 'MONOCHROME2' };
  const out = [];
  for (const ts of [TS.HTJ2KLossless, TS.JPEG2000Lossless, TS.JPEGLSLossless]) out.push(Array.from((await decodeFrame(ts, await encodeFrame(ts, f, d), d)).data).join(','));
  return out;
}`,
    );
    const dir = path.join(tmp.dir, 'out');
    const result = await build({ entryPoints: [entry], outfile: path.join(dir, 'index.js'), bundle: true, platform: 'node', format: 'cjs', minify: true, plugins: [dcmjsStub], metafile: true, logLevel: 'warning', absWorkingDir: PROJECT_ROOT });
    expect(Object.keys(result.metafile.inputs).some((i) => /node_modules\/(dcmjs-codecs\/node_modules\/)?dcmjs\/build/.test(i))).toBe(false);
    expect(fs.statSync(path.join(dir, 'index.js')).size).toBeLessThan(200 * 1024);
    fs.copyFileSync(path.join(PROJECT_ROOT, CODECS_WASM), path.join(dir, path.basename(CODECS_WASM)));
    const printed = execFileSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(dir, 'index.js'))}).run().then((r) => console.log(JSON.stringify(r)))`], { cwd: tmp.dir, encoding: 'utf8' });
    expect(JSON.parse(printed)).toEqual(['1,0,2,0,3,1,4,0', '1,0,2,0,3,1,4,0', '1,0,2,0,3,1,4,0']);
  } finally {
    tmp.cleanup();
  }
});
