/**
 * Stage configuration of the CDK app: typed, defaulted, and validated at synth
 * time. A bad value fails `cdk synth` with one message that lists every
 * problem, before any construct is built.
 *
 * Sources, lowest precedence first (all from CDK context, so nothing here is
 * tied to an account):
 *   1. DEFAULTS below (env-agnostic, safe for a development stage);
 *   2. `stages.<stage>` in cdk.json (a partial StageConfig per stage name);
 *   3. `-c config='<JSON>'` on the command line (a partial StageConfig, for one-off overrides).
 * The stage is chosen with `-c stage=<name>` (default "dev").
 *
 *   cdk synth -c stage=prod
 *   cdk synth -c stage=dev -c config='{"alarmEmail":"ops@example.org"}'
 */

/** One Lambda function per DICOMweb service, plus the upload API and the S3-event ingest worker. */
export const FUNCTION_NAMES = ['stow', 'qido', 'wado', 'delete', 'upload', 'ingest'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/** Functions invoked synchronously by API Gateway (integration timeout ≤ 30 s). */
export const API_FUNCTIONS: readonly FunctionName[] = ['stow', 'qido', 'wado', 'delete', 'upload'];

export interface FunctionSettings {
  /** 128–10,240 MB; CPU is proportional to memory (1,769 MB = one vCPU). */
  readonly memoryMb: number;
  /** API functions ≤ 30 s (HTTP API integration limit); ingest ≤ 900 s. */
  readonly timeoutSeconds: number;
  /** Optional reserved concurrency: caps the function and guarantees it that much of the account pool. */
  readonly reservedConcurrency?: number;
}

export interface CognitoAuthConfig {
  readonly mode: 'cognito';
  /**
   * Scope prefix; in Cognito mode it is the resource server identifier plus "/",
   * so scopes are `dicomweb/read`, `dicomweb/write`, `dicomweb/delete`.
   */
  readonly scopePrefix: string;
  /** Hosted-UI domain prefix (globally unique per region). Default: `dicomweb-<stage>-<account id>`. */
  readonly domainPrefix?: string;
  /** OAuth redirect URIs of the browser viewer client (authorization code + PKCE). */
  readonly callbackUrls: readonly string[];
  readonly logoutUrls: readonly string[];
}

export interface OidcAuthConfig {
  readonly mode: 'oidc';
  /** Issuer URL (https), exactly as in the tokens' `iss` claim. */
  readonly issuer: string;
  /** Accepted `aud` (or `client_id`) values. */
  readonly audience: readonly string[];
  /** Prepended to read / write / delete, e.g. "dicomweb/" or "api://dicomweb/". */
  readonly scopePrefix: string;
}

export type AuthConfig = CognitoAuthConfig | OidcAuthConfig;

/** Storage-class policy for archived objects (`studies/`); docs/cost-model.md derives the default. */
export type TieringPolicy =
  | {
      readonly policy: 'lifecycle';
      /** Days after creation to move to S3 Standard-IA (≥ 30); omit to skip IA. */
      readonly infrequentAccessAfterDays?: number;
      /** Days after creation to move to S3 Glacier Instant Retrieval; omit to skip. */
      readonly glacierInstantRetrievalAfterDays?: number;
    }
  | { readonly policy: 'intelligent-tiering'; readonly afterDays: number }
  | { readonly policy: 'none' };

export interface StageConfig {
  /** Lower-case name, used in stack names and resource names: [a-z][a-z0-9-]{0,19}. */
  readonly stageName: string;
  /** Deploy target; both unset → environment-agnostic stacks (the default). */
  readonly account?: string;
  readonly region?: string;
  /** CloudWatch Logs retention of every function and API access log group (a value CloudWatch accepts). */
  readonly logRetentionDays: number;
  readonly functions: { readonly [name in FunctionName]: FunctionSettings };
  readonly auth: AuthConfig;
  /** Browser origins allowed by API CORS and by the bucket CORS (presigned uploads). No "*". */
  readonly corsOrigins: readonly string[];
  readonly apiThrottle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly customDomain?: { readonly domainName: string; readonly certificateArn: string };
  /** S3 Object Lock (governance mode) with a default retention; can only be chosen when the bucket is created. */
  readonly objectLock: { readonly enabled: boolean; readonly defaultRetentionDays: number };
  readonly tiering: TieringPolicy;
  /** Noncurrent object versions (deleted or overwritten) are purged after this many days. */
  readonly noncurrentVersionExpirationDays: number;
  /** Server access logs are expired from the log bucket after this many days. */
  readonly accessLogExpirationDays: number;
  /** Optional e-mail subscribed to the alarm topic. */
  readonly alarmEmail?: string;
  /** Objects too large for a Lambda request or response (docs/upload-api.md, docs/architecture.md §Download). */
  readonly largeObjects: {
    /** Largest direct upload accepted (declared size, bytes). */
    readonly maxUploadBytes: number;
    /** Lifetime of presigned download URLs (303 redirects, …/download manifests): short, a URL is a bearer credential. */
    readonly downloadUrlExpiresSeconds: number;
  };
}

type DeepPartial<T> = { -readonly [K in keyof T]?: T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K] };
export type StageConfigInput = DeepPartial<StageConfig>;

