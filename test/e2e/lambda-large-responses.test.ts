/**
 * Answers larger than one Lambda response (6 MB), through the bundled
 * handlers against s3rver + dynalite with recorded API Gateway events:
 * - series metadata of a series whose JSON exceeds the limit comes gzipped
 *   when the client accepts it (the recorded events do), 413 when it does not.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { stop as stopEsbuild } from 'esbuild';
import { buildFunctions, type HandlerName } from '../../scripts/build-functions';
import { MAX_RESPONSE_BYTES } from '../../functions/adapters/lambda/api-gateway';
import { mrInstance, uid, type SyntheticInstance } from '../fixtures/synthetic';
import { startAwsLocal, type AwsLocal } from '../helpers/aws-local';
import { lambdaContext, loadEvent, retarget, stowEvent, type LambdaHandler } from '../helpers/lambda-events';
import { resultJson } from '../helpers/lambda-result';
import { makeTempDir } from '../helpers/tmp';

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
  const bundleDir = makeTempDir('lambda-large-');
  let aws: AwsLocal;
  const handlers = {} as Record<HandlerName, LambdaHandler>;
  const savedEnv = { ...process.env };
  const invoke = (name: HandlerName, event: APIGatewayProxyEventV2) => handlers[name](event, lambdaContext(`dicomweb-${name}`));
  let writeSpy: jest.SpyInstance | undefined;

  beforeAll(async () => {
    const [built, local] = await Promise.all([buildFunctions(bundleDir.dir), startAwsLocal()]);
    aws = local;
    Object.assign(process.env, aws.env, { DICOMWEB_BASE_PATH: '/dicom-web', AUTH_MODE: 'none', DOWNLOAD_URL_EXPIRES_SECONDS: '120' });
    // PHI-free JSON log lines of the handlers stay out of the test output.
    const realWrite = process.stdout.write.bind(process.stdout);
    writeSpy = jest.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return text.startsWith('{"time"') ? true : (realWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stdout.write);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    for (const b of built) handlers[b.name] = (require(b.file) as { handler: LambdaHandler }).handler;
  }, 120_000);

  afterAll(async () => {
    writeSpy?.mockRestore();
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
    Object.assign(process.env, savedEnv);
    await aws?.stop();
    await stopEsbuild();
    bundleDir.cleanup();
  });

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
});
