/**
 * Media types and media ranges (RFC 9110 §8.3.1 Content-Type, §12.5.1 Accept,
 * §5.6.6 parameters; PS3.18 §8.7 "Media Types").
 *
 * - type, subtype and parameter names are case-insensitive: lower-cased here;
 *   parameter values keep their case (PS3.18 §8.7: "the case sensitivity of
 *   parameter values depends on the semantics of the parameter name").
 * - A value may be a token or a quoted-string; both are equivalent (PS3.18 §8.7).
 * - A parameter given twice is an error (RFC 6838 §4.3, PS3.18 §8.7.3.5.2 Note).
 *
 * Deliberate leniency (real clients, see accept.test.ts): an unquoted value may
 * carry "/" and other visible characters that are not tchar (OHIF sends
 * `type=application/octet-stream` unquoted), and whitespace around "=" is skipped.
 * Everything else that is not in the grammar throws `INVALID_MEDIA_TYPE`.
 */

/** Stable error code (check by code, not instanceof). */
export const INVALID_MEDIA_TYPE = 'INVALID_MEDIA_TYPE';

export class MediaTypeError extends Error {
  readonly code = INVALID_MEDIA_TYPE;
  constructor(message: string) {
    super(message);
    this.name = 'MediaTypeError';
  }
}

export interface MediaType {
  /** "type/subtype", lower-cased, e.g. "multipart/related". */
  type: string;
  /** The top-level type, e.g. "multipart" ("*" in a wildcard range). */
  topLevel: string;
  /** The subtype, e.g. "related" ("*" in a wildcard range). */
  subtype: string;
  /** Parameters in order of appearance: names lower-cased, values unquoted and unescaped. */
  params: Map<string, string>;
}

/** One element of an Accept list: a media range and its weight (RFC 9110 §12.4.2, §12.5.1). */
export interface MediaRange extends MediaType {
  /** Weight in [0, 1]; 1 when absent. q=0 means "not acceptable". */
  q: number;
}

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
// RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
const QVALUE = /^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/;

export function isToken(value: string): boolean {
  return TOKEN.test(value);
}

const isOWS = (c: string | undefined) => c === ' ' || c === '\t';

/** Characters allowed in a lenient unquoted value: VCHAR (and obs-text) except the delimiters that end it. */
function isLenientValueChar(c: string, allowComma: boolean): boolean {
  const code = c.charCodeAt(0);
  if (code <= 0x20 || code === 0x7f) return false; // CTL, SP
  if (c === ';' || c === '"' || c === '\\') return false;
  if (c === ',' && !allowComma) return false;
  return true;
}

/**
 * A tiny cursor-based parser over one header value. `list` mode splits on commas
 * (the "#" list rule, RFC 9110 §5.6.1) and honours q; single mode parses one
 * Content-Type value.
 */
class Cursor {
  i = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.i >= this.s.length;
  }
  peek(): string | undefined {
    return this.s[this.i];
  }
  skipOWS(): void {
    while (isOWS(this.s[this.i])) this.i++;
  }
  token(): string {
    const start = this.i;
    while (this.i < this.s.length && TCHAR.test(this.s[this.i]!)) this.i++;
    return this.s.slice(start, this.i);
  }
  fail(what: string): never {
    throw new MediaTypeError(`${what} at position ${this.i} of the media type`);
  }
  /** RFC 9110 §5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE. */
  quoted(): string {
    this.i++; // opening DQUOTE
    let out = '';
    for (;;) {
      if (this.done) this.fail('unterminated quoted-string');
      const c = this.s[this.i]!;
      const code = c.charCodeAt(0);
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c === '\\') {
        // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        const next = this.s[this.i + 1];
        if (next === undefined) this.fail('unterminated quoted-pair');
        const n = next.charCodeAt(0);
        if (!(n === 0x09 || (n >= 0x20 && n !== 0x7f))) this.fail('invalid quoted-pair');
        out += next;
        this.i += 2;
        continue;
      }
      // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
      if (!(code === 0x09 || (code >= 0x20 && code !== 0x7f))) this.fail('control character in quoted-string');
      out += c;
      this.i++;
    }
  }
}

interface ParsedElement {
  type: MediaType;
  q: number | undefined;
}