/** Values CloudWatch Logs accepts for retentionInDays. */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

export const DEFAULTS: Omit<StageConfig, 'stageName'> = {
  logRetentionDays: 90,
  functions: {
    // Memory also buys CPU: STOW hashes and parses whole instances, WADO slices
    // frames out of them, ingest streams objects of any size (8 MiB multipart parts).
    stow: { memoryMb: 1024, timeoutSeconds: 29 },
    qido: { memoryMb: 512, timeoutSeconds: 29 },
    wado: { memoryMb: 1024, timeoutSeconds: 29 },
    delete: { memoryMb: 512, timeoutSeconds: 29 },
    upload: { memoryMb: 256, timeoutSeconds: 10 },
    // Ingest streams whole uploads (up to 50 GiB) through a hash: the longest timeout Lambda allows
    // (billed only when used); network throughput grows with memory.
    ingest: { memoryMb: 2048, timeoutSeconds: 900 },
  },
  auth: {
    mode: 'cognito',
    scopePrefix: 'dicomweb/',
    callbackUrls: ['http://localhost:3000/callback'],
    logoutUrls: ['http://localhost:3000/'],
  },
  corsOrigins: ['http://localhost:3000'],
  apiThrottle: { rateLimit: 200, burstLimit: 400 },
  objectLock: { enabled: false, defaultRetentionDays: 30 },
  tiering: { policy: 'lifecycle', infrequentAccessAfterDays: 30, glacierInstantRetrievalAfterDays: 90 },
  noncurrentVersionExpirationDays: 30,
  accessLogExpirationDays: 365,
  largeObjects: { maxUploadBytes: 50 * 1024 ** 3, downloadUrlExpiresSeconds: 300 },
};

