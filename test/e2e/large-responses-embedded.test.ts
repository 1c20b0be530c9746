/**
 * The embedded server's side of large answers (docs/architecture.md §Download):
 * text (JSON) answers are gzipped when the client accepts it; it streams
 * retrieves of any size, and serves the same download manifest as the Lambda
 * API (…/download), whose URLs are its own instance resources (sent with the
 * caller's credentials) answering the stored bytes as application/dicom.
 */
import * as http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { ctSeries, uid } from '../fixtures/synthetic';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import { getParts, startTestArchive, stow, withZeroPreamble, type TestArchive } from '../helpers/archive';
import { makeTempDir } from '../helpers/tmp';

function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

describe('embedded archive: large answers', () => {
  let archive: TestArchive;
  const study = uid();
  const series = ctSeries({ count: 40, studyInstanceUID: study, rows: 16, columns: 16 });
  beforeAll(async () => {
    archive = await startTestArchive();
    expect((await stow(archive.dicomWebUrl, series.map((s) => s.bytes), study)).status).toBe(200);
  });
  afterAll(async () => archive.stop());

  it('series metadata is gzipped when accepted (Content-Encoding, Vary), identical JSON; plain otherwise', async () => {
    const url = `${archive.dicomWebUrl}/studies/${study}/series/${series[0]!.seriesInstanceUID}/metadata`;
    const gz = await rawGet(url, { Accept: 'application/dicom+json', 'Accept-Encoding': 'gzip' });
    expect(gz.status).toBe(200);
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers.vary).toMatch(/Accept-Encoding/);
    const plain = await rawGet(url, { Accept: 'application/dicom+json', 'Accept-Encoding': 'identity' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    const unzipped = gunzipSync(gz.body);
    expect(unzipped.equals(plain.body)).toBe(true);
    expect(JSON.parse(plain.body.toString())).toHaveLength(40);
    expect(gz.body.length).toBeLessThan(plain.body.length / 3);
  });

  it('DICOM bytes are never gzipped', async () => {
    const s = series[0]!;
    const res = await rawGet(`${archive.dicomWebUrl}/studies/${study}/series/${s.seriesInstanceUID}/instances/${s.sopInstanceUID}`, {
      Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*',
      'Accept-Encoding': 'gzip',
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBeUndefined();
  });

  it('one instance as application/dicom (single part): its bytes, preamble zeroed as in multipart', async () => {
    const s = series[3]!;
    const res = await fetch(`${archive.dicomWebUrl}/studies/${study}/series/${s.seriesInstanceUID}/instances/${s.sopInstanceUID}`, { headers: { Accept: 'application/dicom; transfer-syntax=*' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(`application/dicom; transfer-syntax=${s.transferSyntaxUID}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(withZeroPreamble(s.bytes))).toBe(true);
  });

  it('streams a whole series as multipart (no inline limit here)', async () => {
    const res = await getParts(`${archive.dicomWebUrl}/studies/${study}/series/${series[0]!.seriesInstanceUID}`, 'multipart/related; type="application/dicom"; transfer-syntax=*');
    expect(res.status).toBe(200);
    expect(res.parts).toHaveLength(40);
  });
});

describe('embedded archive: download manifests', () => {
  const tmp = makeTempDir('download-manifest-');
  let archive: Awaited<ReturnType<typeof startEmbeddedArchive>>;
  const study = uid();
  const seriesA = ctSeries({ count: 12, studyInstanceUID: study, rows: 16, columns: 16 });
  const seriesB = ctSeries({ count: 3, studyInstanceUID: study, rows: 16, columns: 16 });
  const all = [...seriesA, ...seriesB];
  beforeAll(async () => {
    archive = await startEmbeddedArchive({ dataDir: tmp.dir, port: 0, log: silentLogger, downloads: { pageSize: 10 } });
    expect((await stow(archive.dicomWebUrl, all.map((s) => s.bytes), study)).status).toBe(200);
  });
  afterAll(async () => {
    await archive.close();
    tmp.cleanup();
  });

  async function manifest(url: string): Promise<any> {
    const res = await fetch(url, { headers: { Accept: 'application/json' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    return res.json();
  }

  it('series manifest: every instance, its size, an archive URL answering its stored bytes', async () => {
    const seriesUID = seriesB[0]!.seriesInstanceUID;
    const m = await manifest(`${archive.dicomWebUrl}/studies/${study}/series/${seriesUID}/download`);
    expect(m).toMatchObject({ studyInstanceUID: study, seriesInstanceUID: seriesUID, instanceCount: 3, mediaType: 'application/dicom', credentials: 'include', offset: 0 });
    expect(m.urlsExpireAt).toBeUndefined();
    expect(m.next).toBeUndefined();
    expect(m.totalSize).toBe(seriesB.reduce((n, s) => n + s.bytes.byteLength, 0));
    for (const entry of m.instances) {
      const inst = seriesB.find((s) => s.sopInstanceUID === entry.sopInstanceUID)!;
      expect(entry).toMatchObject({ seriesInstanceUID: seriesUID, sopClassUID: inst.sopClassUID, transferSyntaxUID: inst.transferSyntaxUID, size: inst.bytes.byteLength });
      expect(entry.retrieveURL).toBe(`${archive.dicomWebUrl}/studies/${study}/series/${seriesUID}/instances/${inst.sopInstanceUID}`);
      expect(entry.url.startsWith(`${entry.retrieveURL}?accept=`)).toBe(true);
      const res = await fetch(entry.url); // a plain GET: the accept query parameter chooses the representation
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/dicom; transfer-syntax=/);
      expect(Buffer.from(await res.arrayBuffer()).equals(withZeroPreamble(inst.bytes))).toBe(true);
    }
  });

  it('study manifest pages by `offset`; the pages together list each instance once', async () => {
    const seen: string[] = [];
    let url: string | undefined = `${archive.dicomWebUrl}/studies/${study}/download`;
    let pages = 0;
    while (url) {
      const m = await manifest(url);
      expect(m.instanceCount).toBe(15);
      expect(m.instances.length).toBeLessThanOrEqual(10);
      seen.push(...m.instances.map((e: any) => e.sopInstanceUID));
      url = m.next;
      pages += 1;
    }
    expect(pages).toBe(2);
    expect(seen.sort()).toEqual(all.map((s) => s.sopInstanceUID).sort());
  });

  it('unknown study → 404; bad offset → 400; a manifest is JSON only (406 otherwise)', async () => {
    expect((await fetch(`${archive.dicomWebUrl}/studies/${uid()}/download`)).status).toBe(404);
    expect((await fetch(`${archive.dicomWebUrl}/studies/${study}/download?offset=-1`)).status).toBe(400);
    expect((await fetch(`${archive.dicomWebUrl}/studies/${study}/download`, { headers: { Accept: 'application/dicom' } })).status).toBe(406);
  });
});
