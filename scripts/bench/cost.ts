/**
 * Figure 7: the cost model, counted. The Lambda routes run in-process on the
 * archive's AWS adapters (S3BlobStore, DynamoDbIndex) against s3rver and
 * dynalite, with UsageCounter on both SDK clients; each operation's requests
 * and capacity units are counted, its duration measured, and both turned
 * into dollars with the list prices below (the same as docs/cost-model.md).
 */
import * as fs from 'node:fs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { createDicomWebApp } from '../../functions/core/archive/app';
import { DEFAULT_LIMITS, silentLogger, type ArchiveContext } from '../../functions/core/archive/context';
import { S3BlobStore } from '../../functions/adapters/aws/s3-blob-store';
import { DynamoDbIndex } from '../../functions/adapters/aws/dynamodb-index';
import { GSI } from '../../functions/adapters/aws/table-schema';
import { UsageCounter, usageDelta, type GsiShape, type UsageSnapshot } from '../../functions/adapters/aws/usage-counter';
import { newObjectId, sha256 } from '../../functions/adapters/node-runtime';
import { LOOPBACK_PRINCIPAL } from '../../functions/adapters/auth/scopes';
import { DEFAULTS } from '../../infra/lib/config';
import { startAwsLocal } from '../../test/helpers/aws-local';
import type { Dataset } from './dataset';
import { STOW_CONTENT_TYPE, stowBody } from './http-ops';
import type { CostLine, CostResults } from './results';
import { summarize } from './stats';

/**
 * AWS list prices, us-east-1, as known from the AWS pricing pages of
 * 2024 – early 2025 (docs/cost-model.md); not re-checked (no internet here).
 */
export const PRICES = {
  s3PutPer1000: 0.005,
  s3GetPer1000: 0.0004,
  s3StandardGbMonth: 0.023,
  s3GlacierIrGbMonth: 0.004,
  dynamoWriteUnit: 0.625 / 1e6,
  dynamoReadUnit: 0.125 / 1e6,
  dynamoStorageGbMonth: 0.25,
  dynamoPitrGbMonth: 0.2,
  lambdaGbSecond: 0.0000133334,
  lambdaRequest: 0.2 / 1e6,
  /** HTTP API: $1.00 per million, each 512 KB of request or response metered as one request */
  apiRequest: 1 / 1e6,
  apiMeterBytes: 512 * 1024,
  /**
   * AWS HealthImaging, us-east-1, storage per GB-month as the author knew
   * the pricing page (2024): Frequent Access tier and Archive Instant Access
   * tier (objects move there after 30 days without access). To be re-checked.
   */
  healthImagingFrequentGbMonth: 0.105,
  healthImagingArchiveGbMonth: 0.006,
} as const;

/** S3 request classes: PUT, COPY, POST, LIST at the PUT price; GET, HEAD and the rest at the GET price; DELETE free. */
function s3Dollars(requests: Record<string, number>): number {
  let d = 0;
  for (const [k, n] of Object.entries(requests)) {
    if (!k.startsWith('s3:')) continue;
    const op = k.slice(3);
    if (/^(Put|Copy|Post|List|CreateMultipartUpload|UploadPart|CompleteMultipartUpload)/.test(op)) d += (n * PRICES.s3PutPer1000) / 1000;
    else if (/^Delete/.test(op)) d += 0;
    else d += (n * PRICES.s3GetPer1000) / 1000;
  }
  return d;
}

interface Measured {
  usage: UsageSnapshot;
  durationsMs: number[];
  requestBytes: number;
  responseBytes: number;
}

