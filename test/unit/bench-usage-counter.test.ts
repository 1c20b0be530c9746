import { UsageCounter, approximateItemBytes, gsiWriteUnits, usageDelta } from '../../functions/adapters/aws/usage-counter';

/** A stand-in for an SDK client's middleware stack: one initialize middleware, then a fake transport. */
function fakeClient(answer: (commandName: string, input: Record<string, unknown>) => Record<string, unknown>) {
  let middleware: ((next: any, context: any) => (args: any) => Promise<any>) | undefined;
  return {
    middlewareStack: {
      add(m: unknown) {
        middleware = m as typeof middleware;
      },
    },
    async send(commandName: string, input: Record<string, unknown>) {
      const seen: Record<string, unknown>[] = [];
      const handler = middleware!(async (args: { input: Record<string, unknown> }) => {
        seen.push(args.input);
        return { output: answer(commandName, args.input) };
      }, { commandName });
      await handler({ input });
      return seen[0]!;
    },
  };
}

const gsis = [
  { partitionKey: 'GSI1PK', sortKey: 'GSI1SK', projection: 'ALL' as const },
  { partitionKey: 'GSI2PK', sortKey: 'GSI2SK', projection: 'KEYS_ONLY' as const },
];

describe('UsageCounter (cost model instrumentation)', () => {
  test('asks DynamoDB for consumed capacity and sums reads and writes separately', async () => {
    const counter = new UsageCounter();
    const client = fakeClient((_name, input) => ({ ConsumedCapacity: input.ReturnConsumedCapacity === 'TOTAL' ? { CapacityUnits: 2.5 } : undefined }));
    counter.attach(client, 'dynamodb');
    const sent = await client.send('GetItemCommand', { TableName: 't' });
    expect(sent.ReturnConsumedCapacity).toBe('TOTAL');
    await client.send('PutItemCommand', { TableName: 't', Item: {} });
    await client.send('BatchGetItemCommand', {});
    const s = counter.snapshot();
    expect(s.requests).toEqual({ 'dynamodb:BatchGetItem': 1, 'dynamodb:GetItem': 1, 'dynamodb:PutItem': 1 });
    expect(s.writeUnits).toBe(2.5);
    expect(s.readUnits).toBe(5);
  });

  test('counts S3 requests by command and the bytes put; leaves S3 inputs alone', async () => {
    const counter = new UsageCounter();
    const client = fakeClient(() => ({}));
    counter.attach(client, 's3');
    const sent = await client.send('PutObjectCommand', { Bucket: 'b', Key: 'k', ContentLength: 1000 });
    await client.send('GetObjectCommand', { Bucket: 'b', Key: 'k' });
    await client.send('GetObjectCommand', { Bucket: 'b', Key: 'k' });
    expect(sent.ReturnConsumedCapacity).toBeUndefined();
    const before = counter.snapshot();
    expect(before.requests).toEqual({ 's3:GetObject': 2, 's3:PutObject': 1 });
    expect(before.s3BytesPut).toBe(1000);
    await client.send('GetObjectCommand', { Bucket: 'b', Key: 'k' });
    expect(usageDelta(before, counter.snapshot()).requests).toEqual({ 's3:GetObject': 1 });
    counter.reset();
    expect(counter.snapshot().requests).toEqual({});
  });

  test('estimates GSI writes for items that carry both key attributes of an index', () => {
    const big = 'x'.repeat(3000);
    expect(gsiWriteUnits({ PK: 'a', SK: 'b' }, gsis)).toBe(0);
    expect(gsiWriteUnits({ PK: 'a', SK: 'b', GSI1PK: 'p', GSI1SK: 's', body: big }, gsis)).toBe(3);
    expect(gsiWriteUnits({ PK: 'a', SK: 'b', GSI1PK: 'p', GSI1SK: 's', GSI2PK: 'q', GSI2SK: 't', body: big }, gsis)).toBe(4);
    expect(gsiWriteUnits({ GSI1PK: 'p' }, gsis)).toBe(0);
    expect(approximateItemBytes({ ab: 'cd' })).toBe(3 + 1 + 2 + 2);
  });

  test('PutItem through the counter adds the GSI estimate', async () => {
    const counter = new UsageCounter(gsis);
    const client = fakeClient(() => ({ ConsumedCapacity: { CapacityUnits: 1 } }));
    counter.attach(client, 'dynamodb');
    await client.send('PutItemCommand', { Item: { PK: 'a', SK: 'b', GSI2PK: 'q', GSI2SK: 't' } });
    await client.send('BatchWriteItemCommand', { RequestItems: { t: [{ PutRequest: { Item: { GSI1PK: 'p', GSI1SK: 's' } } }, { DeleteRequest: { Key: {} } }] } });
    expect(counter.snapshot().gsiWriteUnitsEstimate).toBe(2);
    expect(counter.snapshot().writeUnits).toBe(2);
  });
});
