/**
 * The OHIF viewer: the prebuilt `dist/` of the npm package `@ohif/app`, and
 * the `app-config.js` that points it at this archive.
 *
 * Why `npm pack` and not a dependency: `@ohif/app`'s package.json lists its
 * monorepo siblings at the same version (`@ohif/i18n@3.13.2`, …), some of
 * which are not published, so `npm install @ohif/app` fails (ETARGET), and
 * when it works it pulls in ~1 GB of build-time packages the prebuilt
 * bundle does not need. The published tarball itself carries the whole
 * built viewer (`dist/`, 213 MB unpacked). So it is fetched with the ordinary
 * npm client (`npm pack`, which checks the registry's integrity), checked
 * against the pinned SHA-512 below, and only `package/dist` is unpacked into
 * `node_modules/.cache/` — never committed.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const OHIF_PACKAGE = '@ohif/app';
export const OHIF_VERSION = '3.13.2';
/** `dist.integrity` of @ohif/app@3.13.2 in the npm registry. */
export const OHIF_INTEGRITY = 'sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA==';

export const REPO_ROOT = path.resolve(__dirname, '..');

/**
 * Where the viewer is served, locally and in AWS. The prebuilt bundle is
 * built for `/` (webpack public path, index.html, manifest), so the
 * unpacked copy is rebased to this path once (rebaseOhifDist).
 */
export const OHIF_BASE_PATH = '/viewer';

/** Where the unpacked viewer lives (per version and base path, so an upgrade never mixes files). */
export function ohifDistDir(root = REPO_ROOT): string {
  return path.join(root, 'node_modules', '.cache', `ohif-app-${OHIF_VERSION}${OHIF_BASE_PATH.replace(/\//g, '-')}`, 'dist');
}

/** The viewer's directory if it has been fetched, else undefined (nothing is downloaded). */
export function installedOhifDist(root = REPO_ROOT): string | undefined {
  const dir = ohifDistDir(root);
  return fs.existsSync(path.join(dir, 'index.html')) ? dir : undefined;
}

/**
 * Fetch and unpack the viewer once; later calls return the cached directory.
 * Unpacks into a temporary sibling and renames it into place, so a crash or
 * a concurrent caller never leaves a half-unpacked viewer behind.
 */
