/**
 * QIDO-RS query parameters (PS3.18 §8.3.4, §10.6.1.2) parsed into a
 * structured, validated query. Everything that can be wrong with a query is
 * found here, before any index is touched, and reported as one typed error
 * (code INVALID_QUERY, naming the parameter) that the API layer answers with
 * 400. Messages never echo query values: they can carry PHI.
 *
 * Matching semantics live in qido-match.ts; this module only decides what
 * kind of matching each key asks for (PS3.4 C.2.2.2).
 */
import { isValidUID } from '../dicom/uid';
import type { StudySearchHints } from '../archive/ports';
import { normalizeForMatch } from './person-name';
import {
  isTagKey,
  levelsInScope,
  resolveAttribute,
  type QidoAttribute,
  type QidoLevel,
  type QidoScope,
} from './qido-attributes';
import { parseTemporal } from './qido-match';

export type { QidoLevel, QidoScope } from './qido-attributes';

// ------------------------------------------------------------ model

/** One value of a matching key (PS3.4 C.2.2.2.1–5). */
export type ValueMatcher =
  /** Single Value Matching; also each UID of List of UID Matching */
  | { kind: 'exact'; text: string }
  /** Wild Card Matching: `*` any sequence, `?` one character (code point) */
  | { kind: 'wildcard'; pattern: string }
  /** Single Value Matching on a numeric VR (IS, DS, US, UL, SS, SL, FL, FD, SV, UV) */
  | { kind: 'number'; value: number }
  /** Range Matching on DA/TM/DT; a single date/time is lower = upper (its whole precision window) */
  | { kind: 'range'; lower?: string; upper?: string }
  /** Empty Value Matching (`""` with emptyvaluematching=true, PS3.18 §8.3.4.5) */
  | { kind: 'empty' };

interface FilterBase {
  /** top-level tag key within the data set being matched (an item, for nested filters) */
  tag: string;
  keyword: string;
  vr: string;
}

/**
 * A matching key. Several values are a list (PS3.4 C.2.2.2.2 UID list, and
 * `\` lists for other VRs): any value may match, unless `requireAll`
 * (multiplevaluematching=true, PS3.4 C.2.2.2.8: every value must match).
 */
export type Filter = FilterBase &
  (
    | { match: 'universal' }
    | { match: 'values'; values: ValueMatcher[]; requireAll: boolean }
    /** Sequence Matching (PS3.4 C.2.2.2.6): all item filters must match within one item */
    | { match: 'sequence'; items: Filter[] }
  );

export interface QidoQuery {
  level: QidoLevel;
  scope: QidoScope;
  /** Matching keys, including the UIDs fixed by the resource path. All must match. */
  filters: Filter[];
  /** Extra return attributes (tag keys), or every attribute */
  includeFields: Set<string> | 'all';
  fuzzy: boolean;
  emptyValueMatching: boolean;
  multipleValueMatching: boolean;
  limit: number;
  offset: number;
  /** The requested limit exceeded the maximum and was lowered (route sends `Warning: 299`). */
  limitCapped: boolean;
}

export interface QidoLimits {
  /** Largest limit honoured; larger requests are capped. Default 1000. */
  maxLimit?: number;
  /** Limit when the request gives none. Default 100. */
  defaultLimit?: number;
}

export interface QidoQueryOptions {
  /** UIDs fixed by the resource path; they become filters and narrow which levels may be matched. */
  scope?: QidoScope;
  limits?: QidoLimits;
}

export class QidoQueryError extends Error {
  readonly code = 'INVALID_QUERY';
  /** The query parameter (or 'path') at fault. */
  readonly parameter: string;
  constructor(parameter: string, message: string) {
    super(message);
    this.name = 'QidoQueryError';
    this.parameter = parameter;
  }
}

// ------------------------------------------------------------ limits on the request itself

const MAX_VALUE_CHARS = 4096;
const MAX_LIST_VALUES = 1000;

/** Parameters PS3.18 Table 8.3.4-1 defines besides matching keys. */
const RESERVED = new Set(['includefield', 'fuzzymatching', 'limit', 'offset', 'emptyvaluematching', 'multiplevaluematching']);
/**
 * PS3.18 §8.3.3.1/§8.3.3.2 media type and charset query parameters: allowed
 * on every transaction; content negotiation is the route's business.
 */
const NEGOTIATION = new Set(['accept', 'charset']);

