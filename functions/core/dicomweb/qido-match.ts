/**
 * The one QIDO matcher (PS3.4 C.2.2.2 as profiled by PS3.18 §8.3.4). The
 * embedded index filters with it and the DynamoDB adapter re-checks every
 * key-query candidate with it, so wildcard, range and list semantics cannot
 * drift between modes.
 *
 * Where the standard leaves room, our choices (also in docs/conformance.md):
 * - Absent or zero-length attributes match only Universal Matching and Empty
 *   Value Matching (`""` with emptyvaluematching=true). A value of `*` is
 *   universal (C.2.2.2.4), so it matches them too.
 * - Text is compared as decoded Unicode in NFC; `?` matches one code point.
 * - PN: case-insensitive (PS3.18 §8.3.4.1 lets PN matching ignore case);
 *   a key without `=` matches if any of the Alphabetic, Ideographic or
 *   Phonetic groups matches; a key with `=` matches group by group (empty key
 *   groups match anything). Trailing empty components and spaces around
 *   components are insignificant ("Doe^John^^" = "Doe^John").
 * - Other string VRs are case-sensitive; leading/trailing spaces are
 *   insignificant (only trailing for LT/ST/UT/UR).
 * - A single DA/TM/DT value matches its whole precision window: TM "10"
 *   matches 10:00:00–10:59:59.999999; range bounds are inclusive likewise.
 *   DT without a UTC offset is compared as if it were UTC.
 * - Multi-valued attributes match when any stored value matches; with
 *   requireAll (multiplevaluematching) every key value must match one.
 * - Fuzzy PN (fuzzymatching=true): case-, accent- and order-insensitive word
 *   matching: every key word must be a prefix of some word of the name
 *   (any group); words split at spaces, `^`, `=`, `,`, `.`, `-`.
 * - Sequence Matching: some item must satisfy all item filters.
 */
import type { DicomJsonDataset, DicomJsonElement, DicomJsonValue, PersonNameValue } from '../dicom/json-model';
import { normalizeForMatch } from './person-name';
import { defaultReturnTags, isTagKey, type QidoLevel } from './qido-attributes';
import type { Filter, QidoQuery, ValueMatcher } from './qido-query';

export interface MatchOptions {
  fuzzy: boolean;
}

/**
 * True when `dataset` satisfies every filter. For series and instance
 * searches pass the merged record (study ∪ series ∪ instance attributes) with
 * the computed attributes (ModalitiesInStudy, counts, …) the level needs.
 */
export function matches(filters: readonly Filter[], dataset: DicomJsonDataset, options: MatchOptions): boolean {
  return filters.every((f) => matchFilter(f, dataset, options));
}

function matchFilter(filter: Filter, dataset: DicomJsonDataset, options: MatchOptions): boolean {
  if (filter.match === 'universal') return true;
  const element = dataset[filter.tag];
  if (filter.match === 'sequence') {
    const items = (element?.Value ?? []).filter(isItem);
    return items.some((item) => filter.items.every((f) => matchFilter(f, item, options)));
  }
  const stored = storedValues(element);
  if (stored.length === 0) return filter.values.some((v) => v.kind === 'empty');
  // The key's VR (from the table) decides the matching; the values were parsed for it.
  const vr = filter.vr;
  const one = (v: ValueMatcher): boolean => v.kind !== 'empty' && stored.some((s) => matchValue(v, s, vr, options));
  return filter.requireAll ? filter.values.every(one) : filter.values.some(one);
}

function isItem(v: DicomJsonValue): v is DicomJsonDataset {
  return typeof v === 'object' && v !== null && !isPersonName(v);
}

function isPersonName(v: object): v is PersonNameValue {
  return 'Alphabetic' in v || 'Ideographic' in v || 'Phonetic' in v;
}

type Stored = string | number | PersonNameValue;

/** Non-empty values of an element; bulk data and inline binary have none that can be matched. */
function storedValues(element: DicomJsonElement | undefined): Stored[] {
  const out: Stored[] = [];
  for (const v of element?.Value ?? []) {
    if (v === null) continue;
    if (typeof v === 'string') {
      if (v.trim() !== '') out.push(v);
    } else if (typeof v === 'number') out.push(v);
    else if (isPersonName(v)) {
      if ((v.Alphabetic ?? '') + (v.Ideographic ?? '') + (v.Phonetic ?? '') !== '') out.push(v);
    }
  }
  return out;
}

