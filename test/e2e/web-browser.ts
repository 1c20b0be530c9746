/**
 * Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core,
 * for the web UI tests. A fresh profile per launch, no network beyond what
 * the page asks for (no background services), removed on close.
 */
import * as fs from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';
import { makeTempDir } from '../helpers/tmp';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function chromiumInstalled(): boolean {
  return fs.existsSync(CHROMIUM);
}

/**
 * A browser context on a fresh profile directory (playwright passes it as
 * --user-data-dir; it refuses that flag in `args`), headless (playwright adds
 * --headless), downloads allowed.
 */
export async function launchChromium(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = makeTempDir('chromium-profile-');
  const context = await chromium.launchPersistentContext(profile.dir, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // WebGL in software for the viewer (cornerstone falls back to CPU rendering without it).
      '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader',
    ],
    timeout: 60_000,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      profile.cleanup();
    },
  };
}
