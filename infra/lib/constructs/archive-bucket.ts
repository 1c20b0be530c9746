import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { TieringPolicy } from '../config';
import { ARCHIVE_PREFIX, UPLOAD_PREFIX } from './archive-access';

export interface ArchiveBucketProps {
  readonly key: kms.IKey;
  readonly tiering: TieringPolicy;
  readonly noncurrentVersionExpirationDays: number;
  readonly accessLogExpirationDays: number;
  /** Browser origins allowed to PUT presigned uploads. */
  readonly corsOrigins: readonly string[];
  readonly objectLock: { readonly enabled: boolean; readonly defaultRetentionDays: number };
}

/**
 * The object store of the archive (original Part 10 files under `studies/`
 * from STOW and under `uploads/` from direct uploads, upload status records
 * under `uploads-status/`) and the bucket that receives its server access logs.
 *
 * Construct IDs here own data: renaming `ArchiveBucket` or `AccessLogBucket`
 * (or the construct that contains them) makes CloudFormation create a new,
 * empty bucket and orphan the old one (RETAIN). Never rename them.
 */
export class ArchiveBucket extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: ArchiveBucketProps) {
    super(scope, id);

    this.accessLogBucket = new s3.Bucket(this, 'AccessLogBucket', {
      // S3 server access logging delivers only to buckets with SSE-S3 default encryption.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      lifecycleRules: [
        {
          id: 'expire-access-logs',
          expiration: Duration.days(props.accessLogExpirationDays),
          noncurrentVersionExpiration: Duration.days(1),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Not logged itself (it would log its own log deliveries without end): cdk-nag accepts a bucket that is
    // the access-log destination of another one, so S1 / S3BucketLoggingEnabled need no acknowledgement.
    const logs = Validations.of(this.accessLogBucket);
    logs.acknowledge({
      id: 'HIPAA.Security-S3DefaultEncryptionKMS',
      reason: 'S3 server access logging can only deliver to a destination bucket encrypted with SSE-S3 (SSE-KMS is not supported); the logs hold request metadata (keys are UIDs), not object content.',
    });
    logs.acknowledge({
      id: 'HIPAA.Security-S3BucketReplicationEnabled',
      reason: 'Access logs are operational evidence kept in-region; replicating them needs a second-region bucket, which this single-region deployment does not have.',
    });

    this.bucket = new s3.Bucket(this, 'ArchiveBucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.key,
      // One KMS data key per bucket and time window instead of one KMS call per object: ~99% fewer KMS requests.
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      serverAccessLogsBucket: this.accessLogBucket,
      serverAccessLogsPrefix: 'archive-bucket/',
      objectLockEnabled: props.objectLock.enabled || undefined,
      objectLockDefaultRetention: props.objectLock.enabled ? s3.ObjectLockRetention.governance(Duration.days(props.objectLock.defaultRetentionDays)) : undefined,
      // Objects under 128 KiB never change class: IA and Glacier IR would bill them as 128 KiB.
      transitionDefaultMinimumObjectSize: s3.TransitionDefaultMinimumObjectSize.ALL_STORAGE_CLASSES_128_K,
      lifecycleRules: lifecycleRules(props),
      cors:
        props.corsOrigins.length > 0
          ? [
              {
                // Browsers PUT presigned single or multipart uploads straight to S3; they must read
                // each part's ETag to complete a multipart upload.
                id: 'presigned-browser-uploads',
                allowedMethods: [s3.HttpMethods.PUT],
                allowedOrigins: [...props.corsOrigins],
                // If-None-Match: single-part upload URLs are signed with it (never overwrite an object).
                allowedHeaders: ['content-type', 'content-md5', 'if-none-match', 'x-amz-*'],
                exposedHeaders: ['ETag'],
                maxAge: 3000,
              },
              {
                // Browsers follow WADO's 303 (or a …/download manifest) to presigned GETs of instances.
                id: 'presigned-browser-downloads',
                allowedMethods: [s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                allowedOrigins: [...props.corsOrigins],
                allowedHeaders: ['range'],
                exposedHeaders: ['Content-Length', 'Content-Range', 'ETag'],
                maxAge: 3000,
              },
            ]
          : undefined,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.bucket).acknowledge({
      id: 'HIPAA.Security-S3BucketReplicationEnabled',
      reason:
        'This stack is single-region; cross-region replication needs a bucket in a second region and doubles storage cost, so it is a disaster-recovery decision for the deployment. Versioning (and optional Object Lock) already protect against deletion and overwrite.',
    });
  }
}

/**
 * Lifecycle of the archive bucket:
 * - abort incomplete multipart uploads after 1 day (a Lambda killed mid-upload leaves parts that are billed);
 * - purge noncurrent versions (deleted/overwritten objects) after N days, and then their delete markers;
 * - move instances (`studies/`, `uploads/`; ≥ 128 KiB by the bucket's transition default) to cheaper classes by age (docs/cost-model.md).
 * Current objects never expire: an archive forgets nothing by itself.
 */
function lifecycleRules(props: ArchiveBucketProps): s3.LifecycleRule[] {
  const rules: s3.LifecycleRule[] = [
    { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
    { id: 'expire-noncurrent-versions', noncurrentVersionExpiration: Duration.days(props.noncurrentVersionExpirationDays) },
    { id: 'remove-expired-delete-markers', expiredObjectDeleteMarker: true },
  ];
  const t = props.tiering;
  const transitions: s3.Transition[] = [];
  if (t.policy === 'lifecycle') {
    if (t.infrequentAccessAfterDays !== undefined) transitions.push({ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(t.infrequentAccessAfterDays) });
    if (t.glacierInstantRetrievalAfterDays !== undefined) {
      transitions.push({ storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(t.glacierInstantRetrievalAfterDays) });
    }
  } else if (t.policy === 'intelligent-tiering') {
    transitions.push({ storageClass: s3.StorageClass.INTELLIGENT_TIERING, transitionAfter: Duration.days(t.afterDays) });
  }
  // Instances live under studies/ (STOW) and uploads/ (direct uploads are indexed where they lie).
  if (transitions.length > 0) {
    for (const prefix of [ARCHIVE_PREFIX, UPLOAD_PREFIX]) rules.push({ id: `tier-${prefix.replace('/', '')}-${t.policy}`, prefix, transitions });
  }
  return rules;
}
