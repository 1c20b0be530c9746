/**
 * The large-object path in embedded mode (docs/upload-api.md): POST /uploads →
 * parts PUT (in parallel) to the archive's own signed URLs → complete →
 * in-process ingest → status stored → QIDO/WADO. Also: resuming after a
 * broken part, bad and expired signatures, malformed objects (failed with a
 * FailureReason, nothing indexed, bytes removed), duplicates, redelivery,
 * request validation, the STOW 413 that points here, and one ≥ 200 MB
 * instance through a separate archive process whose peak RSS is measured.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import { ingestUploadedObject } from '../../functions/core/archive/ingest';
import { largeInstance, mrInstance, notPart10, truncatedFile, badUidInstance, uid, type SyntheticLargeInstance } from '../fixtures/synthetic';
import { getJson, getParts, stow, withZeroPreamble } from '../helpers/archive';
import { PROJECT_ROOT } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';

const MiB = 1024 * 1024;

interface Target {
  partNumber: number;
  size: number;
  url: string;
  method: string;
  headers: Record<string, string>;
}

async function postJson(url: string, body: unknown): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}

async function putPart(target: Target, bytes: Uint8Array): Promise<{ status: number; etag: string | null; json: any }> {
  const res = await fetch(target.url, { method: 'PUT', headers: target.headers, body: bytes as unknown as BodyInit });
  const text = await res.text();
  return { status: res.status, etag: res.headers.get('etag'), json: text ? JSON.parse(text) : undefined };
}

/** Bytes [start, end) of a large synthetic instance, generated (the whole object never sits in memory). */
function rangeOf(inst: SyntheticLargeInstance, start: number, end: number): Buffer {
  const out = Buffer.alloc(end - start);
  let at = start;
  while (at < end) {
    if (at < inst.header.length) {
      const n = Math.min(end, inst.header.length) - at;
      out.set(inst.header.subarray(at, at + n), at - start);
      at += n;
      continue;
    }
    const rel = at - inst.header.length;
    const frame = Math.floor(rel / inst.frameLength) + 1;
    const within = rel % inst.frameLength;
    const n = Math.min(end - at, inst.frameLength - within);
    out.set(inst.frame(frame).subarray(within, within + n), at - start);
    at += n;
  }
  return out;
}

/** Send every target's bytes, `concurrency` at a time. */
async function sendParts(targets: Target[], bytesOf: (t: Target) => Uint8Array, concurrency = 3): Promise<{ partNumber: number; etag: string }[]> {
  const queue = [...targets];
  const done: { partNumber: number; etag: string }[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        const r = await putPart(t, bytesOf(t));
        if (r.status !== 200 || !r.etag) throw new Error(`part ${t.partNumber}: ${r.status} ${JSON.stringify(r.json)}`);
        done.push({ partNumber: t.partNumber, etag: r.etag });
      }
    }),
  );
  return done.sort((a, b) => a.partNumber - b.partNumber);
}

