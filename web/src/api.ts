/**
 * The archive, as the UI uses it: DICOMweb transactions named as in PS3.18
 * (searchForStudies, retrieveInstanceMetadata, storeInstances…) plus the
 * upload API for large files (docs/upload-api.md). Every request carries the
 * token when there is one; a 401 asks the UI to sign in again.
 */
import type { DicomJsonDataset } from '../../functions/core/dicom/json-model';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface StowOutcome {
  stored: number;
  failed: number;
  /** Why instances failed (FailureReason codes or HTTP errors), without UIDs or names. */
  reasons: string[];
}

const CRLF = '\r\n';

/** Errors the archive answers in JSON ({code, message}) or plain text, shortened for a status line. */
async function errorOf(res: Response): Promise<HttpError> {
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const text = await res.text();
    try {
      const body = JSON.parse(text) as { message?: string; code?: string };
      message = body.message ?? body.code ?? message;
    } catch {
      if (text) message = text.slice(0, 200);
    }
  } catch {
    /* the status line says enough */
  }
  return new HttpError(res.status, message);
}

export class ArchiveClient {
  constructor(
    readonly root: string,
    private readonly token: () => string | undefined,
    private readonly onUnauthorized: () => void,
  ) {}

  authHeaders(): Record<string, string> {
    const t = this.token();
    return t ? { Authorization: `Bearer ${t}` } : {};
  }

