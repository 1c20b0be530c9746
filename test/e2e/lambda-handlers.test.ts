/**
 * The Lambda handlers as they ship: each service (stow, qido, wado, delete)
 * is bundled with esbuild (scripts/build-functions.ts; middy 7 is ESM-only,
 * so the bundle is what jest can load), then invoked with recorded API
 * Gateway HTTP API payload-2.0 events (test/fixtures/events/*.json, filled
 * in here) against S3 + DynamoDB stand-ins (s3rver + dynalite).
 *
 * Covers the whole flow STOW → QIDO → WADO (instance, series metadata,
 * frames) → DELETE, absolute URLs built from the API Gateway host, each
 * handler serving only its own service, malformed events (4xx, no
 * internals), the 6 MB response limit (413) and the 500 boundary. Bundle
 * sizes and module-init times are printed, not asserted.
 */
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { HandlerName } from '../../scripts/build-functions';
import { MAX_RESPONSE_BYTES, responseToResult } from '../../functions/adapters/lambda/api-gateway';
import { ctSeries, frameNumberOf, mrInstance, multiFrameInstance, uid } from '../fixtures/synthetic';
import { parseMultipart, withZeroPreamble } from '../helpers/archive';
import { startLambdaBundles, type LambdaBundles } from '../helpers/lambda-bundles';
import { lambdaContext, loadEvent, retarget, stowEvent } from '../helpers/lambda-events';
import { resultBytes, resultJson } from '../helpers/lambda-result';

const ANY_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*';

const bodyBytes = resultBytes;

/** JSON as the client reads it (gzipped when large: the recorded events accept gzip). */
function jsonOf(result: APIGatewayProxyStructuredResultV2): any {
  if (!result.isBase64Encoded) expect(result.headers?.['content-encoding']).toBeUndefined();
  return resultJson(result);
}

function partsOf(result: APIGatewayProxyStructuredResultV2) {
  expect(result.isBase64Encoded).toBe(true);
  return parseMultipart(bodyBytes(result), String(result.headers?.['content-type'] ?? ''));
}

