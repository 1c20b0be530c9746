/**
 * Counts what the archive asks of S3 and DynamoDB, for the cost model
 * (docs/cost-model.md, "Measured per-operation counts"): requests by
 * command, and DynamoDB capacity units as DynamoDB itself reports them
 * (every data-plane call is sent with ReturnConsumedCapacity TOTAL).
 *
 * It is a middleware on the AWS SDK v3 client stack, so the adapters
 * (S3BlobStore, DynamoDbIndex) run unchanged; attach it to the clients you
 * hand them. Not used in production: asking for consumed capacity costs
 * nothing but adds a field to every answer.
 *
 * DynamoDB Local stand-ins (dynalite) report table capacity only; writes
 * into global secondary indexes are estimated here from the items put
 * (`gsiWriteUnitsEstimate`): one write per GSI whose two key attributes the
 * item carries, sized like the item (projection ALL) or as its keys
 * (KEYS_ONLY), 1 KB per unit — how DynamoDB meters index writes
 * (Developer Guide, "Provisioned throughput considerations for GSIs").
 */

/** The part of an AWS SDK v3 client this needs (S3Client, DynamoDBClient, DynamoDBDocumentClient). */
export interface StackClient {
  middlewareStack: {
    add(middleware: unknown, options: { step: 'initialize'; name: string; override?: boolean }): void;
  };
}

export interface GsiShape {
  partitionKey: string;
  sortKey: string;
  projection: 'ALL' | 'KEYS_ONLY';
}

export interface UsageSnapshot {
  /** requests by `service:Command`, e.g. `s3:PutObject`, `dynamodb:QueryCommand` */
  requests: Record<string, number>;
  /** DynamoDB read capacity units reported (strongly consistent = 1 per 4 KB) */
  readUnits: number;
  /** DynamoDB write capacity units reported for the table (1 per 1 KB) */
  writeUnits: number;
  /** estimated GSI write units (see the module comment) */
  gsiWriteUnitsEstimate: number;
  /** S3 bytes sent in PutObject/UploadPart bodies whose length was known */
  s3BytesPut: number;
}

const DYNAMO_READS = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem', 'TransactGetItems']);
const DYNAMO_CAPACITY_COMMANDS = new Set([
  ...DYNAMO_READS,
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'BatchWriteItem',
  'TransactWriteItems',
]);

/** Rough DynamoDB size of a value (UTF-8 strings, names included; numbers ~ 8 bytes). */
export function approximateItemBytes(value: unknown): number {
  if (value === null || value === undefined || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  if (typeof value === 'number' || typeof value === 'bigint') return 8;
  if (value instanceof Uint8Array) return value.byteLength;
  if (value instanceof Set) return [...value].reduce((n: number, v) => n + approximateItemBytes(v), 3);
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + 1 + approximateItemBytes(v), 3);
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).reduce((n, [k, v]) => n + 1 + Buffer.byteLength(k, 'utf8') + approximateItemBytes(v), 3);
  }
  return 8;
}

/** A top-level attribute of an item, plain (DocumentClient) or marshalled ({ S: "…" }). */
function hasAttribute(item: Record<string, unknown>, name: string): boolean {
  return item[name] !== undefined && item[name] !== null;
}

export function gsiWriteUnits(item: Record<string, unknown>, gsis: readonly GsiShape[]): number {
  let units = 0;
  const whole = approximateItemBytes(item);
  for (const g of gsis) {
    if (!hasAttribute(item, g.partitionKey) || !hasAttribute(item, g.sortKey)) continue;
    const bytes = g.projection === 'ALL' ? whole : approximateItemBytes({ [g.partitionKey]: item[g.partitionKey], [g.sortKey]: item[g.sortKey] });
    units += Math.max(1, Math.ceil(bytes / 1024));
  }
  return units;
}

