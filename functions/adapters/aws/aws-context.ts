/**
 * The archive over S3 + DynamoDB, built once per Lambda cold start from the
 * environment the CDK stack sets (BUCKET_NAME, TABLE_NAME). Endpoints can be
 * redirected with the SDK's own AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_DYNAMODB
 * (used by the tests against s3rver and dynalite); S3_FORCE_PATH_STYLE=true
 * for S3 stand-ins that lack virtual-hosted buckets.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DEFAULT_LIMITS, type ArchiveContext, type Logger } from '../../core/archive/context';
import { S3BlobStore } from './s3-blob-store';
import { DynamoDbIndex } from './dynamodb-index';
import { jsonLogger, newObjectId, sha256 } from '../node-runtime';

export function createAwsContext(env: NodeJS.ProcessEnv = process.env, log: Logger = jsonLogger()): ArchiveContext {
  const bucket = env.BUCKET_NAME;
  const table = env.TABLE_NAME;
  if (!bucket || !table) throw new Error('BUCKET_NAME and TABLE_NAME must be set');
  const s3 = new S3Client({ forcePathStyle: env.S3_FORCE_PATH_STYLE === 'true' });
  const dynamo = new DynamoDBClient({});
  return {
    blobs: new S3BlobStore(s3, bucket),
    index: new DynamoDbIndex(dynamo, table),
    createHash: sha256,
    newObjectId,
    now: () => new Date(),
    limits: { ...DEFAULT_LIMITS, maxRequestBytes: 6 * 1024 * 1024 },
    log,
  };
}
