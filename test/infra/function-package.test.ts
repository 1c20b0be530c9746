/**
 * What `cdk synth` puts in each function's deployment package (local esbuild
 * bundling, as `cdk deploy` uploads it): index.js and its source map, plus the
 * files a bundle loads from its own directory at run time — the codecs'
 * WebAssembly for WADO (transcoding, rendered, WADO-URI decode with it).
 * Without it the deployed WADO function would fail every decode while every
 * local test (scripts/build-functions.ts copies it) passed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { CODECS_WASM as INFRA_CODECS_WASM } from '../../infra/lib/paths';
import { CODECS_WASM } from '../../scripts/build-functions';
import { removeOutdir, synthApp, type Synthesized } from './archive-app-fixture';

describe('function deployment packages (bundled synth)', () => {
  let synth: Synthesized;
  let packages: Record<string, string[]>;
  const bundleBytes: Record<string, number> = {};
  beforeAll(() => {
    synth = synthApp({ bundle: true });
    const template = Template.fromStack(synth.stateless);
    packages = {};
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function'))) {
      const description = String(fn.Properties?.Description ?? '');
      if (!description.startsWith('DICOMweb ')) continue;
      const key = String(fn.Properties.Code.S3Key);
      const dir = path.join(synth.outdir, `asset.${key.replace(/\.zip$/, '')}`);
      const name = description.slice('DICOMweb '.length);
      packages[name] = fs.readdirSync(dir).sort();
      bundleBytes[name] = fs.statSync(path.join(dir, 'index.js')).size;
    }
  }, 600_000);
  afterAll(() => removeOutdir(synth));

  it('infra and the bundle script name the same codecs file', () => {
    expect(INFRA_CODECS_WASM).toBe(CODECS_WASM);
    expect(fs.existsSync(path.join(__dirname, '..', '..', CODECS_WASM))).toBe(true);
  });

  it('WADO ships the codecs WebAssembly beside index.js; the others ship only their bundle', () => {
    const wasm = path.basename(CODECS_WASM);
    expect(packages.wado).toEqual(['index.js', 'index.js.map', wasm].sort());
    for (const name of ['stow', 'qido', 'delete', 'upload', 'ingest']) expect({ name, files: packages[name] }).toEqual({ name, files: ['index.js', 'index.js.map'] });
  });

  it('the bundles CDK builds keep the 3 MB budget too (they lack the dcmjs stub of scripts/build-functions.ts)', () => {
    expect(Object.keys(bundleBytes).sort()).toEqual(['delete', 'ingest', 'qido', 'stow', 'upload', 'wado']);
    for (const [name, bytes] of Object.entries(bundleBytes)) expect({ name, over: bytes > 3 * 1024 * 1024, bytes }).toEqual({ name, over: false, bytes });
  });
});
