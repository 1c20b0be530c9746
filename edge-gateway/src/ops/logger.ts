/**
 * PHI-free structured logging: JSON lines on stderr. Only fields on an
 * allow-list are written, and only as numbers, booleans or short strings of
 * safe characters; anything else is dropped and counted. A patient name or ID
 * therefore cannot reach the log by accident, even through an error message:
 * error messages are written by code (`err` is reduced to its `code`).
 * UIDs are allowed: they identify objects, not people (PS3.15 Annex E keeps
 * them as-is only when they are not derived from identifiers — ours come from
 * the modality and are needed to trace an instance through the queue).
 */

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
}

export type LogFields = Record<string, unknown>;
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Field names that may be logged. Extend deliberately: each must be unable to carry PHI. */
export const LOG_FIELD_ALLOW_LIST: ReadonlySet<string> = new Set([
  'id',
  'ids',
  'sopInstanceUID',
  'sopClassUID',
  'studyInstanceUID',
  'seriesInstanceUID',
  'transferSyntaxUID',
  'uploadId',
  'state',
  'from',
  'to',
  'attempts',
  'attempt',
  'delayMs',
  'retryAfterMs',
  'status',
  'code',
  'reason',
  'sizeBytes',
  'bytes',
  'durationMs',
  'count',
  'queued',
  'inflight',
  'incoming',
  'done',
  'quarantine',
  'recovered',
  'deleted',
  'pruned',
  'skipped',
  'failed',
  'imported',
  'files',
  'concurrency',
  'paused',
  'callingAETitle',
  'route',
  'port',
  'host',
  'dir',
  'pid',
  'failureReason',
  'partCount',
  'command',
]);

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/**
 * Safe string values: printable ASCII without quotes, backslashes, '^' or '=', bounded.
 * '^' is the component separator of Person Name (PS3.5 §6.2.1.2) and '=' of its
 * ideographic groups, so a DICOM-formatted name never passes, even in an allowed field.
 */
const SAFE_STRING = /^[A-Za-z0-9 ._:/+()@#,;\-[\]]{0,200}$/;

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go (default: process.stderr). */
  write?: (line: string) => void;
  now?: () => Date;
}

function sanitize(fields: LogFields | undefined): { clean: Record<string, unknown>; dropped: number } {
  const clean: Record<string, unknown> = {};
  let dropped = 0;
  if (!fields) return { clean, dropped };
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'err') {
      // Errors are reduced to a stable code: their messages may quote input.
      const code = (v as { code?: unknown } | undefined)?.code;
      const name = (v as { name?: unknown } | undefined)?.name;
      const c = typeof code === 'string' || typeof code === 'number' ? String(code) : typeof name === 'string' ? name : 'Error';
      if (SAFE_STRING.test(c)) clean.errCode = c;
      continue;
    }
    if (!LOG_FIELD_ALLOW_LIST.has(k)) {
      dropped++;
      continue;
    }
    if (typeof v === 'number' || typeof v === 'boolean') clean[k] = v;
    else if (typeof v === 'string' && SAFE_STRING.test(v)) clean[k] = v;
    else if (Array.isArray(v) && v.length <= 20 && v.every((x) => typeof x === 'string' && SAFE_STRING.test(x))) clean[k] = v;
    else dropped++;
  }
  return { clean, dropped };
}

export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const min = LEVELS[options.level ?? ((process.env.GATEWAY_LOG_LEVEL as LogLevel | undefined) ?? 'info')] ?? LEVELS.info;
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? (() => new Date());
  const log = (level: LogLevel) => (msg: string, fields?: LogFields) => {
    if (LEVELS[level] < min) return;
    const { clean, dropped } = sanitize(fields);
    // The message itself is a constant written by code; still, keep it to safe characters.
    const line: Record<string, unknown> = { time: now().toISOString(), level, logger: name, msg: SAFE_STRING.test(msg) ? msg : msg.replace(/[^A-Za-z0-9 ._:/+()@#,;\-[\]]/g, '?').slice(0, 200), ...clean };
    if (dropped) line.droppedFields = dropped;
    write(`${JSON.stringify(line)}\n`);
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/** A logger that writes nothing (tests). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
