import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** Services behind the API (ingest is fed by S3 events, not by HTTP). */
export type ApiService = 'stow' | 'qido' | 'wado' | 'delete' | 'upload';
export type ScopeName = 'read' | 'write' | 'delete';

export interface ApiRoute {
  readonly methods: apigwv2.HttpMethod[];
  /** Path below the base path, HTTP API syntax (`{name}` one segment, `{proxy+}` the rest). */
  readonly path: string;
  readonly service: ApiService;
  readonly scope: ScopeName;
}

export const BASE_PATH = '/dicom-web';

const { GET, HEAD, POST, PUT, PATCH, DELETE } = apigwv2.HttpMethod;
const READ = [GET, HEAD];
/**
 * Every method but OPTIONS. Never `ANY`: an ANY route matches the browser's
 * OPTIONS preflight, which then meets the JWT authorizer (no token → 401) instead
 * of API Gateway's automatic CORS answer, which is given only when no route matches.
 */
const ALL_BUT_OPTIONS = [GET, HEAD, POST, PUT, PATCH, DELETE];

/**
 * The DICOMweb surface (PS3.18 §10) split per service, mirroring the route
 * table of functions/core/archive/app.ts, so each function receives only its
 * own transactions and API Gateway checks the scope before any code runs.
 * HTTP API picks the most specific route (literal segments before `{param}`
 * before `{proxy+}`), so the searches below win over the retrieves that share
 * their shape. No route takes OPTIONS: CORS preflight is answered by API
 * Gateway itself (and never reaches the authorizer).
 */
export const ROUTES: readonly ApiRoute[] = [
  // STOW-RS (§10.5)
  { methods: [POST], path: '/studies', service: 'stow', scope: 'write' },
  { methods: [POST], path: '/studies/{study}', service: 'stow', scope: 'write' },
  // QIDO-RS (§10.6)
  { methods: READ, path: '/studies', service: 'qido', scope: 'read' },
  { methods: READ, path: '/series', service: 'qido', scope: 'read' },
  { methods: READ, path: '/instances', service: 'qido', scope: 'read' },
  { methods: READ, path: '/studies/{study}/series', service: 'qido', scope: 'read' },
  { methods: READ, path: '/studies/{study}/instances', service: 'qido', scope: 'read' },
  { methods: READ, path: '/studies/{study}/series/{series}/instances', service: 'qido', scope: 'read' },
  // WADO-RS (§10.4): retrieve, metadata, frames, bulk data (and whatever else sits below an instance)
  { methods: READ, path: '/studies/{study}', service: 'wado', scope: 'read' },
  { methods: READ, path: '/studies/{study}/metadata', service: 'wado', scope: 'read' },
  { methods: READ, path: '/studies/{study}/series/{series}', service: 'wado', scope: 'read' },
  { methods: READ, path: '/studies/{study}/series/{series}/metadata', service: 'wado', scope: 'read' },
  { methods: READ, path: '/studies/{study}/series/{series}/instances/{instance}', service: 'wado', scope: 'read' },
  { methods: READ, path: '/studies/{study}/series/{series}/instances/{instance}/{proxy+}', service: 'wado', scope: 'read' },
  // Rendered and thumbnail (§10.4.1.1.3, §10.4.1.1.6) of a study or series (instance-level ones match the {proxy+} above).
  { methods: READ, path: '/studies/{study}/rendered', service: 'wado', scope: 'read' },
  { methods: READ, path: '/studies/{study}/thumbnail', service: 'wado', scope: 'read' },
  { methods: READ, path: '/studies/{study}/series/{series}/rendered', service: 'wado', scope: 'read' },
  { methods: READ, path: '/studies/{study}/series/{series}/thumbnail', service: 'wado', scope: 'read' },
  // WADO-URI (PS3.18 §9).
  { methods: READ, path: '/wado', service: 'wado', scope: 'read' },
  // Not DICOMweb: ZIP downloads, and manifests of direct download URLs for retrieves too large for one response.
  { methods: READ, path: '/studies/{study}/archive', service: 'wado', scope: 'read' },
  { methods: READ, path: '/studies/{study}/series/{series}/archive', service: 'wado', scope: 'read' },
  { methods: READ, path: '/studies/{study}/download', service: 'wado', scope: 'read' },
  { methods: READ, path: '/studies/{study}/series/{series}/download', service: 'wado', scope: 'read' },
  // Delete (PS3.18 §10.x "Delete" is not standard DICOMweb; see docs/conformance.md)
  { methods: [DELETE], path: '/studies/{study}', service: 'delete', scope: 'delete' },
  { methods: [DELETE], path: '/studies/{study}/series/{series}', service: 'delete', scope: 'delete' },
  { methods: [DELETE], path: '/studies/{study}/series/{series}/instances/{instance}', service: 'delete', scope: 'delete' },
  // Large-object upload API (presigned S3 uploads): create, status, complete, abort
  { methods: [POST], path: '/uploads', service: 'upload', scope: 'write' },
  { methods: ALL_BUT_OPTIONS, path: '/uploads/{proxy+}', service: 'upload', scope: 'write' },
  // Anything else below the base path: the QIDO function answers with the archive's own 404/405 bodies.
  { methods: ALL_BUT_OPTIONS, path: '/{proxy+}', service: 'qido', scope: 'read' },
];

