/**
 * Template assertions on the synthesized stacks (default dev stage): the
 * security properties the archive relies on, and the table definition
 * against table-schema.ts.
 */
import type { CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { createTableInput, GSI } from '../../functions/adapters/aws/table-schema';
import { FUNCTION_NAMES, type FunctionName } from '../../infra/lib/config';
import { ROUTES } from '../../infra/lib/constructs/dicomweb-api';
import { removeOutdir, synthApp, type Synthesized } from './archive-app-fixture';

type Resources = Record<string, { Type: string; Properties?: Record<string, any>; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;

let synth: Synthesized;
let stateful: Template;
let stateless: Template;

beforeAll(() => {
  synth = synthApp();
  stateful = Template.fromStack(synth.stateful);
  stateless = Template.fromStack(synth.stateless);
});
afterAll(() => removeOutdir(synth));

function resourcesOf(t: Template, type: string): Resources {
  return t.findResources(type) as Resources;
}

function only<T>(record: Record<string, T>): T {
  const values = Object.values(record);
  expect(values).toHaveLength(1);
  return values[0]!;
}

/** A Cognito scope as text: the resource server's Ref (its identifier) shown as <ResourceServer>. */
function scopeText(scope: unknown): string {
  if (typeof scope === 'string') return scope;
  const [, parts] = (scope as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
  return parts.map((p) => (typeof p === 'string' ? p : /ResourceServer/.test(JSON.stringify(p)) ? '<ResourceServer>' : JSON.stringify(p))).join('');
}

/** The archive bucket is the one with SSE-KMS (the access-log bucket uses SSE-S3). */
function archiveBucket(): { id: string; props: Record<string, any> } {
  const [id, r] = Object.entries(resourcesOf(stateful, 'AWS::S3::Bucket')).find(([, r]) => JSON.stringify(r.Properties).includes('aws:kms'))!;
  return { id, props: r.Properties! };
}

describe('stateful stack', () => {
  it('has termination protection; every resource is retained on delete and on replacement', () => {
    expect(synth.stateful.terminationProtection).toBe(true);
    const all = stateful.toJSON().Resources as Resources;
    expect(Object.keys(all).length).toBeGreaterThan(5);
    for (const [id, r] of Object.entries(all)) {
      expect({ id, deletion: r.DeletionPolicy, replace: r.UpdateReplacePolicy }).toEqual({ id, deletion: 'Retain', replace: 'Retain' });
    }
  });

  it('has a customer-managed KMS key with rotation and an alias', () => {
    stateful.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    stateful.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/dicomweb-dev-data' });
  });

  it('archive bucket: public access blocked, SSE-KMS with bucket key, versioned, access-logged', () => {
    const { props } = archiveBucket();
    expect(props.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    const sse = props.BucketEncryption.ServerSideEncryptionConfiguration[0];
    expect(sse.ServerSideEncryptionByDefault.SSEAlgorithm).toBe('aws:kms');
    expect(sse.ServerSideEncryptionByDefault.KMSMasterKeyID).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^DataKey/), 'Arn'] });
    expect(sse.BucketKeyEnabled).toBe(true);
    expect(props.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(props.LoggingConfiguration.DestinationBucketName).toEqual({ Ref: expect.stringMatching(/AccessLogBucket/) });
    expect(props.OwnershipControls.Rules[0].ObjectOwnership).toBe('BucketOwnerEnforced');
  });

  it('both buckets deny any request without TLS (and below TLS 1.2)', () => {
    const policies = resourcesOf(stateful, 'AWS::S3::BucketPolicy');
    expect(Object.keys(policies)).toHaveLength(2);
    for (const p of Object.values(policies)) {
      const statements = p.Properties!.PolicyDocument.Statement as any[];
      expect(statements).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Principal: { AWS: '*' }, Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
      expect(statements).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }));
    }
  });

  it('access-log bucket: SSE-S3, private, versioned, expiring', () => {
    const [, log] = Object.entries(resourcesOf(stateful, 'AWS::S3::Bucket')).find(([id]) => /AccessLogBucket/.test(id))!;
    const p = log.Properties!;
    expect(p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    expect(p.PublicAccessBlockConfiguration.RestrictPublicBuckets).toBe(true);
    expect(p.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(p.LifecycleConfiguration.Rules[0].ExpirationInDays).toBe(365);
  });

  it('lifecycle: abort multipart after 1 day, noncurrent versions expire, instances tier by age, current objects never expire', () => {
    const { props } = archiveBucket();
    const rules = props.LifecycleConfiguration.Rules as any[];
    expect(rules).toContainEqual(expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' }));
    expect(rules).toContainEqual(expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }));
    // Instances live under studies/ (STOW) and uploads/ (direct uploads, indexed where they lie).
    for (const prefix of ['studies/', 'uploads/']) {
      expect(rules).toContainEqual(
        expect.objectContaining({
          Prefix: prefix,
          Transitions: [
            { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
            { StorageClass: 'GLACIER_IR', TransitionInDays: 90 },
          ],
        }),
      );
    }
    expect(props.LifecycleConfiguration.TransitionDefaultMinimumObjectSize).toBe('all_storage_classes_128K');
    for (const rule of rules) {
      expect(rule.ExpirationInDays).toBeUndefined();
      expect(rule.ExpirationDate).toBeUndefined();
    }
    expect(props.ObjectLockEnabled).toBeUndefined();
  });

  it('CORS lets configured browser origins PUT presigned uploads (reading the ETag) and GET presigned downloads', () => {
    const { props } = archiveBucket();
    expect(props.CorsConfiguration.CorsRules).toEqual([
      expect.objectContaining({ AllowedMethods: ['PUT'], AllowedOrigins: ['http://localhost:3000'], ExposedHeaders: ['ETag'] }),
      expect.objectContaining({ AllowedMethods: ['GET', 'HEAD'], AllowedOrigins: ['http://localhost:3000'], ExposedHeaders: ['Content-Length', 'Content-Range', 'ETag'] }),
    ]);
  });

  it('index table: keys and GSIs exactly as createTableInput()', () => {
    const table = only(resourcesOf(stateful, 'AWS::DynamoDB::Table')).Properties!;
    const expected = createTableInput('ignored');
    const byName = <T extends { AttributeName?: string; IndexName?: string }>(xs: T[]) => [...xs].sort((a, b) => String(a.AttributeName ?? a.IndexName).localeCompare(String(b.AttributeName ?? b.IndexName)));
    expect(table.BillingMode).toBe(expected.BillingMode);
    expect(table.KeySchema).toEqual(expected.KeySchema);
    expect(byName(table.AttributeDefinitions)).toEqual(byName(expected.AttributeDefinitions!));
    expect(byName(table.GlobalSecondaryIndexes)).toEqual(byName(expected.GlobalSecondaryIndexes!));
    expect(table.LocalSecondaryIndexes).toBeUndefined();
  });

  it('index table: PITR, SSE with the customer-managed key, NEW_AND_OLD_IMAGES stream, deletion protection', () => {
    stateful.hasResourceProperties('AWS::DynamoDB::Table', {
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataKey'), 'Arn'] } },
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      DeletionProtectionEnabled: true,
    });
  });

  it('Cognito: no self sign-up, MFA required, threat protection, dicomweb scopes, viewer (code+PKCE) and gateway (client credentials) clients', () => {
    stateful.hasResourceProperties('AWS::Cognito::UserPool', {
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
      MfaConfiguration: 'ON',
      UserPoolTier: 'PLUS',
      UserPoolAddOns: { AdvancedSecurityMode: 'ENFORCED' },
    });
    stateful.hasResourceProperties('AWS::Cognito::UserPoolResourceServer', {
      Identifier: 'dicomweb',
      Scopes: [Match.objectLike({ ScopeName: 'read' }), Match.objectLike({ ScopeName: 'write' }), Match.objectLike({ ScopeName: 'delete' })],
    });
    stateful.resourceCountIs('AWS::Cognito::UserPoolDomain', 1);
    const clients = Object.values(resourcesOf(stateful, 'AWS::Cognito::UserPoolClient')).map((c) => c.Properties!);
    const viewer = clients.find((c) => c.ClientName === 'browser-viewer')!;
    expect(viewer).toEqual(expect.objectContaining({ GenerateSecret: false, AllowedOAuthFlows: ['code'] }));
    expect(viewer.AllowedOAuthScopes.map(scopeText)).toEqual(['openid', 'email', 'profile', '<ResourceServer>/read']);
    const gateway = clients.find((c) => c.ClientName === 'edge-gateway')!;
    expect(gateway).toEqual(expect.objectContaining({ GenerateSecret: true, AllowedOAuthFlows: ['client_credentials'] }));
    expect(gateway.AllowedOAuthScopes.map(scopeText)).toEqual(['<ResourceServer>/read', '<ResourceServer>/write']);
  });

  it('outputs bucket and table names, user pool, client ids, token endpoint', () => {
    for (const name of ['BucketName', 'TableName', 'UserPoolId', 'ViewerClientId', 'GatewayClientId', 'TokenEndpoint']) stateful.hasOutput(name, {});
  });
});

