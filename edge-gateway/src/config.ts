/**
 * Load the gateway's JSON configuration file, validate it strictly and fill in
 * defaults (config-types.ts). Every error names the field it is about, so an
 * operator can fix the file without reading code; secrets are never echoed.
 *
 * Relative paths (spool.dir, TLS files) are resolved against the directory of
 * the config file, so a config can be moved with its spool. Secrets may come
 * from the environment instead of the file: GATEWAY_CLIENT_SECRET,
 * GATEWAY_API_KEY.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type {
  CloudAuthConfig,
  CloudConfig,
  DimseConfig,
  GatewayConfig,
  HttpConfig,
  RemoteNodeConfig,
  SpoolConfig,
  TlsFilesConfig,
  UploaderConfig,
} from './config-types';

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    message: string,
    /** Dotted path of the offending field, e.g. `dimse.aeTitle`. */
    readonly field?: string,
  ) {
    super(field ? `${field}: ${message}` : message);
    this.name = 'ConfigError';
  }
}

const MiB = 1024 * 1024;

export const CONFIG_DEFAULTS = {
  dimse: { host: '0.0.0.0', port: 11112, maxPduLength: 116794, maxAssociations: 32, idleTimeoutMs: 60_000, artimTimeoutMs: 30_000 },
  cloud: { requestTimeoutMs: 60_000 },
  spool: { fsync: true, ackMode: 'spool' as const, doneRetentionMs: 7 * 24 * 3600_000, minFreeBytes: 256 * MiB },
  uploader: { concurrency: 4, largeObjectThresholdBytes: 32 * MiB, retry: { initialDelayMs: 1_000, maxDelayMs: 5 * 60_000, maxAttempts: 0 } },
  http: { host: '127.0.0.1', port: 8081 },
};

/** Environment variables that override secrets of the file. */
export interface ConfigEnv {
  GATEWAY_CLIENT_SECRET?: string;
  GATEWAY_API_KEY?: string;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Field readers: each checks type and range, naming the field in its error. */
class Fields {
  constructor(
    private readonly obj: Json,
    private readonly prefix: string,
    allowed: readonly string[],
  ) {
    // Unknown keys are refused: a typo (e.g. "maxPDULength") would otherwise silently fall back to the default.
    for (const key of Object.keys(obj)) if (!allowed.includes(key)) throw new ConfigError(`unknown field (expected one of ${allowed.join(', ')})`, this.name(key));
  }

  name(key: string): string {
    return this.prefix ? `${this.prefix}.${key}` : key;
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined;
  }

  object(key: string, required = false): Json | undefined {
    const v = this.obj[key];
    if (v === undefined) {
      if (required) throw new ConfigError('is required', this.name(key));
      return undefined;
    }
    if (!isObject(v)) throw new ConfigError('must be an object', this.name(key));
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = this.obj[key];
    if (v === undefined) {
      if (fallback === undefined) throw new ConfigError('is required', this.name(key));
      return fallback;
    }
    if (typeof v !== 'string' || v.length === 0) throw new ConfigError('must be a non-empty string', this.name(key));
    return v;
  }

  optionalString(key: string): string | undefined {
    return this.obj[key] === undefined ? undefined : this.string(key);
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') throw new ConfigError('must be true or false', this.name(key));
    return v;
  }

  integer(key: string, fallback: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.obj[key];
    if (v === undefined) {
      if (fallback === undefined) throw new ConfigError('is required', this.name(key));
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new ConfigError(`must be an integer from ${min} to ${max === Number.MAX_SAFE_INTEGER ? 'any' : max}`, this.name(key));
    }
    return v;
  }

  stringArray(key: string, check?: (s: string, field: string) => void): string[] | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new ConfigError('must be an array of strings', this.name(key));
    (v as string[]).forEach((s, i) => check?.(s, `${this.name(key)}[${i}]`));
    return [...(v as string[])];
  }
}

/**
 * AE title (PS3.5 Table 6.2-1, VR AE): 1–16 characters of the default
 * repertoire, no backslash or control characters; leading/trailing spaces are
 * not significant, so an all-space title is empty.
 */
export function checkAETitle(value: string, field: string): void {
  if (value.length < 1 || value.length > 16) throw new ConfigError('an AE title is 1 to 16 characters', field);
  if (value.includes('\\')) throw new ConfigError('an AE title must not contain a backslash', field);
  if (!/^[\x20-\x7e]+$/.test(value)) throw new ConfigError('an AE title uses printable ASCII only', field);
  if (value.trim().length === 0) throw new ConfigError('an AE title must not be all spaces', field);
}