/** An error body is {code, message} and nothing that looks like internals. */
function expectCleanError(result: APIGatewayProxyStructuredResultV2, status: number | number[]): { code: string; message: string } {
  expect(Array.isArray(status) ? status : [status]).toContain(result.statusCode);
  expect(String(result.headers?.['content-type'])).toMatch(/^application\/json/);
  const body = resultJson(result);
  expect(Object.keys(body).sort()).toEqual(['code', 'message']);
  expect(body.message).not.toMatch(/\bat \S+ \(|node_modules|\/work\/|\.ts:|\.js:\d|Exception|TypeError|ResourceNotFound|127\.0\.0\.1/);
  return body;
}

describe('Lambda handlers (esbuild bundles) with API Gateway payload-2.0 events', () => {
  let lambdas: LambdaBundles;
  const invoke = (name: HandlerName, event: APIGatewayProxyEventV2) => lambdas.invoke(name, event);

  beforeAll(async () => {
    // The handlers log PHI-free JSON lines to stdout: kept (lambdas.lambdas.logLines) for the check below, out of the test output.
    lambdas = await startLambdaBundles('lambda-bundles-', { DICOMWEB_BASE_PATH: '/dicom-web', AUTH_MODE: 'none' });
    for (const b of lambdas.built) {
      console.log(`[lambda bundle] ${b.name}: ${(b.bytes / 1024).toFixed(1)} kB, module init (require) ${lambdas.initMs[b.name].toFixed(1)} ms`);
    }
  }, 60_000);

  afterAll(() => lambdas?.stop());

  it('builds one self-contained CommonJS bundle per service', () => {
    expect(lambdas.built.map((b) => b.name).sort()).toEqual(['delete', 'ingest', 'qido', 'stow', 'upload', 'wado']);
    for (const b of lambdas.built) {
      expect(b.bytes).toBeGreaterThan(50 * 1024);
      expect(fs.existsSync(`${b.file}.map`)).toBe(true);
      const code = fs.readFileSync(b.file, 'utf8');
      // Bundled, not external: at run time only Node built-ins are required (`node:x` or bare, like the codecs' `module`; plus the
      // SDK's optional CRT signer, probed inside a try), and no import() is left.
      const required = new Set([...code.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]!));
      expect([...required].filter((r) => !r.startsWith('node:') && !builtinModules.includes(r) && r !== '@aws-sdk/signature-v4-crt')).toEqual([]);
      expect(code).not.toMatch(/\bimport\(/);
      expect(typeof lambdas.handlers[b.name]).toBe('function');
    }
  });

  describe('STOW → QIDO → WADO → DELETE', () => {
    const study = uid();
    const mrSeries = uid();
    const mr = [1, 2].map((n) => mrInstance({ studyInstanceUID: study, seriesInstanceUID: mrSeries, instanceNumber: n, rows: 64, columns: 64 }));
    const mf = multiFrameInstance({ studyInstanceUID: study, frames: 8, rows: 32, columns: 32 });
    const stowTemplate = stowEvent([...mr, mf]);
    const domain = stowTemplate.requestContext.domainName;
    const base = `https://${domain}/dicom-web`;

    it('STOW stores the instances and answers with RetrieveURLs on the API Gateway host', async () => {
      const res = await invoke('stow', stowTemplate);
      expect(res.statusCode).toBe(200);
      expect(String(res.headers?.['content-type'])).toMatch(/^application\/dicom\+json/);
      const json = jsonOf(res);
      expect(json['00081198']).toBeUndefined(); // no FailedSOPSequence
      const refs: any[] = json['00081199'].Value;
      expect(refs).toHaveLength(3);
      for (const inst of [...mr, mf]) {
        const ref = refs.find((r) => r['00081155'].Value[0] === inst.sopInstanceUID);
        expect(ref).toBeDefined();
        expect(ref['00081150'].Value[0]).toBe(inst.sopClassUID);
        expect(ref['00081190'].Value[0]).toBe(`${base}/studies/${study}/series/${inst.seriesInstanceUID}/instances/${inst.sopInstanceUID}`);
      }
    });

    it('QIDO finds the study with its aggregates', async () => {
      const res = await invoke('qido', loadEvent('qido-search-studies', { study }));
      expect(res.statusCode).toBe(200);
      const json = jsonOf(res);
      expect(json).toHaveLength(1);
      expect(json[0]['0020000D'].Value[0]).toBe(study);
      expect(json[0]['00201208'].Value[0]).toBe(3); // NumberOfStudyRelatedInstances
      expect(json[0]['00201206'].Value[0]).toBe(2); // NumberOfStudyRelatedSeries
      expect(json[0]['00081190'].Value[0]).toBe(`${base}/studies/${study}`);
    });

    it('WADO returns the instance bytes (preamble zeroed) as a base64 multipart body', async () => {
      const inst = mr[1]!;
      const res = await invoke('wado', loadEvent('wado-retrieve-instance', { study, series: mrSeries, instance: inst.sopInstanceUID }));
      expect(res.statusCode).toBe(200);
      expect(String(res.headers?.['content-type'])).toMatch(/^multipart\/related;.*type="?application\/dicom/);
      const parts = partsOf(res);
      expect(parts).toHaveLength(1);
      expect(parts[0]!.body.equals(withZeroPreamble(inst.bytes))).toBe(true);
    });

    it('WADO series metadata lists the series with BulkDataURIs on the API Gateway host', async () => {
      const res = await invoke('wado', loadEvent('wado-series-metadata', { study, series: mrSeries }));
      expect(res.statusCode).toBe(200);
      const json = jsonOf(res);
      expect(json).toHaveLength(2);
      expect(json.map((d: any) => d['00080018'].Value[0]).sort()).toEqual(mr.map((i) => i.sopInstanceUID).sort());
      for (const d of json) {
        expect(d['0020000E'].Value[0]).toBe(mrSeries);
        expect(d['7FE00010'].BulkDataURI.startsWith(`${base}/studies/${study}/series/${mrSeries}/instances/`)).toBe(true);
      }
    });

    it('WADO frames of a multi-frame instance', async () => {
      const res = await invoke('wado', loadEvent('wado-frames', { study, series: mf.seriesInstanceUID, instance: mf.sopInstanceUID, frames: '2,8,5' }));
      expect(res.statusCode).toBe(200);
      const parts = partsOf(res);
      expect(parts.map((p) => frameNumberOf(p.body))).toEqual([2, 8, 5]);
      for (const p of parts) expect(p.body.length).toBe(mf.frameLength);
      const missing = await invoke('wado', loadEvent('wado-frames', { study, series: mf.seriesInstanceUID, instance: mf.sopInstanceUID, frames: '9' }));
      expectCleanError(missing, 404);
    });

    it('each handler serves only its own service', async () => {
      const metadata = loadEvent('wado-series-metadata', { study, series: mrSeries });
      const search = loadEvent('qido-search-studies', { study });
      const del = loadEvent('delete-study', { study });
      // Paths another service owns are unknown to this handler.
      expect(expectCleanError(await invoke('qido', metadata), 404).code).toBe('ROUTE_NOT_FOUND');
      expect(expectCleanError(await invoke('wado', search), 404).code).toBe('ROUTE_NOT_FOUND');
      expect(expectCleanError(await invoke('delete', search), 404).code).toBe('ROUTE_NOT_FOUND');
      expect(expectCleanError(await invoke('stow', metadata), 404).code).toBe('ROUTE_NOT_FOUND');
      expect(expectCleanError(await invoke('delete', stowTemplate), 404).code).toBe('ROUTE_NOT_FOUND');
      // Same path, other method (GET /studies/{study} is WADO's): 405, and nothing is deleted.
      expect(expectCleanError(await invoke('wado', del), 405).code).toBe('METHOD_NOT_ALLOWED');
      expect(expectCleanError(await invoke('qido', del), 404).code).toBe('ROUTE_NOT_FOUND');
      const still = await invoke('qido', search);
      expect(jsonOf(still)).toHaveLength(1);
    });

    it('DELETE removes the study: 204, then QIDO finds nothing and WADO gives 404', async () => {
      const res = await invoke('delete', loadEvent('delete-study', { study }));
      expect(res.statusCode).toBe(204);
      expect(res.body ?? '').toBe('');
      const q = await invoke('qido', loadEvent('qido-search-studies', { study }));
      expect(q.statusCode).toBe(200);
      expect(jsonOf(q)).toEqual([]);
      const w = await invoke('wado', loadEvent('wado-retrieve-instance', { study, series: mrSeries, instance: mr[0]!.sopInstanceUID }));
      expect(expectCleanError(w, 404).code).toBe('NOT_FOUND');
      const m = await invoke('wado', loadEvent('wado-series-metadata', { study, series: mrSeries }));
      expectCleanError(m, 404);
    });

    it('logs are PHI-free JSON lines (no patient names or IDs)', () => {
      expect(lambdas.logLines.length).toBeGreaterThan(0);
      for (const line of lambdas.logLines) {
        expect(() => JSON.parse(line)).not.toThrow();
        expect(line).not.toMatch(/SYNTH\^|SYN\d{6}/);
      }
    });
  });

  describe('malformed events', () => {
    const keeper = mrInstance({ rows: 16, columns: 16 });
    const template = stowEvent([keeper]);
    const withBody = (contentType: string | undefined, body: string, isBase64Encoded = false): APIGatewayProxyEventV2 => {
      const headers: Record<string, string | undefined> = { ...template.headers, 'content-length': String(Buffer.byteLength(body, isBase64Encoded ? 'base64' : 'utf8')) };
      if (contentType === undefined) delete headers['content-type'];
      else headers['content-type'] = contentType;
      return { ...template, headers, body, isBase64Encoded };
    };

    it.each([
      ['garbage multipart body', withBody('multipart/related; type="application/dicom"; boundary=XYZ', 'this is not multipart at all'), [400]],
      ['multipart without a boundary', withBody('multipart/related; type="application/dicom"', Buffer.from('--X\r\n\r\n--X--').toString('base64'), true), [400, 415]],
      ['JSON instead of DICOM', withBody('application/json', '{"00100010":{"vr":"PN"}}'), [415]],
      ['no Content-Type', withBody(undefined, 'AAAA', true), [415]],
      ['not a valid media type', withBody('multipart/', 'AAAA', true), [400, 415]],
    ])('STOW with %s → 4xx without internals', async (_name, event, statuses) => {
      expectCleanError(await invoke('stow', event as APIGatewayProxyEventV2), statuses as number[]);
    });

    it('invalid UIDs and frame lists in the path → 400', async () => {
      const bad = loadEvent('wado-series-metadata', { study: '1.2.3..4', series: '../../etc' });
      expect(expectCleanError(await invoke('wado', bad), 400).code).toBe('INVALID_UID');
      const frames = loadEvent('wado-frames', { study: uid(), series: uid(), instance: uid(), frames: '0,x' });
      expect(expectCleanError(await invoke('wado', frames), [400, 404]).code).toMatch(/INVALID_FRAME_LIST|NOT_FOUND/);
    });

    it('a payload-1.0 (REST API) event sent to a 2.0 handler → 500 without internals', async () => {
      const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
      try {
        const v1 = {
          version: '1.0',
          resource: '/dicom-web/studies',
          path: '/dicom-web/studies',
          httpMethod: 'GET',
          headers: { Accept: 'application/dicom+json', Host: template.requestContext.domainName },
          queryStringParameters: null,
          requestContext: { accountId: '123456789012', apiId: 'a1b2c3d4e5', httpMethod: 'GET', path: '/dicom-web/studies', stage: 'prod', requestId: 'v1-request' },
          body: null,
          isBase64Encoded: false,
        } as unknown as APIGatewayProxyEventV2;
        const res = await invoke('qido', v1);
        expect(expectCleanError(res, 500)).toEqual({ code: 'INTERNAL', message: 'Internal server error.' });
        expect(errors).toHaveBeenCalled();
        for (const call of errors.mock.calls) expect(String(call[0])).not.toMatch(/\n\s+at /);
      } finally {
        errors.mockRestore();
      }
    });

    it('the archive still serves after the malformed events', async () => {
      const res = await invoke('stow', template);
      expect(res.statusCode).toBe(200);
      expect(jsonOf(res)['00081199'].Value).toHaveLength(1);
    });
  });

  describe('the 6 MB Lambda response limit', () => {
    const study = uid();
    const series = ctSeries({ count: 3, studyInstanceUID: study, rows: 1024, columns: 1024 });
    const seriesUID = series[0]!.seriesInstanceUID;

    beforeAll(async () => {
      // One instance per request: each event stays under the 6 MB request limit (base64 included).
      for (const inst of series) {
        const event = stowEvent([inst]);
        expect(Buffer.byteLength(JSON.stringify(event))).toBeLessThan(6 * 1024 * 1024);
        const res = await invoke('stow', event);
        expect(res.statusCode).toBe(200);
      }
    }, 30_000);

    it('one large instance still fits', async () => {
      const res = await invoke('wado', loadEvent('wado-retrieve-instance', { study, series: seriesUID, instance: series[0]!.sopInstanceUID }));
      expect(res.statusCode).toBe(200);
      expect(Buffer.byteLength(res.body ?? '')).toBeLessThan(6 * 1024 * 1024);
      expect(partsOf(res)[0]!.body.equals(withZeroPreamble(series[0]!.bytes))).toBe(true);
    });

    it('a series over the limit → 413 JSON with a clear message', async () => {
      const event = retarget(loadEvent('wado-retrieve-instance', { study, series: seriesUID, instance: 'x' }), 'GET', `/dicom-web/studies/${study}/series/${seriesUID}`);
      event.headers = { ...event.headers, accept: ANY_DICOM };
      const res = await invoke('wado', event);
      const body = expectCleanError(res, 413);
      expect(body.code).toBe('RESPONSE_TOO_LARGE');
      expect(body.message).toMatch(/response limit/);
      expect(body.message).toContain(`/studies/${study}/series/${seriesUID}/download`);
    });

    it('stops reading a body once it is over the limit (the adapter, from source)', async () => {
      const chunk = new Uint8Array(1024 * 1024);
      let pulled = 0;
      let cancelled = false;
      const endless = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled += 1;
          controller.enqueue(chunk);
        },
        cancel() {
          cancelled = true;
        },
      }, { highWaterMark: 0 });
      const res = await responseToResult(new Response(endless, { headers: { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=x' } }));
      expect(res.statusCode).toBe(413);
      expect(pulled).toBeLessThanOrEqual(Math.ceil((MAX_RESPONSE_BYTES * 3) / 4 / chunk.length) + 2);
      expect(cancelled).toBe(true);
      // Text bodies are not base64-encoded, so their limit is the full budget.
      const text = await responseToResult(new Response('x'.repeat(MAX_RESPONSE_BYTES), { headers: { 'Content-Type': 'application/dicom+json' } }));
      expect(text.statusCode).toBe(200);
      const binary = await responseToResult(new Response(new Uint8Array((MAX_RESPONSE_BYTES / 4) * 3 + 1), { headers: { 'Content-Type': 'application/octet-stream' } }));
      expect(binary.statusCode).toBe(413);
    });

    it('a STOW event over the request limit → 413', async () => {
      const event = stowEvent(series);
      expectCleanError(await invoke('stow', event), 413);
    });
  });

  describe('infrastructure failures', () => {
    it('a missing table gives 500 without internals (fresh bundle instance, cold start)', async () => {
      const table = process.env.TABLE_NAME;
      process.env.TABLE_NAME = 'no-such-table';
      try {
        const fresh = lambdas.coldStart('qido');
        const res = await fresh(loadEvent('qido-search-studies', { study: uid() }), lambdaContext('dicomweb-qido-broken'));
        expect(expectCleanError(res, 500)).toEqual({ code: 'INTERNAL', message: 'Internal server error.' });
        // The failure is logged (PHI-free, with the cause's name), not returned.
        expect(lambdas.logLines.some((l) => l.includes('"level":"error"'))).toBe(true);
      } finally {
        process.env.TABLE_NAME = table;
      }
    });
  });
});
