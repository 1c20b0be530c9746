import { Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { GSI } from '../../../functions/adapters/aws/table-schema';

/**
 * Key prefixes of the bucket (functions/core/archive/keys.ts):
 * - `studies/`: instances stored by STOW;
 * - `uploads/`: objects uploaded directly (presigned), which stay there once ingested (no copy);
 * - `uploads-status/`: small JSON records of each upload's progress.
 */
export const ARCHIVE_PREFIX = 'studies/';
export const UPLOAD_PREFIX = 'uploads/';
export const UPLOAD_STATUS_PREFIX = 'uploads-status/';

/** The data resources of the stateful stack, as the stateless stack sees them. */
export interface ArchiveResources {
  readonly bucket: s3.IBucket;
  readonly table: dynamodb.ITable;
  /** Customer-managed key of the bucket (SSE-KMS) and of the table. */
  readonly key: kms.IKey;
}

/**
 * Intention-revealing grants on the archive, each spelling out the exact API
 * actions the adapters call (functions/adapters/aws/*.ts) instead of CDK's
 * broad `grantRead`/`grantReadWriteData` (which add Scan, `s3:List*`,
 * `s3:GetObject*`, `kms:ReEncrypt*`, …). No statement uses a wildcard action;
 * object resources are scoped to one key prefix. KMS use is limited to calls
 * made through S3 or DynamoDB (kms:ViaService).
 */
export class ArchiveAccess {
  private readonly prefixes = new Map<iam.IGrantable, Set<string>>();

  constructor(private readonly resources: ArchiveResources) {}

  /** Key prefixes on whose objects this grantee was granted anything (for cdk-nag acknowledgements). */
  objectPrefixesOf(grantee: iam.IGrantable): string[] {
    return [...(this.prefixes.get(grantee) ?? [])].sort();
  }

  /** GetItem, BatchGetItem, Query on the table and its four GSIs (never Scan: no query path needs it). */
  grantIndexRead(grantee: iam.IGrantable): void {
    this.add(grantee, ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'], this.tableResources());
    this.grantKey(grantee, 'dynamodb', ['kms:Decrypt', 'kms:DescribeKey']);
  }

  /** Index reads plus PutItem, UpdateItem, DeleteItem, BatchWriteItem on the base table (GSIs are maintained by DynamoDB). */
  grantIndexWrite(grantee: iam.IGrantable): void {
    this.grantIndexRead(grantee);
    this.add(grantee, ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'], [this.resources.table.tableArn]);
    this.grantKey(grantee, 'dynamodb', ['kms:Encrypt', 'kms:GenerateDataKey']);
  }

  /**
   * GetObject (also Range GETs and HEAD) under one prefix, and ListBucket on the
   * bucket: without it S3 answers a missing key with 403 instead of 404, which
   * the adapter could not tell from a real denial.
   */
  grantObjectRead(grantee: iam.IGrantable, prefix: string): void {
    this.add(grantee, ['s3:GetObject'], [this.objects(grantee, prefix)]);
    this.add(grantee, ['s3:ListBucket'], [this.resources.bucket.bucketArn]);
    this.grantKey(grantee, 's3', ['kms:Decrypt']);
  }

  /** PutObject (single or multipart) and AbortMultipartUpload under one prefix. */
  grantObjectWrite(grantee: iam.IGrantable, prefix: string): void {
    this.add(grantee, ['s3:PutObject', 's3:AbortMultipartUpload'], [this.objects(grantee, prefix)]);
    // GenerateDataKey for new objects; Decrypt because CompleteMultipartUpload reads the parts back.
    this.grantKey(grantee, 's3', ['kms:GenerateDataKey', 'kms:Decrypt']);
  }

  /** DeleteObject under one prefix (with versioning: a delete marker; old versions expire by lifecycle). */
  grantObjectDelete(grantee: iam.IGrantable, prefix: string): void {
    this.add(grantee, ['s3:DeleteObject'], [this.objects(grantee, prefix)]);
  }

  /**
   * What presigning browser uploads needs: the presigned URLs carry the signer's
   * authority, so the signer holds PutObject (covers CreateMultipartUpload,
   * UploadPart, CompleteMultipartUpload), AbortMultipartUpload and ListParts.
   */
  grantPresignedUpload(grantee: iam.IGrantable, prefix: string): void {
    this.add(grantee, ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'], [this.objects(grantee, prefix)]);
    this.grantKey(grantee, 's3', ['kms:GenerateDataKey', 'kms:Decrypt']);
  }

  private tableResources(): string[] {
    const tableArn = this.resources.table.tableArn;
    return [tableArn, ...Object.values(GSI).map((g) => `${tableArn}/index/${g.indexName}`)];
  }

  private objects(grantee: iam.IGrantable, prefix: string): string {
    if (!/^[a-z0-9-]+\/$/.test(prefix)) throw new Error(`object prefix must look like "name/" (got "${prefix}")`);
    if (!this.prefixes.has(grantee)) this.prefixes.set(grantee, new Set());
    this.prefixes.get(grantee)!.add(prefix);
    return this.resources.bucket.arnForObjects(`${prefix}*`);
  }

  private grantKey(grantee: iam.IGrantable, service: 's3' | 'dynamodb', actions: string[]): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions,
        resources: [this.resources.key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `${service}.${Aws.REGION}.amazonaws.com` } },
      }),
    );
  }

  private add(grantee: iam.IGrantable, actions: string[], resources: string[]): void {
    grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions, resources }));
  }
}