function checkPort(f: Fields, key: string, fallback: number | undefined, allowZero = false): number {
  return f.integer(key, fallback, allowZero ? 0 : 1, 65535);
}

function checkUrl(value: string, field: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('must be an absolute http(s) URL', field);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('must be an http or https URL', field);
  if (url.username || url.password) throw new ConfigError('must not carry credentials (use cloud.auth)', field);
  if (url.search || url.hash) throw new ConfigError('must not have a query or fragment', field);
  // Without the trailing slash, so paths can be appended: `${dicomWebUrl}/studies`.
  return url.toString().replace(/\/+$/, '');
}

function resolvePath(baseDir: string, p: string): string {
  return path.resolve(baseDir, p);
}

function parseDimse(obj: Json, baseDir: string): DimseConfig {
  const f = new Fields(obj, 'dimse', [
    'aeTitle',
    'host',
    'port',
    'allowedCallingAETitles',
    'allowedIPs',
    'destinations',
    'tls',
    'maxPduLength',
    'maxAssociations',
    'idleTimeoutMs',
    'artimTimeoutMs',
  ]);
  const aeTitle = f.string('aeTitle');
  checkAETitle(aeTitle, 'dimse.aeTitle');
  const destinations: Record<string, RemoteNodeConfig> = {};
  const dest = f.object('destinations') ?? {};
  for (const [ae, node] of Object.entries(dest)) {
    const field = `dimse.destinations.${ae}`;
    checkAETitle(ae, field);
    if (!isObject(node)) throw new ConfigError('must be an object {host, port, tls?}', field);
    const nf = new Fields(node, field, ['host', 'port', 'tls']);
    destinations[ae] = { host: nf.string('host'), port: checkPort(nf, 'port', undefined), ...(nf.has('tls') ? { tls: nf.boolean('tls', false) } : {}) };
  }
  let tls: TlsFilesConfig | undefined;
  const tlsObj = f.object('tls');
  if (tlsObj) {
    const tf = new Fields(tlsObj, 'dimse.tls', ['certFile', 'keyFile', 'caFile', 'requireClientCert']);
    tls = {
      certFile: resolvePath(baseDir, tf.string('certFile')),
      keyFile: resolvePath(baseDir, tf.string('keyFile')),
      ...(tf.has('caFile') ? { caFile: resolvePath(baseDir, tf.string('caFile')) } : {}),
      requireClientCert: tf.boolean('requireClientCert', false),
    };
    if (tls.requireClientCert && !tls.caFile) throw new ConfigError('requireClientCert needs caFile to verify client certificates', 'dimse.tls.requireClientCert');
  }
  const d = CONFIG_DEFAULTS.dimse;
  return {
    aeTitle,
    host: f.string('host', d.host),
    port: checkPort(f, 'port', d.port, true),
    allowedCallingAETitles: f.stringArray('allowedCallingAETitles', checkAETitle),
    allowedIPs: f.stringArray('allowedIPs'),
    destinations,
    ...(tls ? { tls } : {}),
    // PS3.8 §D.1: 0 would mean "unlimited"; we insist on a bound, at least the minimum a peer may assume.
    maxPduLength: f.integer('maxPduLength', d.maxPduLength, 4096, 0xffffffff),
    maxAssociations: f.integer('maxAssociations', d.maxAssociations, 1, 10_000),
    idleTimeoutMs: f.integer('idleTimeoutMs', d.idleTimeoutMs, 1),
    artimTimeoutMs: f.integer('artimTimeoutMs', d.artimTimeoutMs, 1),
  };
}

function parseAuth(obj: Json | undefined, env: ConfigEnv): CloudAuthConfig {
  const kind = obj?.kind ?? (env.GATEWAY_API_KEY ? 'apiKey' : 'none');
  if (kind === 'none') {
    if (obj) new Fields(obj, 'cloud.auth', ['kind']);
    return { kind: 'none' };
  }
  if (kind === 'apiKey') {
    const f = new Fields(obj ?? {}, 'cloud.auth', ['kind', 'apiKey']);
    const apiKey = env.GATEWAY_API_KEY || f.optionalString('apiKey');
    if (!apiKey) throw new ConfigError('is required (or set GATEWAY_API_KEY)', 'cloud.auth.apiKey');
    if (/\s|,/.test(apiKey)) throw new ConfigError('must not contain whitespace or commas', 'cloud.auth.apiKey');
    return { kind: 'apiKey', apiKey };
  }
  if (kind === 'clientCredentials') {
    const f = new Fields(obj ?? {}, 'cloud.auth', ['kind', 'tokenUrl', 'clientId', 'clientSecret', 'scope']);
    const clientSecret = env.GATEWAY_CLIENT_SECRET || f.optionalString('clientSecret');
    if (!clientSecret) throw new ConfigError('is required (or set GATEWAY_CLIENT_SECRET)', 'cloud.auth.clientSecret');
    const scope = f.optionalString('scope');
    return {
      kind: 'clientCredentials',
      tokenUrl: checkUrl(f.string('tokenUrl'), 'cloud.auth.tokenUrl'),
      clientId: f.string('clientId'),
      clientSecret,
      ...(scope ? { scope } : {}),
    };
  }
  throw new ConfigError('must be "none", "apiKey" or "clientCredentials"', 'cloud.auth.kind');
}

