/**
 * WebHosting (infra/lib/constructs/web-hosting.ts): the web UI and OHIF on
 * S3 + CloudFront. Template assertions: private bucket read only through
 * OAC, HTTPS, security headers, the viewer's SPA routes, config.json and
 * app-config.js pointing at the API; and cdk-nag (AwsSolutions + HIPAA)
 * without unacknowledged findings.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, CfnParameter, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import { AwsSolutionsChecks, HIPAASecurityChecks } from 'cdk-nag';
import { WebHosting } from '../../infra/lib/constructs/web-hosting';
import { makeTempDir } from '../helpers/tmp';

const tmp = makeTempDir('web-hosting-');
afterAll(() => tmp.cleanup());

function site(): string {
  const dir = path.join(tmp.dir, 'site');
  fs.mkdirSync(path.join(dir, 'viewer'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>ui</title>');
  fs.writeFileSync(path.join(dir, 'app.js'), '');
  fs.writeFileSync(path.join(dir, 'viewer', 'index.html'), '<!doctype html><title>viewer</title>');
  return dir;
}

function build(props: { domain?: boolean; oidc?: boolean } = {}) {
  const app = new App({ outdir: fs.mkdtempSync(path.join(tmp.dir, 'out-')) });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new HIPAASecurityChecks(app));
  const stack = new Stack(app, 'WebStack', { env: { account: '111111111111', region: 'us-east-1' } });
  // A deploy-time URL, as the API's is in the real stack.
  const api = new CfnParameter(stack, 'ApiUrl', { type: 'String' }).valueAsString;
  const web = new WebHosting(stack, 'Web', {
    siteDir: site(),
    dicomWebUrl: api,
    oidc: props.oidc ? { issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example', clientId: 'viewer-client', scope: 'openid dicomweb/read' } : undefined,
    domain: props.domain ? { names: ['archive.example.org'], certificate: acm.Certificate.fromCertificateArn(stack, 'Cert', 'arn:aws:acm:us-east-1:111111111111:certificate/abc') } : undefined,
  });
  return { app, stack, web };
}

describe('WebHosting', () => {
  const built = build({ oidc: true });
  const template = Template.fromStack(built.stack);

  it('keeps the site bucket private: all public access blocked, TLS only, readable only by this distribution (OAC)', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LoggingConfiguration: { LogFilePrefix: 'site-bucket/' },
    });
    template.resourceCountIs('AWS::CloudFront::OriginAccessControl', 1);
    template.hasResourceProperties('AWS::CloudFront::OriginAccessControl', { OriginAccessControlConfig: { OriginAccessControlOriginType: 's3', SigningBehavior: 'always', SigningProtocol: 'sigv4' } });
    // The bucket policy lets CloudFront read, conditioned on this distribution; nothing grants a public principal.
    const policies = template.findResources('AWS::S3::BucketPolicy');
    const statements = Object.values(policies).flatMap((p) => (p as { Properties: { PolicyDocument: { Statement: { Principal?: unknown; Effect: string; Condition?: unknown }[] } } }).Properties.PolicyDocument.Statement);
    const allows = statements.filter((s) => s.Effect === 'Allow');
    expect(allows.some((s) => JSON.stringify(s.Principal) === JSON.stringify({ Service: 'cloudfront.amazonaws.com' }) && JSON.stringify(s.Condition).includes('AWS:SourceArn'))).toBe(true);
    expect(allows.some((s) => s.Principal === '*' || JSON.stringify(s.Principal) === JSON.stringify({ AWS: '*' }))).toBe(false);
    template.resourcePropertiesCountIs('AWS::S3::Bucket', { WebsiteConfiguration: Match.anyValue() }, 0);
  });

  it('serves HTTPS only with logging, the UI behind a strict CSP and the viewer with its SPA routes', () => {
    template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        DefaultRootObject: 'index.html',
        Logging: Match.objectLike({ Prefix: 'cloudfront/' }),
        DefaultCacheBehavior: Match.objectLike({ ViewerProtocolPolicy: 'redirect-to-https', AllowedMethods: ['GET', 'HEAD'] }),
        CacheBehaviors: [
          Match.objectLike({
            PathPattern: 'viewer*',
            ViewerProtocolPolicy: 'redirect-to-https',
            FunctionAssociations: [Match.objectLike({ EventType: 'viewer-request' })],
          }),
        ],
      }),
    });
    const policies = Object.values(template.findResources('AWS::CloudFront::ResponseHeadersPolicy')).map((r) => (r as { Properties: { ResponseHeadersPolicyConfig: { SecurityHeadersConfig: Record<string, any> } } }).Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig);
    expect(policies).toHaveLength(2);
    for (const p of policies) {
      expect(p.StrictTransportSecurity).toMatchObject({ AccessControlMaxAgeSec: 31536000, Override: true });
      expect(p.ContentTypeOptions).toEqual({ Override: true });
      expect(p.ReferrerPolicy).toMatchObject({ ReferrerPolicy: 'no-referrer' });
    }
    const ui = policies.find((p) => p.ContentSecurityPolicy)!;
    const csp = JSON.stringify(built.stack.resolve(ui.ContentSecurityPolicy.ContentSecurityPolicy));
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain('https://cognito-idp.us-east-1.amazonaws.com');
    expect(csp).toContain('ApiUrl'); // the API origin, derived from the deploy-time URL
    expect(ui.FrameOptions).toMatchObject({ FrameOption: 'DENY' });

    const fn = Object.values(template.findResources('AWS::CloudFront::Function'))[0] as { Properties: { FunctionCode: string } };
    // Run the viewer-request function: client routes become index.html, files stay.
    // eslint-disable-next-line no-new-func
    const handler = new Function(`${fn.Properties.FunctionCode}; return handler;`)() as (e: { request: { uri: string } }) => { uri: string };
    expect(handler({ request: { uri: '/viewer/viewer' } }).uri).toBe('/viewer/index.html');
    expect(handler({ request: { uri: '/viewer' } }).uri).toBe('/viewer/index.html');
    expect(handler({ request: { uri: '/viewer/app.bundle.0f6159c501addfe9.js' } }).uri).toBe('/viewer/app.bundle.0f6159c501addfe9.js');
    expect(handler({ request: { uri: '/viewer/app-config.js' } }).uri).toBe('/viewer/app-config.js');
  });

  it('deploys the site with config.json and viewer/app-config.js pointing at the API, and invalidates the entry files', () => {
    const deployments = template.findResources('Custom::CDKBucketDeployment');
    expect(Object.keys(deployments)).toHaveLength(1);
    const props = (Object.values(deployments)[0] as { Properties: Record<string, any> }).Properties;
    expect(props.SourceObjectKeys).toHaveLength(3);
    expect(props.DistributionPaths).toEqual(expect.arrayContaining(['/index.html', '/config.json', '/viewer/app-config.js']));
    const markers = JSON.stringify(built.stack.resolve(props.SourceMarkers));
    expect(markers).toContain('ApiUrl');
  });

  it('has no unacknowledged cdk-nag finding (AwsSolutions, HIPAA Security), with and without a custom domain', () => {
    expect(() => built.app.synth()).not.toThrow();
    const withDomain = build({ domain: true });
    expect(() => withDomain.app.synth()).not.toThrow();
    Template.fromStack(withDomain.stack).hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({ Aliases: ['archive.example.org'], ViewerCertificate: Match.objectLike({ MinimumProtocolVersion: 'TLSv1.2_2021', SslSupportMethod: 'sni-only' }) }),
    });
  });
});

describe('WebHosting in the stateless stack (-c webSiteDir=…)', () => {
  it('deploys the site beside the API, whose CORS allows the distribution, with no unacknowledged nag finding', () => {
    // Lazy import: the fixture reads cdk.json.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { synthApp, removeOutdir } = require('./archive-app-fixture') as typeof import('./archive-app-fixture');
    const synth = synthApp({ context: { webSiteDir: site() } });
    try {
      const template = Template.fromStack(synth.stateless);
      template.resourceCountIs('AWS::CloudFront::Distribution', 1);
      const api = Object.values(template.findResources('AWS::ApiGatewayV2::Api'))[0] as { Properties: { CorsConfiguration: { AllowOrigins: unknown[] } } };
      const origins = JSON.stringify(api.Properties.CorsConfiguration.AllowOrigins);
      expect(origins).toContain('DomainName'); // https:// + the distribution's domain name
      expect(Object.keys(template.findOutputs('WebUrl'))).toHaveLength(1);
      const deployment = Object.values(template.findResources('Custom::CDKBucketDeployment'))[0] as { Properties: { SourceMarkers: unknown } };
      expect(JSON.stringify(deployment.Properties.SourceMarkers)).toContain('HttpApi');
    } finally {
      removeOutdir(synth);
    }
    const without = synthApp({});
    try {
      Template.fromStack(without.stateless).resourceCountIs('AWS::CloudFront::Distribution', 0);
    } finally {
      removeOutdir(without);
    }
  });
});
