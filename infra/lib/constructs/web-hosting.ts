import { Duration, Fn, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import type * as acm from 'aws-cdk-lib/aws-certificatemanager';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import { Construct } from 'constructs';
import type { WebConfig } from '../../../web/src/config';
import { OHIF_BASE_PATH, ohifAppConfig } from '../../../web/ohif';

export interface WebHostingProps {
  /**
   * The built static site (`npm run build:web` → dist/web): the UI at the
   * root, OHIF under viewer/. Its config.json and viewer/app-config.js are
   * written here, pointing at `dicomWebUrl`.
   */
  readonly siteDir: string;
  /** DICOMweb root of the API (`https://…/dicom-web`); may be a token. */
  readonly dicomWebUrl: string;
  /**
   * The API origin(s) for the UI's Content-Security-Policy connect-src
   * (`https://*.execute-api.<region>.amazonaws.com`, or the custom domain).
   * Given separately when the API's CORS names this distribution: deriving
   * it from `dicomWebUrl` would make the two resources depend on each other.
   * @default the origin of dicomWebUrl
   */
  readonly apiOrigin?: string;
  /** OIDC login of the UI (authorization code + PKCE): the user pool or issuer and a public app client. */
  readonly oidc?: { readonly issuer: string; readonly clientId: string; readonly scope: string };
  /** OHIF thumbnails from the archive's thumbnail resources, or rendered by the viewer. @default 'thumbnail' */
  readonly thumbnailRendering?: 'thumbnail' | 'wadors';
  /** Custom domain: names and an ACM certificate in us-east-1 (CloudFront's requirement). Without it, the *.cloudfront.net name. */
  readonly domain?: { readonly names: string[]; readonly certificate: acm.ICertificate };
  /** Days the CloudFront access logs are kept. @default 90 */
  readonly accessLogExpirationDays?: number;
  /** KMS key of the deployment handler's log group (the stack's operations key). Without it the group uses CloudWatch's own encryption. */
  readonly logKey?: kms.IKey;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The web UI and the OHIF viewer as static files: a private S3 bucket read
 * only by CloudFront through Origin Access Control (no public bucket, no
 * website endpoint), HTTPS only (TLS 1.2+ with a custom domain), security
 * headers on every answer, access logs. The UI talks to the API directly
 * (its origin must be in the stage's `corsOrigins`); the files hold no
 * secret, only the API URL and the OIDC client id.
 *
 * OHIF is a single-page app: its client-side routes (`/viewer/viewer?…`) are
 * answered with its index.html by a CloudFront Function on `viewer/*`.
 */
export class WebHosting extends Construct {
  readonly bucket: s3.Bucket;
  readonly distribution: cloudfront.Distribution;
  /** https://<domain>: the UI; `${url}/viewer` the viewer. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: WebHostingProps) {
    super(scope, id);

    const logBucket = new s3.Bucket(this, 'AccessLogBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      // CloudFront standard logging writes with ACLs (its log delivery account), so ACLs stay possible here.
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      lifecycleRules: [{ expiration: Duration.days(props.accessLogExpirationDays ?? 90), noncurrentVersionExpiration: Duration.days(1) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const logAcks = Validations.of(logBucket);
    logAcks.acknowledge({ id: 'AwsSolutions-S1', reason: 'This bucket is the access-log destination of the site; logging it would log its own log deliveries.' });
    logAcks.acknowledge({ id: 'HIPAA.Security-S3BucketLoggingEnabled', reason: 'This bucket is the access-log destination of the site; logging it would log its own log deliveries.' });
    logAcks.acknowledge({ id: 'HIPAA.Security-S3DefaultEncryptionKMS', reason: 'CloudFront standard logs can only be delivered to SSE-S3 buckets; they hold request metadata (paths of static files), no patient data.' });
    logAcks.acknowledge({ id: 'HIPAA.Security-S3BucketReplicationEnabled', reason: 'Access logs are operational evidence kept in-region; this single-region deployment has no second-region bucket.' });

    this.bucket = new s3.Bucket(this, 'SiteBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      serverAccessLogsBucket: logBucket,
      serverAccessLogsPrefix: 'site-bucket/',
      lifecycleRules: [{ noncurrentVersionExpiration: Duration.days(30) }],
      // Code, not data: rebuilt by every deployment.
      removalPolicy: RemovalPolicy.DESTROY,
      autoDeleteObjects: true,
    });
    const siteAcks = Validations.of(this.bucket);
    siteAcks.acknowledge({ id: 'HIPAA.Security-S3DefaultEncryptionKMS', reason: 'Public application code (the web UI and OHIF), no patient data; SSE-S3 lets CloudFront OAC read it without a KMS key policy.' });
    siteAcks.acknowledge({ id: 'HIPAA.Security-S3BucketReplicationEnabled', reason: 'Build output, redeployed from source by every deployment; nothing to replicate.' });

    // Strict policy for the UI: scripts only from itself; connections to itself, the API and the issuer.
    const apiOrigin = props.apiOrigin ?? originOf(props.dicomWebUrl);
    const issuerOrigin = props.oidc ? originOf(props.oidc.issuer) : '';
    const securityHeaders = (id: string, csp: string | undefined, frameOption: cloudfront.HeadersFrameOption) =>
      new cloudfront.ResponseHeadersPolicy(this, id, {
        securityHeadersBehavior: {
          strictTransportSecurity: { accessControlMaxAge: Duration.days(365), includeSubdomains: true, override: true },
          contentTypeOptions: { override: true },
          frameOptions: { frameOption, override: true },
          referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.NO_REFERRER, override: true },
          ...(csp ? { contentSecurityPolicy: { contentSecurityPolicy: csp, override: true } } : {}),
        },
      });
    const uiHeaders = securityHeaders(
      'UiHeaders',
      [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        Fn.join(' ', ['connect-src', "'self'", apiOrigin, ...(issuerOrigin ? [issuerOrigin] : [])]),
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
      ].join('; '),
      cloudfront.HeadersFrameOption.DENY,
    );
    // OHIF needs inline script and WebAssembly compilation: no CSP (it would have to allow most of what it forbids).
    const viewerHeaders = securityHeaders('ViewerHeaders', undefined, cloudfront.HeadersFrameOption.SAMEORIGIN);

    const spaRoutes = new cloudfront.Function(this, 'ViewerRoutes', {
      runtime: cloudfront.FunctionRuntime.JS_2_0,
      comment: 'OHIF client-side routes → its index.html',
      code: cloudfront.FunctionCode.fromInline(
        [
          'function handler(event) {',
          '  var r = event.request;',
          `  if (r.uri === '${OHIF_BASE_PATH}' || r.uri === '${OHIF_BASE_PATH}/' || !/\\.[A-Za-z0-9]{1,8}$/.test(r.uri)) r.uri = '${OHIF_BASE_PATH}/index.html';`,
          '  return r;',
          '}',
        ].join('\n'),
      ),
    });

    const origin = origins.S3BucketOrigin.withOriginAccessControl(this.bucket);
    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: 'DICOMweb archive web UI and OHIF viewer',
      defaultRootObject: 'index.html',
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      // Settable only with a custom certificate (the *.cloudfront.net one is fixed by CloudFront).
      minimumProtocolVersion: props.domain ? cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 : undefined,
      domainNames: props.domain?.names,
      certificate: props.domain?.certificate,
      enableLogging: true,
      logBucket,
      logFilePrefix: 'cloudfront/',
      defaultBehavior: {
        origin,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: uiHeaders,
        compress: true,
      },
      additionalBehaviors: {
        [`${OHIF_BASE_PATH.slice(1)}*`]: {
          origin,
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
          cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
          responseHeadersPolicy: viewerHeaders,
          compress: true,
          functionAssociations: [{ function: spaRoutes, eventType: cloudfront.FunctionEventType.VIEWER_REQUEST }],
        },
      },
    });
    const cdnAcks = Validations.of(this.distribution);
    cdnAcks.acknowledge({ id: 'AwsSolutions-CFR1', reason: 'Readers work from anywhere (teleradiology); the files are public application code and the API enforces authentication.' });
    cdnAcks.acknowledge({ id: 'AwsSolutions-CFR2', reason: 'Static application code only; no WAF-worthy input reaches the origin (the API has its own throttling and authorizer).' });
    if (!props.domain) {
      cdnAcks.acknowledge({ id: 'AwsSolutions-CFR4', reason: 'Without a custom domain CloudFront serves *.cloudfront.net with its default certificate, whose minimum protocol cannot be set; give `domain` to enforce TLS 1.2.' });
    }

    this.url = `https://${props.domain?.names[0] ?? this.distribution.distributionDomainName}`;

    const config: WebConfig = {
      dicomWebRoot: props.dicomWebUrl,
      viewerUrl: OHIF_BASE_PATH,
      auth: { required: true, oidc: props.oidc ? { ...props.oidc } : undefined },
      // API Gateway → Lambda carries ~6 MB; binary bodies arrive base64-encoded, so ~4.5 MB of DICOM per STOW request.
      stowMaxBytes: 4 * 1024 * 1024,
      uploadApiFromBytes: 4 * 1024 * 1024,
    };
    const deployLogs = new logs.LogGroup(this, 'DeployLogs', {
      encryptionKey: props.logKey,
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    if (!props.logKey) {
      Validations.of(deployLogs).acknowledge({ id: 'HIPAA.Security-CloudWatchLogGroupEncrypted', reason: 'Logs of the site deployment handler (file names of the build output, no patient data); give logKey to encrypt them with a customer key.' });
    }
    new s3deploy.BucketDeployment(this, 'Deploy', {
      logGroup: deployLogs,
      destinationBucket: this.bucket,
      sources: [
        s3deploy.Source.asset(props.siteDir),
        s3deploy.Source.jsonData('config.json', config),
        s3deploy.Source.data(`${OHIF_BASE_PATH.slice(1)}/app-config.js`, ohifAppConfig({ dicomWebRoot: props.dicomWebUrl, routerBasename: OHIF_BASE_PATH, thumbnailRendering: props.thumbnailRendering ?? 'thumbnail' })),
      ],
      distribution: this.distribution,
      distributionPaths: ['/index.html', '/config.json', '/app.js', '/styles.css', `${OHIF_BASE_PATH}/index.html`, `${OHIF_BASE_PATH}/app-config.js`],
      memoryLimit: 1024,
      prune: true,
    });
    acknowledgeDeploymentHandler(Stack.of(this), this.bucket);
  }
}

/** The stack-wide BucketDeployment handler (one per memory size), provided and fixed by aws-cdk-lib. */
function acknowledgeDeploymentHandler(stack: Stack, site: s3.Bucket): void {
  const account = Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account;
  const region = Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region;
  const siteId = stack.getLogicalId(site.node.defaultChild as s3.CfnBucket);
  const wildcards = [
    'Action::s3:GetObject*',
    'Action::s3:GetBucket*',
    'Action::s3:List*',
    'Action::s3:DeleteObject*',
    'Action::s3:Abort*',
    `Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-${account}-${region}/*`,
    `Resource::<${siteId}.Arn>/*`,
    'Resource::*',
  ];
  const why = 'CDK-provided custom resource (aws-cdk-lib BucketDeployment) that copies the built site from the CDK asset bucket into the site bucket and invalidates CloudFront; it runs only during deployments and its role and runtime are fixed by aws-cdk-lib.';
  for (const handler of stack.node.children.filter((c) => c.node.id.startsWith('Custom::CDKBucketDeployment'))) {
    const acks = Validations.of(handler);
    acks.acknowledge({ id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', reason: `${why} Its role logs through the AWS-managed basic execution policy.` });
    for (const w of wildcards) {
      acks.acknowledge({
        id: `AwsSolutions-IAM5[${w}]`,
        reason: `${why} aws-cdk-lib grants it s3:GetObject*/List* on the CDK asset bucket, s3:*Object*/Abort* on the site bucket's objects (to sync and prune) and cloudfront:CreateInvalidation/GetInvalidation, which take no resource narrower than *.`,
      });
    }
    acks.acknowledge({ id: 'AwsSolutions-L1', reason: `${why} Its Python runtime is chosen by aws-cdk-lib and moves with its releases.` });
    acks.acknowledge({ id: 'HIPAA.Security-IAMNoInlinePolicy', reason: `${why} aws-cdk-lib attaches its grants as the role's inline default policy.` });
    acks.acknowledge({ id: 'HIPAA.Security-LambdaConcurrency', reason: `${why} One invocation per deployment; a concurrency limit would only make deployments fail.` });
    acks.acknowledge({ id: 'HIPAA.Security-LambdaDLQ', reason: `${why} Invoked synchronously by CloudFormation, which reports a failure as a failed deployment; there is no asynchronous event to keep.` });
    acks.acknowledge({ id: 'HIPAA.Security-LambdaInsideVPC', reason: `${why} It reaches only the S3 and CloudFront APIs and handles build output (no patient data).` });
  }
}

/** `https://host` of a URL that may be a deploy-time token (split on '/': ["https:", "", "host", …]). */
function originOf(url: string): string {
  if (!Token.isUnresolved(url)) return new URL(url).origin;
  return Fn.join('', ['https://', Fn.select(2, Fn.split('/', url))]);
}