describe('stateless stack: functions', () => {
  const functions = () =>
    Object.entries(resourcesOf(stateless, 'AWS::Lambda::Function')).filter(([, r]) => r.Properties!.Description?.startsWith('DICOMweb '));

  it('one function per service: nodejs22.x on arm64, traced, source maps, own log group with retention', () => {
    const fns = functions();
    expect(fns.map(([, r]) => r.Properties!.Description).sort()).toEqual(FUNCTION_NAMES.map((n) => `DICOMweb ${n}`).sort());
    const logGroups = resourcesOf(stateless, 'AWS::Logs::LogGroup');
    for (const [id, { Properties: p }] of fns) {
      expect({ id, runtime: p!.Runtime, arch: p!.Architectures }).toEqual({ id, runtime: 'nodejs22.x', arch: ['arm64'] });
      expect(p!.TracingConfig).toEqual({ Mode: 'Active' });
      expect(p!.Handler).toBe('index.handler');
      expect(p!.Environment.Variables.NODE_OPTIONS).toBe('--enable-source-maps');
      const group = logGroups[p!.LoggingConfig.LogGroup.Ref]!;
      expect(group.Properties!.RetentionInDays).toBe(90);
      expect(group.Properties!.KmsKeyId).toBeDefined();
    }
  });

  it('every function gets BUCKET_NAME, TABLE_NAME, POWERTOOLS_SERVICE_NAME, LOG_LEVEL and the scope prefix', () => {
    for (const [, { Properties: p }] of functions()) {
      const env = p!.Environment.Variables;
      expect(env.BUCKET_NAME).toEqual(expect.objectContaining({ 'Fn::GetStackOutput': expect.objectContaining({ StackName: 'DicomWeb-dev-Stateful' }) }));
      expect(env.TABLE_NAME).toEqual(expect.objectContaining({ 'Fn::GetStackOutput': expect.anything() }));
      expect(env.POWERTOOLS_SERVICE_NAME).toMatch(/^dicomweb-(stow|qido|wado|delete|upload|ingest)$/);
      expect(env.LOG_LEVEL).toBe('INFO');
      expect(env.AUTH_SCOPE_PREFIX).toBe('dicomweb/');
    }
  });

  it('memory and timeout come from the config (WADO/STOW/ingest bigger than QIDO)', () => {
    const byService = Object.fromEntries(functions().map(([, r]) => [r.Properties!.Description.replace('DICOMweb ', ''), r.Properties!]));
    expect(byService.wado.MemorySize).toBe(1024);
    expect(byService.stow.MemorySize).toBe(1024);
    expect(byService.ingest.MemorySize).toBe(2048);
    expect(byService.qido.MemorySize).toBe(512);
    expect(byService.ingest.Timeout).toBe(900);
    expect(byService.stow.Timeout).toBeLessThanOrEqual(30);
  });

  it('roles carry no inline policy and no AWS-managed policy (one customer-managed policy each)', () => {
    for (const [, { Properties: p }] of functions()) {
      const role = resourcesOf(stateless, 'AWS::IAM::Role')[p!.Role['Fn::GetAtt'][0]]!;
      expect(role.Properties!.Policies).toBeUndefined();
      expect(role.Properties!.ManagedPolicyArns).toBeUndefined();
    }
  });
});