export class StageConfigError extends Error {
  constructor(
    readonly stageName: string,
    readonly problems: string[],
  ) {
    super(`Invalid stage configuration for "${stageName}":\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'StageConfigError';
  }
}

/** Anything with CDK's context lookup (an App, a Stack, a construct node). */
export interface ContextSource {
  tryGetContext(key: string): unknown;
}

/** Reads, merges and validates the stage configuration from CDK context. */
export function loadStageConfig(context: ContextSource): StageConfig {
  const stageName = String(context.tryGetContext('stage') ?? 'dev');
  const stages = parseContextObject(context.tryGetContext('stages'), 'stages', stageName) ?? {};
  const fromStage = stages[stageName];
  if (fromStage !== undefined && !isPlainObject(fromStage)) throw new StageConfigError(stageName, [`stages.${stageName} must be an object`]);
  const override = parseContextObject(context.tryGetContext('config'), 'config', stageName);
  return resolveStageConfig(stageName, [fromStage as StageConfigInput | undefined, override as StageConfigInput | undefined]);
}

/** DEFAULTS ← each layer in order, then validation. Exported for tests and other tools. */
export function resolveStageConfig(stageName: string, layers: (StageConfigInput | undefined)[] = []): StageConfig {
  let merged: Record<string, unknown> = { ...structuredClone(DEFAULTS), stageName };
  for (const layer of layers) {
    if (!layer) continue;
    const over = { ...(layer as Record<string, unknown>) };
    // A layer that switches the kind of a union setting (auth.mode, tiering.policy) replaces it
    // whole: an OIDC issuer must not inherit Cognito callback URLs, nor Intelligent-Tiering IA days.
    for (const [key, tag] of [['auth', 'mode'], ['tiering', 'policy']] as const) {
      const before = merged[key] as Record<string, unknown> | undefined;
      const after = over[key] as Record<string, unknown> | undefined;
      if (isPlainObject(before) && isPlainObject(after) && after[tag] !== undefined && after[tag] !== before[tag]) {
        merged = { ...merged, [key]: after };
        delete over[key];
      }
    }
    merged = deepMerge(merged, over);
  }
  const problems = validate(merged);
  if (problems.length > 0) throw new StageConfigError(stageName, problems);
  return merged as unknown as StageConfig;
}

export function scopeNames(auth: AuthConfig): { read: string; write: string; delete: string } {
  return { read: `${auth.scopePrefix}read`, write: `${auth.scopePrefix}write`, delete: `${auth.scopePrefix}delete` };
}

// ---------------------------------------------------------------- validation

function parseContextObject(value: unknown, key: string, stageName: string): Record<string, unknown> | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (error) {
      throw new StageConfigError(stageName, [`context "${key}" is not valid JSON: ${(error as Error).message}`]);
    }
  }
  if (!isPlainObject(value)) throw new StageConfigError(stageName, [`context "${key}" must be a JSON object`]);
  return value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(base[k]) ? deepMerge(base[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

const TOP_KEYS = [
  'stageName', 'account', 'region', 'logRetentionDays', 'functions', 'auth', 'corsOrigins', 'apiThrottle', 'customDomain',
  'objectLock', 'tiering', 'noncurrentVersionExpirationDays', 'accessLogExpirationDays', 'alarmEmail', 'largeObjects',
];

function validate(c: Record<string, unknown>): string[] {
  const p: string[] = [];
  const unknownKeys = (obj: Record<string, unknown>, allowed: string[], where: string) => {
    for (const k of Object.keys(obj)) if (!allowed.includes(k)) p.push(`${where}${k}: unknown setting (allowed: ${allowed.join(', ')})`);
  };
  const int = (v: unknown, where: string, min: number, max: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) p.push(`${where} must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
  };
  const obj = (v: unknown, where: string): Record<string, unknown> | undefined => {
    if (isPlainObject(v)) return v;
    p.push(`${where} must be an object (got ${JSON.stringify(v)})`);
    return undefined;
  };

  unknownKeys(c, TOP_KEYS, '');
  if (typeof c.stageName !== 'string' || !/^[a-z][a-z0-9-]{0,19}$/.test(c.stageName)) {
    p.push(`stage name must match [a-z][a-z0-9-]{0,19} (got ${JSON.stringify(c.stageName)})`);
  }
  if (c.account !== undefined && (typeof c.account !== 'string' || !/^\d{12}$/.test(c.account))) p.push(`account must be a 12-digit AWS account id (got ${JSON.stringify(c.account)})`);
  if (c.region !== undefined && (typeof c.region !== 'string' || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(c.region))) p.push(`region must look like "us-east-1" (got ${JSON.stringify(c.region)})`);
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(c.logRetentionDays as number)) {
    p.push(`logRetentionDays must be one of ${LOG_RETENTION_DAYS.join(', ')} (got ${JSON.stringify(c.logRetentionDays)})`);
  }

