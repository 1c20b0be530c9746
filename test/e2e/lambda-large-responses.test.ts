/**
 * Answers larger than one Lambda response (6 MB), through the bundled
 * handlers against s3rver + dynalite with recorded API Gateway events:
 * - series metadata of a series whose JSON exceeds the limit comes gzipped
 *   when the client accepts it (the recorded events do), 413 when it does not;
 * - one instance too large for a response, asked for as application/dicom:
 *   303 to a short-lived presigned S3 GET of the stored object;
 * - as multipart, and series/study retrieves over the limit: 413
 *   RESPONSE_TOO_LARGE naming …/download, whose manifest lists a presigned
 *   URL per instance (fetched here from s3rver, byte for byte).
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { HandlerName } from '../../scripts/build-functions';
import { MAX_RESPONSE_BYTES } from '../../functions/adapters/lambda/api-gateway';
import { mrInstance, uid, type SyntheticInstance } from '../fixtures/synthetic';
import { startLambdaBundles, type LambdaBundles } from '../helpers/lambda-bundles';
import { loadEvent, retarget, stowEvent } from '../helpers/lambda-events';
import { resultBytes, resultJson } from '../helpers/lambda-result';
import { parseMultipart, withZeroPreamble } from '../helpers/archive';

/** Text in the style of a report (UT): varied words, so gzip does what it does on real metadata, not more. */
function reportText(seed: number, length: number): string {
  const words = ['lesion', 'contrast', 'axial', 'slice', 'normal', 'within', 'limits', 'no', 'acute', 'finding', 'mm', 'enhancement', 'left', 'right', 'lobe', 'segment'];
  let x = seed || 1;
  const out: string[] = [];
  let size = 0;
  while (size < length) {
    x = (x * 1103515245 + 12345) >>> 0;
    const r = x >>> 16;
    const w = `${words[r % words.length]}${r % 7 === 0 ? ` ${(r >>> 3) % 1000}` : ''}`;
    out.push(w);
    size += w.length + 1;
  }
  return out.join(' ').slice(0, length);
}

