/**
 * Bundle the Lambda handlers (functions/handlers/{stow,qido,wado,delete}.ts)
 * with esbuild: one self-contained CommonJS file per service, AWS SDK included
 * (no reliance on the runtime's copy, so the version we test is the one we ship),
 * minified, with a source map and a metafile beside it. Works offline.
 *
 *   tsx scripts/build-functions.ts [--out dist/functions]
 *
 * Output: <out>/<name>/index.js (+ index.js.map, meta.json); Lambda handler
 * setting "index.handler".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { build, type Plugin } from 'esbuild';

/**
 * dcmjs-codecs (the WASM codecs of core/imaging) requires dcmjs at load for its
 * Transcoder, which the archive never uses: its frame codecs (NativeCodecs,
 * Context) do not touch it. A stub keeps dcmjs (~700 kB minified) out of the
 * bundles; the codecs' .wasm is copied beside index.js, where the codecs look for it.
 */
export const dcmjsStub: Plugin = {
  name: 'dcmjs-codecs-without-dcmjs',
  setup(b) {
    b.onResolve({ filter: /^dcmjs$/ }, (args) => (args.importer.includes(`${path.sep}dcmjs-codecs${path.sep}`) ? { path: 'dcmjs', namespace: 'dcmjs-stub' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'dcmjs-stub' }, () => ({ contents: 'module.exports = { data: {}, log: {}, utilities: {}, normalizers: {}, derivations: {} };', loader: 'js' }));
  },
};
/** Functions that decode pixel data and so need the codecs' .wasm beside their bundle. */
export const CODEC_HANDLERS: readonly string[] = ['wado'];
export const CODECS_WASM = 'node_modules/dcmjs-codecs/build/dcmjs-native-codecs.wasm';

export const HANDLERS = ['stow', 'qido', 'wado', 'delete', 'upload', 'ingest'] as const;
export type HandlerName = (typeof HANDLERS)[number];

export interface BuiltFunction {
  name: HandlerName;
  /** Absolute path of the bundle (index.js). */
  file: string;
  /** Size of the bundle in bytes (without the source map). */
  bytes: number;
}

const ROOT = path.resolve(__dirname, '..');
export const DEFAULT_OUT_DIR = path.join(ROOT, 'dist', 'functions');

export async function buildFunctions(outDir: string = DEFAULT_OUT_DIR): Promise<BuiltFunction[]> {
  const out = path.resolve(outDir);
  return Promise.all(
    HANDLERS.map(async (name): Promise<BuiltFunction> => {
      const dir = path.join(out, name);
      const file = path.join(dir, 'index.js');
      const result = await build({
        entryPoints: [path.join(ROOT, 'functions', 'handlers', `${name}.ts`)],
        outfile: file,
        absWorkingDir: ROOT,
        bundle: true,
        platform: 'node',
        target: 'node22',
        format: 'cjs',
        // Prefer the ESM builds (middy is ESM-only; the SDK's ESM builds tree-shake better).
        mainFields: ['module', 'main'],
        // Node built-ins the SDK loads lazily with import() become require(): the
        // bundle is CommonJS anyway, and then it also loads in CJS hosts without
        // ESM support (jest's vm sandbox: ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING_FLAG).
        supported: { 'dynamic-import': false },
        external: [],
        plugins: [dcmjsStub],
        sourcemap: true,
        minify: true,
        metafile: true,
        legalComments: 'none',
        logLevel: 'warning',
        tsconfig: path.join(ROOT, 'tsconfig.json'),
      });
      fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(result.metafile));
      // Only the WADO function decodes (rendering, transcoding); the others carry the codec JavaScript through the shared route table but never call it.
      if (CODEC_HANDLERS.includes(name) && Object.keys(result.metafile.inputs).some((i) => i.includes('dcmjs-codecs'))) fs.copyFileSync(path.join(ROOT, CODECS_WASM), path.join(dir, path.basename(CODECS_WASM)));
      return { name, file, bytes: fs.statSync(file).size };
    }),
  );
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(2)} MB` : `${(n / 1024).toFixed(1)} kB`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const started = Date.now();
  const built = await buildFunctions(values.out ?? DEFAULT_OUT_DIR);
  for (const b of built) console.log(`${b.name.padEnd(7)} ${formatBytes(b.bytes).padStart(10)}  ${path.relative(process.cwd(), b.file)}`);
  console.log(`built ${built.length} functions in ${Date.now() - started} ms`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