async function waitForResult(statusUrl: string, timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, json } = await getJson(statusUrl);
    expect(status).toBe(200);
    if (json.state === 'stored' || json.state === 'failed') return json;
    if (Date.now() > deadline) throw new Error(`upload still ${json.state}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A whole small object through the upload path; returns the final status. */
async function uploadWhole(base: string, bytes: Uint8Array, extra: Record<string, unknown> = {}): Promise<{ created: any; final: any }> {
  const created = await postJson(`${base}/uploads`, { size: bytes.length, ...extra });
  expect(created.status).toBe(201);
  const parts = await sendParts(created.json.parts, (t) => bytes.subarray((t.partNumber - 1) * created.json.partSize, (t.partNumber - 1) * created.json.partSize + t.size));
  const completed = await postJson(created.json.completeUrl, { parts });
  expect(completed.status).toBe(202);
  return { created: created.json, final: await waitForResult(created.json.statusUrl) };
}

function uploadFile(dataDir: string, uploadId: string): string | undefined {
  const root = path.join(dataDir, 'blobs', 'uploads');
  const walk = (dir: string): string | undefined => {
    for (const e of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        const found = walk(p);
        if (found) return found;
      } else if (e.name === `${uploadId}.dcm`) return p;
    }
    return undefined;
  };
  return walk(root);
}

describe('direct uploads (embedded)', () => {
  const tmp = makeTempDir('upload-e2e-');
  let archive: Awaited<ReturnType<typeof startEmbeddedArchive>>;
  let base: string;

  beforeAll(async () => {
    archive = await startEmbeddedArchive({ dataDir: tmp.dir, port: 0, log: silentLogger, uploads: { settings: { maxUploadBytes: 1024 * MiB } } });
    base = archive.dicomWebUrl;
  });
  afterAll(async () => {
    await archive.close();
    tmp.cleanup();
  });

  describe('a multi-part upload', () => {
    // ~20 MiB: three parts of 8 MiB (the last shorter).
    const inst = largeInstance({ bytes: 20 * MiB, rows: 512, columns: 512 });
    const whole = rangeOf(inst, 0, inst.totalLength);
    let created: any;
    let final: any;

    it('creates an upload: part targets on the archive itself, complete/status URLs', async () => {
      const res = await postJson(`${base}/uploads`, { size: whole.length, studyInstanceUID: inst.studyInstanceUID });
      expect(res.status).toBe(201);
      created = res.json;
      expect(created.uploadId).toMatch(/^[0-9a-z]{16,64}$/);
      expect(res.headers.get('location')).toBe(created.statusUrl);
      expect(created.state).toBe('uploading');
      expect(created.partSize).toBe(8 * MiB);
      expect(created.partCount).toBe(3);
      expect(created.parts.map((p: Target) => p.partNumber)).toEqual([1, 2, 3]);
      expect(created.parts.map((p: Target) => p.size)).toEqual([8 * MiB, 8 * MiB, whole.length - 16 * MiB]);
      for (const p of created.parts) expect(p.url).toMatch(new RegExp(`^${base}/uploads/${created.uploadId}/parts/${p.partNumber}\\?expires=\\d+&signature=[0-9a-f]{64}$`));
      expect(created.completeUrl).toBe(`${base}/uploads/${created.uploadId}/complete`);
      expect(Date.parse(created.urlsExpireAt)).toBeGreaterThan(Date.now());
    });

    it('takes the parts in parallel, completes (202), ingests, and reports stored with a RetrieveURL', async () => {
      const parts = await sendParts(created.parts, (t) => whole.subarray((t.partNumber - 1) * created.partSize, (t.partNumber - 1) * created.partSize + t.size));
      const done = await postJson(created.completeUrl, { parts });
      expect(done.status).toBe(202);
      expect(['ingesting', 'stored']).toContain(done.json.state);
      final = await waitForResult(created.statusUrl);
      expect(final.state).toBe('stored');
      const url = `${base}/studies/${inst.studyInstanceUID}/series/${inst.seriesInstanceUID}/instances/${inst.sopInstanceUID}`;
      expect(final.retrieveURL).toBe(url);
      // The STOW-RS response data set, as POST /studies would have answered.
      expect(final.result.stow['00081199'].Value[0]['00081190'].Value[0]).toBe(url);
      expect(final.result.stow['00081198']).toBeUndefined();
    });

    it('is found by QIDO and retrieved byte for byte by WADO, from the upload key (no copy)', async () => {
      const q = await getJson(`${base}/studies?StudyInstanceUID=${inst.studyInstanceUID}`);
      expect(q.json).toHaveLength(1);
      const w = await getParts(`${base}/studies/${inst.studyInstanceUID}/series/${inst.seriesInstanceUID}/instances/${inst.sopInstanceUID}`, 'multipart/related; type="application/dicom"; transfer-syntax=*');
      expect(w.status).toBe(200);
      expect(w.parts[0]!.body.equals(withZeroPreamble(whole))).toBe(true);
      const frames = await getParts(`${base}/studies/${inst.studyInstanceUID}/series/${inst.seriesInstanceUID}/instances/${inst.sopInstanceUID}/frames/${inst.frames}`, 'multipart/related; type="application/octet-stream"');
      expect(frames.parts[0]!.body.equals(Buffer.from(inst.frame(inst.frames)))).toBe(true);
      expect(uploadFile(tmp.dir, created.uploadId)).toBeDefined();
      expect(fs.existsSync(path.join(tmp.dir, 'blobs', 'studies', inst.studyInstanceUID))).toBe(false);
      expect(fs.readdirSync(path.join(tmp.dir, 'blobs', '.uploads'))).toEqual([]); // staging dropped
    });

    it('a second ingest of the same object (redelivery) and a second complete are harmless', async () => {
      const key = path.relative(path.join(tmp.dir, 'blobs'), uploadFile(tmp.dir, created.uploadId)!).split(path.sep).join('/');
      const again = await ingestUploadedObject(archive.ctx, key);
      expect(again.state).toBe('stored');
      const done = await postJson(created.completeUrl, { parts: [] });
      expect(done.status).toBe(202);
      expect(done.json.state).toBe('stored');
      expect(uploadFile(tmp.dir, created.uploadId)).toBeDefined();
      const q = await getJson(`${base}/studies/${inst.studyInstanceUID}/instances`);
      expect(q.json).toHaveLength(1);
    });

    it('DELETE of the instance removes the upload object; a late redelivery then changes nothing', async () => {
      const key = path.relative(path.join(tmp.dir, 'blobs'), uploadFile(tmp.dir, created.uploadId)!).split(path.sep).join('/');
      expect((await fetch(`${base}/studies/${inst.studyInstanceUID}`, { method: 'DELETE' })).status).toBe(204);
      expect(uploadFile(tmp.dir, created.uploadId)).toBeUndefined();
      expect(await ingestUploadedObject(archive.ctx, key)).toEqual({ state: 'skipped', reason: 'OBJECT_GONE' });
      expect((await getJson(created.statusUrl)).json.state).toBe('stored');
      expect((await getJson(`${base}/studies?StudyInstanceUID=${inst.studyInstanceUID}`)).json).toEqual([]);
    });
  });

  it('resumes: a part that broke off is missing from the status, which hands out a fresh URL for it', async () => {
    const inst = largeInstance({ bytes: 17 * MiB, rows: 512, columns: 512 });
    const whole = rangeOf(inst, 0, inst.totalLength);
    const { json: created } = await postJson(`${base}/uploads`, { size: whole.length });
    const slice = (n: number) => whole.subarray((n - 1) * created.partSize, Math.min(whole.length, n * created.partSize));
    expect((await putPart(created.parts[0], slice(1))).status).toBe(200);
    // Part 2 breaks off half way (the connection dies).
    const half = slice(2).subarray(0, 4 * MiB);
    const broken = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(half);
        setTimeout(() => controller.error(new Error('network gone')), 50);
      },
    });
    await expect(fetch(created.parts[1].url, { method: 'PUT', body: broken, duplex: 'half', headers: { 'Content-Length': String(8 * MiB) } } as RequestInit)).rejects.toThrow();
    // Part 3 is sent too short: refused, not stored.
    const short = await putPart(created.parts[2], slice(3).subarray(1));
    expect(short.status).toBe(400);

    const status = await getJson(created.statusUrl);
    expect(status.json.state).toBe('uploading');
    expect(status.json.uploadedParts.map((p: any) => p.partNumber)).toEqual([1]);
    expect(status.json.parts.map((p: Target) => p.partNumber)).toEqual([2, 3]);
    const rest = await sendParts(status.json.parts, (t) => slice(t.partNumber));
    const first = { partNumber: 1, etag: status.json.uploadedParts[0].etag };
    expect((await postJson(created.completeUrl, { parts: [first, ...rest] })).status).toBe(202);
    const final = await waitForResult(created.statusUrl);
    expect(final.state).toBe('stored');
    const w = await getParts(final.retrieveURL, 'multipart/related; type="application/dicom"; transfer-syntax=*');
    expect(w.parts[0]!.body.equals(withZeroPreamble(whole))).toBe(true);
  });

  it('part URLs are credentials: a bad signature, another part number or an expired URL → 403', async () => {
    const bytes = mrInstance({ rows: 16, columns: 16 }).bytes;
    const { json: created } = await postJson(`${base}/uploads`, { size: bytes.length });
    const target: Target = created.parts[0];
    const tampered = target.url.replace(/signature=([0-9a-f])/, (_, c: string) => `signature=${c === '0' ? '1' : '0'}`);
    const bad = await putPart({ ...target, url: tampered }, bytes);
    expect(bad.status).toBe(403);
    expect(bad.json.code).toBe('FORBIDDEN');
    const otherPart = await putPart({ ...target, url: target.url.replace('/parts/1?', '/parts/2?') }, bytes);
    expect(otherPart.status).toBe(403);
    const later = new Date(Date.now() + 2 * 3600 * 1000);
    const realNow = archive.ctx.now;
    archive.ctx.now = () => later;
    try {
      const expired = await putPart(target, bytes);
      expect(expired.status).toBe(403);
      expect(expired.json.message).toMatch(/expired/);
      // The status hands out fresh URLs (still within the upload's lifetime).
      const status = await getJson(created.statusUrl);
      expect((await putPart(status.json.parts[0], bytes)).status).toBe(200);
    } finally {
      archive.ctx.now = realNow;
    }
    // The part route needs no other credentials, but nothing else is reachable that way.
    expect((await fetch(`${base}/uploads/${created.uploadId}/parts/1`, { method: 'PUT', body: bytes as unknown as BodyInit })).status).toBe(403);
  });

  describe('objects that are not accepted', () => {
    it.each([
      ['not Part 10', () => notPart10(), 0xc000, 'NOT_PART10'],
      ['truncated in the pixel data', () => truncatedFile('pixel-data'), 0xc000, 'TRUNCATED'],
      ['an invalid SOP Instance UID', () => badUidInstance('letters', 'sop').bytes, 0xa900, 'MISSING_OR_INVALID_UID'],
    ])('%s → failed with its FailureReason, nothing indexed, the object removed', async (_name, make, failureReason, reason) => {
      const bytes = make();
      const { created, final } = await uploadWhole(base, bytes);
      expect(final.state).toBe('failed');
      expect(final.failureReason).toBe(failureReason);
      expect(final.result.reason).toBe(reason);
      expect(final.result.stow['00081198'].Value[0]['00081197'].Value[0]).toBe(failureReason);
      expect(final.result.stow['00081199']).toBeUndefined();
      expect(uploadFile(tmp.dir, created.uploadId)).toBeUndefined();
    });

    it('the study named at creation must be the object\'s (0xA900)', async () => {
      const inst = mrInstance({ rows: 16, columns: 16 });
      const { created, final } = await uploadWhole(base, inst.bytes, { studyInstanceUID: uid() });
      expect(final.state).toBe('failed');
      expect(final.failureReason).toBe(0xa900);
      expect(final.result.sopInstanceUID).toBe(inst.sopInstanceUID);
      expect(uploadFile(tmp.dir, created.uploadId)).toBeUndefined();
      expect((await getJson(`${base}/studies?StudyInstanceUID=${inst.studyInstanceUID}`)).json).toEqual([]);
    });

    it('duplicates: the same object again → stored, pointing at the first (this copy removed); other content under its SOP Instance UID → 0x0111', async () => {
      const first = mrInstance({ rows: 16, columns: 16 });
      expect((await stow(base, [first.bytes])).status).toBe(200);
      const same = await uploadWhole(base, first.bytes);
      expect(same.final.state).toBe('stored');
      expect(same.final.retrieveURL).toBe(`${base}/studies/${first.studyInstanceUID}/series/${first.seriesInstanceUID}/instances/${first.sopInstanceUID}`);
      expect(uploadFile(tmp.dir, same.created.uploadId)).toBeUndefined();

      const other = mrInstance({ rows: 16, columns: 16, sopInstanceUID: first.sopInstanceUID, studyInstanceUID: first.studyInstanceUID, seriesInstanceUID: first.seriesInstanceUID, instanceNumber: 7 });
      const conflict = await uploadWhole(base, other.bytes);
      expect(conflict.final.state).toBe('failed');
      expect(conflict.final.failureReason).toBe(0x0111);
      expect(uploadFile(tmp.dir, conflict.created.uploadId)).toBeUndefined();
      const w = await getParts(same.final.retrieveURL, 'multipart/related; type="application/dicom"; transfer-syntax=*');
      expect(w.parts[0]!.body.equals(withZeroPreamble(first.bytes))).toBe(true);
    });
  });

  describe('request validation', () => {
    it.each([
      [{ size: 0 }, 400],
      [{ size: -5 }, 400],
      [{ size: '100' }, 400],
      [{}, 400],
      [{ size: 2048 * MiB }, 413],
      [{ size: 100, studyInstanceUID: '1.2.abc' }, 400],
      [{ size: 100 * MiB, partSize: 1024 }, 400],
    ])('POST /uploads %j → %i', async (body, status) => {
      const res = await postJson(`${base}/uploads`, body);
      expect(res.status).toBe(status);
      expect(Object.keys(res.json).sort()).toEqual(['code', 'message']);
    });

    it('unknown uploads → 404; malformed JSON → 400; incomplete part lists → 400; abort → 204, then failed (ABORTED)', async () => {
      expect((await getJson(`${base}/uploads/${'0'.repeat(40)}`)).status).toBe(404);
      expect((await getJson(`${base}/uploads/..%2F..%2Fetc`)).status).toBe(404);
      const bad = await fetch(`${base}/uploads`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"size":' });
      expect(bad.status).toBe(400);
      const inst = largeInstance({ bytes: 9 * MiB, rows: 512, columns: 512 });
      const { json: created } = await postJson(`${base}/uploads`, { size: inst.totalLength });
      expect(created.partCount).toBe(2);
      const r1 = await putPart(created.parts[0], rangeOf(inst, 0, created.partSize));
      expect((await postJson(created.completeUrl, { parts: [{ partNumber: 1, etag: r1.etag }] })).status).toBe(400);
      expect((await postJson(created.completeUrl, { parts: [{ partNumber: 1, etag: r1.etag }, { partNumber: 2, etag: '"00"' }] })).status).toBe(400);
      expect((await fetch(created.statusUrl, { method: 'DELETE' })).status).toBe(204);
      const status = await getJson(created.statusUrl);
      expect(status.json.state).toBe('failed');
      expect(status.json.result.reason).toBe('ABORTED');
      expect((await putPart(created.parts[1], rangeOf(inst, created.partSize, inst.totalLength))).status).toBe(400);
    });

    it('a STOW request over the request limit → 413 that names the upload API', async () => {
      const saved = archive.ctx.limits.maxRequestBytes;
      archive.ctx.limits.maxRequestBytes = 1024;
      try {
        const res = await stow(base, [mrInstance({ rows: 64, columns: 64 }).bytes]);
        expect(res.status).toBe(413);
        expect(res.json.code).toBe('PAYLOAD_TOO_LARGE');
        expect(res.json.message).toContain('POST /dicom-web/uploads');
        expect(res.json.message).toContain('docs/upload-api.md');
      } finally {
        archive.ctx.limits.maxRequestBytes = saved;
      }
    });
  });
});

// ---------------------------------------------------------------- ≥ 200 MB through a separate archive process

/** VmRSS / VmHWM of a process, in bytes (Linux). */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** sha-256 of the one part of a multipart/related response, streamed (the body is never held whole). */
async function hashSinglePart(res: Response): Promise<{ hash: string; length: number }> {
  const boundary = /boundary="?([^";]+)"?/.exec(res.headers.get('content-type') ?? '')![1]!;
  const closing = Buffer.from(`\r\n--${boundary}`);
  const hash = createHash('sha256');
  let head: Buffer | undefined = Buffer.alloc(0) as Buffer;
  let tail: Buffer = Buffer.alloc(0);
  let length = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    let buf: Buffer = Buffer.from(chunk);
    if (head) {
      head = Buffer.concat([head, buf]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) continue;
      buf = head.subarray(end + 4);
      head = undefined;
    }
    // Hold back enough bytes to contain the closing delimiter.
    const all = Buffer.concat([tail, buf]);
    const keep = Math.min(all.length, closing.length + 8);
    const out = all.subarray(0, all.length - keep);
    hash.update(out);
    length += out.length;
    tail = Buffer.from(all.subarray(all.length - keep));
  }
  const at = tail.indexOf(closing);
  hash.update(tail.subarray(0, at));
  length += at;
  return { hash: hash.digest('hex'), length };
}

describe('a ≥ 200 MB instance through the upload path (archive in a child process)', () => {
  const tmp = makeTempDir('upload-large-');
  let child: ChildProcess;
  let base: string;
  let out = '';

  beforeAll(async () => {
    // `node --import tsx`: the server runs in this very process (tsx's CLI would add a parent).
    child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'functions', 'adapters', 'http', 'main.ts')], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, PORT: '0', DATA_DIR: path.join(tmp.dir, 'data') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start-up line: ${out}`)), 30_000);
      const onData = () => {
        const m = /listening at (http:\/\/127\.0\.0\.1:\d+\/dicom-web)/.exec(out);
        if (m) {
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          resolve(m[1]!);
        }
      };
      child.stdout!.on('data', onData);
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
  }, 60_000);

  afterAll(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    tmp.cleanup();
  });

  it('stores and retrieves it byte for byte with bounded server memory', async () => {
    // Warm up (modules, first request paths) before taking the baseline.
    const small = mrInstance({ rows: 16, columns: 16 }).bytes;
    expect((await uploadWhole(base, small)).final.state).toBe('stored');
    const before = memoryOf(child.pid!);

    const inst = largeInstance({ bytes: 210 * MiB, rows: 1024, columns: 1024 });
    expect(inst.totalLength).toBeGreaterThanOrEqual(200 * MiB);
    const started = Date.now();
    const { json: created } = await postJson(`${base}/uploads`, { size: inst.totalLength });
    expect(created.partCount).toBeGreaterThanOrEqual(25);
    const parts = await sendParts(created.parts, (t) => rangeOf(inst, (t.partNumber - 1) * created.partSize, (t.partNumber - 1) * created.partSize + t.size), 4);
    expect((await postJson(created.completeUrl, { parts })).status).toBe(202);
    const final = await waitForResult(created.statusUrl, 300_000);
    expect(final.state).toBe('stored');
    const stored = Date.now();

    const expected = createHash('sha256');
    const header = Buffer.from(inst.header) as Buffer;
    header.fill(0, 0, 128);
    expected.update(header);
    for (let f = 1; f <= inst.frames; f++) expected.update(inst.frame(f));
    const res = await fetch(final.retrieveURL, { headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
    expect(res.status).toBe(200);
    const got = await hashSinglePart(res);
    expect(got.length).toBe(inst.totalLength);
    expect(got.hash).toBe(expected.digest('hex'));

    const after = memoryOf(child.pid!);
    const growth = after.hwm - before.rss;
    console.log(
      `[upload ${(inst.totalLength / MiB).toFixed(0)} MB] upload+ingest ${((stored - started) / 1000).toFixed(1)} s, retrieve ${((Date.now() - stored) / 1000).toFixed(1)} s; ` +
        `server RSS before ${(before.rss / MiB).toFixed(0)} MiB, peak (VmHWM) ${(after.hwm / MiB).toFixed(0)} MiB, peak growth ${(growth / MiB).toFixed(0)} MiB`,
    );
    expect(growth).toBeLessThan(1024 * MiB);
  }, 600_000);
});