describe('stateless stack: least privilege', () => {
  type Statement = { Effect: string; Action: string | string[]; Resource: unknown };
  const policyStatements = (): [string, Statement][] => {
    const out: [string, Statement][] = [];
    for (const type of ['AWS::IAM::ManagedPolicy', 'AWS::IAM::Policy']) {
      for (const [id, r] of Object.entries(resourcesOf(stateless, type))) for (const s of r.Properties!.PolicyDocument.Statement) out.push([id, s]);
    }
    return out;
  };
  const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
  const touchesData = (s: Statement) => /PublishOutput|BucketArn|DataKey|IndexTable/.test(JSON.stringify(s.Resource));

  it('no statement grants "*", "s3:*", "dynamodb:*" or "kms:*", and none on the bucket, table or key uses a wildcard action', () => {
    const statements = policyStatements();
    expect(statements.filter(([, s]) => touchesData(s)).length).toBeGreaterThan(20);
    for (const [id, s] of statements) {
      for (const action of actionsOf(s)) {
        expect({ id, action }).not.toEqual({ id, action: expect.stringMatching(/^(\*|s3:\*|dynamodb:\*|kms:\*)$/) });
        if (touchesData(s)) expect({ id, action }).not.toEqual({ id, action: expect.stringContaining('*') });
      }
    }
  });

  it('no Scan anywhere (no query path needs it)', () => {
    for (const [, s] of policyStatements()) expect(actionsOf(s)).not.toContain('dynamodb:Scan');
  });

  const policyOf = (service: string): { Statement: Statement[] } => {
    const policy = synth.stateless.functions[service as FunctionName].role.policy.node.defaultChild as CfnElement;
    return stateless.toJSON().Resources[synth.stateless.getLogicalId(policy)].Properties.PolicyDocument;
  };
  /** "action on prefix" pairs of a function's object grants, plus its other actions. */
  const grantsOf = (service: string) => {
    const grants = new Set<string>();
    for (const s of policyOf(service).Statement) {
      // Minimized policies merge statements: one statement may name several prefixes.
      const prefixes = [...JSON.stringify(s.Resource).matchAll(/"\/([a-z-]+\/)\*"/g)].map((m) => m[1]);
      for (const a of actionsOf(s)) {
        if (prefixes.length === 0) grants.add(a);
        for (const p of prefixes) grants.add(`${a} ${p}`);
      }
    }
    return grants;
  };

  it.each([
    ['qido', ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:BatchGetItem'], ['dynamodb:PutItem', 's3:GetObject studies/', 's3:ListBucket']],
    ['wado', ['dynamodb:Query', 's3:GetObject studies/', 's3:GetObject uploads/', 's3:ListBucket'], ['dynamodb:PutItem', 's3:PutObject studies/', 's3:DeleteObject studies/']],
    ['stow', ['dynamodb:PutItem', 's3:PutObject studies/', 's3:DeleteObject studies/'], ['s3:GetObject studies/', 's3:PutObject uploads/', 's3:DeleteObject uploads/']],
    ['delete', ['dynamodb:DeleteItem', 's3:DeleteObject studies/', 's3:DeleteObject uploads/'], ['s3:PutObject studies/', 's3:GetObject studies/']],
    [
      'upload',
      ['s3:PutObject uploads/', 's3:AbortMultipartUpload uploads/', 's3:ListMultipartUploadParts uploads/', 's3:GetObject uploads/', 's3:PutObject uploads-status/', 's3:GetObject uploads-status/'],
      ['s3:DeleteObject uploads/', 's3:GetObject studies/', 's3:PutObject studies/', 'dynamodb:GetItem', 'dynamodb:PutItem'],
    ],
    [
      'ingest',
      ['dynamodb:PutItem', 's3:GetObject uploads/', 's3:DeleteObject uploads/', 's3:PutObject uploads-status/', 'sqs:ReceiveMessage'],
      ['s3:PutObject uploads/', 's3:GetObject studies/', 's3:PutObject studies/', 's3:DeleteObject studies/'],
    ],
  ])('%s is granted exactly its needs', (service, has, hasNot) => {
    const grants = grantsOf(service);
    for (const g of has) expect(grants).toContain(g);
    for (const g of hasNot) expect(grants).not.toContain(g);
  });

  it('KMS use of the data key is limited to S3 and DynamoDB (kms:ViaService)', () => {
    for (const [, s] of policyStatements()) {
      if (!actionsOf(s).some((a) => a.startsWith('kms:')) || !/DataKey/.test(JSON.stringify(s.Resource))) continue;
      expect(JSON.stringify((s as unknown as { Condition: unknown }).Condition)).toMatch(/kms:ViaService.*(s3|dynamodb)\./);
    }
  });

  it('object grants are limited to their key prefix', () => {
    for (const [, s] of policyStatements()) {
      const objectActions = actionsOf(s).filter((a) => /^s3:(GetObject|PutObject|DeleteObject|AbortMultipartUpload|ListMultipartUploadParts)$/.test(a));
      if (objectActions.length === 0) continue;
      expect(JSON.stringify(s.Resource)).toMatch(/"\/(studies|uploads|uploads-status)\/\*"/);
    }
  });
});

describe('stateless stack: API', () => {
  it('is an HTTP API with one JWT authorizer (issuer = the user pool, audience = both app clients)', () => {
    stateless.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    stateless.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    const authorizer = only(resourcesOf(stateless, 'AWS::ApiGatewayV2::Authorizer')).Properties!;
    expect(authorizer.AuthorizerType).toBe('JWT');
    expect(authorizer.IdentitySource).toEqual(['$request.header.Authorization']);
    expect(JSON.stringify(authorizer.JwtConfiguration.Issuer)).toMatch(/ProviderURL/);
    expect(authorizer.JwtConfiguration.Audience).toHaveLength(2);
  });

  it('every route (none is OPTIONS or ANY) requires the JWT authorizer and its scope', () => {
    const routes = Object.values(resourcesOf(stateless, 'AWS::ApiGatewayV2::Route')).map((r) => r.Properties!);
    const expected = ROUTES.flatMap((r) => r.methods.map((m) => ({ key: `${m} /dicom-web${r.path}`, scope: `dicomweb/${r.scope}` })));
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(expected.map((e) => e.key).sort());
    for (const r of routes) {
      // ANY would match the CORS preflight and send it to the authorizer (401) instead of API Gateway's CORS answer.
      expect(r.RouteKey).not.toMatch(/^(OPTIONS|ANY) /);
      expect(r.AuthorizationType).toBe('JWT');
      expect(r.AuthorizerId).toEqual({ Ref: expect.stringMatching(/JwtAuthorizer/) });
      expect(r.AuthorizationScopes).toEqual([expected.find((e) => e.key === r.RouteKey)!.scope]);
    }
  });

  it.each([
    ['POST /dicom-web/studies', 'stow', 'dicomweb/write'],
    ['POST /dicom-web/studies/{study}', 'stow', 'dicomweb/write'],
    ['GET /dicom-web/studies', 'qido', 'dicomweb/read'],
    ['GET /dicom-web/studies/{study}/series/{series}/instances', 'qido', 'dicomweb/read'],
    ['GET /dicom-web/studies/{study}/series/{series}/instances/{instance}', 'wado', 'dicomweb/read'],
    ['GET /dicom-web/studies/{study}/metadata', 'wado', 'dicomweb/read'],
    ['GET /dicom-web/studies/{study}/series/{series}/instances/{instance}/{proxy+}', 'wado', 'dicomweb/read'],
    ['DELETE /dicom-web/studies/{study}', 'delete', 'dicomweb/delete'],
    ['POST /dicom-web/uploads', 'upload', 'dicomweb/write'],
    ['POST /dicom-web/uploads/{proxy+}', 'upload', 'dicomweb/write'],
    ['DELETE /dicom-web/uploads/{proxy+}', 'upload', 'dicomweb/write'],
    ['PUT /dicom-web/{proxy+}', 'qido', 'dicomweb/read'],
  ])('%s → %s function, scope %s', (routeKey, service, scope) => {
    const route = Object.values(resourcesOf(stateless, 'AWS::ApiGatewayV2::Route')).find((r) => r.Properties!.RouteKey === routeKey)!.Properties!;
    expect(route.AuthorizationScopes).toEqual([scope]);
    const integrationId = (route.Target['Fn::Join'][1] as any[])[1].Ref as string;
    const integration = resourcesOf(stateless, 'AWS::ApiGatewayV2::Integration')[integrationId]!.Properties!;
    expect(integration.PayloadFormatVersion).toBe('2.0');
    const fnId = integration.IntegrationUri['Fn::GetAtt'][0] as string;
    expect(resourcesOf(stateless, 'AWS::Lambda::Function')[fnId]!.Properties!.Description).toBe(`DICOMweb ${service}`);
  });

  it('CORS preflight is answered by API Gateway for the configured origins', () => {
    stateless.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: Match.objectLike({ AllowOrigins: ['http://localhost:3000'], AllowHeaders: Match.arrayWith(['authorization', 'content-type']), AllowCredentials: false }),
    });
  });

  it('access logs: requestId, route template, status, latency, ip — no path, no query string', () => {
    const stage = only(resourcesOf(stateless, 'AWS::ApiGatewayV2::Stage')).Properties!;
    expect(stage.StageName).toBe('$default');
    expect(stage.DefaultRouteSettings).toEqual({ ThrottlingBurstLimit: 400, ThrottlingRateLimit: 200 });
    const format = JSON.parse(stage.AccessLogSettings.Format) as Record<string, string>;
    expect(Object.keys(format).sort()).toEqual(['ip', 'latencyMs', 'requestId', 'route', 'status']);
    expect(stage.AccessLogSettings.Format).not.toMatch(/querystring|\$context\.path|rawPath|\$request/i);
    const group = resourcesOf(stateless, 'AWS::Logs::LogGroup')[stage.AccessLogSettings.DestinationArn['Fn::GetAtt'][0]]!.Properties!;
    expect(group.RetentionInDays).toBe(90);
  });

  it('outputs the DICOMweb URL', () => {
    stateless.hasOutput('DicomWebUrl', { Value: { 'Fn::Join': ['', Match.arrayWith(['/dicom-web'])] } });
  });
});

