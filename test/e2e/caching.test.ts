/**
 * Retrieve responses carry validators (RFC 9110 ETag, RFC 9111 Cache-Control):
 * private (PHI never sits in shared caches), 304 on a matching If-None-Match,
 * and series-level tags change when an instance is added.
 */
import { ctSeries, uid } from '../fixtures/synthetic';
import { startTestArchive, stow, type TestArchive } from '../helpers/archive';

describe('HTTP caching of WADO-RS responses', () => {
  let archive: TestArchive;
  beforeAll(async () => {
    archive = await startTestArchive();
  });
  afterAll(async () => archive.stop());

  it('instance, metadata, frames: ETag + private Cache-Control, 304 when unchanged; series tag changes with content', async () => {
    const study = uid();
    const [a, b] = ctSeries({ count: 2, studyInstanceUID: study, rows: 32, columns: 32 });
    expect((await stow(archive.dicomWebUrl, [a!.bytes], study)).status).toBe(200);
    const instance = `${archive.dicomWebUrl}/studies/${study}/series/${a!.seriesInstanceUID}/instances/${a!.sopInstanceUID}`;
    const accept = { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' };
    for (const [url, headers] of [
      [instance, accept],
      [`${instance}/metadata`, {}],
      [`${instance}/frames/1`, { Accept: 'multipart/related; type="application/octet-stream"' }],
    ] as const) {
      const first = await fetch(url, { headers });
      await first.arrayBuffer();
      expect(first.status).toBe(200);
      const etag = first.headers.get('etag')!;
      // fetch accepts gzip: the JSON metadata comes gzipped, its tag weak (RFC 9110 §8.8.1); the others strong.
      expect(etag).toMatch(/^(W\/)?"[0-9a-f]{32}"$/);
      expect(etag.startsWith('W/')).toBe(first.headers.get('content-type')!.startsWith('application/dicom+json'));
      expect(first.headers.get('cache-control')).toMatch(/^private/);
      const again = await fetch(url, { headers: { ...headers, 'If-None-Match': etag } });
      expect(again.status).toBe(304);
      expect(again.headers.get('etag')).toBe(etag);
    }
    const seriesMeta = `${archive.dicomWebUrl}/studies/${study}/series/${a!.seriesInstanceUID}/metadata`;
    const before = await fetch(seriesMeta);
    await before.arrayBuffer();
    expect(before.headers.get('cache-control')).toBe('private, no-cache');
    expect((await stow(archive.dicomWebUrl, [b!.bytes], study)).status).toBe(200);
    const after = await fetch(seriesMeta, { headers: { 'If-None-Match': before.headers.get('etag')! } });
    expect(after.status).toBe(200);
    expect((await after.json()).length).toBe(2);
    // a different representation has a different tag
    const implicit = await fetch(instance, { headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2' } });
    await implicit.arrayBuffer();
    const stored = await fetch(instance, { headers: accept });
    await stored.arrayBuffer();
    expect(implicit.headers.get('etag')).not.toBe(stored.headers.get('etag'));
  });
});
