import { startAwsLocal, type AwsLocal } from '../helpers/aws-local';
import { S3BlobStore } from '../../functions/adapters/aws/s3-blob-store';
import { DynamoDbIndex } from '../../functions/adapters/aws/dynamodb-index';
import { blobStoreContract } from './blob-store.contract';
import { archiveIndexContract } from './archive-index.contract';

let aws: AwsLocal;
beforeAll(async () => {
  aws = await startAwsLocal();
});
afterAll(async () => {
  await aws?.stop();
});

blobStoreContract('S3BlobStore (s3rver)', async () => {
  const bucket = await aws.createBucket();
  return { store: new S3BlobStore(aws.s3, bucket), cleanup: async () => undefined };
});

archiveIndexContract('DynamoDbIndex (dynalite)', async () => {
  const table = await aws.createTable();
  return { index: new DynamoDbIndex(aws.dynamo, table), cleanup: () => aws.deleteTable(table) };
});

// ---------------------------------------------------------------- adapter specifics
// What the port does not promise but the AWS design relies on (docs/storage-layout.md).

import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { randomBytes } from 'node:crypto';
import { itemKeys, GSI } from '../../functions/adapters/aws/table-schema';
import type { InstanceRecord } from '../../functions/core/archive/ports';
import { Tag } from '../../functions/core/dicom/tags';
import { makeInstanceRecord, newUID, withoutMetadata } from './archive-index.contract';

interface Sent {
  command: string;
  input: Record<string, any>;
}

/** Records every command a client sends; `fail` can make a chosen request throw before it is sent. */
function instrument<C extends S3Client | DynamoDBClient>(client: C, fail?: (s: Sent) => Error | undefined): Sent[] {
  const sent: Sent[] = [];
  (client.middlewareStack as any).add(
    (next: any, context: any) => async (args: any) => {
      const s = { command: context.commandName as string, input: args.input };
      sent.push(s);
      const error = fail?.(s);
      if (error) throw error;
      return next(args);
    },
    { step: 'initialize', name: 'recordCommands' },
  );
  return sent;
}

async function toArray<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

async function* chunked(bytes: Uint8Array, size: number, thenFail?: Error): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size);
  if (thenFail) throw thenFail;
}

describe('S3BlobStore specifics (s3rver)', () => {
  let s3: S3Client;
  let sent: Sent[];
  let bucket: string;
  let failPart: number | undefined;
  beforeEach(async () => {
    s3 = new S3Client(aws.s3Config);
    failPart = undefined;
    sent = instrument(s3, (s) =>
      s.command === 'UploadPartCommand' && s.input.PartNumber === failPart ? Object.assign(new Error('injected'), { name: 'InternalError' }) : undefined,
    );
    bucket = await aws.createBucket();
  });
  afterEach(() => s3.destroy());
  const names = () => sent.map((s) => s.command);
  const partSize = 5 * 1024 * 1024;

  it('sends a stream shorter than one part with a single PutObject', async () => {
    const store = new S3BlobStore(s3, bucket, { partSize });
    await store.put('small.bin', chunked(randomBytes(100_000), 8192), { contentType: 'application/dicom' });
    expect(names()).toEqual(['PutObjectCommand']);
    expect(sent[0]!.input.ContentType).toBe('application/dicom');
  });

  it('streams a larger object as a multipart upload with bounded parts', async () => {
    const store = new S3BlobStore(s3, bucket, { partSize, queueSize: 2 });
    const bytes = randomBytes(partSize * 2 + 123);
    await expect(store.put('big.bin', chunked(bytes, 64 * 1024))).resolves.toEqual({ size: bytes.byteLength });
    expect(names().filter((n) => n === 'UploadPartCommand')).toHaveLength(3);
    expect(names()).toContain('CompleteMultipartUploadCommand');
    expect(Buffer.from(await store.getBytes('big.bin')).equals(bytes)).toBe(true);
  });

  it('aborts the multipart upload when the stream fails mid-way (nothing left behind)', async () => {
    const store = new S3BlobStore(s3, bucket, { partSize });
    await expect(store.put('aborted.bin', chunked(randomBytes(partSize + 1000), 64 * 1024, new Error('client went away')))).rejects.toThrow(
      'client went away',
    );
    expect(names()).toContain('AbortMultipartUploadCommand');
    expect(names()).not.toContain('CompleteMultipartUploadCommand');
    await expect(store.head('aborted.bin')).resolves.toBeUndefined();
  });

  it('aborts the multipart upload when S3 fails a part', async () => {
    const store = new S3BlobStore(s3, bucket, { partSize });
    failPart = 2;
    await expect(store.put('failed.bin', chunked(randomBytes(partSize * 2 + 10), 64 * 1024))).rejects.toThrow('injected');
    expect(names()).toContain('AbortMultipartUploadCommand');
    expect(names()).not.toContain('CompleteMultipartUploadCommand');
    await expect(store.head('failed.bin')).resolves.toBeUndefined();
  });

  it('rejects unsatisfiable or malformed ranges with RANGE_NOT_SATISFIABLE', async () => {
    const store = new S3BlobStore(s3, bucket);
    await store.put('r.bin', randomBytes(100));
    await expect(store.getBytes('r.bin', { start: 100 })).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE' });
    await expect(store.getBytes('r.bin', { start: 10, end: 5 })).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE' });
    await expect(store.get('r.bin', { start: -1 })).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE' });
    // an end past the object is clamped, as HTTP does
    await expect(store.getBytes('r.bin', { start: 90, end: 1000 })).resolves.toHaveLength(10);
  });
});