/** VRs Wild Card Matching applies to (PS3.4 C.2.2.2.4). */
const WILDCARD_VRS = new Set(['AE', 'CS', 'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UR', 'UT']);
/** Single-valued text VRs: `\` is an ordinary character, never a list separator (PS3.5 §6.2). */
const TEXT_VRS = new Set(['LT', 'ST', 'UT', 'UR']);
/** VRs Multiple Value Matching applies to (PS3.4 C.2.2.2.8). */
const MULTI_VALUE_VRS = new Set(['AE', 'AS', 'AT', 'CS', 'LO', 'PN', 'SH', 'UC']);
const INTEGER_VRS = new Set(['IS', 'SS', 'US', 'SL', 'UL', 'SV', 'UV']);
const DECIMAL_VRS = new Set(['DS', 'FL', 'FD']);
const TEMPORAL_VRS = new Set(['DA', 'TM', 'DT']);

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const AGE = /^\d{3}[DWMY]$/;

// ------------------------------------------------------------ parse

interface KeyEntry {
  parameter: string;
  path: QidoAttribute[];
  raw: string[];
}

/**
 * Parse the query string of a search at `level`, under the resource path
 * `options.scope` (PS3.18 §10.6.1.1: /studies, /series, /instances,
 * /studies/{s}/series, /studies/{s}/instances, /studies/{s}/series/{se}/instances).
 */
export function parseQidoQuery(params: URLSearchParams, level: QidoLevel, options: QidoQueryOptions = {}): QidoQuery {
  const scope = options.scope ?? {};
  const maxLimit = options.limits?.maxLimit ?? 1000;
  const defaultLimit = Math.min(options.limits?.defaultLimit ?? 100, maxLimit);
  if (scope.seriesInstanceUID && level !== 'instance') throw new TypeError('a series scope only applies to instance searches');
  if (scope.studyInstanceUID && level === 'study') throw new TypeError('a study scope does not apply to study searches');

  const seen = new Set<string>();
  const once = (name: string): void => {
    if (seen.has(name)) throw new QidoQueryError(name, `query parameter "${name}" may appear only once`);
    seen.add(name);
  };

  let fuzzy = false;
  let emptyValueMatching = false;
  let multipleValueMatching = false;
  let limit: number | undefined;
  let offset = 0;
  let includeFields: Set<string> | 'all' = new Set();
  const keys = new Map<string, KeyEntry>();

  for (const [name, value] of params) {
    switch (name) {
      case 'fuzzymatching':
        once(name);
        fuzzy = parseBoolean(name, value);
        break;
      case 'emptyvaluematching':
        once(name);
        emptyValueMatching = parseBoolean(name, value);
        break;
      case 'multiplevaluematching':
        once(name);
        multipleValueMatching = parseBoolean(name, value);
        break;
      case 'limit':
        once(name);
        limit = parseUint(name, value);
        break;
      case 'offset':
        once(name);
        offset = parseUint(name, value);
        break;
      case 'includefield':
        includeFields = addIncludeFields(includeFields, value);
        break;
      default: {
        if (NEGOTIATION.has(name)) break;
        const path = resolvePath(name);
        const id = path.map((a) => a.tag).join('.');
        const entry = keys.get(id);
        if (entry) entry.raw.push(value);
        else keys.set(id, { parameter: name, path, raw: [value] });
      }
    }
  }

  const ctx: ParseContext = { level, scope, emptyValueMatching, multipleValueMatching };
  for (const entry of keys.values()) checkPermitted(entry, ctx);
  const filters = [...scopeFilters(level, scope), ...buildFilters([...keys.values()], 0, ctx)];

  const requested = limit ?? defaultLimit;
  return {
    level,
    scope: { ...scope },
    filters,
    includeFields,
    fuzzy,
    emptyValueMatching,
    multipleValueMatching,
    limit: Math.min(requested, maxLimit),
    offset,
    limitCapped: requested > maxLimit,
  };
}

interface ParseContext {
  level: QidoLevel;
  scope: QidoScope;
  emptyValueMatching: boolean;
  multipleValueMatching: boolean;
}

/** ABNF (RFC 5234) literals are case-insensitive: "true" / "false". */
function parseBoolean(name: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new QidoQueryError(name, `query parameter "${name}" must be true or false`);
}