describe('stateless stack: ingest path and alarms', () => {
  it('S3 ObjectCreated under uploads/ → KMS-encrypted, TLS-only queue', () => {
    stateless.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        QueueConfigurations: [
          { Events: ['s3:ObjectCreated:*'], Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'uploads/' }] } }, QueueArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^IngestQueue'), 'Arn'] } },
        ],
      },
      Managed: false,
    });
    const queues = resourcesOf(stateless, 'AWS::SQS::Queue');
    expect(Object.keys(queues)).toHaveLength(2);
    for (const q of Object.values(queues)) expect(q.Properties!.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^OperationsKey/), 'Arn'] });
    for (const p of Object.values(resourcesOf(stateless, 'AWS::SQS::QueuePolicy'))) {
      expect(p.Properties!.PolicyDocument.Statement).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    }
  });

  it('queue: visibility ≥ 6 × ingest timeout, DLQ after 5 receives; ingest reads it with partial batch failures', () => {
    const ingestTimeout = synth.config.functions.ingest.timeoutSeconds;
    const [queueId, queue] = Object.entries(resourcesOf(stateless, 'AWS::SQS::Queue')).find(([id]) => /^IngestQueue/.test(id))!;
    expect(queue.Properties!.VisibilityTimeout).toBeGreaterThanOrEqual(6 * ingestTimeout);
    expect(queue.Properties!.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': [expect.stringMatching(/^IngestDeadLetterQueue/), 'Arn'] }, maxReceiveCount: 5 });
    stateless.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('alarms on DLQ depth > 0, API 5xx, and each function\'s errors and throttles, all to the encrypted topic', () => {
    stateless.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^OperationsKey'), 'Arn'] } });
    const alarms = Object.values(resourcesOf(stateless, 'AWS::CloudWatch::Alarm')).map((a) => a.Properties!);
    const dlq = alarms.find((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible')!;
    expect(dlq).toEqual(expect.objectContaining({ Namespace: 'AWS/SQS', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' }));
    expect(dlq.Dimensions[0].Value).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^IngestDeadLetterQueue/), 'QueueName'] });
    expect(alarms.filter((a) => a.Namespace === 'AWS/ApiGateway' && a.MetricName === '5xx')).toHaveLength(1);
    expect(alarms.filter((a) => a.Namespace === 'AWS/Lambda' && a.MetricName === 'Errors')).toHaveLength(FUNCTION_NAMES.length);
    expect(alarms.filter((a) => a.Namespace === 'AWS/Lambda' && a.MetricName === 'Throttles')).toHaveLength(FUNCTION_NAMES.length);
    for (const a of alarms) expect(a.AlarmActions).toEqual([{ Ref: expect.stringMatching(/^AlarmsTopic/) }]);
  });

  it('the GSIs the grants name are the schema\'s', () => {
    const names = Object.values(GSI).map((g) => g.indexName);
    const text = JSON.stringify(stateless.toJSON());
    for (const n of names) expect(text).toContain(`/index/${n}`);
  });
});
