/**
 * The web UI: study list with search and paging, study → series →
 * instances → tags, upload by drag and drop, ZIP download, delete with
 * confirmation, "open in viewer" (OHIF). Plain DOM; every value from the
 * archive is set as text (never parsed as HTML: names and descriptions are
 * untrusted input).
 */
import { ArchiveClient, HttpError, formatDate, text } from './api';
import { beginOidcLogin, completeOidcLogin, forgetToken, storeToken, storedToken } from './auth';
import type { WebConfig } from './config';
import { filesFromDrop, uploadFiles, type UploadProgress } from './upload';
import type { DicomJsonDataset } from '../../functions/core/dicom/json-model';
import { lookupTagKey } from '../../functions/core/dicom/dictionary';

const PAGE_SIZE = 25;

const T = {
  PatientName: '00100010',
  PatientID: '00100020',
  StudyDate: '00080020',
  ModalitiesInStudy: '00080061',
  AccessionNumber: '00080050',
  StudyDescription: '00081030',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  Modality: '00080060',
  SeriesDescription: '0008103E',
  SeriesNumber: '00200011',
  NumberOfSeriesRelatedInstances: '00201209',
  SOPInstanceUID: '00080018',
  SOPClassUID: '00080016',
  InstanceNumber: '00200013',
} as const;

type Child = Node | string | null | undefined | false;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | ((e: Event) => void)> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else if (v !== false) el.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function $(id: string): HTMLElement {
  return document.getElementById(id)!;
}

let config: WebConfig;
let client: ArchiveClient;
let offset = 0;
let lastQuery = new URLSearchParams();
const objectUrls: string[] = [];

function status(message: string, kind: 'info' | 'error' = 'info'): void {
  const el = $('status');
  el.textContent = message;
  el.className = kind;
}

function showLogin(message?: string): void {
  forgetToken();
  $('login').hidden = false;
  $('app').hidden = true;
  $('login-error').textContent = message ?? '';
  $('oidc-login').hidden = !config.auth.oidc;
}

function showApp(): void {
  $('login').hidden = true;
  $('app').hidden = false;
  $('sign-out').hidden = !config.auth.required;
}

function releaseThumbnails(): void {
  for (const u of objectUrls.splice(0)) URL.revokeObjectURL(u);
}

/** A thumbnail cell: the archive's thumbnail when it has one, else the modality as a placeholder. */
function thumbnail(resourcePath: string, label: string): HTMLElement {
  const cell = h('div', { class: 'thumb' }, h('span', {}, label || '—'));
  void client.thumbnail(resourcePath).then((url) => {
    if (!url) return;
    objectUrls.push(url);
    cell.replaceChildren(h('img', { src: url, alt: 'thumbnail', width: '64', height: '64' }));
  });
  return cell;
}

function studyQuery(): URLSearchParams {
  const form = $('search') as HTMLFormElement;
  const value = (name: string) => ((form.elements.namedItem(name) as HTMLInputElement | null)?.value ?? '').trim();
  const q = new URLSearchParams();
  if (value('name')) q.set('PatientName', value('name'));
  if (value('id')) q.set('PatientID', value('id'));
  if (value('accession')) q.set('AccessionNumber', value('accession'));
  if (value('modality')) q.set('ModalitiesInStudy', value('modality').toUpperCase());
  const from = value('from').replace(/-/g, '');
  const to = value('to').replace(/-/g, '');
  // PS3.4 C.2.2.2.5 range matching: "from-", "-to", "from-to".
  if (from || to) q.set('StudyDate', from === to ? from : `${from}-${to}`);
  if ((form.elements.namedItem('fuzzy') as HTMLInputElement).checked) q.set('fuzzymatching', 'true');
  q.set('includefield', [T.StudyDescription, T.NumberOfStudyRelatedSeries, T.NumberOfStudyRelatedInstances, T.ModalitiesInStudy].join(','));
  return q;
}

function viewerHref(study: string): string {
  const u = new URLSearchParams({ StudyInstanceUIDs: study });
  const token = storedToken();
  // OHIF reads ?token= into its auth service and removes it from the address bar.
  if (token) u.set('token', token);
  return `${config.viewerUrl}/viewer?${u.toString()}`;
}