function parseUint(name: string, value: string): number {
  const v = value.trim();
  if (!/^\d+$/.test(v)) throw new QidoQueryError(name, `query parameter "${name}" must be a non-negative integer`);
  const n = Number(v);
  if (name === 'offset' && !Number.isSafeInteger(n)) throw new QidoQueryError(name, `query parameter "${name}" is too large`);
  return n;
}

/** includefield = 1#attribute / "all" (PS3.18 §8.3.4.3); repeated parameters accumulate. */
function addIncludeFields(current: Set<string> | 'all', value: string): Set<string> | 'all' {
  const tokens = value.split(',').map((t) => t.trim());
  if (tokens.some((t) => t === '')) throw new QidoQueryError('includefield', 'includefield has an empty attribute');
  let out = current;
  for (const token of tokens) {
    if (token === 'all') {
      out = 'all';
      continue;
    }
    const first = token.split('.')[0] as string;
    let tag: string;
    if (token.includes('.')) {
      // a sequence path returns its whole top-level sequence
      tag = resolvePath(token, 'includefield')[0]!.tag;
    } else {
      const attribute = resolveAttribute(first);
      if (attribute) tag = attribute.tag;
      // Any well-formed tag may be asked for: the response carries it when the
      // record holds it (private and not-yet-tabled attributes included).
      else if (isTagKey(first)) tag = first.toUpperCase();
      else throw new QidoQueryError('includefield', `includefield names an unknown attribute "${token}"`);
    }
    if (out !== 'all') out.add(tag);
  }
  return out;
}

/** attribute = attribute-id *("." attribute-id), each a PS3.6 keyword or 8HEXDIG tag (PS3.18 §8.3.4.1). */
function resolvePath(name: string, parameter = name): QidoAttribute[] {
  const segments = name.split('.');
  const path: QidoAttribute[] = [];
  for (const [i, segment] of segments.entries()) {
    const attribute = segment === '' ? undefined : resolveAttribute(segment);
    if (!attribute) {
      if (segments.length === 1 && !isTagKey(segment)) {
        throw new QidoQueryError(parameter, `unknown query parameter or attribute "${name}"`);
      }
      throw new QidoQueryError(parameter, `query parameter "${name}": "${segment}" is not a searchable attribute`);
    }
    if (i < segments.length - 1 && attribute.vr !== 'SQ') {
      throw new QidoQueryError(parameter, `query parameter "${name}": ${attribute.keyword} is not a sequence`);
    }
    path.push(attribute);
  }
  return path;
}

const LEVEL_WORDS: Record<QidoLevel, string> = { study: 'studies', series: 'series', instance: 'instances' };

function describeSearch(ctx: ParseContext): string {
  if (ctx.scope.seriesInstanceUID) return 'a search for the instances of one series';
  if (ctx.scope.studyInstanceUID) return `a search for the ${LEVEL_WORDS[ctx.level]} of one study`;
  return `a search for ${LEVEL_WORDS[ctx.level]}`;
}

/** Matching keys must belong to the target level or a level the path leaves open (PS3.18 §10.6.1.2). */
function checkPermitted(entry: KeyEntry, ctx: ParseContext): void {
  const top = entry.path[0]!;
  const hasValue = entry.raw.some((v) => v !== '');
  if (top.level !== 'any') {
    if (!levelsInScope(ctx.level, ctx.scope).includes(top.level)) {
      throw new QidoQueryError(
        entry.parameter,
        `attribute ${top.keyword} (${top.tag}) is ${top.level} level and is not permitted in ${describeSearch(ctx)}`,
      );
    }
    // Aggregates are computed only for results of their own level.
    if (top.computed && top.level !== ctx.level && hasValue) {
      throw new QidoQueryError(entry.parameter, `attribute ${top.keyword} can only be matched in a search for ${LEVEL_WORDS[top.level]}`);
    }
  }
  const leaf = entry.path[entry.path.length - 1]!;
  if (leaf.returnOnly && hasValue) {
    throw new QidoQueryError(entry.parameter, `attribute ${leaf.keyword} cannot be used for matching, only returned`);
  }
}

