/**
 * The large-object path as it ships to AWS: the upload and ingest handlers
 * bundled with esbuild (scripts/build-functions.ts), against S3 + DynamoDB
 * stand-ins (s3rver + dynalite). The upload handler hands out presigned S3
 * URLs that the client PUTs to directly (fetch → s3rver); the ingest handler
 * is then invoked with a recorded SQS message carrying the S3 event
 * notification for that key (test/fixtures/events/sqs-s3-*.json), and the
 * QIDO/WADO handlers see the instance. Recorded API Gateway events carry a
 * Cognito JWT authorizer context (AUTH_MODE=jwt, scope dicomweb/write).
 *
 * Covers: multipart and single-PUT uploads, URL-encoded keys, redelivery
 * (harmless), a malformed object (failure recorded, object deleted, the
 * message not retried), s3:TestEvent and foreign keys (ignored), an
 * unreadable message (dropped), an index outage (the message reported in
 * batchItemFailures, so SQS retries it), and the STOW 413 naming the upload API.
 */
import * as fs from 'node:fs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { largeInstance, mrInstance, notPart10, uid, type SyntheticLargeInstance } from '../fixtures/synthetic';
import { parseMultipart, withZeroPreamble } from '../helpers/archive';
import type { AwsLocal } from '../helpers/aws-local';
import { startLambdaBundles, type LambdaBundles } from '../helpers/lambda-bundles';
import { lambdaContext, loadEvent } from '../helpers/lambda-events';
import { decodeS3Key, uploadKeysOf } from '../../functions/handlers/ingest';
import { resultJson } from '../helpers/lambda-result';

type ApiHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;
type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

const MiB = 1024 * 1024;

/** A recorded DICOMweb event (no authorizer in the recording) with the upload events' authorizer context. */
function authorized(event: APIGatewayProxyEventV2, like: APIGatewayProxyEventV2): APIGatewayProxyEventV2 {
  return { ...event, requestContext: { ...event.requestContext, authorizer: (like.requestContext as unknown as { authorizer: unknown }).authorizer } } as APIGatewayProxyEventV2;
}

/** QIDO for one study by UID only (the recorded search also filters on MR). */
function studySearch(study: string, like: APIGatewayProxyEventV2): APIGatewayProxyEventV2 {
  const event = loadEvent<APIGatewayProxyEventV2>('qido-search-studies', { study });
  return authorized({ ...event, rawQueryString: `StudyInstanceUID=${study}`, queryStringParameters: { StudyInstanceUID: study } }, like);
}

const jsonOf = (r: APIGatewayProxyStructuredResultV2) => resultJson(r);

/** S3 notifications carry keys URL-encoded, with '+' for spaces. */
const encodeS3Key = (key: string) => encodeURIComponent(key).replace(/%2F/g, '/').replace(/%20/g, '+');

function rangeOf(inst: SyntheticLargeInstance, start: number, end: number): Buffer {
  const out = Buffer.alloc(end - start);
  for (let at = start; at < end; ) {
    if (at < inst.header.length) {
      const n = Math.min(end, inst.header.length) - at;
      out.set(inst.header.subarray(at, at + n), at - start);
      at += n;
      continue;
    }
    const rel = at - inst.header.length;
    const within = rel % inst.frameLength;
    const n = Math.min(end - at, inst.frameLength - within);
    out.set(inst.frame(Math.floor(rel / inst.frameLength) + 1).subarray(within, within + n), at - start);
    at += n;
  }
  return out;
}

