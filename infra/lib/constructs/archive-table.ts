import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { createTableInput } from '../../../functions/adapters/aws/table-schema';

export interface ArchiveTableProps {
  readonly key: kms.IKey;
}

/**
 * The index table, built from `createTableInput()` (functions/adapters/aws/table-schema.ts),
 * the same definition the adapter and the dynalite tests use, so keys and GSIs
 * cannot drift between the code and the deployed table (test/infra asserts it).
 *
 * The construct ID `Table` owns data: renaming it (or its parents) creates a
 * new, empty table. Never rename it.
 */
export class ArchiveTable extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: ArchiveTableProps) {
    super(scope, id);
    const schema = createTableInput('schema');
    const types = new Map((schema.AttributeDefinitions ?? []).map((a) => [a.AttributeName!, attributeType(a.AttributeType!)]));
    const key = (schemaKeys: { AttributeName?: string; KeyType?: string }[] | undefined, kind: 'HASH' | 'RANGE'): dynamodb.Attribute | undefined => {
      const name = schemaKeys?.find((k) => k.KeyType === kind)?.AttributeName;
      return name === undefined ? undefined : { name, type: types.get(name)! };
    };
    if (schema.BillingMode !== 'PAY_PER_REQUEST') throw new Error('table-schema.ts expects on-demand capacity; update ArchiveTable too');

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: key(schema.KeySchema, 'HASH')!,
      sortKey: key(schema.KeySchema, 'RANGE'),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // Change feed for later consumers (audit, search replicas); unread streams cost nothing.
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const gsi of schema.GlobalSecondaryIndexes ?? []) {
      this.table.addGlobalSecondaryIndex({
        indexName: gsi.IndexName!,
        partitionKey: key(gsi.KeySchema, 'HASH')!,
        sortKey: key(gsi.KeySchema, 'RANGE'),
        projectionType: projectionType(gsi.Projection?.ProjectionType),
        nonKeyAttributes: gsi.Projection?.NonKeyAttributes,
      });
    }

    Validations.of(this.table).acknowledge({
      id: 'HIPAA.Security-DynamoDBInBackupPlan',
      reason:
        'Point-in-time recovery (35 days, per second) is on, and every item is derived from the Part 10 objects in the versioned bucket, so the index can be rebuilt by re-indexing them; long-term AWS Backup plans are applied organisation-wide by tag (AWS Organizations backup policies), not per stack.',
    });
  }
}

function attributeType(t: string): dynamodb.AttributeType {
  switch (t) {
    case 'S':
      return dynamodb.AttributeType.STRING;
    case 'N':
      return dynamodb.AttributeType.NUMBER;
    case 'B':
      return dynamodb.AttributeType.BINARY;
    default:
      throw new Error(`unknown attribute type ${t} in table-schema.ts`);
  }
}

function projectionType(t: string | undefined): dynamodb.ProjectionType {
  switch (t) {
    case 'ALL':
      return dynamodb.ProjectionType.ALL;
    case 'KEYS_ONLY':
      return dynamodb.ProjectionType.KEYS_ONLY;
    case 'INCLUDE':
      return dynamodb.ProjectionType.INCLUDE;
    default:
      throw new Error(`unknown projection ${t} in table-schema.ts`);
  }
}