function scopeFilters(level: QidoLevel, scope: QidoScope): Filter[] {
  const out: Filter[] = [];
  const add = (keyword: 'StudyInstanceUID' | 'SeriesInstanceUID', uid: string | undefined): void => {
    if (uid === undefined) return;
    if (!isValidUID(uid)) throw new QidoQueryError('path', `invalid ${keyword} in the resource path`);
    const attribute = resolveAttribute(keyword)!;
    out.push({ tag: attribute.tag, keyword, vr: 'UI', match: 'values', values: [{ kind: 'exact', text: uid }], requireAll: false });
  };
  if (level !== 'study') add('StudyInstanceUID', scope.studyInstanceUID);
  if (level === 'instance') add('SeriesInstanceUID', scope.seriesInstanceUID);
  return out;
}

/** Group key entries by their attribute at `depth`, building nested sequence filters. */
function buildFilters(entries: KeyEntry[], depth: number, ctx: ParseContext): Filter[] {
  const groups = new Map<string, KeyEntry[]>();
  for (const e of entries) {
    const tag = e.path[depth]!.tag;
    const group = groups.get(tag);
    if (group) group.push(e);
    else groups.set(tag, [e]);
  }
  const filters: Filter[] = [];
  for (const group of groups.values()) {
    const attribute = group[0]!.path[depth]!;
    const base = { tag: attribute.tag, keyword: attribute.keyword, vr: attribute.vr };
    const leaf = group.filter((e) => e.path.length === depth + 1);
    const deeper = group.filter((e) => e.path.length > depth + 1);
    if (attribute.vr === 'SQ') {
      for (const e of leaf) {
        if (e.raw.some((v) => v !== '')) {
          throw new QidoQueryError(
            e.parameter,
            `sequence ${attribute.keyword} takes no value; match its items with ${attribute.keyword}.<attribute>=<value>`,
          );
        }
      }
      const items = buildFilters(deeper, depth + 1, ctx);
      // Only item keys with universal matching: a return key, not a constraint
      // (our reading of C.2.2.2.6, so a study without the sequence still matches).
      if (items.every((f) => f.match === 'universal')) filters.push({ ...base, match: 'universal' });
      else filters.push({ ...base, match: 'sequence', items });
    } else {
      const entry = leaf[0]!;
      filters.push({ ...base, ...parseValues(entry, attribute, ctx) });
    }
  }
  return filters;
}

type FilterMatch =
  | { match: 'universal' }
  | { match: 'values'; values: ValueMatcher[]; requireAll: boolean };

/** Parse every occurrence of one key into a universal or values filter. */
function parseValues(entry: KeyEntry, attribute: QidoAttribute, ctx: ParseContext): FilterMatch {
  const name = entry.parameter;
  const vr = attribute.vr;
  const values: ValueMatcher[] = [];
  let universal = false;
  for (const raw of entry.raw) {
    if (raw.length > MAX_VALUE_CHARS) throw new QidoQueryError(name, `the value of "${name}" is too long`);
    if (raw === '') continue; // Universal Matching: return key only (PS3.4 C.2.2.2.3)
    if (raw === '""' && ctx.emptyValueMatching) {
      values.push({ kind: 'empty' });
      continue;
    }
    const parsed = parseValueList(name, attribute, raw);
    if (parsed === 'universal') universal = true;
    else values.push(...parsed);
  }
  if (values.length > MAX_LIST_VALUES) throw new QidoQueryError(name, `"${name}" has more than ${MAX_LIST_VALUES} values`);
  const requireAll = ctx.multipleValueMatching && MULTI_VALUE_VRS.has(vr) && values.length > 1;
  if (requireAll && values.some((v) => v.kind === 'wildcard' || v.kind === 'empty')) {
    throw new QidoQueryError(name, `"${name}": multiple value matching does not allow wild cards or empty values (PS3.4 C.2.2.2.8)`);
  }
  // A value of "*" (alone or in an any-of list) matches everything, as universal matching does.
  if (values.length === 0 || (universal && !requireAll)) return { match: 'universal' };
  return { match: 'values', values, requireAll };
}

