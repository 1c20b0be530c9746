/**
 * cdk-nag v3 (AwsSolutions + HIPAA Security) as CDK validation plugins:
 * the app synthesizes exactly as `cdk synth` does (esbuild bundling included)
 * with zero unacknowledged findings, and every acknowledgement in the code
 * answers a real finding (no stale or over-broad acknowledgements).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Validations, type Acknowledgment } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks, HIPAASecurityChecks } from 'cdk-nag';
import { buildApp, removeOutdir, synthApp, type Synthesized } from './archive-app-fixture';

interface ValidationReport {
  pluginReports: { pluginName: string; violations: { ruleName: string; severity?: string; violatingConstructs: { constructPath: string }[] }[] }[];
}

function readReport(outdir: string): ValidationReport {
  const file = path.join(outdir, 'validation-report.json');
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as ValidationReport) : { pluginReports: [] };
}

function violations(report: ValidationReport): string[] {
  return report.pluginReports.flatMap((p) => p.violations.flatMap((v) => v.violatingConstructs.map((c) => `${p.pluginName}: ${v.ruleName} at ${c.constructPath}`)));
}

describe('cdk synth with cdk-nag (default dev stage, bundled)', () => {
  let synth: Synthesized;
  beforeAll(() => {
    synth = synthApp({ bundle: true });
  });
  afterAll(() => removeOutdir(synth));

  it('has no unacknowledged finding of any validation plugin (nag errors and warnings, CloudFormation validation, annotations)', () => {
    expect(violations(readReport(synth.outdir))).toEqual([]);
  });

  it('bundles every function locally: minified CommonJS with a source map and the AWS SDK inside', () => {
    const stack = synth.assembly.getStackByName(synth.stateless.stackName);
    type Fn = { Type: string; Properties: { Description?: string; Code?: { S3Key?: string } } };
    const fns = Object.values((stack.template as { Resources: Record<string, Fn> }).Resources).filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Description?.startsWith('DICOMweb '));
    expect(fns).toHaveLength(6);
    // Code.S3Key is "<asset hash>.zip"; the bundle sits in <outdir>/asset.<hash>/ before zipping.
    const assetDir = (fn: Fn) => path.join(synth.outdir, `asset.${fn.Properties.Code!.S3Key!.replace(/\.zip$/, '')}`);
    // The WADO function also ships the image codecs' WebAssembly module beside its bundle (rendering, transcoding).
    for (const fn of fns) {
      const extra = fn.Properties.Description === 'DICOMweb wado' ? ['dcmjs-native-codecs.wasm'] : [];
      expect(fs.readdirSync(assetDir(fn)).sort()).toEqual([...extra, 'index.js', 'index.js.map'].sort());
    }
    const stow = fns.find((f) => f.Properties.Description === 'DICOMweb stow')!;
    const code = fs.readFileSync(path.join(assetDir(stow), 'index.js'), 'utf8');
    expect(code.includes('S3Client')).toBe(true); // the SDK is in the bundle…
    // …not loaded from the runtime (only the optional CRT signer, required inside a try for SigV4a, stays out).
    const required = [...code.matchAll(/require\("(@(?:aws-sdk|smithy)\/[^"]+)"\)/g)].map((m) => m[1]);
    expect(new Set(required)).toEqual(new Set(required.length ? ['@aws-sdk/signature-v4-crt'] : []));
    expect(/^\s*\/\*\*/m.test(code)).toBe(false); // minified: no doc comments
  });
});

describe('the nag packs are live', () => {
  it('an unacknowledged finding fails synthesis with the rule id', () => {
    const built = buildApp();
    try {
      new Queue(built.stacks.stateless, 'UnencryptedProbeQueue', { encryption: QueueEncryption.UNENCRYPTED });
      expect(() => built.app.synth()).toThrow(/AwsSolutions-SQS4|AwsSolutions-SQS3/);
    } finally {
      removeOutdir(built);
    }
  });
});