/** Names of the SDK's commands without the `Command` suffix (both S3 and DynamoDB spell them so). */
function operationOf(commandName: string | undefined): string {
  return (commandName ?? 'Unknown').replace(/Command$/, '');
}

function capacityOf(consumed: unknown): number {
  const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
  let sum = 0;
  for (const c of list as { CapacityUnits?: number }[]) sum += c.CapacityUnits ?? 0;
  return sum;
}

export class UsageCounter {
  private requests = new Map<string, number>();
  private readUnits = 0;
  private writeUnits = 0;
  private gsiUnits = 0;
  private bytesPut = 0;

  constructor(private readonly gsis: readonly GsiShape[] = []) {}

  /** Count every request `client` sends from now on. */
  attach(client: StackClient, service: 's3' | 'dynamodb'): void {
    const middleware =
      (next: (args: { input: Record<string, unknown> }) => Promise<{ output: Record<string, unknown> }>, context: { commandName?: string }) =>
      async (args: { input: Record<string, unknown> }) => {
        const op = operationOf(context.commandName);
        const key = `${service}:${op}`;
        this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
        if (service === 's3' && (op === 'PutObject' || op === 'UploadPart')) {
          const length = Number(args.input.ContentLength ?? (args.input.Body instanceof Uint8Array ? args.input.Body.byteLength : Number.NaN));
          if (Number.isFinite(length)) this.bytesPut += length;
        }
        if (service === 'dynamodb' && DYNAMO_CAPACITY_COMMANDS.has(op)) {
          args.input = { ...args.input, ReturnConsumedCapacity: 'TOTAL' };
          this.gsiUnits += this.estimateGsiWrites(op, args.input);
        }
        const result = await next(args);
        if (service === 'dynamodb' && DYNAMO_CAPACITY_COMMANDS.has(op)) {
          const units = capacityOf(result.output.ConsumedCapacity);
          if (DYNAMO_READS.has(op)) this.readUnits += units;
          else this.writeUnits += units;
        }
        return result;
      };
    client.middlewareStack.add(middleware, { step: 'initialize', name: 'benchUsageCounter', override: true });
  }

  private estimateGsiWrites(op: string, input: Record<string, unknown>): number {
    if (this.gsis.length === 0) return 0;
    if (op === 'PutItem' && input.Item) return gsiWriteUnits(input.Item as Record<string, unknown>, this.gsis);
    if (op === 'BatchWriteItem' && input.RequestItems) {
      let units = 0;
      for (const requests of Object.values(input.RequestItems as Record<string, { PutRequest?: { Item: Record<string, unknown> } }[]>)) {
        for (const r of requests) if (r.PutRequest) units += gsiWriteUnits(r.PutRequest.Item, this.gsis);
      }
      return units;
    }
    return 0;
  }

  snapshot(): UsageSnapshot {
    return {
      requests: Object.fromEntries([...this.requests].sort(([a], [b]) => a.localeCompare(b))),
      readUnits: this.readUnits,
      writeUnits: this.writeUnits,
      gsiWriteUnitsEstimate: this.gsiUnits,
      s3BytesPut: this.bytesPut,
    };
  }

  reset(): void {
    this.requests.clear();
    this.readUnits = 0;
    this.writeUnits = 0;
    this.gsiUnits = 0;
    this.bytesPut = 0;
  }
}

/** What happened between two snapshots. */
export function usageDelta(before: UsageSnapshot, after: UsageSnapshot): UsageSnapshot {
  const requests: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.requests)) {
    const d = v - (before.requests[k] ?? 0);
    if (d !== 0) requests[k] = d;
  }
  return {
    requests,
    readUnits: after.readUnits - before.readUnits,
    writeUnits: after.writeUnits - before.writeUnits,
    gsiWriteUnitsEstimate: after.gsiWriteUnitsEstimate - before.gsiWriteUnitsEstimate,
    s3BytesPut: after.s3BytesPut - before.s3BytesPut,
  };
}