function line(operation: string, m: Measured, count: number, memoryMb: number): CostLine {
  const per = (v: number) => v / count;
  const requests = Object.fromEntries(Object.entries(m.usage.requests).map(([k, v]) => [k, per(v)]));
  const durationMs = summarize(m.durationsMs).median;
  const gbSeconds = (durationMs / 1000) * (memoryMb / 1024);
  const apiMetered = Math.max(1, Math.ceil(per(m.requestBytes) / PRICES.apiMeterBytes)) + Math.max(0, Math.ceil(per(m.responseBytes) / PRICES.apiMeterBytes) - 1);
  const dollars =
    s3Dollars(requests) +
    per(m.usage.readUnits) * PRICES.dynamoReadUnit +
    (per(m.usage.writeUnits) + per(m.usage.gsiWriteUnitsEstimate)) * PRICES.dynamoWriteUnit +
    gbSeconds * PRICES.lambdaGbSecond +
    PRICES.lambdaRequest +
    apiMetered * PRICES.apiRequest;
  return {
    operation,
    requests,
    readUnits: per(m.usage.readUnits),
    writeUnits: per(m.usage.writeUnits),
    gsiWriteUnitsEstimate: per(m.usage.gsiWriteUnitsEstimate),
    durationMs,
    memoryMb,
    gbSeconds,
    dollars,
  };
}

