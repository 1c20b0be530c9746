import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

export interface OperationsKeyProps {
  readonly stageName: string;
}

/**
 * Customer-managed key of the operational plumbing of the stateless stack:
 * CloudWatch log groups, the ingest queues and the alarm topic. Kept apart
 * from the data key so that services writing logs and notifications never
 * get a grant on the key that protects images and the index.
 */
export class OperationsKey extends Construct {
  readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: OperationsKeyProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: `DICOMweb archive ${props.stageName}: logs, queues, alarm topic`,
      enableKeyRotation: true,
      alias: `alias/dicomweb-${props.stageName}-operations`,
      pendingWindow: Duration.days(30),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch Logs encrypts log groups of this account and region only.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchLogsEncryptLogGroups',
        principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
        actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:DescribeKey'],
        resources: ['*'],
        conditions: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*` } },
      }),
    );
    // CloudWatch alarms publish to the KMS-encrypted alarm topic.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublishToEncryptedTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
  }
}