describe('upload + ingest Lambda handlers (esbuild bundles, s3rver + dynalite)', () => {
  let lambdas: LambdaBundles;
  let aws: AwsLocal;
  const api = {} as Record<'upload' | 'qido' | 'wado' | 'stow', ApiHandler>;
  let ingest: SqsHandler;
  let messages = 0;

  const upload = (event: APIGatewayProxyEventV2) => api.upload(event, lambdaContext('dicomweb-upload'));
  const createEvent = (body: unknown) => {
    const text = JSON.stringify(body);
    return loadEvent<APIGatewayProxyEventV2>('upload-create', { body: text, contentLength: String(Buffer.byteLength(text)) });
  };
  const completeEvent = (uploadId: string, body: unknown) => {
    const text = JSON.stringify(body);
    return loadEvent<APIGatewayProxyEventV2>('upload-complete', { uploadId, body: text, contentLength: String(Buffer.byteLength(text)) });
  };
  const statusOf = async (uploadId: string) => {
    const res = await upload(loadEvent('upload-status', { uploadId }));
    expect(res.statusCode).toBe(200);
    return jsonOf(res);
  };
  /** The SQS message S3 → SQS would deliver for an object created under `key`. */
  const s3Message = (key: string, size: number, eventName = 'CompleteMultipartUpload', messageId = `4c1f6e1a-0000-4000-8000-${String(++messages).padStart(12, '0')}`) =>
    loadEvent<SQSEvent>('sqs-s3-object-created', { messageId, receiveCount: '1', eventName, bucket: aws.bucket, key: encodeS3Key(key), size: String(size), etag: '0123456789abcdef0123456789abcdef-2' });
  const runIngest = (event: SQSEvent) => ingest(event, lambdaContext('dicomweb-ingest'));
  const exists = async (key: string) =>
    aws.s3.send(new HeadObjectCommand({ Bucket: aws.bucket, Key: key })).then(
      () => true,
      () => false,
    );

  /** Create an upload, PUT every part to its presigned URL (in parallel), complete it. */
  async function uploadBytes(bytesOf: (start: number, end: number) => Uint8Array, size: number, extra: Record<string, unknown> = {}) {
    const created = await upload(createEvent({ size, ...extra }));
    expect(created.statusCode).toBe(201);
    const c = jsonOf(created);
    const parts = await Promise.all(
      c.parts.map(async (t: { partNumber: number; size: number; url: string; headers: Record<string, string> }) => {
        const start = (t.partNumber - 1) * c.partSize;
        const res = await fetch(t.url, { method: 'PUT', headers: t.headers, body: bytesOf(start, start + t.size) as unknown as BodyInit });
        expect(res.status).toBe(200);
        return { partNumber: t.partNumber, etag: res.headers.get('etag')! };
      }),
    );
    const completed = await upload(completeEvent(c.uploadId, { parts }));
    expect(completed.statusCode).toBe(202);
    const key = /\/(uploads\/\d{4}\/\d{2}\/\d{2}\/[0-9a-z]+\.dcm)\?/.exec(c.parts[0].url)![1]!;
    return { created: c, completed: jsonOf(completed), key };
  }

  beforeAll(async () => {
    // AUTH_MODE unset: the default, API Gateway JWT authorizer claims.
    lambdas = await startLambdaBundles('upload-lambda-bundles-', { DICOMWEB_BASE_PATH: '/dicom-web', AUTH_MODE: undefined });
    aws = lambdas.aws;
    for (const name of ['upload', 'qido', 'wado', 'stow'] as const) api[name] = lambdas.handlers[name];
    ingest = lambdas.handlers.ingest as unknown as SqsHandler;
  }, 60_000);

  afterAll(() => lambdas?.stop());

  it('bundles upload and ingest like the other functions (self-contained, no JWT library)', () => {
    for (const name of ['upload', 'ingest']) {
      const b = lambdas.built.find((x) => x.name === name)!;
      const code = fs.readFileSync(b.file, 'utf8');
      const required = new Set([...code.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]!));
      expect([...required].filter((r) => !r.startsWith('node:') && r !== '@aws-sdk/signature-v4-crt')).toEqual([]);
      console.log(`[lambda bundle] ${name}: ${(b.bytes / 1024).toFixed(1)} kB`);
    }
  });

  describe('a multipart upload (two parts) → S3 event → ingest → QIDO/WADO', () => {
    const study = uid();
    const inst = largeInstance({ bytes: 10 * MiB, rows: 512, columns: 512, studyInstanceUID: study });
    let up: Awaited<ReturnType<typeof uploadBytes>>;

    it('hands out presigned S3 URLs (one per part) that take the bytes directly', async () => {
      up = await uploadBytes((s, e) => rangeOf(inst, s, e), inst.totalLength, { studyInstanceUID: study });
      expect(up.created.partCount).toBe(2);
      for (const p of up.created.parts) {
        expect(p.url.startsWith(`${aws.s3Endpoint}/${aws.bucket}/uploads/`)).toBe(true);
        const q = new URL(p.url).searchParams;
        expect(q.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
        expect(q.get('partNumber')).toBe(String(p.partNumber));
        expect(q.get('X-Amz-SignedHeaders')).toContain('content-length');
        // No checksum of an empty body baked into the URL (S3 would refuse every upload through it).
        expect([...q.keys()].filter((k) => k.toLowerCase().startsWith('x-amz-checksum'))).toEqual([]);
      }
      expect(up.completed.state).toBe('ingesting');
      expect(up.completed.statusUrl).toBe(`https://a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com/dicom-web/uploads/${up.created.uploadId}`);
      expect(await exists(up.key)).toBe(true);
    });

    it('the ingest handler indexes the object where it lies; QIDO and WADO see it', async () => {
      const res = await runIngest(s3Message(up.key, inst.totalLength));
      expect(res.batchItemFailures).toEqual([]);
      const status = await statusOf(up.created.uploadId);
      expect(status.state).toBe('stored');
      const base = 'https://a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com/dicom-web';
      expect(status.retrieveURL).toBe(`${base}/studies/${study}/series/${inst.seriesInstanceUID}/instances/${inst.sopInstanceUID}`);
      const upEvent = createEvent({});
      const q = await api.qido(studySearch(study, upEvent), lambdaContext('dicomweb-qido'));
      expect(q.statusCode).toBe(200);
      expect(jsonOf(q)).toHaveLength(1);
      // The instance is 10 MB (over the 6 MB response limit): frames instead.
      const f = await api.wado(authorized(loadEvent('wado-frames', { study, series: inst.seriesInstanceUID, instance: inst.sopInstanceUID, frames: `1,${inst.frames}` }), upEvent), lambdaContext('dicomweb-wado'));
      expect(f.statusCode).toBe(200);
      const parts = parseMultipart(Buffer.from(f.body ?? '', 'base64'), String(f.headers?.['content-type']));
      expect(parts.map((p) => p.body.equals(Buffer.from(inst.frame(parts.indexOf(p) === 0 ? 1 : inst.frames))))).toEqual([true, true]);
      expect(await exists(up.key)).toBe(true);
    });

    it('a redelivered event is harmless: still stored, one instance, bytes kept', async () => {
      const res = await runIngest(s3Message(up.key, inst.totalLength));
      expect(res.batchItemFailures).toEqual([]);
      expect((await statusOf(up.created.uploadId)).state).toBe('stored');
      expect(await exists(up.key)).toBe(true);
      const q = await api.qido(studySearch(study, createEvent({})), lambdaContext('dicomweb-qido'));
      expect(jsonOf(q)[0]['00201208'].Value[0]).toBe(1); // NumberOfStudyRelatedInstances
    });
  });

  it('a small object is one presigned PutObject (If-None-Match: * signed), retrieved byte for byte', async () => {
    const inst = mrInstance({ rows: 64, columns: 64 });
    const up = await uploadBytes((s, e) => inst.bytes.subarray(s, e), inst.bytes.length);
    expect(up.created.partCount).toBe(1);
    const target = up.created.parts[0];
    expect(new URL(target.url).searchParams.get('partNumber')).toBeNull();
    expect(target.headers).toEqual({ 'If-None-Match': '*' });
    expect((await runIngest(s3Message(up.key, inst.bytes.length, 'Put'))).batchItemFailures).toEqual([]);
    const status = await statusOf(up.created.uploadId);
    expect(status.state).toBe('stored');
    const w = await api.wado(
      authorized(loadEvent('wado-retrieve-instance', { study: inst.studyInstanceUID, series: inst.seriesInstanceUID, instance: inst.sopInstanceUID }), createEvent({})),
      lambdaContext('dicomweb-wado'),
    );
    expect(w.statusCode).toBe(200);
    const parts = parseMultipart(Buffer.from(w.body ?? '', 'base64'), String(w.headers?.['content-type']));
    expect(parts[0]!.body.equals(withZeroPreamble(inst.bytes))).toBe(true);
  });

  it('a malformed upload: failure recorded with its FailureReason, object deleted, the message not retried', async () => {
    const bytes = notPart10();
    const up = await uploadBytes((s, e) => bytes.subarray(s, e), bytes.length);
    const res = await runIngest(s3Message(up.key, bytes.length, 'Put'));
    expect(res.batchItemFailures).toEqual([]);
    const status = await statusOf(up.created.uploadId);
    expect(status.state).toBe('failed');
    expect(status.failureReason).toBe(0xc000);
    expect(status.result.reason).toBe('NOT_PART10');
    expect(status.result.stow['00081198'].Value[0]['00081197'].Value[0]).toBe(0xc000);
    expect(await exists(up.key)).toBe(false);
    // Redelivered anyway: nothing left to do, the recorded failure stays.
    expect((await runIngest(s3Message(up.key, bytes.length, 'Put'))).batchItemFailures).toEqual([]);
    expect((await statusOf(up.created.uploadId)).result.reason).toBe('NOT_PART10');
  });

  it('ignores s3:TestEvent and keys outside uploads/ (also URL-encoded ones), drops unreadable messages', async () => {
    const test = loadEvent<SQSEvent>('sqs-s3-test-event', { messageId: 'b7a8c9d0-0000-4000-8000-000000000001', receiveCount: '1', bucket: aws.bucket });
    expect((await runIngest(test)).batchItemFailures).toEqual([]);
    const foreign = s3Message('studies/x y/z.dcm', 10);
    expect((await runIngest(foreign)).batchItemFailures).toEqual([]);
    const garbage: SQSEvent = { Records: [{ ...s3Message('uploads/x', 1).Records[0]!, body: 'not json {' }] };
    expect((await runIngest(garbage)).batchItemFailures).toEqual([]);
  });

  it('reads keys as S3 encodes them in notifications (percent-encoding, + for a space), directly or through SNS', () => {
    const message = s3Message('uploads/2025/11/22/abc def=1.dcm', 1).Records[0]!;
    expect(message.body).toContain('uploads/2025/11/22/abc+def%3D1.dcm');
    expect(uploadKeysOf(message, aws.bucket)).toEqual(['uploads/2025/11/22/abc def=1.dcm']);
    expect(uploadKeysOf(message, 'another-bucket')).toEqual([]);
    const viaSns = { ...message, body: JSON.stringify({ Type: 'Notification', Message: message.body }) };
    expect(uploadKeysOf(viaSns, aws.bucket)).toEqual(['uploads/2025/11/22/abc def=1.dcm']);
    expect(decodeS3Key('a+b%2Bc%20d')).toBe('a b+c d');
  });

  it('an index outage: the message is reported in batchItemFailures (SQS retries it, then the DLQ)', async () => {
    const inst = mrInstance({ rows: 16, columns: 16 });
    const up = await uploadBytes((s, e) => inst.bytes.subarray(s, e), inst.bytes.length);
    const table = process.env.TABLE_NAME;
    process.env.TABLE_NAME = 'no-such-table';
    try {
      const fresh = lambdas.coldStart<SqsHandler>('ingest');
      const ok = s3Message('uploads/2025/11/22/none0000000000000000.dcm', 1); // gone: nothing to retry
      const event = s3Message(up.key, inst.bytes.length, 'Put', 'f00dfeed-0000-4000-8000-000000000001');
      const res = await fresh({ Records: [...ok.Records, ...event.Records] }, lambdaContext('dicomweb-ingest-broken'));
      expect(res.batchItemFailures).toEqual([{ itemIdentifier: 'f00dfeed-0000-4000-8000-000000000001' }]);
    } finally {
      process.env.TABLE_NAME = table;
    }
    expect(await exists(up.key)).toBe(true); // kept for the retry
    expect((await statusOf(up.created.uploadId)).state).toBe('ingesting');
    // The retry (the index is back) stores it.
    expect((await runIngest(s3Message(up.key, inst.bytes.length, 'Put'))).batchItemFailures).toEqual([]);
    expect((await statusOf(up.created.uploadId)).state).toBe('stored');
  });

  it('a STOW request over the 6 MB limit → 413 that names the upload API', async () => {
    const event = loadEvent<APIGatewayProxyEventV2>('stow-studies', { body: Buffer.from('x').toString('base64'), contentType: 'multipart/related; type="application/dicom"; boundary=x', contentLength: String(7 * MiB) });
    const res = await api.stow(authorized(event, createEvent({})), lambdaContext('dicomweb-stow'));
    expect(res.statusCode).toBe(413);
    expect(jsonOf(res).message).toContain('POST /dicom-web/uploads');
  });

  it('logs are PHI-free JSON lines', () => {
    expect(lambdas.logLines.some((l) => l.includes('upload.ingest.stored'))).toBe(true);
    for (const line of lambdas.logLines) {
      expect(() => JSON.parse(line)).not.toThrow();
      expect(line).not.toMatch(/SYNTH\^|SYN\d{6}/);
    }
  });
});