  const functions = obj(c.functions, 'functions');
  if (functions) {
    unknownKeys(functions, [...FUNCTION_NAMES], 'functions.');
    for (const name of FUNCTION_NAMES) {
      const f = obj(functions[name], `functions.${name}`);
      if (!f) continue;
      unknownKeys(f, ['memoryMb', 'timeoutSeconds', 'reservedConcurrency'], `functions.${name}.`);
      int(f.memoryMb, `functions.${name}.memoryMb`, 128, 10240);
      int(f.timeoutSeconds, `functions.${name}.timeoutSeconds`, 1, API_FUNCTIONS.includes(name) ? 30 : 900);
      if (f.reservedConcurrency !== undefined) int(f.reservedConcurrency, `functions.${name}.reservedConcurrency`, 1, 10000);
    }
  }

  const auth = obj(c.auth, 'auth');
  if (auth) {
    if (typeof auth.scopePrefix !== 'string' || auth.scopePrefix.length === 0 || /\s/.test(auth.scopePrefix)) p.push(`auth.scopePrefix must be a non-empty string without spaces (got ${JSON.stringify(auth.scopePrefix)})`);
    if (auth.mode === 'cognito') {
      unknownKeys(auth, ['mode', 'scopePrefix', 'domainPrefix', 'callbackUrls', 'logoutUrls'], 'auth.');
      if (typeof auth.scopePrefix === 'string' && !/^[\w.-]+\/$/.test(auth.scopePrefix)) {
        p.push(`auth.scopePrefix in cognito mode is the resource server identifier plus "/", e.g. "dicomweb/" (got ${JSON.stringify(auth.scopePrefix)})`);
      }
      if (auth.domainPrefix !== undefined && (typeof auth.domainPrefix !== 'string' || !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(auth.domainPrefix) || /aws|amazon|cognito/.test(auth.domainPrefix))) {
        p.push(`auth.domainPrefix must be lower-case letters, digits and hyphens, without "aws", "amazon" or "cognito" (got ${JSON.stringify(auth.domainPrefix)})`);
      }
      for (const key of ['callbackUrls', 'logoutUrls'] as const) {
        const urls = auth[key];
        if (!Array.isArray(urls) || urls.length === 0) p.push(`auth.${key} must be a non-empty list of URLs`);
        else for (const u of urls) if (!isRedirectUrl(u)) p.push(`auth.${key}: ${JSON.stringify(u)} must be an https URL (http only for localhost)`);
      }
    } else if (auth.mode === 'oidc') {
      unknownKeys(auth, ['mode', 'scopePrefix', 'issuer', 'audience'], 'auth.');
      if (typeof auth.issuer !== 'string' || !/^https:\/\/[^\s/]+(\/\S*)?$/.test(auth.issuer)) p.push(`auth.issuer is required in oidc mode and must be an https URL (got ${JSON.stringify(auth.issuer)})`);
      if (!Array.isArray(auth.audience) || auth.audience.length === 0 || !auth.audience.every((a) => typeof a === 'string' && a.length > 0)) {
        p.push(`auth.audience is required in oidc mode: a non-empty list of strings (got ${JSON.stringify(auth.audience)})`);
      }
    } else {
      p.push(`auth.mode must be "cognito" or "oidc" (got ${JSON.stringify(auth.mode)})`);
    }
  }

  if (!Array.isArray(c.corsOrigins)) p.push('corsOrigins must be a list of origins');
  else for (const o of c.corsOrigins) if (!isOrigin(o)) p.push(`corsOrigins: ${JSON.stringify(o)} must be an origin like "https://viewer.example.org" (http only for localhost; "*" is not allowed: responses carry PHI)`);

  const large = obj(c.largeObjects, 'largeObjects');
  if (large) {
    unknownKeys(large, ['maxUploadBytes', 'downloadUrlExpiresSeconds'], 'largeObjects.');
    // S3's largest object is 5 TiB (10,000 parts of at most 5 GiB would be more).
    int(large.maxUploadBytes, 'largeObjects.maxUploadBytes', 1, 5 * 1024 ** 4);
    int(large.downloadUrlExpiresSeconds, 'largeObjects.downloadUrlExpiresSeconds', 1, 3600);
  }

  const throttle = obj(c.apiThrottle, 'apiThrottle');
  if (throttle) {
    unknownKeys(throttle, ['rateLimit', 'burstLimit'], 'apiThrottle.');
    int(throttle.rateLimit, 'apiThrottle.rateLimit', 1, 100000);
    int(throttle.burstLimit, 'apiThrottle.burstLimit', 1, 100000);
  }