describe('Lambda answers beyond 6 MB (bundled handlers, s3rver + dynalite)', () => {
  let lambdas: LambdaBundles;
  const invoke = (name: HandlerName, event: APIGatewayProxyEventV2) => lambdas.invoke(name, event);

  beforeAll(async () => {
    lambdas = await startLambdaBundles('lambda-large-', { DICOMWEB_BASE_PATH: '/dicom-web', AUTH_MODE: 'none', DOWNLOAD_URL_EXPIRES_SECONDS: '120' });
  }, 120_000);

  afterAll(() => lambdas?.stop());

  describe('series metadata over 6 MB of JSON', () => {
    const study = uid();
    const series = uid();
    // 16 instances with a 450 kB report each: ≈ 7.5 MB of metadata JSON.
    const instances: SyntheticInstance[] = Array.from({ length: 16 }, (_, i) =>
      mrInstance({ studyInstanceUID: study, seriesInstanceUID: series, instanceNumber: i + 1, rows: 16, columns: 16, extra: { '0040A160': { vr: 'UT', Value: [reportText(i + 1, 450_000)] } } }),
    );

    beforeAll(async () => {
      for (let i = 0; i < instances.length; i += 4) {
        const res = await invoke('stow', stowEvent(instances.slice(i, i + 4)));
        expect(res.statusCode).toBe(200);
      }
    }, 120_000);

    it('with Accept-Encoding: gzip it fits: 200, gzip, Vary: Accept-Encoding, the same JSON', async () => {
      const res = await invoke('wado', loadEvent('wado-series-metadata', { study, series }));
      expect(res.statusCode).toBe(200);
      expect(res.headers).toMatchObject({ 'content-encoding': 'gzip' });
      expect(String(res.headers?.vary)).toMatch(/Accept-Encoding/);
      expect(res.body!.length).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
      const json = resultJson(res);
      expect(json).toHaveLength(16);
      const raw = Buffer.byteLength(JSON.stringify(json));
      expect(raw).toBeGreaterThan(MAX_RESPONSE_BYTES);
      // UT values lose trailing spaces (PS3.5 §6.2): compare the text itself.
      expect(json.map((d: any) => d['0040A160'].Value[0]).sort()).toEqual(instances.map((_, i) => reportText(i + 1, 450_000).trimEnd()).sort());
    });

    it('without Accept-Encoding: 413 with a clear body', async () => {
      const event = loadEvent('wado-series-metadata', { study, series });
      const res = await invoke('wado', retarget(event, 'GET', event.rawPath, '', { 'accept-encoding': undefined }));
      expect(res.statusCode).toBe(413);
      expect(resultJson(res).code).toBe('RESPONSE_TOO_LARGE');
    });
  });

  describe('instances and series too large for one response', () => {
    const study = uid();
    const series = uid();
    // 1600 × 1600 × 16 bit: ≈ 5.1 MB, over the ≈ 4.5 MB a base64 response carries; the STOW request (6 MB) still takes it.
    const large = mrInstance({ studyInstanceUID: study, seriesInstanceUID: series, instanceNumber: 1, rows: 1600, columns: 1600 });
    const small = mrInstance({ studyInstanceUID: study, seriesInstanceUID: series, instanceNumber: 2, rows: 64, columns: 64 });
    const byUid = new Map([large, small].map((i) => [i.sopInstanceUID, i]));
    const base = `https://${loadEvent('wado-retrieve-instance', { study, series, instance: large.sopInstanceUID }).requestContext.domainName}/dicom-web`;
    const phi = [large, small].flatMap((i) => [i.dataset['00100010']?.Value?.[0], i.dataset['00100020']?.Value?.[0]]).filter(Boolean).map((v) => JSON.stringify(v));
    const get = (rawPath: string, accept: string, query = '') => {
      const event = loadEvent('wado-retrieve-instance', { study, series, instance: large.sopInstanceUID });
      return invoke('wado', retarget(event, 'GET', rawPath, query, { accept }));
    };
    const expectNoPhi = (url: string) => {
      for (const v of phi) expect(url).not.toContain(encodeURIComponent(JSON.parse(v)).slice(0, 12));
      expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('120');
    };

    beforeAll(async () => {
      expect(large.bytes.byteLength).toBeGreaterThan(MAX_RESPONSE_BYTES * 0.75);
      for (const inst of [large, small]) expect((await invoke('stow', stowEvent([inst]))).statusCode).toBe(200);
    }, 60_000);

    it('one instance as application/dicom: 303 to a presigned S3 GET (no-store, 120 s), which serves the stored bytes', async () => {
      const res = await get(`/dicom-web/studies/${study}/series/${series}/instances/${large.sopInstanceUID}`, 'application/dicom; transfer-syntax=*');
      expect(res.statusCode).toBe(303);
      expect(res.headers).toMatchObject({ 'cache-control': 'no-store' });
      const location = String(res.headers?.location);
      expect(location.startsWith(`${lambdas.aws.s3Endpoint}/${lambdas.aws.bucket}/studies/${study}/series/${series}/instances/${large.sopInstanceUID}/`)).toBe(true);
      expectNoPhi(location);
      const s3 = await fetch(location);
      expect(s3.status).toBe(200);
      expect(s3.headers.get('content-type')).toBe('application/dicom');
      expect(Buffer.from(await s3.arrayBuffer()).equals(Buffer.from(large.bytes))).toBe(true);
    });

    it('a small instance as application/dicom is answered inline', async () => {
      const res = await get(`/dicom-web/studies/${study}/series/${series}/instances/${small.sopInstanceUID}`, 'application/dicom; transfer-syntax=*');
      expect(res.statusCode).toBe(200);
      expect(String(res.headers?.['content-type'])).toMatch(/^application\/dicom; transfer-syntax=/);
      expect(resultBytes(res).equals(withZeroPreamble(small.bytes))).toBe(true);
    });

    it('the large instance as multipart, or in another transfer syntax: 413 naming the redirect and the manifest', async () => {
      for (const accept of ['multipart/related; type="application/dicom"; transfer-syntax=*', 'application/dicom; transfer-syntax=1.2.840.10008.1.2']) {
        const res = await get(`/dicom-web/studies/${study}/series/${series}/instances/${large.sopInstanceUID}`, accept);
        expect(res.statusCode).toBe(413);
        const body = resultJson(res);
        expect(body.code).toBe('RESPONSE_TOO_LARGE');
        expect(body.message).toContain('application/dicom');
        expect(body.message).toContain(`${base}/studies/${study}/series/${series}/download`);
      }
    });

    it('series and study retrieves over the limit: 413 naming their …/download', async () => {
      for (const path of [`/studies/${study}/series/${series}`, `/studies/${study}`]) {
        const res = await get(`/dicom-web${path}`, 'multipart/related; type="application/dicom"; transfer-syntax=*');
        expect(res.statusCode).toBe(413);
        expect(resultJson(res).message).toContain(`${base}${path}/download`);
      }
    });

    it('…/download: a manifest of presigned URLs (credentials omit, expiry), each serving its instance byte for byte', async () => {
      for (const path of [`/studies/${study}/series/${series}/download`, `/studies/${study}/download`]) {
        const started = Date.now();
        const res = await get(`/dicom-web${path}`, 'application/json');
        expect(res.statusCode).toBe(200);
        expect(res.headers).toMatchObject({ 'cache-control': 'no-store' });
        const m = resultJson(res);
        expect(m).toMatchObject({ studyInstanceUID: study, instanceCount: 2, mediaType: 'application/dicom', credentials: 'omit', offset: 0 });
        expect(m.totalSize).toBe(large.bytes.byteLength + small.bytes.byteLength);
        const expiresIn = Date.parse(m.urlsExpireAt) - started;
        expect(expiresIn).toBeGreaterThan(100_000);
        expect(expiresIn).toBeLessThanOrEqual(121_000);
        for (const entry of m.instances) {
          const inst = byUid.get(entry.sopInstanceUID)!;
          expect(entry.size).toBe(inst.bytes.byteLength);
          expect(entry.retrieveURL).toBe(`${base}/studies/${study}/series/${series}/instances/${inst.sopInstanceUID}`);
          expectNoPhi(entry.url);
          const s3 = await fetch(entry.url);
          expect(s3.status).toBe(200);
          expect(Buffer.from(await s3.arrayBuffer()).equals(Buffer.from(inst.bytes))).toBe(true);
        }
      }
    });

    it('a single frame over the limit (5.1 MB here) is a 413 too: the instance itself is the way (documented limit)', async () => {
      const res = await get(`/dicom-web/studies/${study}/series/${series}/instances/${large.sopInstanceUID}/frames/1`, 'multipart/related; type="application/octet-stream"');
      expect(res.statusCode).toBe(413);
      expect(resultJson(res).code).toBe('RESPONSE_TOO_LARGE');
      const ok = await get(`/dicom-web/studies/${study}/series/${series}/instances/${small.sopInstanceUID}/frames/1`, 'multipart/related; type="application/octet-stream"');
      expect(ok.statusCode).toBe(200);
      expect(parseMultipart(resultBytes(ok), String(ok.headers?.['content-type']))[0]!.body.length).toBe(64 * 64 * 2);
    });
  });
});