/** Completed searches, on <body data-searches>: lets tests (and scripts) wait for *this* search's answer. */
let searchesDone = 0;

async function search(newOffset: number): Promise<void> {
  try {
    await runSearch(newOffset);
  } finally {
    document.body.dataset.searches = String(++searchesDone);
  }
}

async function runSearch(newOffset: number): Promise<void> {
  offset = Math.max(0, newOffset);
  const q = new URLSearchParams(lastQuery);
  q.set('limit', String(PAGE_SIZE + 1));
  q.set('offset', String(offset));
  status('Searching…');
  let studies: DicomJsonDataset[];
  try {
    studies = await client.searchForStudies(q);
  } catch (error) {
    status(`Search failed: ${(error as Error).message}`, 'error');
    return;
  }
  // One more than a page was asked for: its presence says whether there is a next page.
  const more = studies.length > PAGE_SIZE;
  studies = studies.slice(0, PAGE_SIZE);
  releaseThumbnails();
  const body = $('studies-body');
  body.replaceChildren(
    ...studies.map((s) => {
      const uid = text(s, T.StudyInstanceUID);
      const row = h(
        'tr',
        { class: 'study', 'data-study': uid },
        h('td', {}, thumbnail(`/studies/${encodeURIComponent(uid)}`, text(s, T.ModalitiesInStudy))),
        h('td', { class: 'name' }, text(s, T.PatientName)),
        h('td', {}, text(s, T.PatientID)),
        h('td', {}, formatDate(text(s, T.StudyDate))),
        h('td', {}, text(s, T.ModalitiesInStudy)),
        h('td', {}, text(s, T.AccessionNumber)),
        h('td', {}, text(s, T.StudyDescription)),
        h('td', { class: 'num' }, `${text(s, T.NumberOfStudyRelatedSeries)} / ${text(s, T.NumberOfStudyRelatedInstances)}`),
        h(
          'td',
          { class: 'actions' },
          h('a', { class: 'button open-viewer', href: viewerHref(uid), onclick: (e) => e.stopPropagation() }, 'View'),
          h('button', { class: 'download-zip', type: 'button', onclick: (e) => (e.stopPropagation(), void downloadZip(uid)) }, 'ZIP'),
          h('button', { class: 'delete danger', type: 'button', onclick: (e) => (e.stopPropagation(), void confirmDelete(s)) }, 'Delete'),
        ),
      );
      row.addEventListener('click', () => void openStudy(s));
      return row;
    }),
  );
  $('empty').hidden = studies.length > 0;
  $('page-label').textContent = studies.length ? `Studies ${offset + 1}–${offset + studies.length}` : '';
  ($('prev') as HTMLButtonElement).disabled = offset === 0;
  ($('next') as HTMLButtonElement).disabled = !more;
  status(studies.length ? '' : 'No studies match.');
}

async function openStudy(study: DicomJsonDataset): Promise<void> {
  const uid = text(study, T.StudyInstanceUID);
  const panel = $('detail');
  panel.hidden = false;
  panel.replaceChildren(
    h('h2', {}, `${text(study, T.PatientName) || '(no name)'} — ${text(study, T.StudyDescription) || formatDate(text(study, T.StudyDate))}`),
    h('p', { class: 'uid' }, uid),
    h('div', { id: 'series-list', class: 'cards' }, 'Loading series…'),
    h('div', { id: 'instances' }),
    h('div', { id: 'tags' }),
  );
  try {
    const series = await client.searchForSeries(uid);
    series.sort((a, b) => Number(text(a, T.SeriesNumber) || 0) - Number(text(b, T.SeriesNumber) || 0));
    $('series-list').replaceChildren(
      ...series.map((se) => {
        const seUid = text(se, T.SeriesInstanceUID);
        return h(
          'button',
          { class: 'card series', type: 'button', 'data-series': seUid, onclick: () => void openSeries(uid, seUid) },
          thumbnail(`/studies/${encodeURIComponent(uid)}/series/${encodeURIComponent(seUid)}`, text(se, T.Modality)),
          h('span', {}, `#${text(se, T.SeriesNumber)} ${text(se, T.Modality)}`),
          h('span', { class: 'small' }, text(se, T.SeriesDescription)),
          h('span', { class: 'small' }, `${text(se, T.NumberOfSeriesRelatedInstances)} instances`),
        );
      }),
    );
  } catch (error) {
    $('series-list').textContent = `Series could not be read: ${(error as Error).message}`;
  }
  panel.scrollIntoView({ behavior: 'smooth' });
}