  url(path: string): string {
    return `${this.root.replace(/\/$/, '')}${path}`;
  }

  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const res = await fetch(this.url(path), { ...init, headers: { ...this.authHeaders(), ...(init.headers as Record<string, string> | undefined) } });
    if (res.status === 401) this.onUnauthorized();
    return res;
  }

  private async json(path: string): Promise<DicomJsonDataset[]> {
    const res = await this.request(path, { headers: { Accept: 'application/dicom+json' } });
    if (res.status === 204) return [];
    if (!res.ok) throw await errorOf(res);
    const text = await res.text();
    return text ? (JSON.parse(text) as DicomJsonDataset[]) : [];
  }

  /** QIDO-RS (PS3.18 §10.6): one page, `limit` + `offset`. */
  searchForStudies(query: URLSearchParams): Promise<DicomJsonDataset[]> {
    return this.json(`/studies?${query.toString()}`);
  }

  searchForSeries(study: string): Promise<DicomJsonDataset[]> {
    return this.json(`/studies/${encodeURIComponent(study)}/series?includefield=00080021,00080031&limit=1000`);
  }

  searchForInstances(study: string, series: string): Promise<DicomJsonDataset[]> {
    return this.json(`/studies/${encodeURIComponent(study)}/series/${encodeURIComponent(series)}/instances?limit=1000`);
  }

  async retrieveInstanceMetadata(study: string, series: string, instance: string): Promise<DicomJsonDataset> {
    const list = await this.json(`/studies/${encodeURIComponent(study)}/series/${encodeURIComponent(series)}/instances/${encodeURIComponent(instance)}/metadata`);
    if (!list[0]) throw new HttpError(404, 'no metadata');
    return list[0];
  }

  /** A thumbnail (PS3.18 §9.7) as an object URL, or undefined when the archive has none (404/406/501). */
  async thumbnail(resourcePath: string): Promise<string | undefined> {
    try {
      const res = await this.request(`${resourcePath}/thumbnail?viewport=128,128`, { headers: { Accept: 'image/jpeg, image/png;q=0.9, image/gif;q=0.5' } });
      if (!res.ok || !/^image\//.test(res.headers.get('content-type') ?? '')) return undefined;
      return URL.createObjectURL(await res.blob());
    } catch {
      return undefined;
    }
  }

  async deleteStudy(study: string): Promise<void> {
    const res = await this.request(`/studies/${encodeURIComponent(study)}`, { method: 'DELETE' });
    if (!res.ok && res.status !== 204) throw await errorOf(res);
  }

  /**
   * The study's ZIP download (`{study}/archive`, not DICOMweb: the archive's
   * "USB stick" export of the stored instances). `?accept=` (PS3.18 §8.3.3.1)
   * lets a plain link ask for application/zip.
   */
  studyZipUrl(study: string): string {
    return this.url(`/studies/${encodeURIComponent(study)}/archive?accept=${encodeURIComponent('application/zip')}`);
  }

  /** The ZIP through fetch, for when the request needs the Authorization header (a plain link cannot carry it). */
  async retrieveStudyZip(study: string): Promise<Blob> {
    const res = await this.request(`/studies/${encodeURIComponent(study)}/archive`, { headers: { Accept: 'application/zip' } });
    if (res.status === 404 && !/json/.test(res.headers.get('content-type') ?? '')) throw new HttpError(404, 'this archive does not offer ZIP downloads');
    if (!res.ok) throw await errorOf(res);
    if (!/zip/.test(res.headers.get('content-type') ?? '')) throw new HttpError(406, 'this archive does not offer ZIP downloads');
    return res.blob();
  }

  /**
   * STOW-RS (PS3.18 §10.5) of several Part 10 files in one
   * multipart/related request. XMLHttpRequest because fetch reports no
   * upload progress. Resolves with the per-instance outcome from the
   * response data set (200 all, 202 some, 409 none stored).
   */
  storeInstances(files: { bytes: ArrayBuffer }[], onProgress: (sentBytes: number) => void): Promise<StowOutcome> {
    const boundary = `dicomweb-ui-${crypto.getRandomValues(new Uint32Array(2)).join('-')}`;
    const parts: BlobPart[] = [];
    for (const f of files) parts.push(`--${boundary}${CRLF}Content-Type: application/dicom${CRLF}${CRLF}`, f.bytes, CRLF);
    parts.push(`--${boundary}--${CRLF}`);
    const body = new Blob(parts);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', this.url('/studies'));
      for (const [k, v] of Object.entries(this.authHeaders())) xhr.setRequestHeader(k, v);
      xhr.setRequestHeader('Content-Type', `multipart/related; type="application/dicom"; boundary=${boundary}`);
      xhr.setRequestHeader('Accept', 'application/dicom+json');
      xhr.upload.onprogress = (e) => onProgress(Math.round((e.loaded / Math.max(1, e.total)) * files.reduce((n, f) => n + f.bytes.byteLength, 0)));
      xhr.onerror = () => reject(new HttpError(0, 'the connection to the archive failed'));
      xhr.onload = () => {
        if (xhr.status === 401) this.onUnauthorized();
        let response: DicomJsonDataset | undefined;
        try {
          response = xhr.responseText ? (JSON.parse(xhr.responseText) as DicomJsonDataset) : undefined;
        } catch {
          response = undefined;
        }
        if (![200, 202, 409].includes(xhr.status) || !response) {
          let message = `HTTP ${xhr.status}`;
          try {
            message = (JSON.parse(xhr.responseText) as { message?: string }).message ?? message;
          } catch {
            /* keep the status */
          }
          return reject(new HttpError(xhr.status, message));
        }
        const stored = response['00081199']?.Value?.length ?? 0;
        const failedItems = (response['00081198']?.Value ?? []) as DicomJsonDataset[];
        const reasons = failedItems.map((item) => {
          const code = item['00081197']?.Value?.[0];
          return typeof code === 'number' ? `0x${code.toString(16).toUpperCase().padStart(4, '0')}` : 'unknown';
        });
        resolve({ stored, failed: failedItems.length, reasons });
      };
      xhr.send(body);
    });
  }

  /**
   * One large file through the upload API: create, PUT the parts (two at a
   * time), complete, then poll the status until ingest has judged it.
   */
  async uploadLargeFile(file: File, onProgress: (sentBytes: number) => void): Promise<StowOutcome> {
    const created = await this.request('/uploads', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ size: file.size }) });
    if (!created.ok) throw await errorOf(created);
    const upload = (await created.json()) as { partSize: number; parts: { partNumber: number; size: number; method: string; url: string; headers: Record<string, string> }[]; completeUrl: string; statusUrl: string };
    const sent = new Map<number, number>();
    const report = () => onProgress([...sent.values()].reduce((a, b) => a + b, 0));
    const etags: { partNumber: number; etag: string }[] = [];
    const queue = [...upload.parts];
    const worker = async () => {
      for (let part = queue.shift(); part; part = queue.shift()) {
        const start = (part.partNumber - 1) * upload.partSize;
        // Part URLs carry their own credential (a signature, like presigned S3 URLs): no Authorization header.
        const res = await fetch(part.url, { method: part.method, headers: part.headers, body: file.slice(start, start + part.size) });
        if (!res.ok) throw await errorOf(res);
        // The embedded archive names the part's tag in its JSON body (its header may be a weakened ETag of the gzipped body); S3 only in the header.
        const fromBody = /json/.test(res.headers.get('content-type') ?? '') ? ((await res.json().catch(() => ({}))) as { etag?: string }).etag : undefined;
        const etag = fromBody ?? res.headers.get('ETag') ?? undefined;
        if (!etag) throw new HttpError(502, 'a part was stored without an ETag (the bucket CORS rule must expose ETag)');
        etags.push({ partNumber: part.partNumber, etag });
        sent.set(part.partNumber, part.size);
        report();
      }
    };
    await Promise.all([worker(), worker()]);
    etags.sort((a, b) => a.partNumber - b.partNumber);
    const done = await fetch(upload.completeUrl, { method: 'POST', headers: { ...this.authHeaders(), 'Content-Type': 'application/json' }, body: JSON.stringify({ parts: etags }) });
    if (!done.ok) throw await errorOf(done);
    for (let delay = 250; ; delay = Math.min(delay * 2, 4000)) {
      const res = await fetch(upload.statusUrl, { headers: this.authHeaders() });
      if (!res.ok) throw await errorOf(res);
      const status = (await res.json()) as { state: string; result?: { reason?: string } };
      if (status.state === 'stored') return { stored: 1, failed: 0, reasons: [] };
      if (status.state === 'failed') return { stored: 0, failed: 1, reasons: [status.result?.reason ?? 'failed'] };
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** First value of an element as text (PN: its alphabetic form with ^ as spaces). */
export function text(ds: DicomJsonDataset | undefined, tag: string): string {
  const v = ds?.[tag]?.Value;
  if (!v || v.length === 0) return '';
  return v
    .map((x) => (x && typeof x === 'object' ? String((x as { Alphabetic?: string }).Alphabetic ?? '').replace(/\^+/g, ' ').trim() : String(x ?? '')))
    .join('\\');
}

export function formatDate(da: string): string {
  return /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}` : da;
}
