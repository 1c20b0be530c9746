/**
 * The bundled WADO Lambda (scripts/build-functions.ts: codecs .wasm beside
 * index.js, dcmjs stubbed) against s3rver + dynalite: rendered images,
 * thumbnails cached in the bucket, WADO-URI with a transcode, frames
 * re-encoded, and the ZIP download (small study inline; 413 past the limit).
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { HandlerName } from '../../scripts/build-functions';
import { ctSeries, encapsulatedInstance, uid } from '../fixtures/synthetic';
import { startLambdaBundles, type LambdaBundles } from '../helpers/lambda-bundles';
import { loadEvent, retarget, stowEvent } from '../helpers/lambda-events';
import { resultBytes } from '../helpers/lambda-result';
import { parseMultipart } from '../helpers/archive';
import { readPng } from '../unit/imaging/image-files';
import { parsePart10 } from '../../functions/core/dicom';

describe('rendering in the WADO Lambda (bundled, s3rver + dynalite)', () => {
  let lambdas: LambdaBundles;
  const invoke = (name: HandlerName, event: APIGatewayProxyEventV2) => lambdas.invoke(name, event);
  const study = uid();
  const series = uid();
  const ct = ctSeries({ studyInstanceUID: study, seriesInstanceUID: series, count: 3, rows: 64, columns: 64 });
  const rle = encapsulatedInstance({ studyInstanceUID: study, frames: 2 });
  let template: APIGatewayProxyEventV2;
  const get = (path: string, query = '', accept = '*/*') => invoke('wado', retarget(template, 'GET', `/dicom-web${path}`, query, { accept }));
  const instancePath = (i: { seriesInstanceUID: string; sopInstanceUID: string }) => `/studies/${study}/series/${i.seriesInstanceUID}/instances/${i.sopInstanceUID}`;

  beforeAll(async () => {
    lambdas = await startLambdaBundles('render-lambda-', { DICOMWEB_BASE_PATH: '/dicom-web', AUTH_MODE: 'none' });
    const stored = await invoke('stow', stowEvent([...ct, rle]));
    expect(stored.statusCode).toBe(200);
    template = loadEvent('wado-retrieve-instance', { study, series, instance: ct[0]!.sopInstanceUID });
  }, 120_000);

  afterAll(() => lambdas?.stop());

  test('rendered instance (PNG) and an RLE frame rendered through the WASM codecs', async () => {
    const png = await get(`${instancePath(ct[1]!)}/rendered`, 'window=40,400', 'image/png');
    expect(png.statusCode).toBe(200);
    expect(png.headers?.['content-type']).toBe('image/png');
    expect(readPng(resultBytes(png)).width).toBe(64);
    const frame = await get(`${instancePath(rle)}/frames/2/rendered`, '', 'image/jpeg');
    expect(frame.statusCode).toBe(200);
    expect([...resultBytes(frame).subarray(0, 2)]).toEqual([0xff, 0xd8]);
  });

  test('a series thumbnail is the middle instance, cached in the bucket', async () => {
    const t = await get(`/studies/${study}/series/${series}/thumbnail`, '', 'image/png');
    expect(t.statusCode).toBe(200);
    const middle = await get(`${instancePath(ct[1]!)}/thumbnail`, '', 'image/png');
    expect(Buffer.compare(resultBytes(t), resultBytes(middle))).toBe(0);
    const listed = await lambdas.aws.s3.send(new ListObjectsV2Command({ Bucket: lambdas.aws.bucket, Prefix: `derived/studies/${study}/` }));
    expect((listed.Contents ?? []).some((o) => o.Key!.endsWith('thumbnail-f1-128.png'))).toBe(true);
  });

  test('WADO-URI with a transcode to HTJ2K, and frames re-encoded as image/jphc', async () => {
    const r = await get('/wado', `requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${ct[0]!.sopInstanceUID}&contentType=application/dicom&transferSyntax=1.2.840.10008.1.2.4.201`);
    expect(r.statusCode).toBe(200);
    expect(parsePart10(new Uint8Array(resultBytes(r))).transferSyntaxUID).toBe('1.2.840.10008.1.2.4.201');
    const f = await get(`${instancePath(ct[0]!)}/frames/1`, '', 'multipart/related; type="image/jphc"');
    expect(f.statusCode).toBe(200);
    const parts = parseMultipart(resultBytes(f), f.headers!['content-type'] as string);
    expect(parts[0]!.headers['content-type']).toBe('image/jphc; transfer-syntax=1.2.840.10008.1.2.4.201');
  });

  test('ZIP of a small study inline', async () => {
    const zip = await get(`/studies/${study}/archive`, 'dicomdir=true', 'application/zip');
    expect(zip.statusCode).toBe(200);
    expect(resultBytes(zip).subarray(0, 4).toString('latin1')).toBe('PK\u0003\u0004');
  });
});