async function openSeries(study: string, series: string): Promise<void> {
  const box = $('instances');
  box.replaceChildren('Loading instances…');
  $('tags').replaceChildren();
  try {
    const instances = await client.searchForInstances(study, series);
    instances.sort((a, b) => Number(text(a, T.InstanceNumber) || 0) - Number(text(b, T.InstanceNumber) || 0));
    box.replaceChildren(
      h('h3', {}, `Instances (${instances.length})`),
      h(
        'ul',
        { class: 'instances' },
        ...instances.map((i) => {
          const sop = text(i, T.SOPInstanceUID);
          return h('li', {}, h('button', { type: 'button', class: 'link instance', 'data-instance': sop, onclick: () => void showTags(study, series, sop) }, `#${text(i, T.InstanceNumber) || '?'} ${sop}`));
        }),
      ),
    );
  } catch (error) {
    box.textContent = `Instances could not be read: ${(error as Error).message}`;
  }
}

function valueText(el: DicomJsonDataset[string] | undefined): string {
  if (!el) return '';
  if (el.BulkDataURI) return `(bulk data: ${el.BulkDataURI.replace(/^.*\/bulkdata\//, 'bulkdata/')})`;
  if (el.InlineBinary) return `(${Math.floor((el.InlineBinary.length * 3) / 4)} bytes inline)`;
  if (el.vr === 'SQ') return `(${el.Value?.length ?? 0} items)`;
  const s = (el.Value ?? [])
    .map((v) => (v && typeof v === 'object' ? Object.values(v as Record<string, string>).join(' = ') : String(v ?? '')))
    .join(' \\ ');
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

async function showTags(study: string, series: string, instance: string): Promise<void> {
  const box = $('tags');
  box.replaceChildren('Loading tags…');
  try {
    const ds = await client.retrieveInstanceMetadata(study, series, instance);
    const rows = Object.keys(ds)
      .sort()
      .map((tag) =>
        h(
          'tr',
          {},
          h('td', { class: 'mono' }, `(${tag.slice(0, 4)},${tag.slice(4)})`),
          h('td', {}, lookupTagKey(tag)?.keyword ?? ''),
          h('td', { class: 'mono' }, ds[tag]!.vr),
          h('td', {}, valueText(ds[tag])),
        ),
      );
    box.replaceChildren(h('h3', {}, 'Tags'), h('table', { class: 'tags' }, h('thead', {}, h('tr', {}, h('th', {}, 'Tag'), h('th', {}, 'Keyword'), h('th', {}, 'VR'), h('th', {}, 'Value'))), h('tbody', {}, ...rows)));
  } catch (error) {
    box.textContent = `Tags could not be read: ${(error as Error).message}`;
  }
}

function save(href: string, filename: string): void {
  const a = h('a', { href, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
}

async function downloadZip(study: string): Promise<void> {
  // Without credentials a plain link lets the browser stream the ZIP to disk; with them, fetch (the whole ZIP in memory).
  if (!storedToken()) {
    save(client.studyZipUrl(study), `study-${study}.zip`);
    status('ZIP download started.');
    return;
  }
  status('Preparing ZIP…');
  try {
    const url = URL.createObjectURL(await client.retrieveStudyZip(study));
    save(url, `study-${study}.zip`);
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    status('ZIP downloaded.');
  } catch (error) {
    status(`ZIP download failed: ${(error as Error).message}`, 'error');
  }
}

function confirmDelete(study: DicomJsonDataset): Promise<void> {
  const uid = text(study, T.StudyInstanceUID);
  const dialog = $('confirm-delete') as HTMLDialogElement;
  $('confirm-text').textContent = `Delete the study of ${text(study, T.PatientName) || '(no name)'} from ${formatDate(text(study, T.StudyDate)) || '(no date)'} with ${text(study, T.NumberOfStudyRelatedInstances) || 'all its'} instances? This cannot be undone.`;
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      async () => {
        if (dialog.returnValue === 'delete') {
          try {
            await client.deleteStudy(uid);
            status('Study deleted.');
            $('detail').hidden = true;
            await search(offset);
          } catch (error) {
            status(`Delete failed: ${(error as Error).message}`, 'error');
          }
        }
        resolve();
      },
      { once: true },
    );
  });
}