function matchValue(v: ValueMatcher, stored: Stored, vr: string, options: MatchOptions): boolean {
  if (vr === 'PN') return matchPersonName(v, stored, options.fuzzy);
  switch (v.kind) {
    case 'exact':
      return textOf(stored, vr) === v.text.normalize('NFC');
    case 'wildcard':
      return wildcardMatch(v.pattern.normalize('NFC'), textOf(stored, vr), false);
    case 'number': {
      const n = typeof stored === 'number' ? stored : Number(String(stored).trim());
      if (!Number.isFinite(n)) return false;
      return vr === 'FL' ? Math.fround(n) === Math.fround(v.value) : n === v.value;
    }
    case 'range':
      return matchRange(v, vr, stored);
    case 'empty':
      return false;
  }
}

const TEXT_VRS = new Set(['LT', 'ST', 'UT', 'UR']);

function textOf(stored: Stored, vr: string): string {
  const s = typeof stored === 'string' ? stored : typeof stored === 'number' ? String(stored) : (stored.Alphabetic ?? '');
  // UIDs may carry a NUL pad from a careless encoder (PS3.5 §9.1 pads with 00H)
  const trimmed = TEXT_VRS.has(vr) ? s.trimEnd() : s.replace(/\0+$/, '').trim();
  return trimmed.normalize('NFC');
}

// ------------------------------------------------------------ wild cards

/**
 * `*` = any sequence (including empty), `?` = exactly one code point;
 * linear-space, worst case O(n·m), no regular expression (no backtracking blow-up).
 */
export function wildcardMatch(pattern: string, text: string, caseInsensitive: boolean): boolean {
  const p = Array.from(caseInsensitive ? foldCase(pattern) : pattern);
  const t = Array.from(caseInsensitive ? foldCase(text) : text);
  let pi = 0;
  let ti = 0;
  let star = -1;
  let mark = 0;
  while (ti < t.length) {
    if (pi < p.length && (p[pi] === '?' || (p[pi] !== '*' && p[pi] === t[ti]))) {
      pi++;
      ti++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = ti;
    } else if (star >= 0) {
      pi = star + 1;
      ti = ++mark;
    } else return false;
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/** Per-code-point upper-casing that never changes the number of code points (so `?` stays one character). */
function foldCase(text: string): string {
  let out = '';
  for (const ch of text) {
    const upper = ch.toUpperCase();
    out += Array.from(upper).length === 1 ? upper : ch;
  }
  return out;
}

// ------------------------------------------------------------ person names

function personNameGroups(stored: Stored): [string, string, string] {
  if (typeof stored === 'object') return [stored.Alphabetic ?? '', stored.Ideographic ?? '', stored.Phonetic ?? ''];
  const parts = String(stored).split('=');
  return [parts[0] ?? '', parts[1] ?? '', parts[2] ?? ''];
}

/** "Doe ^ John^^" → "Doe^John" (NFC). */
function normalizePersonNameGroup(group: string): string {
  const components = group.normalize('NFC').split('^').map((c) => c.trim());
  while (components.length > 0 && components[components.length - 1] === '') components.pop();
  return components.join('^');
}

function matchPersonNameGroup(key: string, group: string): boolean {
  const name = normalizePersonNameGroup(group);
  if (name === '') return false;
  const k = normalizePersonNameGroup(key);
  if (k.includes('*') || k.includes('?')) return wildcardMatch(k, name, true);
  return foldCase(k) === foldCase(name);
}

function matchPersonName(v: ValueMatcher, stored: Stored, fuzzy: boolean): boolean {
  if (v.kind !== 'exact' && v.kind !== 'wildcard') return false;
  const key = v.kind === 'exact' ? v.text : v.pattern;
  const groups = personNameGroups(stored);
  if (fuzzy) {
    const result = fuzzyPersonName(key, groups);
    if (result !== undefined) return result;
  }
  if (key.includes('=')) {
    const keyGroups = key.split('=');
    return keyGroups.every((g, i) => g.trim() === '' || (i < 3 && matchPersonNameGroup(g, groups[i]!)));
  }
  return groups.some((g) => matchPersonNameGroup(key, g));
}

const WORD_SEPARATORS = /[\s^=,.\-]+/u;

function words(text: string): string[] {
  return normalizeForMatch(text)
    .split(WORD_SEPARATORS)
    .filter((w) => w !== '');
}

/** Our fuzzy semantics (PS3.18 §8.3.4.2 leaves them to the origin server); undefined when the key has no words. */
function fuzzyPersonName(key: string, groups: readonly string[]): boolean | undefined {
  const keyWords = words(key).filter((w) => !/^\*+$/.test(w));
  if (keyWords.length === 0) return undefined;
  const nameWords = groups.flatMap(words);
  return keyWords.every((kw) =>
    kw.includes('*') || kw.includes('?')
      ? nameWords.some((nw) => wildcardMatch(`${kw}*`, nw, false))
      : nameWords.some((nw) => nw.startsWith(kw)),
  );
}

// ------------------------------------------------------------ dates and times

/** A DA/TM/DT value as an inclusive window of comparable numbers (the value's precision). */
export interface TemporalWindow {
  start: number;
  end: number;
}

const DA = /^(\d{4})(\d{2})(\d{2})$/;
const TM = /^(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?$/;
const DT = /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?)?)?)?([+-]\d{4})?$/;