export async function ensureOhifDist(root = REPO_ROOT): Promise<string> {
  const existing = installedOhifDist(root);
  if (existing) return existing;
  const dist = ohifDistDir(root);
  const versionDir = path.dirname(dist);
  fs.mkdirSync(path.dirname(versionDir), { recursive: true });
  const work = fs.mkdtempSync(`${versionDir}.tmp-`);
  try {
    const { stdout } = await run('npm', ['pack', `${OHIF_PACKAGE}@${OHIF_VERSION}`, '--json', '--pack-destination', work], { cwd: work, maxBuffer: 64 * 1024 * 1024 });
    const filename = (JSON.parse(stdout) as { filename: string }[])[0]?.filename;
    if (!filename) throw new Error('npm pack named no tarball');
    const tarball = path.join(work, filename);
    const digest = `sha512-${createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
    if (digest !== OHIF_INTEGRITY) throw new Error(`${OHIF_PACKAGE}@${OHIF_VERSION}: tarball integrity ${digest} is not the pinned ${OHIF_INTEGRITY}`);
    const unpacked = path.join(work, 'out');
    fs.mkdirSync(unpacked);
    await run('tar', ['-xzf', tarball, '-C', unpacked, 'package/dist']);
    fs.mkdirSync(path.join(work, 'v'));
    fs.renameSync(path.join(unpacked, 'package', 'dist'), path.join(work, 'v', 'dist'));
    rebaseOhifDist(path.join(work, 'v', 'dist'), OHIF_BASE_PATH);
    try {
      fs.renameSync(path.join(work, 'v'), versionDir);
    } catch (error) {
      // Another process won the race: its copy is as good as ours.
      if (!installedOhifDist(root)) throw error;
    }
    return dist;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export interface OhifConfigOptions {
  /** The DICOMweb root the viewer queries: absolute (AWS: the API URL) or a same-origin path (`/dicom-web`). */
  dicomWebRoot: string;
  /** Where the viewer is served (`/viewer`): OHIF's router base and the prefix of its assets. */
  routerBasename: string;
  /**
   * 'thumbnail': the archive's PS3.18 §9.7 thumbnail resources; 'wadors': the
   * viewer renders thumbnails itself from frames (always works).
   */
  thumbnailRendering: 'thumbnail' | 'wadors';
}

/**
 * `app-config.js` for this archive. The data source mirrors what the archive
 * supports (docs/conformance): QIDO includefield and fuzzy PN matching,
 * wildcards, WADO-RS frames and metadata with BulkDataURIs relative to the
 * study resource. When the archive needs credentials, the web UI opens the
 * viewer with `?token=` (OHIF moves it into its auth service and strips it
 * from the address bar), so nothing secret is in this file.
 */
export function ohifAppConfig(options: OhifConfigOptions): string {
  const root = options.dicomWebRoot.replace(/\/$/, '');
  const config = {
    routerBasename: options.routerBasename,
    extensions: [],
    modes: [],
    customizationService: {},
    showStudyList: true,
    maxNumberOfWebWorkers: 3,
    showWarningMessageForCrossOrigin: false,
    showCPUFallbackMessage: true,
    showLoadingIndicator: true,
    strictZSpacingForVolumeViewport: true,
    investigationalUseDialog: { option: 'never' },
    maxNumRequests: { interaction: 100, thumbnail: 5, prefetch: 25 },
    showErrorDetails: 'production',
    defaultDataSourceName: 'archive',
    dataSources: [
      {
        namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
        sourceName: 'archive',
        configuration: {
          friendlyName: 'DICOMweb archive',
          name: 'archive',
          wadoUriRoot: root,
          qidoRoot: root,
          wadoRoot: root,
          qidoSupportsIncludeField: true,
          supportsReject: false,
          supportsStow: true,
          imageRendering: 'wadors',
          thumbnailRendering: options.thumbnailRendering,
          enableStudyLazyLoad: true,
          supportsFuzzyMatching: true,
          supportsWildcard: true,
          staticWado: false,
          singlepart: 'video,pdf',
          omitQuotationForMultipartRequest: true,
          bulkDataURI: { enabled: true, relativeResolution: 'studies' },
        },
      },
    ],
  };
  return `/* generated for this archive (web/ohif.ts); OHIF ${OHIF_VERSION} */\nwindow.config = ${JSON.stringify(config, null, 2)};\n`;
}

/**
 * Moves a freshly unpacked viewer from `/` to basePath: index.html (asset
 * links, window.PUBLIC_URL), the webpack runtime's public path in the app
 * and worker bundles (where lazy chunks, CSS, workers and WebAssembly are
 * loaded from), root-relative `url(/…)` in stylesheets (fonts) and the web
 * manifest's icons. The edit is checked: a bundle without the expected
 * runtime line (another OHIF build) fails here instead of serving a viewer
 * whose chunks 404.
 */
export function rebaseOhifDist(dist: string, basePath: string): void {
  const base = `${basePath.replace(/\/$/, '')}/`;
  const index = path.join(dist, 'index.html');
  fs.writeFileSync(index, rebaseOhifIndex(fs.readFileSync(index, 'utf8'), basePath));
  // The app and each worker bundle carry their own webpack runtime with the public path.
  const runtime = '__webpack_require__.p = "/";';
  let appRebased = false;
  for (const f of fs.readdirSync(dist)) {
    const file = path.join(dist, f);
    if (f.endsWith('.js')) {
      const code = fs.readFileSync(file, 'utf8');
      if (!code.includes(runtime)) continue;
      fs.writeFileSync(file, code.split(runtime).join(`__webpack_require__.p = ${JSON.stringify(base)};`));
      if (/^app\.bundle\.[0-9a-f]+\.js$/.test(f)) appRebased = true;
    } else if (f.endsWith('.css')) {
      const css = fs.readFileSync(file, 'utf8');
      if (css.includes('url(/')) fs.writeFileSync(file, css.replace(/url\(\/(?!\/)/g, `url(${base}`));
    }
  }
  if (!appRebased) throw new Error('the OHIF app bundle does not set its public path as expected; cannot serve it under a path');
  const manifest = path.join(dist, 'manifest.json');
  if (fs.existsSync(manifest)) fs.writeFileSync(manifest, fs.readFileSync(manifest, 'utf8').replace(/"\/(?!\/)/g, `"${base}`));
}

/**
 * OHIF's index.html with its root-relative asset paths (`/app.bundle.js`,
 * `window.PUBLIC_URL="/"`) moved under the path it is served from.
 */
export function rebaseOhifIndex(html: string, basePath: string): string {
  const base = `${basePath.replace(/\/$/, '')}/`;
  return html
    .replace(/window\.PUBLIC_URL\s*=\s*"\/"/g, `window.PUBLIC_URL=${JSON.stringify(base)}`)
    .replace(/(\s(?:href|src))="\/(?!\/)/g, `$1="${base}`);
}