function parseElement(cur: Cursor, opts: { list: boolean; wildcards: boolean }): ParsedElement {
  cur.skipOWS();
  const topLevel = cur.token().toLowerCase();
  if (!topLevel) cur.fail('missing type');
  if (cur.peek() !== '/') cur.fail('expected "/" after the type');
  cur.i++;
  const subtype = cur.token().toLowerCase();
  if (!subtype) cur.fail('missing subtype');
  if (opts.wildcards) {
    // RFC 9110 §12.5.1: media-range = "*/*" / ( type "/*" ) / ( type "/" subtype )
    if (topLevel === '*' && subtype !== '*') cur.fail('"*/subtype" is not a media range');
  } else if (topLevel.includes('*') || subtype.includes('*')) {
    cur.fail('wildcard not allowed in a media type');
  }
  const params = new Map<string, string>();
  let q: number | undefined;
  for (;;) {
    cur.skipOWS();
    if (cur.done) break;
    const c = cur.peek();
    if (opts.list && c === ',') break;
    if (c !== ';') cur.fail('expected ";"');
    cur.i++;
    cur.skipOWS();
    // RFC 9110 §5.6.6: parameters = *( OWS ";" OWS [ parameter ] ) — empty parameters are allowed.
    if (cur.done || cur.peek() === ';' || (opts.list && cur.peek() === ',')) continue;
    const name = cur.token().toLowerCase();
    if (!name) cur.fail('invalid parameter name');
    cur.skipOWS();
    if (cur.peek() !== '=') cur.fail(`parameter "${name}" has no value`);
    cur.i++;
    cur.skipOWS();
    let value: string;
    if (cur.peek() === '"') {
      value = cur.quoted();
    } else {
      const start = cur.i;
      while (!cur.done && isLenientValueChar(cur.peek()!, !opts.list)) cur.i++;
      value = cur.s.slice(start, cur.i);
      if (!value) cur.fail(`parameter "${name}" has an empty value`);
    }
    if (opts.list && name === 'q') {
      // The weight (RFC 9110 §12.4.2). PS3.18 §8.7.3.5.2 shows media type parameters after q
      // ("...;q=0.5;boundary=**"), so later parameters still belong to the range.
      if (q !== undefined) cur.fail('duplicate q');
      if (!QVALUE.test(value)) cur.fail(`invalid qvalue "${value}"`);
      q = Number(value);
      continue;
    }
    if (params.has(name)) cur.fail(`duplicate parameter "${name}"`);
    params.set(name, value);
  }
  return { type: { type: `${topLevel}/${subtype}`, topLevel, subtype, params }, q };
}

/** Parse one media type (a Content-Type value). Wildcards are rejected. Throws `INVALID_MEDIA_TYPE`. */
export function parseMediaType(value: string): MediaType {
  if (typeof value !== 'string') throw new MediaTypeError('the media type is not a string');
  const cur = new Cursor(value);
  const { type } = parseElement(cur, { list: false, wildcards: false });
  if (!cur.done) cur.fail('unexpected character');
  return type;
}

/**
 * Parse an Accept value (RFC 9110 §12.5.1): a comma-separated list of media ranges,
 * each with an optional weight. Empty list elements are skipped (RFC 9110 §5.6.1).
 * Returns ranges in the order given. Throws `INVALID_MEDIA_TYPE`.
 */
export function parseMediaRanges(value: string, options: { wildcards?: boolean } = {}): MediaRange[] {
  const cur = new Cursor(value);
  const out: MediaRange[] = [];
  for (;;) {
    cur.skipOWS();
    if (cur.done) break;
    if (cur.peek() === ',') {
      cur.i++;
      continue;
    }
    const { type, q } = parseElement(cur, { list: true, wildcards: options.wildcards ?? true });
    out.push({ ...type, q: q ?? 1 });
    cur.skipOWS();
    if (!cur.done) {
      if (cur.peek() !== ',') cur.fail('expected ","');
      cur.i++;
    }
  }
  return out;
}

/** A parameter value as a token when possible, else as a quoted-string with "\" escapes (RFC 9110 §5.6.4). */
export function formatParameterValue(value: string): string {
  if (isToken(value)) return value;
  for (const c of value) {
    const code = c.charCodeAt(0);
    if (code !== 0x09 && (code < 0x20 || code === 0x7f)) throw new MediaTypeError('control character in a parameter value');
  }
  return `"${value.replace(/(["\\])/g, '\\$1')}"`;
}

/**
 * Format a media type with parameters, quoting values that are not tokens, e.g.
 * `multipart/related; type="application/dicom"; boundary=1234`.
 */
export function formatMediaType(type: string, params?: Iterable<readonly [string, string]> | Record<string, string | undefined>): string {
  let out = type;
  if (!params) return out;
  const entries: Iterable<readonly [string, string | undefined]> =
    Symbol.iterator in params ? (params as Iterable<readonly [string, string]>) : Object.entries(params);
  for (const [name, value] of entries) {
    if (value === undefined) continue;
    if (!isToken(name)) throw new MediaTypeError(`invalid parameter name "${name}"`);
    out += `; ${name}=${formatParameterValue(value)}`;
  }
  return out;
}

/** Format a parsed media type back to a string. */
export function formatParsedMediaType(mt: MediaType): string {
  return formatMediaType(mt.type, mt.params);
}