function renderProgress(p: UploadProgress): void {
  const bar = $('upload-progress') as HTMLProgressElement;
  bar.hidden = false;
  bar.max = Math.max(1, p.totalBytes);
  bar.value = p.sentBytes;
  $('upload-status').textContent = `${Math.round((100 * p.sentBytes) / Math.max(1, p.totalBytes))}% · ${p.stored} stored · ${p.failed} failed · ${p.skipped} skipped (not DICOM)`;
}

async function upload(files: File[]): Promise<void> {
  if (files.length === 0) return;
  $('upload-status').textContent = `Reading ${files.length} files…`;
  try {
    const result = await uploadFiles(client, files, config, renderProgress);
    renderProgress(result);
    const reasons = [...new Set(result.reasons)].slice(0, 5).join(', ');
    $('upload-status').textContent = `Upload finished: ${result.stored} stored, ${result.failed} failed${reasons ? ` (${reasons})` : ''}, ${result.skipped} skipped (not DICOM).`;
    $('upload-status').dataset.done = 'true';
    await search(0);
  } catch (error) {
    if (error instanceof HttpError && error.status === 401) return showLogin('Your session ended; sign in again.');
    $('upload-status').textContent = `Upload failed: ${(error as Error).message}`;
  }
}

function wire(): void {
  ($('search') as HTMLFormElement).addEventListener('submit', (e) => {
    e.preventDefault();
    lastQuery = studyQuery();
    void search(0);
  });
  $('prev').addEventListener('click', () => void search(offset - PAGE_SIZE));
  $('next').addEventListener('click', () => void search(offset + PAGE_SIZE));
  for (const id of ['file-input', 'folder-input']) {
    const input = $(id) as HTMLInputElement;
    input.addEventListener('change', () => {
      const files = Array.from(input.files ?? []);
      input.value = '';
      void upload(files);
    });
  }
  const zone = $('drop-zone');
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  document.addEventListener('dragleave', (e) => {
    if (e.relatedTarget === null) zone.classList.remove('over');
  });
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (e.dataTransfer) void filesFromDrop(e.dataTransfer).then(upload);
  });
  ($('login-form') as HTMLFormElement).addEventListener('submit', (e) => {
    e.preventDefault();
    const value = ($('token-input') as HTMLInputElement).value.trim();
    if (!value) return;
    storeToken(value);
    ($('token-input') as HTMLInputElement).value = '';
    void start();
  });
  $('oidc-login').addEventListener('click', () => {
    if (config.auth.oidc) beginOidcLogin(config.auth.oidc).catch((error: Error) => ($('login-error').textContent = error.message));
  });
  $('sign-out').addEventListener('click', () => showLogin());
}

async function start(): Promise<void> {
  if (config.auth.required && !storedToken()) return showLogin();
  showApp();
  lastQuery = studyQuery();
  await search(0);
}

async function main(): Promise<void> {
  const res = await fetch('config.json', { cache: 'no-cache' });
  config = (await res.json()) as WebConfig;
  client = new ArchiveClient(config.dicomWebRoot, storedToken, () => showLogin('The archive did not accept the credentials; sign in again.'));
  wire();
  try {
    await completeOidcLogin(config.auth.oidc);
  } catch (error) {
    return showLogin((error as Error).message);
  }
  await start();
}

void main().catch((error: unknown) => status(`The UI could not start: ${(error as Error).message}`, 'error'));