  if (c.customDomain !== undefined) {
    const d = obj(c.customDomain, 'customDomain');
    if (d) {
      unknownKeys(d, ['domainName', 'certificateArn'], 'customDomain.');
      if (typeof d.domainName !== 'string' || !/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$/.test(d.domainName)) p.push(`customDomain.domainName must be a lower-case DNS name (got ${JSON.stringify(d.domainName)})`);
      if (typeof d.certificateArn !== 'string' || !/^arn:aws[\w-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[\w-]+$/.test(d.certificateArn)) p.push(`customDomain.certificateArn must be an ACM certificate ARN (got ${JSON.stringify(d.certificateArn)})`);
      else if (typeof c.region === 'string' && d.certificateArn.split(':')[3] !== c.region) p.push(`customDomain.certificateArn must be in the stack's region ${c.region} (regional API endpoint)`);
    }
  }

  const lock = obj(c.objectLock, 'objectLock');
  if (lock) {
    unknownKeys(lock, ['enabled', 'defaultRetentionDays'], 'objectLock.');
    if (typeof lock.enabled !== 'boolean') p.push(`objectLock.enabled must be true or false (got ${JSON.stringify(lock.enabled)})`);
    int(lock.defaultRetentionDays, 'objectLock.defaultRetentionDays', 1, 36500);
  }

  const tiering = obj(c.tiering, 'tiering');
  if (tiering) {
    if (tiering.policy === 'lifecycle') {
      unknownKeys(tiering, ['policy', 'infrequentAccessAfterDays', 'glacierInstantRetrievalAfterDays'], 'tiering.');
      const ia = tiering.infrequentAccessAfterDays;
      const gir = tiering.glacierInstantRetrievalAfterDays;
      // S3 rule: an object must stay ≥ 30 days in Standard before Standard-IA, and ≥ 30 days in IA before moving on.
      if (ia !== undefined) int(ia, 'tiering.infrequentAccessAfterDays', 30, 36500);
      if (gir !== undefined) int(gir, 'tiering.glacierInstantRetrievalAfterDays', 1, 36500);
      if (typeof ia === 'number' && typeof gir === 'number' && gir < ia + 30) p.push(`tiering.glacierInstantRetrievalAfterDays must be at least 30 days after infrequentAccessAfterDays (${ia} + 30)`);
      if (ia === undefined && gir === undefined) p.push('tiering: a lifecycle policy needs infrequentAccessAfterDays and/or glacierInstantRetrievalAfterDays (or use policy "none")');
    } else if (tiering.policy === 'intelligent-tiering') {
      unknownKeys(tiering, ['policy', 'afterDays'], 'tiering.');
      int(tiering.afterDays, 'tiering.afterDays', 0, 36500);
    } else if (tiering.policy === 'none') {
      unknownKeys(tiering, ['policy'], 'tiering.');
    } else {
      p.push(`tiering.policy must be "lifecycle", "intelligent-tiering" or "none" (got ${JSON.stringify(tiering.policy)})`);
    }
  }

  int(c.noncurrentVersionExpirationDays, 'noncurrentVersionExpirationDays', 1, 36500);
  int(c.accessLogExpirationDays, 'accessLogExpirationDays', 1, 36500);
  if (c.alarmEmail !== undefined && (typeof c.alarmEmail !== 'string' || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(c.alarmEmail))) p.push(`alarmEmail must be an e-mail address (got ${JSON.stringify(c.alarmEmail)})`);
  return p;
}

function isLocalhost(url: URL): boolean {
  return url.hostname === 'localhost' || url.hostname === '127.0.0.1';
}

function isOrigin(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const u = new URL(value);
    return u.origin === value && (u.protocol === 'https:' || (u.protocol === 'http:' && isLocalhost(u)));
  } catch {
    return false;
  }
}

function isRedirectUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const u = new URL(value);
    return u.protocol === 'https:' || (u.protocol === 'http:' && isLocalhost(u));
  } catch {
    return false;
  }
}