describe('acknowledgements', () => {
  it('each answers a finding on its construct or below, each finding is acknowledged, and each says why', () => {
    const acks: { path: string; ack: Acknowledgment }[] = [];
    const original = Validations.prototype.acknowledge;
    const spy = jest.spyOn(Validations.prototype, 'acknowledge').mockImplementation(function (this: Validations, ...rules: Acknowledgment[]) {
      const scope = (this as unknown as { scope: { node: { path: string } } }).scope;
      const nag = rules.filter((r) => /^(AwsSolutions|HIPAA\.Security)-/.test(r.id));
      for (const ack of nag) acks.push({ path: scope.node.path, ack });
      original.apply(this, rules.filter((r) => !nag.includes(r)));
    });
    let built: ReturnType<typeof buildApp> | undefined;
    try {
      built = buildApp({ nag: false });
      built.app.synth();
    } finally {
      spy.mockRestore();
    }
    try {
      const findings = [new AwsSolutionsChecks(), new HIPAASecurityChecks()].flatMap((pack) =>
        pack.validateScope(built!.app).violations.flatMap((v) => v.violatingResources.map((r) => ({ id: v.ruleName, path: r.constructPath! }))),
      );
      expect(findings.length).toBeGreaterThan(0);
      const covers = (ackPath: string, findingPath: string) => findingPath === ackPath || findingPath.startsWith(`${ackPath}/`);

      const unacknowledged = findings.filter((f) => !acks.some((a) => a.ack.id === f.id && covers(a.path, f.path)));
      expect(unacknowledged).toEqual([]);
      const stale = acks.filter((a) => !findings.some((f) => f.id === a.ack.id && covers(a.path, f.path))).map((a) => `${a.ack.id} at ${a.path}`);
      expect(stale).toEqual([]);
      for (const { ack } of acks) expect(ack.reason.length).toBeGreaterThan(60);
      // Never on a whole stack or the app: the narrowest construct that holds the finding.
      for (const { path: p } of acks) expect(p.split('/').length).toBeGreaterThan(1);
    } finally {
      removeOutdir(built);
    }
  });
});

describe('other configurations', () => {
  it('external OIDC issuer, Object Lock, custom domain, reserved concurrency, alarm e-mail, Intelligent-Tiering: zero unacknowledged findings', () => {
    let synth: Synthesized | undefined;
    try {
      synth = synthApp({
        context: {
          stage: 'prod',
          config: {
            account: '123456789012',
            region: 'eu-west-1',
            logRetentionDays: 731,
            auth: { mode: 'oidc', issuer: 'https://login.example.org/realms/pacs', audience: ['dicomweb'], scopePrefix: 'api://dicomweb/' },
            corsOrigins: ['https://viewer.example.org'],
            customDomain: { domainName: 'pacs.example.org', certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-123456789abc' },
            objectLock: { enabled: true, defaultRetentionDays: 365 },
            tiering: { policy: 'intelligent-tiering', afterDays: 0 },
            functions: { wado: { reservedConcurrency: 50 }, stow: { reservedConcurrency: 20 } },
            alarmEmail: 'pacs-ops@example.org',
          },
        },
      });
      expect(violations(readReport(synth.outdir))).toEqual([]);

      const stateful = Template.fromStack(synth.stateful);
      const stateless = Template.fromStack(synth.stateless);
      expect(synth.stateful.stackName).toBe('DicomWeb-prod-Stateful');
      expect(synth.stateful.account).toBe('123456789012');
      stateful.resourceCountIs('AWS::Cognito::UserPool', 0);
      stateless.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
        AuthorizerType: 'JWT',
        JwtConfiguration: { Issuer: 'https://login.example.org/realms/pacs', Audience: ['dicomweb'] },
      });
      stateless.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'DELETE /dicom-web/studies/{study}', AuthorizationScopes: ['api://dicomweb/delete'] });
      stateful.hasResourceProperties('AWS::S3::Bucket', {
        ObjectLockEnabled: true,
        ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 365 } } },
        LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Prefix: 'studies/', Transitions: [{ StorageClass: 'INTELLIGENT_TIERING', TransitionInDays: 0 }] })]) },
      });
      stateless.hasResourceProperties('AWS::ApiGatewayV2::DomainName', { DomainName: 'pacs.example.org', DomainNameConfigurations: [Match.objectLike({ SecurityPolicy: 'TLS_1_2' })] });
      stateless.hasResourceProperties('AWS::Lambda::Function', { Description: 'DICOMweb wado', ReservedConcurrentExecutions: 50 });
      stateless.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'pacs-ops@example.org' });
      stateless.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 731 });
    } finally {
      removeOutdir(synth);
    }
  });

  it('no CORS origins (machine clients only): no CORS anywhere, zero unacknowledged findings', () => {
    let synth: Synthesized | undefined;
    try {
      synth = synthApp({ context: { config: { corsOrigins: [] } } });
      expect(violations(readReport(synth.outdir))).toEqual([]);
      const api = Template.fromStack(synth.stateless).findResources('AWS::ApiGatewayV2::Api');
      expect(Object.values(api)[0]!.Properties.CorsConfiguration).toBeUndefined();
      const buckets = Template.fromStack(synth.stateful).findResources('AWS::S3::Bucket');
      for (const b of Object.values(buckets)) expect(b.Properties.CorsConfiguration).toBeUndefined();
    } finally {
      removeOutdir(synth);
    }
  });

  it('a bad stage config fails synthesis with a clear message', () => {
    expect(() => synthApp({ context: { stage: 'qa', config: { auth: { mode: 'oidc' } } } })).toThrow(/Invalid stage configuration for "qa":[\s\S]*auth\.issuer is required in oidc mode/);
  });
});
