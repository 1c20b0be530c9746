/**
 * multipart/related bodies (RFC 2387) in the common multipart syntax of
 * RFC 2046 §5.1.1, as PS3.18 §8.6.1.2 uses them for STOW-RS requests and
 * WADO-RS responses. Streaming both ways, Web-standard types only.
 *
 * RFC 2046 §5.1.1 grammar (abridged):
 *   multipart-body := [preamble CRLF] dash-boundary transport-padding CRLF
 *                     body-part *encapsulation close-delimiter transport-padding [CRLF epilogue]
 *   encapsulation  := delimiter transport-padding CRLF body-part
 *   delimiter      := CRLF dash-boundary          dash-boundary := "--" boundary
 *   close-delimiter := delimiter "--"            transport-padding := *LWSP-char
 *   body-part      := MIME-part-headers [CRLF *OCTET]
 * The CRLF before a delimiter belongs to the delimiter, not to the part body.
 */
import { formatMediaType, parseMediaType } from './media-type';
import { concatBytes, toReadableStream } from '../bytes';

// ---------------------------------------------------------------------------
// Errors

export type MultipartErrorCode = 'MULTIPART_MALFORMED' | 'MULTIPART_LIMIT' | 'UNSUPPORTED_MEDIA_TYPE';

/** Stable `code`s match the archive error table (400 / 413 / 415). */
export class MultipartError extends Error {
  readonly code: MultipartErrorCode;
  constructor(code: MultipartErrorCode, message: string) {
    super(message);
    this.name = 'MultipartError';
    this.code = code;
  }
}

const malformed = (message: string) => new MultipartError('MULTIPART_MALFORMED', message);
const overLimit = (message: string) => new MultipartError('MULTIPART_LIMIT', message);

// ---------------------------------------------------------------------------
// Boundary and Content-Type

// RFC 2046 §5.1.1: bcharsnospace := DIGIT / ALPHA / "'" / "(" / ")" / "+" / "_" / "," / "-" / "." / "/" / ":" / "=" / "?"
//                  boundary := 0*69<bchars> bcharsnospace ; bchars := bcharsnospace / " "
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

export function isValidBoundary(boundary: string): boolean {
  return typeof boundary === 'string' && BOUNDARY.test(boundary);
}

function assertBoundary(boundary: string): void {
  if (!isValidBoundary(boundary)) {
    throw malformed('invalid multipart boundary: 1 to 70 characters of the RFC 2046 §5.1.1 set, not ending with a space');
  }
}

export interface MultipartRelatedType {
  boundary: string;
  /** The root part's media type (RFC 2387 §3.1 "type"), lower-cased, e.g. "application/dicom". */
  type?: string;
  /** RFC 2387 §3.2 "start": the Content-ID of the root part. */
  start?: string;
  /** All parameters (names lower-cased). */
  params: Map<string, string>;
}

/**
 * Boundary and root type of a `multipart/related` Content-Type (PS3.18 §8.6.1.2.1,
 * §8.7.3.5.1), parameters quoted or not, in any order.
 * Throws `UNSUPPORTED_MEDIA_TYPE` when it is not multipart/related,
 * `MULTIPART_MALFORMED` when the boundary is missing or invalid, and
 * `INVALID_MEDIA_TYPE` when the value is not a media type at all.
 */
export function parseMultipartRelated(contentType: string): MultipartRelatedType {
  const mt = parseMediaType(contentType);
  if (mt.type !== 'multipart/related') throw new MultipartError('UNSUPPORTED_MEDIA_TYPE', `expected multipart/related, got ${mt.type}`);
  const boundary = mt.params.get('boundary');
  if (boundary === undefined) throw malformed('multipart/related without a boundary parameter');
  assertBoundary(boundary);
  const type = mt.params.get('type');
  let rootType: string | undefined;
  if (type !== undefined) {
    // The type parameter is itself a media type (RFC 2387 §3.1), possibly with parameters of its own.
    try {
      rootType = parseMediaType(type).type;
    } catch {
      throw malformed('the type parameter of multipart/related is not a media type');
    }
  }
  return { boundary, type: rootType, start: mt.params.get('start'), params: mt.params };
}

/** A fresh random boundary: a UUID (36 token characters, valid per RFC 2046). */
export function newBoundary(): string {
  return crypto.randomUUID();
}

