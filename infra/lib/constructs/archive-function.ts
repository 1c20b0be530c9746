import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { FunctionSettings } from '../config';
import { PROJECT_ROOT } from '../paths';
import { ManagedPolicyRole } from './managed-policy-role';

export interface ArchiveFunctionProps {
  /** Service name: POWERTOOLS_SERVICE_NAME and the description. */
  readonly service: string;
  /** Absolute path of the TypeScript entry file exporting `handler`. */
  readonly entry: string;
  readonly settings: FunctionSettings;
  /** Retention of the function's own log group. */
  readonly logRetention: logs.RetentionDays;
  /** Key that encrypts the log group (its policy must admit the CloudWatch Logs service). */
  readonly logKey: kms.IKey;
  /** Added to the defaults (POWERTOOLS_SERVICE_NAME, LOG_LEVEL, NODE_OPTIONS). */
  readonly environment?: Record<string, string>;
  /** LOG_LEVEL read by the handlers' logger. @default INFO */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /**
   * Files (relative to the project root) copied beside index.js in the
   * deployment package: what the bundle loads from its own directory at run
   * time, such as the image codecs' WebAssembly (esbuild cannot inline it).
   */
  readonly packageFiles?: readonly string[];
}

/**
 * One Lambda function of the archive, with the team's defaults baked in
 * (in the spirit of Powertools' function construct). Each default and why:
 *
 * - **Node.js 22 (`nodejs22.x`)**: the version in package.json `engines` and the
 *   one every test runs on; a runtime bump is a deliberate change, not a CDK default.
 * - **ARM64 (Graviton)**: ~20% cheaper per GB-second than x86 for the same
 *   memory; the bundle is plain JavaScript (no native modules), so arch-neutral.
 * - **Bundled locally with esbuild** (`forceDockerBundling: false`): synth works
 *   offline and without Docker; the options mirror scripts/build-functions.ts
 *   (CJS, `module` before `main`, no dynamic import), so the bundle that is
 *   tested is the bundle that is shipped.
 * - **AWS SDK bundled**, not taken from the runtime: the SDK version we test is
 *   the one we run, and minification tree-shakes it.
 * - **Minified, with source maps** and `NODE_OPTIONS=--enable-source-maps`:
 *   small cold-start payload, readable stack traces.
 * - **Own log group** with retention and KMS encryption, created by the stack
 *   (not implicitly by Lambda on first invoke), so retention and encryption
 *   hold from the first line and the group is part of the stack.
 * - **Active X-Ray tracing**: per-request latency across API Gateway, Lambda, S3 and DynamoDB.
 * - **Own role with a customer-managed policy** (ManagedPolicyRole): no
 *   AWS-managed policy (AWSLambdaBasicExecutionRole would allow writing to
 *   every log group); log writes are granted on this function's group only.
 * - Memory, timeout and reserved concurrency from the stage config.
 */
export class ArchiveFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: ManagedPolicyRole;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ArchiveFunctionProps) {
    super(scope, id);
    if (!fs.existsSync(props.entry)) {
      throw new Error(`Lambda entry ${path.relative(PROJECT_ROOT, props.entry)} of service "${props.service}" does not exist`);
    }

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention,
      encryptionKey: props.logKey,
      // Logs are audit evidence: they outlive a redeployed or deleted stateless stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.role = new ManagedPolicyRole(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `dicomweb ${props.service} function`,
    });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [this.logGroup.logGroupArn] }),
    );

    this.function = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: 'handler',
      description: `DICOMweb ${props.service}`,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.settings.memoryMb,
      timeout: Duration.seconds(props.settings.timeoutSeconds),
      reservedConcurrentExecutions: props.settings.reservedConcurrency,
      tracing: lambda.Tracing.ACTIVE,
      logGroup: this.logGroup,
      role: this.role,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      awsSdkConnectionReuse: false,
      environment: {
        POWERTOOLS_SERVICE_NAME: `dicomweb-${props.service}`,
        LOG_LEVEL: props.logLevel ?? 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling: {
        forceDockerBundling: false,
        target: 'node22',
        format: OutputFormat.CJS,
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        bundleAwsSDK: true,
        externalModules: [],
        tsconfig: path.join(PROJECT_ROOT, 'tsconfig.json'),
        esbuildArgs: { '--supported:dynamic-import': 'false', '--legal-comments': 'none' },
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          // Local bundling (no Docker): plain copies from the project into the asset directory.
          afterBundling: (_inputDir: string, outputDir: string) => (props.packageFiles ?? []).map((f) => `cp "${path.join(PROJECT_ROOT, f)}" "${outputDir}/"`),
        },
      },
    });

    // ---- cdk-nag findings that are decisions, acknowledged on this function only.
    const fn = Validations.of(this.function);
    fn.acknowledge({
      id: 'HIPAA.Security-LambdaDLQ',
      reason:
        'A function dead-letter queue only catches asynchronous invocations; these functions are invoked synchronously by API Gateway (the client sees the error and retries) or by an SQS event source mapping, whose failed messages go to the source queue\'s DLQ.',
    });
    fn.acknowledge({
      id: 'HIPAA.Security-LambdaInsideVPC',
      reason:
        'The function reaches only S3, DynamoDB, KMS and X-Ray, all over TLS with IAM-signed requests; there is no VPC resource to reach, and a VPC would add NAT/endpoint cost and cold-start latency without narrowing access (the bucket and table are private by IAM).',
    });
    if (props.settings.reservedConcurrency === undefined) {
      fn.acknowledge({
        id: 'HIPAA.Security-LambdaConcurrency',
        reason:
          'Reserved concurrency is a per-stage setting (functions.<name>.reservedConcurrency): reserving it in an account with the default quota (new accounts: 10) fails the deployment, so it is left to the stage config; API Gateway stage throttling bounds the load meanwhile.',
      });
    }
    if (!isLatestNodeRuntime(lambda.Runtime.NODEJS_22_X)) {
      fn.acknowledge({
        id: 'AwsSolutions-L1',
        reason: 'Node.js 22 is the runtime the project targets and tests (package.json engines); moving to a newer runtime is a deliberate, tested change.',
      });
    }
    Validations.of(this.role.policy).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) does not support resource-level permissions; it is the only statement with Resource "*".',
    });
  }
}

/** Whether the given runtime is the newest Node.js runtime this aws-cdk-lib knows (what AwsSolutions-L1 checks). */
function isLatestNodeRuntime(runtime: lambda.Runtime): boolean {
  const versions = lambda.Runtime.ALL.filter((r) => /^nodejs\d+/.test(r.name)).map((r) => Number(/^nodejs(\d+)/.exec(r.name)![1]));
  return Number(/^nodejs(\d+)/.exec(runtime.name)![1]) >= Math.max(...versions);
}