function parseCloud(obj: Json, env: ConfigEnv): CloudConfig {
  const f = new Fields(obj, 'cloud', ['dicomWebUrl', 'auth', 'requestTimeoutMs']);
  return {
    dicomWebUrl: checkUrl(f.string('dicomWebUrl'), 'cloud.dicomWebUrl'),
    auth: parseAuth(f.object('auth'), env),
    requestTimeoutMs: f.integer('requestTimeoutMs', CONFIG_DEFAULTS.cloud.requestTimeoutMs, 1),
  };
}

function parseSpool(obj: Json, baseDir: string): SpoolConfig {
  const f = new Fields(obj, 'spool', ['dir', 'fsync', 'ackMode', 'doneRetentionMs', 'minFreeBytes']);
  const d = CONFIG_DEFAULTS.spool;
  const ackMode = f.string('ackMode', d.ackMode);
  if (ackMode !== 'spool' && ackMode !== 'cloud') throw new ConfigError('must be "spool" or "cloud"', 'spool.ackMode');
  return {
    dir: resolvePath(baseDir, f.string('dir')),
    fsync: f.boolean('fsync', d.fsync),
    ackMode,
    doneRetentionMs: f.integer('doneRetentionMs', d.doneRetentionMs, 0),
    minFreeBytes: f.integer('minFreeBytes', d.minFreeBytes, 0),
  };
}

function parseUploader(obj: Json): UploaderConfig {
  const f = new Fields(obj, 'uploader', ['concurrency', 'largeObjectThresholdBytes', 'retry']);
  const d = CONFIG_DEFAULTS.uploader;
  const r = new Fields(f.object('retry') ?? {}, 'uploader.retry', ['initialDelayMs', 'maxDelayMs', 'maxAttempts']);
  const initialDelayMs = r.integer('initialDelayMs', d.retry.initialDelayMs, 1);
  const maxDelayMs = r.integer('maxDelayMs', Math.max(d.retry.maxDelayMs, initialDelayMs), 1);
  if (maxDelayMs < initialDelayMs) throw new ConfigError('must be at least uploader.retry.initialDelayMs', 'uploader.retry.maxDelayMs');
  return {
    concurrency: f.integer('concurrency', d.concurrency, 1, 256),
    largeObjectThresholdBytes: f.integer('largeObjectThresholdBytes', d.largeObjectThresholdBytes, 1),
    retry: { initialDelayMs, maxDelayMs, maxAttempts: r.integer('maxAttempts', d.retry.maxAttempts, 0) },
  };
}

function parseHttp(obj: Json): HttpConfig {
  const f = new Fields(obj, 'http', ['host', 'port']);
  return { host: f.string('host', CONFIG_DEFAULTS.http.host), port: checkPort(f, 'port', CONFIG_DEFAULTS.http.port, true) };
}

/** Validate an already-parsed config object; `baseDir` resolves relative paths. */
export function parseConfig(raw: unknown, baseDir: string, env: ConfigEnv = process.env): GatewayConfig {
  if (!isObject(raw)) throw new ConfigError('the configuration must be a JSON object');
  const f = new Fields(raw, '', ['$schema', '$comment', 'dimse', 'cloud', 'spool', 'uploader', 'http']);
  return {
    dimse: parseDimse(f.object('dimse', true)!, baseDir),
    cloud: parseCloud(f.object('cloud', true)!, env),
    spool: parseSpool(f.object('spool', true)!, baseDir),
    uploader: parseUploader(f.object('uploader') ?? {}),
    http: parseHttp(f.object('http') ?? {}),
  };
}

/** Read, parse and validate a config file. Throws ConfigError. */
export function loadConfig(file: string, env: ConfigEnv = process.env): GatewayConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read the configuration file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseConfig(raw, path.dirname(path.resolve(file)), env);
}
