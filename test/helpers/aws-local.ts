/**
 * S3 and DynamoDB stand-ins in this process: s3rver and dynalite on ephemeral
 * ports on 127.0.0.1, with a bucket and a table (the production schema from
 * functions/adapters/aws/table-schema.ts) created up front.
 *
 *   const aws = await startAwsLocal();
 *   new S3BlobStore(aws.s3, aws.bucket); new DynamoDbIndex(aws.dynamo, aws.tableName);
 *   // or, for code that builds its own clients (createAwsContext): aws.env
 *   await aws.stop();
 *
 * The clients use the SDK's default settings apart from endpoint, dummy
 * credentials and path-style buckets, so the tests exercise what production runs.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import S3rver from 's3rver';
import { createTableInput } from '../../functions/adapters/aws/table-schema';
import { makeTempDir } from './tmp';

export interface AwsLocal {
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  s3Endpoint: string;
  dynamoEndpoint: string;
  /** Config of the clients below, for code that builds its own. */
  s3Config: S3ClientConfig;
  dynamoConfig: DynamoDBClientConfig;
  s3: S3Client;
  dynamo: DynamoDBClient;
  /** The bucket and table created at start. */
  bucket: string;
  tableName: string;
  /**
   * Environment for functions/adapters/aws/aws-context.ts (BUCKET_NAME, TABLE_NAME,
   * AWS_ENDPOINT_URL_S3/_DYNAMODB, S3_FORCE_PATH_STYLE, region, credentials).
   */
  env: Record<string, string>;
  /** Another empty bucket (e.g. one per test). */
  createBucket(name?: string): Promise<string>;
  /** Another empty table with the archive schema (e.g. one per test). */
  createTable(name?: string): Promise<string>;
  deleteTable(name: string): Promise<void>;
  stop(): Promise<void>;
}

let counter = 0;
function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

async function waitForTable(client: DynamoDBClient, name: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    const gsisActive = (Table?.GlobalSecondaryIndexes ?? []).every((g) => g.IndexStatus === 'ACTIVE');
    if (Table?.TableStatus === 'ACTIVE' && gsisActive) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`table ${name} did not become ACTIVE`);
}

export async function startAwsLocal(options: { bucket?: string; tableName?: string } = {}): Promise<AwsLocal> {
  const region = 'us-east-1';
  // s3rver accepts only its own well-known key pair; dynalite accepts anything.
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const tmp = makeTempDir('s3rver-');

  const s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: tmp.dir });
  const dynamoServer = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });

  let s3: S3Client | undefined;
  let dynamo: DynamoDBClient | undefined;
  let s3Running = false;
  let dynamoRunning = false;
  const stop = async (): Promise<void> => {
    s3?.destroy();
    dynamo?.destroy();
    if (s3Running) await s3rver.close().catch(() => undefined);
    if (dynamoRunning) {
      dynamoServer.closeAllConnections();
      await new Promise<void>((resolve) => dynamoServer.close(() => resolve()));
    }
    tmp.cleanup();
  };

  try {
    const s3Address = await s3rver.run();
    s3Running = true;
    const dynamoPort = await listen(dynamoServer);
    dynamoRunning = true;

    const s3Endpoint = `http://127.0.0.1:${s3Address.port}`;
    const dynamoEndpoint = `http://127.0.0.1:${dynamoPort}`;
    const s3Config: S3ClientConfig = { region, credentials, endpoint: s3Endpoint, forcePathStyle: true };
    const dynamoConfig: DynamoDBClientConfig = { region, credentials, endpoint: dynamoEndpoint };
    s3 = new S3Client(s3Config);
    dynamo = new DynamoDBClient(dynamoConfig);
    const s3Client = s3;
    const dynamoClient = dynamo;

    const createBucket = async (name = uniqueName('bucket')): Promise<string> => {
      await s3Client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    };
    const createTable = async (name = uniqueName('table')): Promise<string> => {
      await dynamoClient.send(new CreateTableCommand(createTableInput(name)));
      await waitForTable(dynamoClient, name);
      return name;
    };
    const deleteTable = async (name: string): Promise<void> => {
      await dynamoClient.send(new DeleteTableCommand({ TableName: name })).catch(() => undefined);
    };

    const bucket = await createBucket(options.bucket);
    const tableName = await createTable(options.tableName);

    return {
      region,
      credentials,
      s3Endpoint,
      dynamoEndpoint,
      s3Config,
      dynamoConfig,
      s3: s3Client,
      dynamo: dynamoClient,
      bucket,
      tableName,
      env: {
        BUCKET_NAME: bucket,
        TABLE_NAME: tableName,
        AWS_ENDPOINT_URL_S3: s3Endpoint,
        AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint,
        S3_FORCE_PATH_STYLE: 'true',
        AWS_REGION: region,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      },
      createBucket,
      createTable,
      deleteTable,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
