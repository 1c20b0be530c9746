import { CfnOutput, Duration, Lazy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { FUNCTION_NAMES, scopeNames, type FunctionName, type StageConfig } from '../config';
import { CODECS_WASM, handlerEntry } from '../paths';
import { ArchiveAccess, ARCHIVE_PREFIX, UPLOAD_PREFIX, UPLOAD_STATUS_PREFIX, type ArchiveResources } from '../constructs/archive-access';
import { ArchiveAlarms } from '../constructs/archive-alarms';
import { ArchiveFunction } from '../constructs/archive-function';
import { DicomWebApi } from '../constructs/dicomweb-api';
import { IngestPipeline } from '../constructs/ingest-pipeline';
import { OperationsKey } from '../constructs/operations-key';
import { WebHosting } from '../constructs/web-hosting';
import type { TokenIssuer } from './stateful-stack';

/** Settings only some services read (functions/handlers/<name>.ts). */
const SERVICE_ENVIRONMENT: Record<FunctionName, (config: StageConfig) => Record<string, string>> = {
  stow: () => ({}),
  qido: () => ({}),
  wado: (c) => ({ DOWNLOAD_URL_EXPIRES_SECONDS: String(c.largeObjects.downloadUrlExpiresSeconds) }),
  delete: () => ({}),
  upload: (c) => ({ MAX_UPLOAD_BYTES: String(c.largeObjects.maxUploadBytes) }),
  ingest: (c) => ({ MAX_UPLOAD_BYTES: String(c.largeObjects.maxUploadBytes) }),
};

/**
 * Files a function loads from beside its bundle at run time. Only WADO decodes
 * pixel data (transcoding, rendered, WADO-URI); the other API bundles contain
 * the codecs' JavaScript through the shared route table but never instantiate
 * them (the WebAssembly is loaded lazily), so they do without its 4 MB.
 */
const PACKAGE_FILES: Partial<Record<FunctionName, readonly string[]>> = { wado: [CODECS_WASM] };

export interface StatelessStackProps extends StackProps {
  readonly config: StageConfig;
  /** Bucket, table and key of the stateful stack, and the bucket ARN as a stable reference (StatefulStack.bucketArnReference). */
  readonly data: ArchiveResources & { readonly bucketArnReference: string };
  readonly tokenIssuer: TokenIssuer;
  /** Entry file per function. @default functions/handlers/<name>.ts */
  readonly entries?: Partial<Record<FunctionName, string>>;
  /** The built web UI + OHIF (`npm run build:web` → dist/web): served from S3 + CloudFront when given. */
  readonly webSiteDir?: string;
}

/**
 * The code of the archive: one Lambda function per service, the HTTP API in
 * front of them, the S3 → SQS → Lambda ingest path, alarms and logs. Holds no
 * data of its own (logs and the dead-letter queue are retained), so it can be
 * destroyed and redeployed freely.
 */
export class StatelessStack extends Stack {
  readonly functions: Record<FunctionName, ArchiveFunction>;
  readonly api: DicomWebApi;
  readonly ingest: IngestPipeline;
  readonly alarms: ArchiveAlarms;
  readonly web?: WebHosting;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { config, data } = props;
    const opsKey = new OperationsKey(this, 'OperationsKey', { stageName: config.stageName }).key;
    const logRetention = config.logRetentionDays as logs.RetentionDays;

    const fns = {} as Record<FunctionName, ArchiveFunction>;
    for (const name of FUNCTION_NAMES) {
      fns[name] = new ArchiveFunction(this, functionId(name), {
        service: name,
        entry: props.entries?.[name] ?? handlerEntry(name),
        settings: config.functions[name],
        logRetention,
        logKey: opsKey,
        packageFiles: PACKAGE_FILES[name],
        environment: {
          BUCKET_NAME: data.bucket.bucketName,
          TABLE_NAME: data.table.tableName,
          DICOMWEB_BASE_PATH: '/dicom-web',
          // API Gateway validated the token; the handlers map its scopes (with this prefix) to read/write/delete.
          AUTH_MODE: 'jwt',
          AUTH_SCOPE_PREFIX: config.auth.scopePrefix,
          ...SERVICE_ENVIRONMENT[name](config),
        },
      });
    }
    this.functions = fns;

    // The bucket as this stack references it: by the stable ARN reference, and owner of this stack's notifications (IngestPipeline).
    const bucket = s3.Bucket.fromBucketAttributes(this, 'ArchiveBucketRef', { bucketArn: data.bucketArnReference, bucketName: data.bucket.bucketName });

    // Least privilege, per service (actions listed in ArchiveAccess). Instances live under
    // studies/ (STOW) or uploads/ (direct uploads, indexed where they lie).
    const access = new ArchiveAccess({ bucket, table: data.table, key: data.key });
    access.grantIndexRead(fns.qido.role);

    access.grantIndexRead(fns.wado.role);
    access.grantObjectRead(fns.wado.role, ARCHIVE_PREFIX);
    access.grantObjectRead(fns.wado.role, UPLOAD_PREFIX);

    access.grantIndexWrite(fns.stow.role);
    access.grantObjectWrite(fns.stow.role, ARCHIVE_PREFIX);
    access.grantObjectDelete(fns.stow.role, ARCHIVE_PREFIX); // drops its own copy of an identical or conflicting instance

    access.grantIndexWrite(fns.delete.role);
    access.grantObjectDelete(fns.delete.role, ARCHIVE_PREFIX);
    access.grantObjectDelete(fns.delete.role, UPLOAD_PREFIX);

    // The upload API presigns the client's PUTs, checks (HEAD) and completes them, and keeps status records.
    access.grantPresignedUpload(fns.upload.role, UPLOAD_PREFIX);
    access.grantObjectRead(fns.upload.role, UPLOAD_PREFIX);
    access.grantObjectRead(fns.upload.role, UPLOAD_STATUS_PREFIX);
    access.grantObjectWrite(fns.upload.role, UPLOAD_STATUS_PREFIX);

    // Ingest reads the upload, indexes it where it lies (no copy), deletes a rejected or duplicate one.
    access.grantIndexWrite(fns.ingest.role);
    access.grantObjectRead(fns.ingest.role, UPLOAD_PREFIX);
    access.grantObjectDelete(fns.ingest.role, UPLOAD_PREFIX);
    access.grantObjectRead(fns.ingest.role, UPLOAD_STATUS_PREFIX);
    access.grantObjectWrite(fns.ingest.role, UPLOAD_STATUS_PREFIX);

    for (const fn of Object.values(fns)) acknowledgePrefixGrants(fn, access.objectPrefixesOf(fn.role), this.resolve(bucket.bucketArn));

    const scopes = scopeNames(config.auth);
    this.api = new DicomWebApi(this, 'Api', {
      stageName: config.stageName,
      functions: { stow: fns.stow.function, qido: fns.qido.function, wado: fns.wado.function, delete: fns.delete.function, upload: fns.upload.function },
      issuer: props.tokenIssuer.issuer,
      audience: props.tokenIssuer.audience,
      scopes,
      // The web UI calls the API from its CloudFront origin (resolved once the distribution exists, below).
      corsOrigins: props.webSiteDir ? [...config.corsOrigins, Lazy.string({ produce: () => this.web!.url })] : config.corsOrigins,
      throttle: config.apiThrottle,
      customDomain: config.customDomain,
      logRetention,
      logKey: opsKey,
    });

    this.ingest = new IngestPipeline(this, 'Ingest', {
      bucket,
      prefix: UPLOAD_PREFIX,
      worker: fns.ingest.function,
      workerTimeout: Duration.seconds(config.functions.ingest.timeoutSeconds),
      key: opsKey,
      maxReceiveCount: 5,
    });
    acknowledgeNotificationsHandler(this, bucket);

    this.alarms = new ArchiveAlarms(this, 'Alarms', { key: opsKey, email: config.alarmEmail });
    this.alarms.onDeadLetters('IngestDeadLetters', this.ingest.deadLetterQueue);
    this.alarms.onApiServerErrors('ApiServerErrors', this.api.httpApi);
    for (const name of FUNCTION_NAMES) this.alarms.onFunction(functionId(name), fns[name].function);

    if (props.webSiteDir) {
      // The CSP names the API by pattern, not by reference: the API's CORS already references the distribution.
      const apiOrigin = config.customDomain ? `https://${config.customDomain.domainName}` : `https://*.execute-api.${this.region}.${this.urlSuffix}`;
      this.web = new WebHosting(this, 'Web', { siteDir: props.webSiteDir, dicomWebUrl: this.api.url, apiOrigin, logKey: opsKey, logRetention });
      new CfnOutput(this, 'WebUrl', { value: this.web.url, description: 'Web UI (the OHIF viewer under /viewer)' });
    }
    new CfnOutput(this, 'DicomWebUrl', { value: this.api.url, description: 'DICOMweb root (QIDO/WADO/STOW base URL)' });
    new CfnOutput(this, 'UploadsUrl', { value: `${this.api.url}/uploads`, description: 'Large-object upload API' });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarms.topic.topicArn });
    if (this.api.domainName) {
      new CfnOutput(this, 'CustomDomainTarget', { value: this.api.domainName.regionalDomainName, description: `Point ${config.customDomain!.domainName} (CNAME or alias record) here` });
      new CfnOutput(this, 'CustomDomainHostedZoneId', { value: this.api.domainName.regionalHostedZoneId, description: 'Hosted zone id for a Route 53 alias record' });
    }
  }
}