// ---------------------------------------------------------------------------
// Byte helpers (Uint8Array only: no Node Buffer in the core)

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const SP = 0x20;
const HTAB = 0x09;
const CRLF_BYTES = Uint8Array.of(CR, LF);
const encoder = new TextEncoder();
const headerDecoder = new TextDecoder('utf-8');

/**
 * First index of `needle` in `hay` at or after `from`, or -1. Jumps between
 * candidates with the native TypedArray indexOf on the first byte, then
 * compares the (short) rest: no per-byte JS loop over the data.
 */
export function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  const n = needle.length;
  if (n === 0) return from <= hay.length ? from : -1;
  const first = needle[0]!;
  const last = hay.length - n;
  let i = hay.indexOf(first, from);
  while (i !== -1 && i <= last) {
    let k = 1;
    while (k < n && hay[i + k] === needle[k]) k++;
    if (k === n) return i;
    i = hay.indexOf(first, i + 1);
  }
  return -1;
}

/** Smallest k ≥ from such that hay[k..] is a proper prefix of `needle` (a match may continue in the next chunk), else hay.length. */
function partialMatchStart(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const start = Math.max(from, hay.length - needle.length + 1);
  const first = needle[0]!;
  let i = hay.indexOf(first, start);
  while (i !== -1) {
    let k = 1;
    while (i + k < hay.length && hay[i + k] === needle[k]) k++;
    if (i + k === hay.length) return i;
    i = hay.indexOf(first, i + 1);
  }
  return hay.length;
}