describe('DynamoDbIndex specifics (dynalite)', () => {
  let dynamo: DynamoDBClient;
  let doc: DynamoDBDocumentClient;
  let sent: Sent[];
  let table: string;
  let failWhen: ((s: Sent) => boolean) | undefined;
  let clock: number;
  const index = (options: ConstructorParameters<typeof DynamoDbIndex>[2] = {}) =>
    new DynamoDbIndex(dynamo, table, { now: () => clock, ...options });

  beforeEach(async () => {
    dynamo = new DynamoDBClient(aws.dynamoConfig);
    doc = DynamoDBDocumentClient.from(dynamo);
    failWhen = undefined;
    clock = Date.now();
    sent = instrument(dynamo, (s) => (failWhen?.(s) ? Object.assign(new Error('injected'), { name: 'InternalServerError' }) : undefined));
    table = await aws.createTable();
  });
  afterEach(async () => {
    dynamo.destroy();
    await aws.deleteTable(table);
  });

  const rawGet = async (key: { PK: string; SK: string }) => (await doc.send(new GetCommand({ TableName: table, Key: key }))).Item;
  const rawPartition = async (pk: string) => {
    const items: Record<string, any>[] = [];
    let start: Record<string, any> | undefined;
    do {
      const out = await doc.send(
        new QueryCommand({ TableName: table, KeyConditionExpression: 'PK = :pk', ExpressionAttributeValues: { ':pk': pk }, ExclusiveStartKey: start }),
      );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  };
  /** DynamoDB's item size: attribute names plus values (UTF-8 strings, binary length, numbers ~digits). */
  const itemSize = (item: Record<string, unknown>) =>
    Object.entries(item).reduce((n, [name, v]) => {
      const value = v instanceof Uint8Array ? v.byteLength : typeof v === 'string' ? Buffer.byteLength(v) : String(v).length;
      return n + Buffer.byteLength(name) + value;
    }, 0);

  it('never scans: every read path is a key lookup or a key-condition query', async () => {
    const idx = index();
    const records = [
      makeInstanceRecord({ patientName: 'Doe^Jane', studyDate: '20240102' }),
      makeInstanceRecord({ patientName: 'Roe^Richard', studyDate: '20230405', patientID: 'SYN-R', accessionNumber: 'ACC-R' }),
    ];
    for (const r of records) await idx.putInstance(r);
    const r = records[0]!;
    await idx.getInstance({ studyInstanceUID: r.studyInstanceUID, sopInstanceUID: r.sopInstanceUID }, { withMetadata: true });
    await toArray(idx.listInstances(r.studyInstanceUID, undefined, { withMetadata: true }));
    const used = new Map<string, string | undefined>();
    for (const hints of [
      {},
      { studyInstanceUIDs: [r.studyInstanceUID] },
      { patientID: 'SYN-R' },
      { accessionNumber: 'ACC-R' },
      { studyDateFrom: '20240101' },
      { patientNamePrefix: 'DO' },
    ]) {
      sent.length = 0;
      await toArray(idx.findStudies(hints));
      used.set(JSON.stringify(hints), sent.find((s) => s.command === 'QueryCommand')?.input.IndexName);
    }
    await idx.deleteInstances(r.studyInstanceUID);
    expect(sent.map((s) => s.command)).not.toContain('ScanCommand');
    expect(Object.fromEntries(used)).toEqual({
      '{}': GSI.byStudyDate.indexName,
      [JSON.stringify({ studyInstanceUIDs: [r.studyInstanceUID] })]: undefined, // BatchGetItem
      '{"patientID":"SYN-R"}': GSI.byPatientID.indexName,
      '{"accessionNumber":"ACC-R"}': GSI.byAccessionNumber.indexName,
      '{"studyDateFrom":"20240101"}': GSI.byStudyDate.indexName,
      '{"patientNamePrefix":"DO"}': GSI.byFamilyName.indexName,
    });
  });

  it('writes the study item once per study, not once per instance (no hot key)', async () => {
    const idx = index();
    const study = newUID();
    const series = newUID();
    await Promise.all(Array.from({ length: 20 }, () => idx.putInstance(makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: series }))));
    const studyPuts = sent.filter((s) => s.command === 'PutItemCommand' && s.input.Item?.SK === 'STUDY');
    // concurrent first writers may all try the conditional put; a sequential study needs one
    expect(studyPuts.length).toBeGreaterThanOrEqual(1);
    sent.length = 0;
    for (let i = 0; i < 10; i++) await idx.putInstance(makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: series }));
    expect(sent.filter((s) => s.command === 'PutItemCommand' && s.input.Item?.SK === 'STUDY')).toHaveLength(0);
  });

  it('keeps every item under 400 KB: large metadata and a huge frame table are chunked and cleaned up', async () => {
    const idx = index();
    const record = makeInstanceRecord();
    // ~1.5 MB of incompressible text: more than four side items
    record.metadata = { ...record.metadata!, '00091010': { vr: 'UT', Value: [randomBytes(1_100_000).toString('base64')] } };
    // 80,000 frames: the packed layout exceeds what an instance item may hold inline
    const frames = Array.from({ length: 80_000 }, (_, i) => [{ offset: 1_000_000 + i * 12_345 + (i % 7), length: 12_000 + (i % 345) }]);
    record.layout = { ...record.layout, pixelData: { ...record.layout.pixelData!, frames } };
    await expect(idx.putInstance(record)).resolves.toEqual({ status: 'created' });

    const side = await rawPartition(`META#${record.studyInstanceUID}#${record.seriesInstanceUID}`);
    expect(side.filter((i) => i.type === 'metadata').length).toBeGreaterThan(3);
    for (const item of [...side, ...(await rawPartition(`STUDY#${record.studyInstanceUID}`))]) expect(itemSize(item)).toBeLessThan(400 * 1024);
    expect(side.filter((i) => i.type === 'body').length).toBeGreaterThan(0);
    const ref = { studyInstanceUID: record.studyInstanceUID, sopInstanceUID: record.sopInstanceUID };
    await expect(idx.getInstance(ref, { withMetadata: true })).resolves.toEqual(record);
    await expect(idx.getInstance(ref)).resolves.toEqual(withoutMetadata(record));
    await expect(toArray(idx.listInstances(record.studyInstanceUID, undefined, { withMetadata: true }))).resolves.toEqual([record]);

    const removed = await idx.deleteInstances(record.studyInstanceUID);
    expect(removed).toEqual([withoutMetadata(record)]);
    await expect(rawPartition(`META#${record.studyInstanceUID}#${record.seriesInstanceUID}`)).resolves.toEqual([]);
    await expect(rawPartition(`STUDY#${record.studyInstanceUID}`)).resolves.toEqual([]);
    await expect(rawGet(itemKeys.claim(record.sopInstanceUID))).resolves.toBeUndefined();
  });

  it('compresses attribute JSON: a typical instance item stays around 1 KB', async () => {
    const idx = index();
    const record = makeInstanceRecord();
    record.instanceAttributes = { ...record.instanceAttributes, '00200032': { vr: 'DS', Value: [-125.5, -130.25, 42.75] } };
    await idx.putInstance(record);
    const put = sent.find((s) => s.command === 'PutItemCommand' && String(s.input.Item?.SK).startsWith('INST#'))!;
    expect(itemSize(put.input.Item)).toBeLessThan(1500);
  });

  describe('without transactions: crash windows between the claim and the instance item', () => {
    /** What a writer that died right after its claim leaves behind. */
    async function orphanClaim(record: InstanceRecord, claimedAt: number): Promise<void> {
      const { metadata: _m, studyAttributes: _s, seriesAttributes: _se, instanceAttributes: _i, layout: _l, ...identity } = record;
      await doc.send(new PutCommand({ TableName: table, Item: { ...itemKeys.claim(record.sopInstanceUID), type: 'claim', ...identity, claimedAt } }));
    }

    it('an identical retry heals the half-written record with its own bytes', async () => {
      const idx = index({ inFlightWaitMs: 50 });
      const record = makeInstanceRecord({ contentSeed: 'heal' });
      await orphanClaim(record, clock - 60_000);
      const retry = { ...record, blobKey: record.blobKey.replace(/[0-9a-f]{16}\.dcm$/, 'aaaaaaaaaaaaaaaa.dcm'), storedAt: '2025-01-01T00:00:00.000Z' };
      const result = await idx.putInstance(retry);
      expect(result).toEqual({ status: 'identical', existing: withoutMetadata(retry) });
      await expect(idx.getInstance({ studyInstanceUID: record.studyInstanceUID, sopInstanceUID: record.sopInstanceUID }, { withMetadata: true })).resolves.toEqual(retry);
      await expect(toArray(idx.findStudies({ studyInstanceUIDs: [record.studyInstanceUID] }))).resolves.toHaveLength(1);
      // the claim now points at the bytes that are referenced
      await expect(rawGet(itemKeys.claim(record.sopInstanceUID))).resolves.toMatchObject({ blobKey: retry.blobKey });
    });

    it('other content conflicts while the orphan claim is young, and takes it over once stale', async () => {
      const idx = index({ inFlightWaitMs: 50, staleClaimMs: 10 * 60_000 });
      const record = makeInstanceRecord({ contentSeed: 'dead-writer' });
      await orphanClaim(record, clock - 60_000);
      const other = makeInstanceRecord({ ...record, contentHash: undefined, contentSeed: 'new-writer' });
      const young = await idx.putInstance(other);
      expect(young.status).toBe('conflict');
      expect((young as { existing: InstanceRecord }).existing).toMatchObject({ blobKey: record.blobKey, contentHash: record.contentHash });

      clock += 10 * 60_000;
      await expect(idx.putInstance(other)).resolves.toEqual({ status: 'created' });
      await expect(idx.getInstance({ studyInstanceUID: record.studyInstanceUID, sopInstanceUID: record.sopInstanceUID }, { withMetadata: true })).resolves.toEqual(other);
    });

    it('a failed commit rolls back its claim, so the SOP Instance UID stays free', async () => {
      const idx = index();
      const record = makeInstanceRecord();
      failWhen = (s) => s.command === 'PutItemCommand' && String(s.input.Item?.SK).startsWith('INST#');
      await expect(idx.putInstance(record)).rejects.toThrow('injected');
      failWhen = undefined;
      await expect(rawGet(itemKeys.claim(record.sopInstanceUID))).resolves.toBeUndefined();
      await expect(rawPartition(`META#${record.studyInstanceUID}#${record.seriesInstanceUID}`)).resolves.toEqual([]);
      const other = makeInstanceRecord({ ...record, contentHash: undefined, contentSeed: 'second-try' });
      await expect(idx.putInstance(other)).resolves.toEqual({ status: 'created' });
    });
  });

  it('merges the date shards in order, with date bounds and keyset continuation', async () => {
    const idx = index();
    // 160 studies: ~40 per shard, more than the first page of 32, so shard paging is exercised
    const dates = Array.from({ length: 160 }, (_, i) => `20${String(10 + (i % 15)).padStart(2, '0')}${String(1 + (i % 12)).padStart(2, '0')}${String(1 + (i % 28)).padStart(2, '0')}`);
    const records = dates.map((d) => makeInstanceRecord({ studyDate: d }));
    for (let i = 0; i < records.length; i += 16) await Promise.all(records.slice(i, i + 16).map((r) => idx.putInstance(r)));
    const key = (r: InstanceRecord) => `${r.studyAttributes[Tag.StudyDate]!.Value![0]}#${r.studyInstanceUID}`;
    const expected = records.map(key).sort().reverse();
    const all = await toArray(idx.findStudies({}));
    expect(all.map((s) => `${s.studyAttributes[Tag.StudyDate]!.Value![0]}#${s.studyInstanceUID}`)).toEqual(expected);

    const inRange = expected.filter((k) => k >= '20150101#' && k <= '20201231#~');
    const after = inRange[5]!;
    const rest = await toArray(idx.findStudies({ studyDateFrom: '20150101', studyDateTo: '20201231' }, after));
    expect(rest.map((s) => `${s.studyAttributes[Tag.StudyDate]!.Value![0]}#${s.studyInstanceUID}`)).toEqual(inRange.slice(6));
    // an exclusive bound at the low end leaves nothing, and an inverted range is empty (not a ValidationException)
    await expect(toArray(idx.findStudies({ studyDateFrom: '20300101', studyDateTo: '20200101' }))).resolves.toEqual([]);
  });

  it('lists a study whose instance items exceed one 1 MB query page', async () => {
    const idx = index();
    const study = newUID();
    const series = newUID();
    const records = Array.from({ length: 300 }, () => {
      const r = makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: series });
      // ~4 KB of incompressible text per instance item: 300 items > 1 MB
      r.instanceAttributes = { ...r.instanceAttributes, '00204000': { vr: 'LT', Value: [randomBytes(3000).toString('base64')] } };
      return r;
    });
    for (let i = 0; i < records.length; i += 25) await Promise.all(records.slice(i, i + 25).map((r) => idx.putInstance(r)));
    sent.length = 0;
    const listed = await toArray(idx.listInstances(study));
    expect(sent.filter((s) => s.command === 'QueryCommand').length).toBeGreaterThan(1);
    expect(listed.map((r) => r.sopInstanceUID)).toEqual(records.map((r) => r.sopInstanceUID).sort());
    expect(listed[0]).toEqual(withoutMetadata(records.find((r) => r.sopInstanceUID === listed[0]!.sopInstanceUID)!));
  });

  it('continues a name-prefix search after a sort key', async () => {
    const idx = index();
    const records = ['20200101', '20210101', '20220101'].map((d) => makeInstanceRecord({ studyDate: d, patientName: 'Keyset^Kim' }));
    for (const r of records) await idx.putInstance(r);
    const found = await toArray(idx.findStudies({ patientNamePrefix: 'KEYS' }, `20220101#${records[2]!.studyInstanceUID}`));
    expect(found.map((s) => s.studyInstanceUID)).toEqual([records[1]!.studyInstanceUID, records[0]!.studyInstanceUID]);
  });

  it('reads nothing and throws nothing for invalid UIDs; refuses to write them', async () => {
    const idx = index();
    await expect(idx.getInstance({ studyInstanceUID: '1.2#3', sopInstanceUID: '1.2' })).resolves.toBeUndefined();
    await expect(toArray(idx.listInstances('../etc'))).resolves.toEqual([]);
    await expect(idx.deleteInstances('1.2.x')).resolves.toEqual([]);
    await expect(toArray(idx.findStudies({ studyInstanceUIDs: ['1.02'] }))).resolves.toEqual([]);
    await expect(idx.putInstance({ ...makeInstanceRecord(), sopInstanceUID: '1.2.3#4' })).rejects.toMatchObject({ code: 'INVALID_UID' });
  });
});