export interface DicomWebApiProps {
  readonly stageName: string;
  readonly functions: { readonly [s in ApiService]: lambda.IFunction };
  /** JWT issuer and accepted audiences (`aud` or Cognito's `client_id`). */
  readonly issuer: string;
  readonly audience: string[];
  /** Full scope strings, e.g. { read: 'dicomweb/read', … }. */
  readonly scopes: { readonly [s in ScopeName]: string };
  readonly corsOrigins: readonly string[];
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly customDomain?: { readonly domainName: string; readonly certificateArn: string };
  readonly logRetention: logs.RetentionDays;
  readonly logKey: kms.IKey;
}

/**
 * HTTP API (payload format 2.0) with a JWT authorizer on every route, scopes
 * per route, CORS from the stage config, throttling, and PHI-free access logs.
 */
export class DicomWebApi extends Construct {
  readonly httpApi: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly accessLogGroup: logs.LogGroup;
  /** Base URL of the DICOMweb root (custom domain if configured). */
  readonly url: string;
  /** The custom domain, if configured (point DNS at its regionalDomainName). */
  readonly domainName?: apigwv2.DomainName;

  constructor(scope: Construct, id: string, props: DicomWebApiProps) {
    super(scope, id);

    this.httpApi = new apigwv2.HttpApi(this, 'HttpApi', {
      description: `DICOMweb archive (${props.stageName})`,
      createDefaultStage: false,
      corsPreflight:
        props.corsOrigins.length > 0
          ? {
              allowOrigins: [...props.corsOrigins],
              allowMethods: [apigwv2.CorsHttpMethod.GET, apigwv2.CorsHttpMethod.HEAD, apigwv2.CorsHttpMethod.POST, apigwv2.CorsHttpMethod.PUT, apigwv2.CorsHttpMethod.DELETE, apigwv2.CorsHttpMethod.OPTIONS],
              allowHeaders: ['authorization', 'content-type', 'accept', 'if-none-match', 'if-modified-since', 'range'],
              exposeHeaders: ['etag', 'location', 'content-location', 'warning', 'www-authenticate', 'content-range'],
              // Bearer tokens, not cookies: credentialed CORS is not needed.
              allowCredentials: false,
              maxAge: Duration.hours(1),
            }
          : undefined,
    });

    // No PHI in access logs: only the request id, the route *template* (never the
    // concrete path with UIDs), status, latency and the caller's IP. Never the
    // query string: QIDO queries carry PatientName, PatientID, BirthDate….
    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      encryptionKey: props.logKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const format = AccessLogFormat.custom(
      JSON.stringify({
        requestId: '$context.requestId',
        route: '$context.routeKey',
        status: '$context.status',
        latencyMs: '$context.responseLatency',
        ip: '$context.identity.sourceIp',
      }),
    );

    let domainName: apigwv2.DomainName | undefined;
    if (props.customDomain) {
      this.domainName = domainName = new apigwv2.DomainName(this, 'DomainName', {
        domainName: props.customDomain.domainName,
        certificate: acm.Certificate.fromCertificateArn(this, 'Certificate', props.customDomain.certificateArn),
        securityPolicy: apigwv2.SecurityPolicy.TLS_1_2,
      });
    }

    this.stage = new apigwv2.HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.throttle.rateLimit, burstLimit: props.throttle.burstLimit },
      accessLogSettings: { destination: new apigwv2.LogGroupLogDestination(this.accessLogGroup), format },
      domainMapping: domainName ? { domainName } : undefined,
    });

    const authorizer = new HttpJwtAuthorizer('JwtAuthorizer', props.issuer, {
      jwtAudience: props.audience,
      identitySource: ['$request.header.Authorization'],
    });
    const integrations = new Map<ApiService, HttpLambdaIntegration>();
    const integration = (service: ApiService) => {
      let i = integrations.get(service);
      if (!i) integrations.set(service, (i = new HttpLambdaIntegration(`${service}-integration`, props.functions[service], { payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0 })));
      return i;
    };
    for (const route of ROUTES) {
      this.httpApi.addRoutes({
        path: `${BASE_PATH}${route.path}`,
        methods: route.methods,
        integration: integration(route.service),
        authorizer,
        authorizationScopes: [props.scopes[route.scope]],
      });
    }

    this.url = domainName ? `https://${props.customDomain!.domainName}${BASE_PATH}` : `${this.stage.url.replace(/\/$/, '')}${BASE_PATH}`;
  }
}
