/**
 * The web UI and the OHIF viewer in a real browser (Debian's Chromium,
 * headless, through playwright-core) against a real embedded archive:
 * upload through the file input and a folder, find the study by a wildcard
 * name, page through results, browse series → instances → tags with
 * thumbnails, download the ZIP, open the study in OHIF and read the drawn
 * pixels back, delete with confirmation.
 *
 * UPDATE_SCREENSHOTS=1 also writes docs/screenshots/*.png.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import { ensureOhifDist } from '../../web/ohif';
import { ctSeries, crInstance, type SyntheticInstance } from '../fixtures/synthetic';
import { getJson, stow } from '../helpers/archive';
import { makeTempDir } from '../helpers/tmp';
import { chromiumInstalled, launchChromium } from './web-browser';

const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(__dirname, '..', '..', 'docs', 'screenshots') : undefined;

jest.setTimeout(240_000);

const run = chromiumInstalled() ? describe : describe.skip;
if (!chromiumInstalled()) console.warn('web UI tests skipped: /usr/bin/chromium is missing (npm test installs it)');

run('web UI (Chromium) + OHIF against the embedded archive', () => {
  const tmp = makeTempDir('web-ui-');
  let archive: Awaited<ReturnType<typeof startEmbeddedArchive>>;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;
  let study: SyntheticInstance[];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const viewerDir = await ensureOhifDist();
    archive = await startEmbeddedArchive({ dataDir: path.join(tmp.dir, 'data'), port: 0, log: silentLogger, web: { authRequired: false, viewerDir, cacheDir: path.join(tmp.dir, 'cache') } });
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await archive?.close();
    tmp.cleanup();
  });

  async function shot(name: string): Promise<void> {
    if (!SCREENSHOTS) return;
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
  }

  /** Submits the search form and waits for the answer to this very search (the UI counts completed searches). */
  async function submitSearch(): Promise<void> {
    const before = Number((await page.getAttribute('body', 'data-searches')) ?? 0);
    await page.click('#search button[type=submit]');
    await page.waitForFunction((n) => Number(document.body.dataset.searches ?? 0) > n, before);
  }

  async function searchByName(name: string): Promise<void> {
    await page.fill('#search input[name=name]', name);
    await submitSearch();
  }

  test('uploads files through the file input (non-DICOM skipped) and finds the study by a wildcard name', async () => {
    study = ctSeries({ count: 3, rows: 128, columns: 128, patient: { name: 'WEBUI^ALPHA', id: 'WEBUI0001' }, studyDescription: 'WEB UI TEST', accessionNumber: 'ACC-WEB-1', studyDate: '20240115' });
    const dir = path.join(tmp.dir, 'upload');
    fs.mkdirSync(dir);
    const files = study.map((inst, i) => {
      const f = path.join(dir, `slice${i}.dcm`);
      fs.writeFileSync(f, inst.bytes);
      return f;
    });
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a DICOM file');

    await page.goto(`${archive.url}/`);
    await page.waitForSelector('#app:not([hidden])');
    await page.setInputFiles('#file-input', [...files, path.join(dir, 'notes.txt')]);
    await page.waitForSelector('#upload-status[data-done=true]');
    expect(await page.textContent('#upload-status')).toBe('Upload finished: 3 stored, 0 failed, 1 skipped (not DICOM).');
    expect(await page.getAttribute('#upload-progress', 'value')).toBe(await page.getAttribute('#upload-progress', 'max'));

    // The archive holds exactly what was sent.
    const stored = await getJson(`${archive.dicomWebUrl}/studies/${study[0]!.studyInstanceUID}/instances`);
    expect(stored.json.map((i: any) => i['00080018'].Value[0]).sort()).toEqual(study.map((i) => i.sopInstanceUID).sort());

    await searchByName('WEBUI^AL*');
    const rows = page.locator('tr.study');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-study')).toBe(study[0]!.studyInstanceUID);
    expect(await rows.first().locator('td.name').textContent()).toBe('WEBUI ALPHA');
    expect(await rows.first().locator('td').nth(5).textContent()).toBe('ACC-WEB-1');

    await searchByName('NOBODY*');
    expect(await rows.count()).toBe(0);
    expect(await page.textContent('#status')).toBe('No studies match.');
  });

  test('uploads a folder (nested directories) through the folder input', async () => {
    const dir = path.join(tmp.dir, 'folder');
    const series = ctSeries({ count: 2, rows: 64, columns: 64, patient: { name: 'DIRUP^FOLDER', id: 'DIRUP0001' }, studyDate: '20220202' });
    fs.mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a', 'one.dcm'), series[0]!.bytes);
    fs.writeFileSync(path.join(dir, 'a', 'b', 'two'), series[1]!.bytes); // no extension: recognised by its DICM prefix
    await page.evaluate(() => delete document.getElementById('upload-status')!.dataset.done);
    await page.setInputFiles('#folder-input', dir);
    await page.waitForSelector('#upload-status[data-done=true]');
    expect(await page.textContent('#upload-status')).toBe('Upload finished: 2 stored, 0 failed, 0 skipped (not DICOM).');
    const stored = await getJson(`${archive.dicomWebUrl}/studies/${series[0]!.studyInstanceUID}/instances`);
    expect(stored.json).toHaveLength(2);
  });

  test('date range, modality and accession filters, and paging with limit/offset', async () => {
    // 27 more studies (CR) so that a page (25) is full and a second one exists.
    for (let n = 0; n < 27; n++) {
      const inst = crInstance({ patient: { name: `PAGING^P${String(n).padStart(2, '0')}`, id: `PG${n}` }, studyDate: '20230601', accessionNumber: `PG-${n}` });
      expect((await stow(archive.dicomWebUrl, [inst.bytes])).status).toBe(200);
    }
    await page.fill('#search input[name=name]', '');
    await page.fill('#search input[name=from]', '2024-01-01');
    await page.fill('#search input[name=to]', '2024-12-31');
    await submitSearch();
    expect(await page.locator('tr.study').count()).toBe(1);
    expect(await page.locator('tr.study').first().getAttribute('data-study')).toBe(study[0]!.studyInstanceUID);

    await page.fill('#search input[name=from]', '');
    await page.fill('#search input[name=to]', '');
    await page.fill('#search input[name=modality]', 'cr');
    await page.click('#search button[type=submit]');
    await page.waitForFunction(() => document.getElementById('page-label')?.textContent === 'Studies 1–25');
    expect(await page.locator('tr.study').count()).toBe(25);
    expect(await page.isDisabled('#prev')).toBe(true);
    expect(await page.isEnabled('#next')).toBe(true);
    await page.click('#next');
    await page.waitForFunction(() => document.getElementById('page-label')?.textContent === 'Studies 26–27');
    expect(await page.locator('tr.study').count()).toBe(2);
    expect(await page.isDisabled('#next')).toBe(true);
    await page.click('#prev');
    await page.waitForFunction(() => document.getElementById('page-label')?.textContent === 'Studies 1–25');

    await page.fill('#search input[name=modality]', '');
    await page.fill('#search input[name=accession]', 'PG-7');
    await submitSearch();
    expect(await page.locator('tr.study').count()).toBe(1);
    expect(await page.locator('tr.study td.name').textContent()).toBe('PAGING P07');
    await page.fill('#search input[name=accession]', '');
  });

  test('names and descriptions are shown as text, never run as markup', async () => {
    const evil = crInstance({ patient: { name: '<b>BOLD</b>^EVIL', id: 'XSS1' }, studyDescription: '<script>window.__xss=2</script>' });
    expect((await stow(archive.dicomWebUrl, [evil.bytes])).status).toBe(200);
    await page.fill('#search input[name=id]', 'XSS1');
    await submitSearch();
    expect(await page.locator('tr.study').count()).toBe(1);
    expect(await page.locator('tr.study td.name').textContent()).toBe('<b>BOLD</b> EVIL');
    expect(await page.locator('tr.study td').nth(6).textContent()).toBe('<script>window.__xss=2</script>');
    await page.locator('tr.study').first().click();
    await page.waitForSelector('button.series');
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    // The UI itself never makes <b> or <script> elements there: any would have come from the data.
    expect(await page.locator('#studies b, #studies script, #detail b, #detail script').count()).toBe(0);
    await page.fill('#search input[name=id]', '');
  });

  test('study → series → instances → tags, with the archive thumbnails', async () => {
    await searchByName('WEBUI*');
    const row = page.locator('tr.study').first();
    // The study thumbnail (PS3.18 §10.4.1.1.6), fetched and shown as an image that decoded.
    await row.locator('.thumb img').waitFor();
    await page.waitForFunction(() => {
      const i = document.querySelector('tr.study .thumb img') as HTMLImageElement | null;
      return !!i && i.complete && i.naturalWidth > 0;
    });
    await shot('study-list');

    await row.click();
    const card = page.locator(`button.series[data-series="${study[0]!.seriesInstanceUID}"]`);
    await card.waitFor();
    expect(await card.textContent()).toContain('3 instances');
    await card.locator('.thumb img').waitFor();
    await card.click();
    const instances = page.locator('button.instance');
    await page.waitForFunction(() => document.querySelectorAll('button.instance').length === 3);
    expect((await instances.allTextContents()).map((t) => t.split(' ')[1]).sort()).toEqual(study.map((i) => i.sopInstanceUID).sort());
    await page.locator(`button.instance[data-instance="${study[1]!.sopInstanceUID}"]`).click();
    await page.waitForSelector('table.tags');
    const tagRows = await page.locator('table.tags tbody tr').allTextContents();
    expect(tagRows).toContain('(0010,0010)PatientNamePNWEBUI^ALPHA');
    expect(tagRows.some((r) => r.startsWith('(0008,0018)SOPInstanceUIDUI') && r.endsWith(study[1]!.sopInstanceUID))).toBe(true);
    expect(tagRows.some((r) => r.startsWith('(7FE0,0010)PixelData') && r.includes('bulk data'))).toBe(true);
    await shot('study-detail');
  });

  test('downloads the study as ZIP (streamed by the browser) holding the stored instance bytes', async () => {
    await searchByName('WEBUI*');
    const button = page.locator('tr.study button.download-zip').first();
    const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
    const zip = path.join(tmp.dir, 'study.zip');
    await download.saveAs(zip);
    const out = path.join(tmp.dir, 'unzipped');
    execFileSync('unzip', ['-q', zip, '-d', out]);
    const found: Buffer[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name !== 'DICOMDIR') found.push(fs.readFileSync(p));
      }
    };
    walk(out);
    // Instance bytes as stored (the preamble aside, which the archive may zero).
    const strip = (b: Uint8Array) => Buffer.from(b.subarray(128)).toString('base64');
    expect(found.map(strip).sort()).toEqual(study.map((i) => strip(i.bytes)).sort());
  });

  test('opens the study in OHIF and the image canvas is drawn', async () => {
    await searchByName('WEBUI*');
    const href = await page.locator('tr.study a.open-viewer').first().getAttribute('href');
    expect(href).toBe(`/viewer/viewer?StudyInstanceUIDs=${study[0]!.studyInstanceUID}`);
    const viewer = await browser.context.newPage();
    const errors: string[] = [];
    viewer.on('pageerror', (e) => errors.push(e.message));
    await viewer.goto(`${archive.url}${href}`);
    // Cornerstone draws into canvas.cornerstone-canvas; wait until it holds image pixels, not a blank field.
    const stats = await viewer.waitForFunction(
      () => {
        const canvas = document.querySelector('canvas.cornerstone-canvas') as HTMLCanvasElement | null;
        if (!canvas || canvas.width < 16 || canvas.height < 16) return false;
        const copy = document.createElement('canvas');
        copy.width = canvas.width;
        copy.height = canvas.height;
        const c = copy.getContext('2d')!;
        c.drawImage(canvas, 0, 0);
        const data = c.getImageData(0, 0, copy.width, copy.height).data;
        let lit = 0;
        const levels = new Set<number>();
        for (let i = 0; i < data.length; i += 4) {
          const v = data[i]! + data[i + 1]! + data[i + 2]!;
          if (v > 30) lit += 1;
          levels.add(v);
        }
        // The synthetic CT (body outline, lungs, a bright disc at window 400/40) covers a good part of the canvas in several grey levels.
        return lit > (data.length / 4) * 0.1 && levels.size >= 3 ? { lit, levels: levels.size, pixels: data.length / 4 } : false;
      },
      undefined,
      { timeout: 120_000, polling: 500 },
    );
    const s = (await stats.jsonValue()) as { lit: number; levels: number; pixels: number };
    expect(s.levels).toBeGreaterThanOrEqual(3);
    expect(s.lit / s.pixels).toBeGreaterThan(0.1);
    if (SCREENSHOTS) await viewer.screenshot({ path: path.join(SCREENSHOTS, 'ohif-viewer.png') });
    await viewer.close();
  });

  test('deletes a study only after confirmation', async () => {
    await searchByName('WEBUI*');
    const row = page.locator('tr.study').first();
    // Cancel first: nothing happens.
    await row.locator('button.delete').click();
    await page.waitForSelector('#confirm-delete[open]');
    expect(await page.textContent('#confirm-text')).toBe('Delete the study of WEBUI ALPHA from 2024-01-15 with 3 instances? This cannot be undone.');
    if (SCREENSHOTS) await shot('delete-confirmation');
    await page.click('#confirm-delete button[value=cancel]');
    expect((await getJson(`${archive.dicomWebUrl}/studies?StudyInstanceUID=${study[0]!.studyInstanceUID}`)).json).toHaveLength(1);

    await row.locator('button.delete').click();
    await page.waitForSelector('#confirm-delete[open]');
    await page.click('#confirm-delete-button');
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'No studies match.');
    const after = await getJson(`${archive.dicomWebUrl}/studies?StudyInstanceUID=${study[0]!.studyInstanceUID}`);
    expect(after.json ?? []).toHaveLength(0);
    expect(pageErrors).toEqual([]);
  });
});