const US_PER_SECOND = 1_000_000;
const US_PER_DAY = 86_400 * US_PER_SECOND;

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
}

/**
 * Parse a DA (YYYYMMDD), TM (HH[MM[SS[.F{1,6}]]]) or DT
 * (YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]) value per PS3.5 §6.2 into its
 * window; undefined when malformed. DA → YYYYMMDD as a number; TM →
 * microseconds since midnight; DT → microseconds since the epoch, UTC.
 * Stored values in the ACR-NEMA forms "YYYY.MM.DD" / "HH:MM:SS" are accepted.
 */
export function parseTemporal(vr: string, text: string, stored = false): TemporalWindow | undefined {
  let t = text.trim();
  if (vr === 'DA') {
    if (stored) t = t.replace(/^(\d{4})\.(\d{2})\.(\d{2})$/, '$1$2$3');
    const m = DA.exec(t);
    if (!m) return undefined;
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return undefined;
    const n = Number(t);
    return { start: n, end: n };
  }
  if (vr === 'TM') {
    if (stored) t = t.replace(/^(\d{2}):(\d{2})(?::(\d{2}))?/, '$1$2$3');
    const m = TM.exec(t);
    if (!m) return undefined;
    const h = Number(m[1]);
    const mi = m[2] === undefined ? 0 : Number(m[2]);
    const s = m[3] === undefined ? 0 : Number(m[3]);
    if (h > 23 || mi > 59 || s > 60) return undefined;
    const fraction = m[4] ?? '';
    const start = ((h * 60 + mi) * 60 + s) * US_PER_SECOND + Number(fraction.padEnd(6, '0') || '0');
    const window =
      m[2] === undefined ? 3600 * US_PER_SECOND
      : m[3] === undefined ? 60 * US_PER_SECOND
      : 10 ** (6 - fraction.length);
    return { start, end: Math.min(start + window - 1, US_PER_DAY + US_PER_SECOND - 1) };
  }
  if (vr === 'DT') {
    const m = DT.exec(t);
    if (!m) return undefined;
    const num = (i: number, dflt: number): number => (m[i] === undefined ? dflt : Number(m[i]));
    const year = num(1, 0);
    const month = num(2, 1);
    const day = num(3, 1);
    const hour = num(4, 0);
    const minute = num(5, 0);
    const second = num(6, 0);
    if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 60) {
      return undefined;
    }
    let offsetMinutes = 0;
    if (m[8] !== undefined) {
      const sign = m[8][0] === '-' ? -1 : 1;
      const oh = Number(m[8].slice(1, 3));
      const om = Number(m[8].slice(3, 5));
      if (om > 59) return undefined;
      offsetMinutes = sign * (oh * 60 + om);
      if (offsetMinutes < -12 * 60 || offsetMinutes > 14 * 60) return undefined;
    }
    const fraction = m[7] ?? '';
    const at = (y: number, mo: number, d: number, h: number, mi: number, s: number): number => {
      const date = new Date(0);
      date.setUTCFullYear(y, mo - 1, d);
      date.setUTCHours(h, mi, s, 0);
      return date.getTime() * 1000;
    };
    const base = at(year, month, day, hour, minute, second) + Number(fraction.padEnd(6, '0') || '0');
    let next: number;
    if (m[2] === undefined) next = at(year + 1, 1, 1, 0, 0, 0);
    else if (m[3] === undefined) next = at(year, month + 1, 1, 0, 0, 0);
    else if (m[4] === undefined) next = at(year, month, day + 1, 0, 0, 0);
    else if (m[5] === undefined) next = base + 3600 * US_PER_SECOND;
    else if (m[6] === undefined) next = base + 60 * US_PER_SECOND;
    else next = base + 10 ** (6 - fraction.length);
    const shift = offsetMinutes * 60 * US_PER_SECOND;
    return { start: base - shift, end: next - 1 - shift };
  }
  return undefined;
}

