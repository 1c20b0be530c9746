import { CfnOutput, Duration, Fn, RemovalPolicies, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { StageConfig } from '../config';
import type { ArchiveResources } from '../constructs/archive-access';
import { ArchiveBucket } from '../constructs/archive-bucket';
import { ArchiveTable } from '../constructs/archive-table';
import { ArchiveUserPool } from '../constructs/archive-user-pool';

export interface StatefulStackProps extends StackProps {
  readonly config: StageConfig;
}

/** What the stateless stack needs to know about the token issuer. */
export interface TokenIssuer {
  readonly issuer: string;
  readonly audience: string[];
}

/**
 * Everything that holds data and must outlive any deployment of the code:
 * the KMS key, the archive bucket (+ its access-log bucket), the index table
 * and, in Cognito mode, the user pool. Every resource is retained on stack
 * deletion and the stack has termination protection.
 *
 * NEVER rename the construct IDs below (`DataKey`, `Storage`, `Index`, `Auth`)
 * nor those inside their constructs: the logical ID of a resource derives from
 * its path, and a new logical ID means a new, empty resource.
 */
/** Name of the output other stacks read the bucket ARN from. Never rename (consumers reference it by name). */
export const BUCKET_ARN_OUTPUT = 'BucketArn';

export class StatefulStack extends Stack implements ArchiveResources {
  readonly key: kms.IKey;
  readonly bucket: s3.IBucket;
  readonly table: dynamodb.ITable;
  /** Undefined in OIDC mode (the issuer is external). */
  readonly userPool?: ArchiveUserPool;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, { terminationProtection: true, ...props });
    const { config } = props;

    this.key = new kms.Key(this, 'DataKey', {
      description: `DICOMweb archive ${config.stageName}: bucket (SSE-KMS) and index table`,
      enableKeyRotation: true,
      alias: `alias/dicomweb-${config.stageName}-data`,
      pendingWindow: Duration.days(30),
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const storage = new ArchiveBucket(this, 'Storage', {
      key: this.key,
      tiering: config.tiering,
      noncurrentVersionExpirationDays: config.noncurrentVersionExpirationDays,
      accessLogExpirationDays: config.accessLogExpirationDays,
      corsOrigins: config.corsOrigins,
      objectLock: config.objectLock,
    });
    this.bucket = storage.bucket;

    this.table = new ArchiveTable(this, 'Index', { key: this.key }).table;

    if (config.auth.mode === 'cognito') {
      this.userPool = new ArchiveUserPool(this, 'Auth', { stageName: config.stageName, auth: config.auth });
      new CfnOutput(this, 'UserPoolId', { value: this.userPool.userPool.userPoolId, description: 'Cognito user pool (create users here)' });
      new CfnOutput(this, 'ViewerClientId', { value: this.userPool.viewerClient.userPoolClientId, description: 'Browser viewer app client (authorization code + PKCE)' });
      new CfnOutput(this, 'GatewayClientId', { value: this.userPool.gatewayClient.userPoolClientId, description: 'Edge gateway app client (client credentials; secret in the Cognito console)' });
      new CfnOutput(this, 'TokenEndpoint', { value: this.userPool.tokenEndpoint, description: 'OAuth 2.0 token endpoint' });
      new CfnOutput(this, 'Issuer', { value: this.userPool.issuer, description: 'JWT issuer' });
    }
    // Everything here is retained, not only the data resources: a deleted bucket policy would drop
    // TLS enforcement from the retained bucket, deleted app clients would lock out viewers and gateways.
    RemovalPolicies.of(this).retain();

    new CfnOutput(this, 'BucketName', { value: this.bucket.bucketName });
    new CfnOutput(this, BUCKET_ARN_OUTPUT, { value: this.bucket.bucketArn });
    new CfnOutput(this, 'TableName', { value: this.table.tableName });
  }

  /**
   * The bucket ARN for other stacks' IAM policies, read from a named output
   * (Fn::GetStackOutput, CloudFormation's non-export cross-stack reference).
   * Unlike CDK's generated references, its spelling is stable, so the cdk-nag
   * findings about `<bucket>/studies/*` grants can be acknowledged exactly.
   */
  get bucketArnReference(): string {
    return Fn.getStackOutput(this.stackName, BUCKET_ARN_OUTPUT);
  }

  /** Issuer and audiences the API's JWT authorizer accepts (Cognito pool, or the configured OIDC provider). */
  tokenIssuer(config: StageConfig): TokenIssuer {
    if (config.auth.mode === 'oidc') return { issuer: config.auth.issuer, audience: [...config.auth.audience] };
    return { issuer: this.userPool!.issuer, audience: this.userPool!.audience };
  }
}
