import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { SqsDestination } from 'aws-cdk-lib/aws-s3-notifications';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface IngestPipelineProps {
  /** The archive bucket, imported into this stack (see below). */
  readonly bucket: s3.IBucket;
  /** Key prefix whose new objects are ingested, e.g. "uploads/". */
  readonly prefix: string;
  readonly worker: lambda.IFunction;
  /** The worker's timeout: the queue's visibility timeout is six times it (AWS guidance for SQS event sources). */
  readonly workerTimeout: Duration;
  readonly key: kms.IKey;
  /** Receives before a message moves to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
}

/**
 * Browser uploads land under `uploads/`; S3 announces each new object on a
 * queue; the ingest function stores it into the archive. Failures are retried
 * by SQS (each message up to `maxReceiveCount` times) and then parked in a
 * dead-letter queue, which an alarm watches.
 *
 * The notification is configured on an *imported* reference of the bucket:
 * S3 notifications are a property of the bucket, and declaring them on the
 * stateful stack's bucket would make the stateful stack depend on this queue
 * (a dependency cycle). CDK applies them with its notifications custom
 * resource, which keeps notifications it does not manage.
 */
export class IngestPipeline extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: IngestPipelineProps) {
    super(scope, id);
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      // A data key is reused for 5 minutes instead of one KMS call per message.
      dataKeyReuse: Duration.minutes(5),
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(props.workerTimeout.toSeconds() * 6),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? 5 },
    });

    props.bucket.addEventNotification(s3.EventType.OBJECT_CREATED, new SqsDestination(this.queue), { prefix: props.prefix });

    props.worker.addEventSource(
      new SqsEventSource(this.queue, {
        // One upload per invocation: each object gets the whole timeout, and a failure retries only itself.
        batchSize: 1,
        reportBatchItemFailures: true,
      }),
    );
  }
}