const boundsCache = new WeakMap<ValueMatcher, { low: number; high: number } | null>();

function rangeBounds(v: Extract<ValueMatcher, { kind: 'range' }>, vr: string): { low: number; high: number } | null {
  let b = boundsCache.get(v);
  if (b === undefined) {
    const low = v.lower === undefined ? -Infinity : parseTemporal(vr, v.lower)?.start;
    const high = v.upper === undefined ? Infinity : parseTemporal(vr, v.upper)?.end;
    b = low === undefined || high === undefined ? null : { low, high };
    boundsCache.set(v, b);
  }
  return b;
}

function matchRange(v: Extract<ValueMatcher, { kind: 'range' }>, vr: string, stored: Stored): boolean {
  const bounds = rangeBounds(v, vr);
  if (!bounds || typeof stored === 'object') return false;
  const window = parseTemporal(vr, String(stored), true);
  return window !== undefined && window.start >= bounds.low && window.start <= bounds.high;
}

// ------------------------------------------------------------ return attributes

function isBulkElement(element: DicomJsonElement): boolean {
  return element.BulkDataURI !== undefined || element.InlineBinary !== undefined;
}

/** Copy an element without bulk data inside its sequence items. */
function withoutBulk(element: DicomJsonElement): DicomJsonElement {
  if (element.vr !== 'SQ' || !element.Value) return element;
  return {
    ...element,
    Value: element.Value.map((item) => (isItem(item) ? stripBulk(item) : item)),
  };
}

function stripBulk(dataset: DicomJsonDataset): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  for (const tag of Object.keys(dataset).sort()) {
    const element = dataset[tag]!;
    if (!isBulkElement(element)) out[tag] = withoutBulk(element);
  }
  return out;
}

/**
 * Project a matching record onto what the response carries (PS3.18 §8.3.4.3,
 * Tables 10.6.3-3/-4/-5): the level's default attributes (plus the higher
 * levels' for unscoped searches), the includefield attributes, and every
 * matching key; or every attribute for includefield=all. Bulk data
 * (BulkDataURI and InlineBinary elements) and file meta are never returned.
 * Attributes absent from the record are left out, not sent empty; sequences
 * are returned whole (not only their matching items).
 */
export function selectReturnAttributes(
  level: QidoLevel,
  dataset: DicomJsonDataset,
  query: Pick<QidoQuery, 'includeFields' | 'filters' | 'scope'>,
): DicomJsonDataset {
  let wanted: Set<string> | undefined;
  if (query.includeFields !== 'all') {
    wanted = defaultReturnTags(level, query.scope);
    for (const tag of query.includeFields) wanted.add(tag);
    for (const f of query.filters) wanted.add(f.tag);
  }
  const out: DicomJsonDataset = {};
  for (const tag of Object.keys(dataset).sort()) {
    if (!isTagKey(tag) || tag.startsWith('0002')) continue;
    if (wanted && !wanted.has(tag)) continue;
    const element = dataset[tag]!;
    if (isBulkElement(element)) continue;
    out[tag] = withoutBulk(element);
  }
  return out;
}
