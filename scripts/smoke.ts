/**
 * Post-deploy smoke test: `npm run smoke -- --url https://…/dicom-web [--token …]`
 * (or --api-key). Runs the end-to-end DICOMweb flow against a deployed stage
 * (or the embedded archive) with synthetic data only, then deletes what it
 * stored: STOW → QIDO (study/series/instance) → WADO (instance, metadata,
 * frames, caching) → DELETE → 404. Exits non-zero on the first failure.
 */
import { ctSeries, multiFrameInstance, frameNumberOf, uid } from '../test/fixtures/synthetic';

interface Options {
  url: string;
  token?: string;
  apiKey?: string;
}

function parseArgs(argv: string[]): Options {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const url = get('url') ?? process.env.DICOMWEB_URL;
  if (!url) throw new Error('usage: npm run smoke -- --url https://host/dicom-web [--token JWT | --api-key KEY]');
  return { url: url.replace(/\/$/, ''), token: get('token') ?? process.env.DICOMWEB_TOKEN, apiKey: get('api-key') ?? process.env.DICOMWEB_API_KEY };
}

function multipart(parts: Uint8Array[]): { body: Uint8Array; contentType: string } {
  const boundary = `smoke-${Math.random().toString(36).slice(2)}`;
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  for (const p of parts) chunks.push(enc.encode(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), p, enc.encode('\r\n'));
  chunks.push(enc.encode(`--${boundary}--\r\n`));
  const body = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.length;
  }
  return { body, contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`FAILED: ${what}`);
}

export async function runSmoke(options: Options, log: (line: string) => void = console.log): Promise<void> {
  const auth: Record<string, string> = options.token ? { Authorization: `Bearer ${options.token}` } : options.apiKey ? { 'X-API-Key': options.apiKey } : {};
  const call = (path: string, init: RequestInit = {}) => fetch(`${options.url}${path}`, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) } });
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const result = await fn();
    log(`ok   ${name} (${Date.now() - started} ms)`);
    return result;
  };

  const study = uid(`1.2.826.0.1.3680043.10.1234.9.${Date.now()}`);
  const series = ctSeries({ count: 3, studyInstanceUID: study, rows: 64, columns: 64 });
  const mf = multiFrameInstance({ studyInstanceUID: study, frames: 5 });
  try {
    await step('STOW-RS 4 instances', async () => {
      const { body, contentType } = multipart([...series.map((s) => s.bytes), mf.bytes]);
      const res = await call(`/studies/${study}`, { method: 'POST', body: body as unknown as BodyInit, headers: { 'Content-Type': contentType, Accept: 'application/dicom+json' } });
      check(res.status === 200, `STOW status ${res.status}`);
      const json = (await res.json()) as Record<string, { Value?: unknown[] }>;
      check(json['00081199']?.Value?.length === 4, 'STOW references 4 instances');
    });
    await step('QIDO-RS studies/series/instances', async () => {
      const studies = (await (await call(`/studies?StudyInstanceUID=${study}`, { headers: { Accept: 'application/dicom+json' } })).json()) as Record<string, { Value?: unknown[] }>[];
      check(studies.length === 1 && studies[0]!['00201208']?.Value?.[0] === 4, 'study found with 4 instances');
      const seriesList = (await (await call(`/studies/${study}/series`)).json()) as unknown[];
      check(seriesList.length === 2, 'two series');
      const instances = (await (await call(`/studies/${study}/instances?limit=2`)).json()) as unknown[];
      check(instances.length === 2, 'limit honoured');
    });
    const first = series[0]!;
    const instanceUrl = `/studies/${study}/series/${first.seriesInstanceUID}/instances/${first.sopInstanceUID}`;
    await step('WADO-RS instance (byte-identical, preamble zeroed) and 304', async () => {
      const res = await call(instanceUrl, { headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
      check(res.status === 200, `WADO status ${res.status}`);
      const body = new Uint8Array(await res.arrayBuffer());
      const expected = first.bytes.slice();
      expected.fill(0, 0, 128);
      const tail = Buffer.from(expected.subarray(128, 4096));
      check(Buffer.from(body).includes(tail), 'instance bytes returned');
      const etag = res.headers.get('etag');
      check(etag, 'ETag present');
      const again = await call(instanceUrl, { headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*', 'If-None-Match': etag } });
      check(again.status === 304, `If-None-Match → ${again.status}`);
    });
    await step('WADO-RS series metadata', async () => {
      const res = await call(`/studies/${study}/series/${first.seriesInstanceUID}/metadata`);
      const json = (await res.json()) as unknown[];
      check(res.status === 200 && json.length === 3, 'metadata of 3 instances');
    });
    await step('WADO-RS frames 2,5', async () => {
      const res = await call(`/studies/${study}/series/${mf.seriesInstanceUID}/instances/${mf.sopInstanceUID}/frames/2,5`, {
        headers: { Accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' },
      });
      check(res.status === 200, `frames status ${res.status}`);
      const body = Buffer.from(await res.arrayBuffer());
      const boundary = /boundary="?([^";]+)/.exec(res.headers.get('content-type') ?? '')?.[1];
      check(boundary, 'multipart boundary');
      const parts = body.toString('latin1').split(`--${boundary}`).slice(1, -1);
      const frames = parts.map((p) => Buffer.from(p.slice(p.indexOf('\r\n\r\n') + 4), 'latin1'));
      check(frames.length === 2 && frameNumberOf(frames[0]!) === 2 && frameNumberOf(frames[1]!) === 5, 'frames 2 and 5 in order');
    });
    await step('download manifest (…/download) and its URLs', async () => {
      const res = await call(`/studies/${study}/download`, { headers: { Accept: 'application/json' } });
      check(res.status === 200, `download manifest status ${res.status}`);
      const m = (await res.json()) as { instanceCount: number; credentials: 'omit' | 'include'; instances: { sopInstanceUID: string; size: number; url: string }[] };
      check(m.instanceCount === 4 && m.instances.length === 4, 'manifest lists 4 instances');
      const byUid = new Map([...series, mf].map((i) => [i.sopInstanceUID, i.bytes]));
      for (const entry of m.instances) {
        // Presigned URLs (AWS) take no credentials; the embedded archive's own URLs take ours.
        const got = await fetch(entry.url, { headers: m.credentials === 'include' ? auth : {} });
        check(got.status === 200, `download URL status ${got.status}`);
        const bytes = new Uint8Array(await got.arrayBuffer());
        const sent = byUid.get(entry.sopInstanceUID);
        check(sent && bytes.length === sent.length && entry.size === sent.length, 'downloaded size');
        check(Buffer.from(bytes.subarray(128)).equals(Buffer.from(sent.subarray(128))), 'downloaded bytes (after the preamble)');
      }
    });
  } finally {
    await step('DELETE study', async () => {
      const res = await call(`/studies/${study}`, { method: 'DELETE' });
      check(res.status === 204 || res.status === 404, `DELETE status ${res.status}`);
    });
  }
  await step('deleted study is gone', async () => {
    const res = await call(`/studies/${study}/metadata`);
    check(res.status === 404, `after DELETE: ${res.status}`);
  });
}

if (require.main === module) {
  runSmoke(parseArgs(process.argv.slice(2))).then(
    () => console.log('smoke test passed'),
    (error: Error) => {
      console.error(error.message);
      process.exit(1);
    },
  );
}