function functionId(name: FunctionName): string {
  return `${name[0]!.toUpperCase()}${name.slice(1)}Function`;
}

/**
 * S3 object ARNs can only be narrowed to a key prefix (`studies/*`, `uploads/*`):
 * object keys are built from UIDs at run time. cdk-nag reports each such
 * resource as a wildcard; acknowledge exactly those findings on the function's policy.
 */
function acknowledgePrefixGrants(fn: ArchiveFunction, prefixes: string[], bucketArn: unknown): void {
  for (const prefix of prefixes) {
    Validations.of(fn.role.policy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagResource(bucketArn)}/${prefix}*]`,
      reason: `Object keys are built per UID or upload id at run time; the grant is limited to the "${prefix}" prefix, the narrowest scope S3 offers for them.`,
    });
  }
}

/** How cdk-nag spells a resolved intrinsic (here Fn::GetStackOutput) inside a finding id: as its JSON. */
function nagResource(resolved: unknown): string {
  return typeof resolved === 'string' ? resolved : JSON.stringify(resolved);
}

/**
 * CDK's bucket-notifications custom resource (a singleton Lambda per stack, plus
 * a policy for the imported bucket): findings that come from aws-cdk-lib's own code.
 */
function acknowledgeNotificationsHandler(stack: Stack, bucket: s3.IBucket): void {
  const why = 'CDK-provided custom resource that applies the S3 event notification at deploy time (aws-cdk-lib BucketNotificationsHandler); its role and code are fixed by aws-cdk-lib and it runs only during deployments.';
  const bucketPolicy = bucket.node.tryFindChild('Notifications')?.node.tryFindChild('HandlerPolicy');
  if (bucketPolicy) {
    Validations.of(bucketPolicy).acknowledge({ id: 'HIPAA.Security-IAMNoInlinePolicy', reason: `${why} aws-cdk-lib attaches s3:PutBucketNotification on this one bucket to the handler role as an inline policy.` });
  }
  const handler = stack.node.children.find((c) => c.node.id.startsWith('BucketNotificationsHandler'));
  if (handler) {
    Validations.of(handler).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: `${why} Its role logs through the AWS-managed basic execution policy.`,
    });
  }
}
