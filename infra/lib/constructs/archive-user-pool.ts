import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import { Construct } from 'constructs';
import type { CognitoAuthConfig } from '../config';

export interface ArchiveUserPoolProps {
  readonly stageName: string;
  readonly auth: CognitoAuthConfig;
}

/**
 * The default identity provider of the archive: a Cognito user pool issuing
 * OAuth 2.0 access tokens with `dicomweb/read|write|delete` scopes, which the
 * HTTP API's JWT authorizer checks per route.
 *
 * - No self sign-up: accounts are created by an administrator (clinical users).
 * - MFA required (TOTP; no SMS, which is phishable and needs an SMS role),
 *   12-character passwords with every character class, e-mail-only recovery.
 * - Plus feature plan with threat protection enforced (compromised-credential
 *   and adaptive-authentication checks) — what AwsSolutions-COG3/COG8 ask for.
 * - Browser viewers (OHIF and the like): authorization code grant with PKCE,
 *   no client secret (a browser cannot keep one), `read` scope only.
 * - Edge gateways: client-credentials grant with a secret, `read` + `write`.
 *
 * The user pool owns data (users, their MFA enrolment): its construct ID
 * `UserPool` must never be renamed; it is retained and deletion-protected.
 */
export class ArchiveUserPool extends Construct {
  readonly userPool: cognito.UserPool;
  readonly domain: cognito.UserPoolDomain;
  readonly viewerClient: cognito.UserPoolClient;
  readonly gatewayClient: cognito.UserPoolClient;
  readonly resourceServer: cognito.UserPoolResourceServer;

  constructor(scope: Construct, id: string, props: ArchiveUserPoolProps) {
    super(scope, id);

    this.userPool = new cognito.UserPool(this, 'UserPool', {
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      signInCaseSensitive: false,
      standardAttributes: { email: { required: true, mutable: true } },
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      passwordPolicy: {
        minLength: 12,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const identifier = props.auth.scopePrefix.replace(/\/$/, '');
    const read = new cognito.ResourceServerScope({ scopeName: 'read', scopeDescription: 'Search and retrieve (QIDO-RS, WADO-RS)' });
    const write = new cognito.ResourceServerScope({ scopeName: 'write', scopeDescription: 'Store (STOW-RS) and upload' });
    const del = new cognito.ResourceServerScope({ scopeName: 'delete', scopeDescription: 'Delete studies, series and instances' });
    this.resourceServer = this.userPool.addResourceServer('ResourceServer', {
      identifier,
      userPoolResourceServerName: 'DICOMweb archive',
      scopes: [read, write, del],
    });

    this.domain = this.userPool.addDomain('Domain', {
      // Globally unique per region; the account id makes the default unique without hard-coding it.
      cognitoDomain: { domainPrefix: props.auth.domainPrefix ?? `dicomweb-${props.stageName}-${Aws.ACCOUNT_ID}` },
    });

    this.viewerClient = this.userPool.addClient('ViewerClient', {
      userPoolClientName: 'browser-viewer',
      generateSecret: false,
      authFlows: {},
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE, cognito.OAuthScope.resourceServer(this.resourceServer, read)],
        callbackUrls: [...props.auth.callbackUrls],
        logoutUrls: [...props.auth.logoutUrls],
      },
      supportedIdentityProviders: [cognito.UserPoolClientIdentityProvider.COGNITO],
      preventUserExistenceErrors: true,
      enableTokenRevocation: true,
      accessTokenValidity: Duration.hours(1),
      idTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.hours(12),
    });

    this.gatewayClient = this.userPool.addClient('GatewayClient', {
      userPoolClientName: 'edge-gateway',
      generateSecret: true,
      authFlows: {},
      oAuth: {
        flows: { clientCredentials: true },
        scopes: [cognito.OAuthScope.resourceServer(this.resourceServer, read), cognito.OAuthScope.resourceServer(this.resourceServer, write)],
      },
      supportedIdentityProviders: [cognito.UserPoolClientIdentityProvider.COGNITO],
      enableTokenRevocation: true,
      accessTokenValidity: Duration.hours(1),
    });
  }

  /** The `iss` claim of the pool's tokens. */
  get issuer(): string {
    return this.userPool.userPoolProviderUrl;
  }

  /** Cognito access tokens carry the app client id as `client_id`, which the HTTP API JWT authorizer accepts as audience. */
  get audience(): string[] {
    return [this.viewerClient.userPoolClientId, this.gatewayClient.userPoolClientId];
  }

  get tokenEndpoint(): string {
    return `${this.domain.baseUrl()}/oauth2/token`;
  }
}