/** One occurrence: a single value, or a list (`\`; also `,` for UIDs, PS3.18 §8.3.4.1 uid-list-match). */
function parseValueList(name: string, attribute: QidoAttribute, raw: string): ValueMatcher[] | 'universal' {
  const vr = attribute.vr;
  if (vr === 'UI') {
    return raw.split(/[\\,]/).map((item) => {
      const uid = item.trim();
      if (uid.includes('*') || uid.includes('?')) throw new QidoQueryError(name, `"${name}": wild cards are not allowed for UIDs`);
      if (!isValidUID(uid)) throw new QidoQueryError(name, `"${name}" has an invalid UID`);
      return { kind: 'exact', text: uid };
    });
  }
  // A '+' the client did not percent-encode arrives as a space (form encoding):
  // UTC offsets are the one place a '+' is expected, and DT never holds spaces.
  if (vr === 'DT') raw = raw.replace(/ (?=\d{4}(?:-|\\|$))/g, '+');
  if (attribute.tag === '00080201') raw = raw.replace(/^ (?=\d{4}$)/, '+');
  const items = TEXT_VRS.has(vr) ? [raw] : raw.split('\\');
  const out: ValueMatcher[] = [];
  for (const item of items) {
    const parsed = parseValue(name, vr, item);
    if (parsed === 'universal') return 'universal';
    out.push(parsed);
  }
  return out;
}

function parseValue(name: string, vr: string, item: string): ValueMatcher | 'universal' {
  // PS3.5 §6.2: leading and trailing spaces are insignificant, except leading spaces of text VRs.
  const value = TEXT_VRS.has(vr) ? item.trimEnd() : item.trim();
  if (value === '') throw new QidoQueryError(name, `"${name}" has an empty value in a list`);
  const wild = value.includes('*') || value.includes('?');

  if (WILDCARD_VRS.has(vr)) {
    if (!wild) return { kind: 'exact', text: value };
    // C.2.2.2.4: a value of "*" is equivalent to universal matching
    if (/^\*+$/.test(value)) return 'universal';
    return { kind: 'wildcard', pattern: value };
  }
  if (wild) throw new QidoQueryError(name, `"${name}": wild cards are not allowed for VR ${vr}`);

  if (TEMPORAL_VRS.has(vr)) return parseRange(name, vr, value);
  if (INTEGER_VRS.has(vr)) {
    if (!INTEGER.test(value)) throw new QidoQueryError(name, `"${name}" must be an integer`);
    return { kind: 'number', value: Number(value) };
  }
  if (DECIMAL_VRS.has(vr)) {
    if (!DECIMAL.test(value)) throw new QidoQueryError(name, `"${name}" must be a decimal number`);
    return { kind: 'number', value: Number(value) };
  }
  if (vr === 'AS') {
    if (!AGE.test(value)) throw new QidoQueryError(name, `"${name}" must be an age string such as 045Y`);
    return { kind: 'exact', text: value };
  }
  if (vr === 'AT') {
    if (!isTagKey(value)) throw new QidoQueryError(name, `"${name}" must be an 8-hex-digit tag`);
    return { kind: 'exact', text: value.toUpperCase() };
  }
  throw new QidoQueryError(name, `"${name}": matching is not supported for VR ${vr}`);
}

/**
 * Range Matching (PS3.4 C.2.2.2.5): `a-b`, `-b`, `a-`; a bare value is a
 * single-value match. DT values may carry a `-ZZXX` offset, so for DT a
 * value that parses whole is a single value, otherwise the one split at a
 * `-` that leaves two valid (or empty) bounds is the range.
 */
function parseRange(name: string, vr: string, value: string): ValueMatcher {
  const valid = (t: string): boolean => parseTemporal(vr, t) !== undefined;
  const describe = vr === 'DA' ? 'YYYYMMDD' : vr === 'TM' ? 'HH[MM[SS[.F{1,6}]]]' : 'YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]';
  if (!value.includes('-') || (vr === 'DT' && valid(value))) {
    if (!valid(value)) throw new QidoQueryError(name, `"${name}" must be a ${vr} value (${describe}) or range`);
    return { kind: 'range', lower: value, upper: value };
  }
  const candidates: Array<[string, string]> = [];
  for (let i = value.indexOf('-'); i >= 0; i = value.indexOf('-', i + 1)) {
    const lower = value.slice(0, i);
    const upper = value.slice(i + 1);
    if ((lower === '' || valid(lower)) && (upper === '' || valid(upper)) && (lower !== '' || upper !== '')) {
      candidates.push([lower, upper]);
    }
  }
  if (candidates.length !== 1) {
    throw new QidoQueryError(name, `"${name}" must be a ${vr} value (${describe}) or range (a-b, -b, a-)`);
  }
  const [lower, upper] = candidates[0]!;
  if (lower && upper && parseTemporal(vr, lower)!.start > parseTemporal(vr, upper)!.end) {
    throw new QidoQueryError(name, `"${name}": the range ends before it starts`);
  }
  return { kind: 'range', ...(lower ? { lower } : {}), ...(upper ? { upper } : {}) };
}

