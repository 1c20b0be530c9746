/**
 * Builds the web UI (web/src) with esbuild: one bundled, minified `app.js`
 * plus `index.html` and `styles.css`. Nothing generated is committed: the
 * embedded server builds into a cache directory when it starts, and
 * `npm run build:web` builds the static site for S3 + CloudFront.
 *
 * As a script: `tsx web/build.ts [outDir]` (`npm run build:web`) builds the
 * UI and fetches the OHIF viewer (web/ohif.ts) into outDir/viewer (default
 * dist/web), ready for `cdk deploy`; `tsx web/build.ts --viewer` (run before
 * `npm start`) only fetches the viewer.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as esbuild from 'esbuild';
import * as path from 'node:path';
import { ensureOhifDist } from './ohif';

export const WEB_SRC = path.join(__dirname, 'src');

/** The files of the UI (inputs to the build), for cache keys. */
function sourceFiles(): string[] {
  return fs
    .readdirSync(WEB_SRC)
    .filter((f) => /\.(ts|html|css)$/.test(f))
    .sort()
    .map((f) => path.join(WEB_SRC, f));
}

/** Build the UI into outDir (created; replaced files only). Returns outDir. */
export async function buildWebUi(outDir: string): Promise<string> {
  fs.mkdirSync(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: [path.join(WEB_SRC, 'main.ts')],
    outfile: path.join(outDir, 'app.js'),
    bundle: true,
    minify: true,
    sourcemap: false,
    format: 'esm',
    target: ['es2022'],
    platform: 'browser',
    logLevel: 'error',
    legalComments: 'none',
  });
  for (const f of ['index.html', 'styles.css']) fs.copyFileSync(path.join(WEB_SRC, f), path.join(outDir, f));
  return outDir;
}

/**
 * The built UI in a cache directory keyed by the sources' modification
 * times and sizes: rebuilt when a source changes, otherwise reused. Built
 * into a temporary directory and renamed, so two servers starting at once
 * never serve a half-written bundle.
 */
export async function cachedWebUi(cacheRoot: string): Promise<string> {
  const key = sourceFiles()
    .map((f) => {
      const s = fs.statSync(f);
      return `${path.basename(f)}:${s.size}:${Math.trunc(s.mtimeMs)}`;
    })
    .join('|');
  const dir = path.join(cacheRoot, `web-ui-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`);
  if (fs.existsSync(path.join(dir, 'app.js'))) return dir;
  fs.mkdirSync(cacheRoot, { recursive: true });
  const tmp = fs.mkdtempSync(`${dir}.tmp-`);
  try {
    await buildWebUi(tmp);
    try {
      fs.renameSync(tmp, dir);
    } catch (error) {
      if (!fs.existsSync(path.join(dir, 'app.js'))) throw error;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  // Builds of older sources: gone after an hour (a server started before may still be serving one).
  for (const old of fs.readdirSync(cacheRoot)) {
    const full = path.join(cacheRoot, old);
    if (!old.startsWith('web-ui-') || full === dir) continue;
    try {
      if (Date.now() - fs.statSync(full).mtimeMs > 3600_000) fs.rmSync(full, { recursive: true, force: true });
    } catch {
      /* another process pruned it */
    }
  }
  return dir;
}

/** Static site for S3: the UI at the root, OHIF under viewer/ (its app-config.js is written by the CDK construct). */
export async function buildStaticSite(outDir: string): Promise<void> {
  fs.rmSync(outDir, { recursive: true, force: true });
  await buildWebUi(outDir);
  const ohif = await ensureOhifDist();
  const viewer = path.join(outDir, 'viewer');
  fs.cpSync(ohif, viewer, { recursive: true, filter: (src) => !/[\\/](app-config\.js|_headers|_redirects)$/.test(src) });
}

// Run as a script only when this very file is the entry point: inside a bundle
// (esbuild) every module's `module` is the bundle's, so `require.main === module`
// alone would fire wherever this file is bundled.
if (require.main === module && /(^|[\\/])build\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  if (process.argv[2] === '--viewer') {
    // `npm start`'s prestart: fetch the viewer once; without network the UI still starts (the viewer explains).
    ensureOhifDist().then(
      (dir) => console.log(`OHIF viewer ready in ${path.relative(process.cwd(), dir)}`),
      (error: unknown) => console.warn(`warning: the OHIF viewer could not be fetched (${(error as Error).message}); /viewer will say so`),
    );
  } else {
    const out = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'dist', 'web'));
    buildStaticSite(out).then(
      () => console.log(`web UI and OHIF viewer built into ${out}`),
      (error: unknown) => {
        console.error(`web build failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  }
}