/** Bytes of any ArrayBufferView (realm-safe: no instanceof, which fails across vm contexts such as jest's). */
function asBytes(value: unknown): Uint8Array | undefined {
  if (!ArrayBuffer.isView(value)) return undefined;
  if (Object.prototype.toString.call(value) === '[object Uint8Array]') return value as Uint8Array;
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function toAsyncIterator(body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): AsyncIterator<Uint8Array> {
  if (Symbol.asyncIterator in body) return (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const reader = (body as ReadableStream<Uint8Array>).getReader();
  return {
    async next() {
      const r = await reader.read();
      return r.done ? { done: true, value: undefined } : { done: false, value: r.value };
    },
    async return() {
      try {
        await reader.cancel();
      } finally {
        reader.releaseLock();
      }
      return { done: true, value: undefined };
    },
  };
}

// ---------------------------------------------------------------------------
// Reader

export interface MultipartLimits {
  /** Most parts accepted; one more is MULTIPART_LIMIT. */
  maxParts: number;
  /** Most bytes in one part's header block (all lines with their CRLFs). */
  maxHeaderBytes: number;
  /** Most bytes read from the body in total (preamble, parts, delimiters). */
  maxBodyBytes: number;
}

export interface MultipartPart {
  /** Part header fields, names lower-cased; repeated fields joined with ", ". */
  headers: Map<string, string>;
  contentType?: string;
  contentLocation?: string;
  /**
   * The part's content, streamed (single use). Read it (or leave it: it is
   * drained, without buffering, when the next part is requested) before asking
   * for the next part. Malformation or limits found while reading throw from here.
   */
  body: AsyncIterable<Uint8Array>;
}

/** Buffered view over the source: `buf[pos..]` is unread. Only a delimiter-length carry or one header block is ever held. */
class Scanner {
  buf: Uint8Array;
  pos = 0;
  total = 0;
  eof = false;
  busy = false;
  constructor(
    private readonly source: AsyncIterator<Uint8Array>,
    private readonly maxBodyBytes: number,
    initial: Uint8Array,
  ) {
    this.buf = initial;
  }
  get available(): number {
    return this.buf.length - this.pos;
  }
  /** Read one more chunk, keeping the unread bytes. False at end of input. */
  async fill(): Promise<boolean> {
    if (this.eof) return false;
    for (;;) {
      const r = await this.source.next();
      if (r.done) {
        this.eof = true;
        return false;
      }
      const chunk = asBytes(r.value);
      if (!chunk) throw new TypeError('multipart body chunks must be Uint8Array');
      this.total += chunk.length;
      if (this.total > this.maxBodyBytes) throw overLimit(`the multipart body exceeds ${this.maxBodyBytes} bytes`);
      if (chunk.length === 0) continue;
      // Concatenation only happens when a partial delimiter or header is pending: small.
      this.buf = this.available > 0 ? concat(this.buf.subarray(this.pos), chunk) : chunk;
      this.pos = 0;
      return true;
    }
  }
  /** Ensure at least n unread bytes; false if the input ends first. */
  async ensure(n: number): Promise<boolean> {
    while (this.available < n) if (!(await this.fill())) return false;
    return true;
  }
  async close(): Promise<void> {
    if (!this.eof) {
      this.eof = true;
      await this.source.return?.();
    }
  }
}

/**
 * One step of "stream until delimiter": returns the next piece of content
 * before the delimiter and whether the delimiter was reached (and consumed).
 * Never returns bytes that could begin a delimiter split across chunks.
 */
async function nextBeforeDelimiter(sc: Scanner, delimiter: Uint8Array): Promise<{ chunk: Uint8Array; found: boolean } | undefined> {
  for (;;) {
    const idx = indexOfBytes(sc.buf, delimiter, sc.pos);
    if (idx !== -1) {
      const chunk = sc.buf.subarray(sc.pos, idx);
      sc.pos = idx + delimiter.length;
      return { chunk, found: true };
    }
    const keep = partialMatchStart(sc.buf, delimiter, sc.pos);
    if (keep > sc.pos) {
      const chunk = sc.buf.subarray(sc.pos, keep);
      sc.pos = keep;
      return { chunk, found: false };
    }
    if (!(await sc.fill())) return undefined;
  }
}

/** After a delimiter: "--" closes; else transport-padding (LWSP) then CRLF opens a part (RFC 2046 §5.1.1). */
async function afterDelimiter(sc: Scanner, maxPadding: number): Promise<'part' | 'close'> {
  if (!(await sc.ensure(2))) throw malformed('the multipart body ends right after a boundary (truncated)');
  if (sc.buf[sc.pos] === DASH && sc.buf[sc.pos + 1] === DASH) {
    sc.pos += 2;
    return 'close';
  }
  let padding = 0;
  for (;;) {
    if (!(await sc.ensure(1))) throw malformed('the multipart body ends inside a boundary line (truncated)');
    const b = sc.buf[sc.pos]!;
    if (b === SP || b === HTAB) {
      sc.pos++;
      if (++padding > maxPadding) throw malformed('too much whitespace after a boundary');
      continue;
    }
    if (b === CR) {
      if (!(await sc.ensure(2))) throw malformed('the multipart body ends inside a boundary line (truncated)');
      if (sc.buf[sc.pos + 1] === LF) {
        sc.pos += 2;
        return 'part';
      }
    }
    throw malformed('unexpected characters after a boundary delimiter (the boundary appears inside a part, or the line is not CRLF-terminated)');
  }
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** MIME-part-headers up to and including the empty line (RFC 2045 §3, RFC 5322 §2.2 field syntax, obs-fold unfolded). */
async function readHeaders(sc: Scanner, maxHeaderBytes: number): Promise<Map<string, string>> {
  const headers = new Map<string, string>();
  let used = 0;
  let last: string | undefined;
  for (;;) {
    let idx = indexOfBytes(sc.buf, CRLF_BYTES, sc.pos);
    while (idx === -1) {
      if (used + sc.available > maxHeaderBytes) throw overLimit(`a part header block exceeds ${maxHeaderBytes} bytes`);
      if (!(await sc.fill())) throw malformed('the multipart body ends inside part headers (truncated)');
      idx = indexOfBytes(sc.buf, CRLF_BYTES, sc.pos);
    }
    const lineBytes = sc.buf.subarray(sc.pos, idx);
    used += lineBytes.length + 2;
    if (used > maxHeaderBytes) throw overLimit(`a part header block exceeds ${maxHeaderBytes} bytes`);
    sc.pos = idx + 2;
    if (lineBytes.length === 0) return headers; // the empty line ending the header block
    const line = headerDecoder.decode(lineBytes);
    if (line.startsWith(' ') || line.startsWith('\t')) {
      // obs-fold continuation (RFC 5322 §2.2.3)
      if (last === undefined) throw malformed('part header block starts with a continuation line');
      headers.set(last, `${headers.get(last)} ${line.trim()}`.trim());
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).toLowerCase() : '';
    if (!HEADER_NAME.test(name)) {
      throw malformed('invalid part header line: each part needs "Name: value" header lines ended by an empty line');
    }
    const value = line.slice(colon + 1).trim();
    const previous = headers.get(name);
    if (previous !== undefined) {
      if (name === 'content-type') throw malformed('a part has two Content-Type headers');
      headers.set(name, `${previous}, ${value}`);
    } else {
      headers.set(name, value);
    }
    last = name;
  }
}

/**
 * Parse a multipart body lazily. Parts are yielded one at a time; each part's
 * body streams from the source (memory is bounded by one header block plus a
 * delimiter-length carry, whatever the part size).
 *
 * Tolerated (RFC 2046 §5.1.1 allows or real clients send): a preamble and/or a
 * leading CRLF before the first boundary, LWSP after a boundary, a missing CRLF
 * after the close delimiter, an epilogue (not read). Everything else throws a
 * `MultipartError`: MULTIPART_MALFORMED (no opening boundary, truncated body,
 * part headers not ended by an empty line, characters after a boundary, no
 * parts) or MULTIPART_LIMIT (maxParts, maxHeaderBytes, maxBodyBytes).
 */
export async function* readMultipart(
  body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  boundary: string,
  limits: MultipartLimits,
): AsyncGenerator<MultipartPart, void, undefined> {
  assertBoundary(boundary);
  const delimiter = encoder.encode(`\r\n--${boundary}`);
  // A virtual CRLF in front lets "--boundary" at offset 0 match the same delimiter as later ones.
  const sc = new Scanner(toAsyncIterator(body), limits.maxBodyBytes, CRLF_BYTES.slice());
  const maxPadding = Math.max(1024, limits.maxHeaderBytes);
  try {
    // Preamble: discard everything up to the first delimiter.
    for (;;) {
      const step = await nextBeforeDelimiter(sc, delimiter);
      if (!step) throw malformed('no opening boundary: the body does not contain --boundary at the start of a line');
      if (step.found) break;
    }
    if ((await afterDelimiter(sc, maxPadding)) === 'close') throw malformed('the multipart body has no parts');

    let count = 0;
    for (;;) {
      if (++count > limits.maxParts) throw overLimit(`more than ${limits.maxParts} parts`);
      const headers = await readHeaders(sc, limits.maxHeaderBytes);
      const state = { ended: false, started: false };
      const readStep = async (): Promise<Uint8Array | undefined> => {
        if (state.ended) return undefined;
        if (sc.busy) throw new Error('multipart: part bodies must be read one at a time');
        sc.busy = true;
        try {
          const step = await nextBeforeDelimiter(sc, delimiter);
          if (!step) throw malformed('the multipart body ends inside a part: closing boundary missing (truncated)');
          if (step.found) state.ended = true;
          return step.chunk;
        } finally {
          sc.busy = false;
        }
      };
      const partBody: AsyncIterable<Uint8Array> = {
        [Symbol.asyncIterator]() {
          if (state.started) throw new Error('multipart: a part body can be read only once');
          state.started = true;
          return (async function* () {
            for (;;) {
              const chunk = await readStep();
              if (chunk === undefined) return;
              if (chunk.length > 0) yield chunk;
            }
          })();
        },
      };
      yield {
        headers,
        contentType: headers.get('content-type'),
        contentLocation: headers.get('content-location'),
        body: partBody,
      };
      // Drain what the consumer left (streamed and discarded, never buffered).
      state.started = true;
      while ((await readStep()) !== undefined) {
        // discard
      }
      if ((await afterDelimiter(sc, maxPadding)) === 'close') return; // padding, CRLF and epilogue are not read
    }
  } finally {
    await sc.close();
  }
}

/** A fully read part (for tests and small bodies). */
export interface CollectedPart {
  headers: Map<string, string>;
  contentType?: string;
  contentLocation?: string;
  body: Uint8Array;
}

const NO_LIMITS: MultipartLimits = { maxParts: Number.MAX_SAFE_INTEGER, maxHeaderBytes: 64 * 1024, maxBodyBytes: Number.MAX_SAFE_INTEGER };

/** Read every part into memory: convenient for tests and small messages only. */
export async function collectMultipart(
  body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | Uint8Array,
  boundary: string,
  limits: MultipartLimits = NO_LIMITS,
): Promise<CollectedPart[]> {
  const whole = asBytes(body);
  const source = whole ? (async function* () { yield whole; })() : (body as AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>);
  const out: CollectedPart[] = [];
  for await (const part of readMultipart(source, boundary, limits)) {
    const chunks: Uint8Array[] = [];
    for await (const c of part.body) chunks.push(c);
    out.push({ headers: part.headers, contentType: part.contentType, contentLocation: part.contentLocation, body: concatBytes(chunks) });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Writer

export interface MultipartOutPart {
  /** The part's Content-Type, e.g. `application/dicom; transfer-syntax=1.2.840.10008.1.2.1`. */
  contentType: string;
  /** Further part headers (e.g. Content-Location). Keep them short: dicomweb-client looks for the end of part headers in the first 1000 bytes. */
  headers?: Record<string, string>;
  body: Uint8Array | AsyncIterable<Uint8Array>;
}

export interface MultipartWriter {
  boundary: string;
  /**
   * The response Content-Type for parts of media type `type`, e.g.
   * `multipart/related; type="application/dicom"; boundary=…` (PS3.18 §8.7.3.5.1:
   * "type" first, quoted since "/" is not a token character; then boundary; then
   * optional DICOM parameters such as transfer-syntax).
   */
  contentType: (type: string, params?: Record<string, string | undefined>) => string;
  /** The encoded body; pull-based: a part is requested from the source only when the consumer reads. */
  stream: ReadableStream<Uint8Array>;
}

const HEADER_VALUE_OK = /^[^\r\n\0]*$/;

function partHead(part: MultipartOutPart, boundary: string, first: boolean): Uint8Array {
  let head = `${first ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${part.contentType}\r\n`;
  if (!HEADER_VALUE_OK.test(part.contentType)) throw new TypeError('multipart: invalid Content-Type value');
  for (const [name, value] of Object.entries(part.headers ?? {})) {
    if (!HEADER_NAME.test(name) || !HEADER_VALUE_OK.test(value)) throw new TypeError(`multipart: invalid part header ${name}`);
    if (name.toLowerCase() === 'content-type') continue;
    head += `${name}: ${value}\r\n`;
  }
  return encoder.encode(`${head}\r\n`);
}

/** Encode parts as a multipart body (CRLF line ends, RFC 2046 §5.1.1), one chunk at a time. */
export async function* encodeMultipart(
  parts: AsyncIterable<MultipartOutPart> | Iterable<MultipartOutPart>,
  boundary: string,
): AsyncGenerator<Uint8Array, void, undefined> {
  assertBoundary(boundary);
  let first = true;
  for await (const part of parts) {
    yield partHead(part, boundary, first);
    first = false;
    const whole = asBytes(part.body);
    if (whole) {
      if (whole.length > 0) yield whole;
    } else {
      for await (const chunk of part.body as AsyncIterable<Uint8Array>) if (chunk.length > 0) yield chunk;
    }
  }
  // close-delimiter; a message without parts is only the close delimiter
  yield encoder.encode(`${first ? '' : '\r\n'}--${boundary}--\r\n`);
}

/**
 * Stream parts as multipart/related. Back-pressure: the ReadableStream has a
 * high-water mark of 0, so nothing (not even the next part) is requested from
 * `parts` until the consumer pulls; cancelling the stream closes `parts`.
 */
export function writeMultipart(
  parts: AsyncIterable<MultipartOutPart> | Iterable<MultipartOutPart>,
  boundary: string = newBoundary(),
): MultipartWriter {
  assertBoundary(boundary);
  const stream = toReadableStream(() => encodeMultipart(parts, boundary));
  return {
    boundary,
    contentType: (type, params) => {
      const extra = Object.entries(params ?? {}).filter(([name]) => name !== 'type' && name !== 'boundary');
      return formatMediaType('multipart/related', [['type', type], ['boundary', boundary], ...extra.filter((e): e is [string, string] => e[1] !== undefined)]);
    },
    stream,
  };
}


/** Collect a stream or async iterable into one Uint8Array (tests, small bodies). */
export async function collectBytes(source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const it = toAsyncIterator(source);
  const chunks: Uint8Array[] = [];
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    chunks.push(r.value);
  }
  return concatBytes(chunks);
}

/** Encode parts into one Uint8Array (tests). */
export async function writeMultipartBytes(
  parts: AsyncIterable<MultipartOutPart> | Iterable<MultipartOutPart>,
  boundary: string = newBoundary(),
): Promise<Uint8Array> {
  return collectBytes(encodeMultipart(parts, boundary));
}