// ------------------------------------------------------------ index hints

function findFilter(query: QidoQuery, keyword: string): Filter | undefined {
  return query.filters.find((f) => f.keyword === keyword);
}

function singleExact(filter: Filter | undefined): string | undefined {
  if (filter?.match !== 'values' || filter.values.length !== 1) return undefined;
  const v = filter.values[0]!;
  return v.kind === 'exact' ? v.text : undefined;
}

/** Printable ASCII: the script of the Alphabetic PN group (PS3.5 §6.2.1.2). */
const LATIN_PREFIX = /^[\x20-\x7E]+$/;

/**
 * Index hints for the study search behind a query (ports.ts): each hint is
 * given only when every study the matcher accepts satisfies it, so an
 * adapter narrowing by hints returns a superset of the matches.
 *
 * Patient Name prefix: the literal text before the first wild card of the
 * family-name component, normalized like the index keys (normalizeForMatch).
 * Given only without fuzzy matching, for a single value, and only when the
 * value must match the Alphabetic group: it names the group explicitly
 * (`Doe*=…`), or its prefix is printable ASCII — the matcher also tries the
 * Ideographic and Phonetic groups, which by PS3.5 §6.2.1.2 carry ideographic
 * and phonetic (kana, hangul) script, not Latin text.
 */
export function studySearchHints(query: QidoQuery): StudySearchHints {
  const hints: StudySearchHints = {};

  const uids = findFilter(query, 'StudyInstanceUID');
  if (uids?.match === 'values' && uids.values.every((v) => v.kind === 'exact')) {
    hints.studyInstanceUIDs = uids.values.map((v) => (v as { text: string }).text);
  }

  const sops = findFilter(query, 'SOPInstanceUID');
  if (sops?.match === 'values' && sops.values.every((v) => v.kind === 'exact')) {
    hints.sopInstanceUIDs = sops.values.map((v) => (v as { text: string }).text);
  }

  const patientID = singleExact(findFilter(query, 'PatientID'));
  if (patientID !== undefined) hints.patientID = patientID;
  const accessionNumber = singleExact(findFilter(query, 'AccessionNumber'));
  if (accessionNumber !== undefined) hints.accessionNumber = accessionNumber;

  const studyDate = findFilter(query, 'StudyDate');
  if (studyDate?.match === 'values' && studyDate.values.every((v) => v.kind === 'range')) {
    // envelope of an any-of list of ranges: still a superset
    const ranges = studyDate.values as Array<{ lower?: string; upper?: string }>;
    if (ranges.every((r) => r.lower !== undefined)) hints.studyDateFrom = ranges.map((r) => r.lower!).sort()[0];
    if (ranges.every((r) => r.upper !== undefined)) hints.studyDateTo = ranges.map((r) => r.upper!).sort().at(-1);
  }

  const prefix = patientNamePrefix(query);
  if (prefix !== undefined) hints.patientNamePrefix = prefix;

  // CS values compare exactly (after trimming, qido-match.ts); a multi-valued key matches any of them.
  const modalities = findFilter(query, 'ModalitiesInStudy');
  if (modalities?.match === 'values' && modalities.values.every((v) => v.kind === 'exact')) {
    hints.modalitiesInStudy = modalities.values.map((v) => (v as { text: string }).text.normalize('NFC'));
  }
  return hints;
}

function patientNamePrefix(query: QidoQuery): string | undefined {
  if (query.fuzzy) return undefined; // fuzzy ignores component order: the family name can be anywhere
  const filter = findFilter(query, 'PatientName');
  if (filter?.match !== 'values' || filter.values.length !== 1) return undefined;
  const v = filter.values[0]!;
  const text = v.kind === 'exact' ? v.text : v.kind === 'wildcard' ? v.pattern : undefined;
  if (text === undefined) return undefined;
  const explicitGroup = text.includes('=');
  const alphabetic = text.split('=')[0]!;
  const literal = alphabetic.split(/[*?]/)[0]!;
  const prefix = normalizeForMatch(literal.split('^')[0]!);
  if (prefix === '') return undefined;
  if (!explicitGroup && !LATIN_PREFIX.test(prefix)) return undefined;
  return prefix;
}