export async function figureCost(dataset: Dataset, options: { instances: number; repeats: number; log: (s: string) => void }): Promise<CostResults> {
  const aws = await startAwsLocal();
  const counter = new UsageCounter(Object.values(GSI) as GsiShape[]);
  const s3 = new S3Client(aws.s3Config);
  const dynamo = new DynamoDBClient(aws.dynamoConfig);
  counter.attach(s3 as never, 's3');
  counter.attach(dynamo as never, 'dynamodb');
  const ctx: ArchiveContext = {
    blobs: new S3BlobStore(s3, aws.bucket),
    index: new DynamoDbIndex(dynamo, aws.tableName),
    createHash: sha256,
    newObjectId,
    now: () => new Date(),
    limits: { ...DEFAULT_LIMITS, maxRequestBytes: 6 * 1024 * 1024 },
    log: silentLogger,
  };
  const app = createDicomWebApp(ctx, { basePath: '/dicom-web', authenticate: async () => LOOPBACK_PRINCIPAL });
  const base = 'http://bench.invalid/dicom-web';
  const call = async (method: string, path: string, accept: string, body?: Buffer): Promise<{ ms: number; bytes: number; status: number }> => {
    const t = performance.now();
    const res = await app.handle(
      new Request(`${base}${path}`, {
        method,
        headers: { Accept: accept, ...(body ? { 'Content-Type': STOW_CONTENT_TYPE, 'Content-Length': String(body.length) } : {}) },
        body: body as unknown as BodyInit | undefined,
      }),
    );
    const bytes = (await res.arrayBuffer()).byteLength;
    return { ms: performance.now() - t, bytes, status: res.status };
  };
  const measure = async (n: number, op: (i: number) => Promise<{ ms: number; bytes: number; status: number }>, requestBytes: (i: number) => number): Promise<Measured> => {
    const before = counter.snapshot();
    const durationsMs: number[] = [];
    let req = 0;
    let resp = 0;
    for (let i = 0; i < n; i++) {
      const r = await op(i);
      if (r.status !== 200) throw new Error(`cost model: operation ${i} answered ${r.status}`);
      durationsMs.push(r.ms);
      req += requestBytes(i);
      resp += r.bytes;
    }
    return { usage: usageDelta(before, counter.snapshot()), durationsMs, requestBytes: req, responseBytes: resp };
  };
  try {
    const memory = DEFAULTS.functions;
    const ct = dataset.ct.files.slice(0, options.instances).map((f) => stowBody(fs.readFileSync(f.file)));
    const others = [...dataset.mr, ...dataset.cr].map((f) => stowBody(fs.readFileSync(f.file)));
    options.log(`7. cost: storing ${ct.length} CT instances through the STOW route on s3rver/dynalite`);
    const stored = await measure(ct.length, (i) => call('POST', '/studies', 'application/dicom+json', ct[i]), (i) => ct[i]!.length);
    for (const b of others) await call('POST', '/studies', 'application/dicom+json', b);
    const instanceBytes = fs.statSync(dataset.ct.files[0]!.file).size;
    const patientID = await (async () => {
      const r = await app.handle(new Request(`${base}/studies?StudyInstanceUID=${dataset.ct.studyInstanceUID}&includefield=00100020`, { headers: { Accept: 'application/dicom+json' } }));
      const json = (await r.json()) as { '00100020'?: { Value?: string[] } }[];
      return json[0]?.['00100020']?.Value?.[0] ?? '';
    })();
    const qidoPid = await measure(options.repeats, () => call('GET', `/studies?PatientID=${encodeURIComponent(patientID)}`, 'application/dicom+json'), () => 0);
    const qidoAll = await measure(options.repeats, () => call('GET', '/studies?limit=100', 'application/dicom+json'), () => 0);
    const meta = await measure(options.repeats, () => call('GET', `/studies/${dataset.ct.studyInstanceUID}/series/${dataset.ct.seriesInstanceUID}/metadata`, 'application/dicom+json'), () => 0);
    const studies = 1 + 1 + dataset.cr.length;
    const lines = [
      line(`store one instance (STOW-RS, one ${(instanceBytes / 1e6).toFixed(2)} MB CT slice per request; average over ${ct.length} slices of a new study)`, stored, ct.length, memory.stow.memoryMb),
      line(`QIDO by PatientID (1 study of ${ct.length} instances matched)`, qidoPid, options.repeats, memory.qido.memoryMb),
      line(`QIDO unfiltered, limit=100 (${studies} studies, ${ct.length + others.length} instances)`, qidoAll, options.repeats, memory.qido.memoryMb),
      line(`series metadata (${ct.length} instances)`, meta, options.repeats, memory.wado.memoryMb),
    ];
    // Storage: S3 at the object's size; the index at the bytes its writes were metered for (1 KB per WCU: an upper bound).
    const instancesPerTb = 1e12 / instanceBytes;
    const indexGbPerTb = (instancesPerTb * ((stored.usage.writeUnits + stored.usage.gsiWriteUnitsEstimate) / ct.length) * 1024) / 1e9;
    const index = indexGbPerTb * (PRICES.dynamoStorageGbMonth + PRICES.dynamoPitrGbMonth);
    const hot = 1000 * PRICES.s3StandardGbMonth;
    const cold = 1000 * PRICES.s3GlacierIrGbMonth;
    const hiHot = 1000 * PRICES.healthImagingFrequentGbMonth;
    const hiCold = 1000 * PRICES.healthImagingArchiveGbMonth;
    return {
      instanceBytes,
      lines,
      perThousandStored: lines[0]!.dollars * 1000,
      perTbMonth: {
        ours: hot + index,
        healthImaging: hiHot,
        oursBreakdown: { 'S3 Standard': hot, 'DynamoDB index storage + PITR (upper bound)': index, 'S3 Glacier IR (after 90 days, default lifecycle)': cold },
      },
      perMillionQido: lines[1]!.dollars * 1e6,
      perMillionSeriesMetadata: lines[3]!.dollars * 1e6,
      notes: [
        `Hot data: ours $${(hot + index).toFixed(2)} per TB-month (S3 Standard + index) vs HealthImaging Frequent Access $${hiHot.toFixed(0)}; ` +
          `after 90 days (default lifecycle, Glacier IR) ours $${(cold + index).toFixed(2)} vs HealthImaging Archive Instant Access $${hiCold.toFixed(0)} ` +
          `(${(hiCold / (cold + index)).toFixed(2)}× — the index's storage, not the pixels, is then most of our bill).`,
        'Prices: AWS list prices for us-east-1 as known from the pricing pages of 2024 – early 2025, HealthImaging storage $0.105 (Frequent Access) and $0.006 (Archive Instant Access) per GB-month as the author knew them in 2024; none re-checked here (no internet) — verify before quoting. HealthImaging also bills API calls, not compared here.',
        'Durations are in-process wall times on this machine with s3rver and dynalite in the same process (their CPU time included, no network latency): an estimate of Lambda time, not a Lambda measurement. DynamoDB units are what dynalite reports for the table; GSI writes are estimated from the items put (dynalite does not meter indexes).',
      ],
    };
  } finally {
    s3.destroy();
    dynamo.destroy();
    await aws.stop();
  }
}
