/**
 * C-FIND (PS3.4 Annex C, hierarchical search C.4.1.2.2) answered with QIDO-RS
 * (PS3.18 §10.6): the identifier becomes a search, each match becomes a
 * response identifier.
 *
 * - Levels: STUDY → /studies, SERIES → /series, IMAGE → /instances (unscoped
 *   resources, so keys of the levels above — PatientName in a SERIES query —
 *   can be matched and returned; the unique keys above are single-value
 *   filters). PATIENT (Patient Root only) is a study search grouped by
 *   Patient ID (+ Issuer): one response per patient, with the patient-level
 *   counts (NumberOfPatientRelated…) summed from the studies.
 * - Matching: the C-FIND syntax is QIDO's (single value, `*` `?` wild cards,
 *   `\` lists, `a-b` ranges, empty = universal), so values pass through.
 *   Keys the archive cannot filter on (not in its QIDO table at that level)
 *   are requested with includefield and checked here with the core matcher
 *   (functions/core/dicomweb/qido-match.ts), so semantics are the archive's.
 *   Sequence keys are return keys only: Sequence Matching (C.2.2.2.6) is not
 *   applied, items come back as stored, limited to the requested item keys.
 * - Keys with a value below the query level are refused (C.4.1.2.2.1 allows
 *   none); below-level return keys come back empty.
 * - Responses: exactly the requested keys, in request order (empty when the
 *   archive has no value), plus Query/Retrieve Level, the unique keys of the
 *   level and the levels above, Retrieve AE Title (ours, C.4.1.1.3.2) and
 *   Specific Character Set "ISO_IR 192": QIDO JSON is Unicode, so responses
 *   are UTF-8 whatever the request's character set was.
 */
import type { DicomJsonDataset, DicomJsonElement } from '../../../functions/core/dicom/json-model';
import { lookupTagKey } from '../../../functions/core/dicom/dictionary';
import { resolveAttribute, levelsInScope, levelOfAttribute, type QidoLevel } from '../../../functions/core/dicomweb/qido-attributes';
import { parseQidoQuery, type Filter, type ValueMatcher } from '../../../functions/core/dicomweb/qido-query';
import { matches, parseTemporal } from '../../../functions/core/dicomweb/qido-match';
import type { DicomWebClient } from '../cloud/dicomweb-client';
import { QueryRetrieveError, fromCloudError } from './errors';
import {
  QR_TAGS,
  UNIQUE_KEY,
  LEVELS,
  levelsAbove,
  matchingValue,
  queryLevelOf,
  requireSingleUniqueKey,
  isPersonName,
  type InformationModel,
  type QueryLevel,
} from './identifier';

export type { InformationModel, QueryLevel } from './identifier';
export { QueryRetrieveError } from './errors';

export interface FindOptions {
  /** Our AE title, returned as Retrieve AE Title (0008,0054): where to send C-MOVE/C-GET for the matches. */
  retrieveAETitle?: string;
}

/** Specific Character Set of every response: Unicode in UTF-8 (PS3.3 C.12.1.1.2, Defined Term ISO_IR 192). */
export const RESPONSE_CHARACTER_SET = 'ISO_IR 192';

const QIDO: Record<Exclude<QueryLevel, 'PATIENT'>, { level: QidoLevel; path: string }> = {
  STUDY: { level: 'study', path: '/studies' },
  SERIES: { level: 'series', path: '/series' },
  IMAGE: { level: 'instance', path: '/instances' },
};

/** Patient-level aggregates (PS3.4 Table C.6-1), computed from the patient's studies. */
const PATIENT_COUNTS = {
  NumberOfPatientRelatedStudies: '00201200',
  NumberOfPatientRelatedSeries: '00201202',
  NumberOfPatientRelatedInstances: '00201204',
} as const;
const NUMBER_OF_STUDY_RELATED_SERIES = '00201206';
const NUMBER_OF_STUDY_RELATED_INSTANCES = '00201208';

/** Patient Study module attributes sit in group 0010 but describe the study (PS3.3 C.7.2.2). */
const PATIENT_STUDY_TAGS = new Set(['00101010', '00101020', '00101030', '00102180', '001021A0', '001021B0', '001021C0', '00101021', '00101022', '00101023', '00101024']);

/** Keys that steer the query rather than match (never filters, never plain return keys). */
const CONTROL_TAGS = new Set<string>([QR_TAGS.QueryRetrieveLevel, QR_TAGS.SpecificCharacterSet, QR_TAGS.RetrieveAETitle, QR_TAGS.QueryRetrieveView]);

/** The Q/R level an attribute belongs to; undefined when the archive's table does not know it (treated as a plain return key). */
function levelOfKey(tag: string): QueryLevel | undefined {
  if ((Object.values(PATIENT_COUNTS) as string[]).includes(tag)) return 'PATIENT';
  if ((tag.startsWith('0010') && !PATIENT_STUDY_TAGS.has(tag)) || /^00120(0[1-4]|06)/.test(tag)) return 'PATIENT';
  if (!resolveAttribute(tag)) return undefined;
  const level = levelOfAttribute(tag);
  return level === 'study' ? 'STUDY' : level === 'series' ? 'SERIES' : level === 'instance' ? 'IMAGE' : undefined;
}

interface Plan {
  level: QueryLevel;
  path: string;
  params: URLSearchParams;
  /** The searches to run: `params`, or one per slice of a long UID list. */
  searches: URLSearchParams[];
  /** Keys matched here, not by the archive. */
  postFilters: Filter[];
  /** Patient-count keys with a value (PATIENT level): matched after aggregation. */
  aggregateFilters: Filter[];
  /** Requested keys in request order. */
  requested: Array<[string, DicomJsonElement]>;
}

/** Translate a C-FIND identifier into a QIDO search (exported for tests and for retrieve planning). */
export function planFind(model: InformationModel, identifier: DicomJsonDataset): Plan {
  const level = queryLevelOf(model, identifier);
  // Hierarchical search: the unique keys of every level above must be single values (PS3.4 C.4.1.2.2.1).
  for (const above of levelsAbove(model, level)) requireSingleUniqueKey(identifier, above, 'C-FIND');
  const qido = level === 'PATIENT' ? QIDO.STUDY : QIDO[level];
  const params = new URLSearchParams();
  const include = new Set<string>();
  const postFilters: Filter[] = [];
  const aggregateFilters: Filter[] = [];
  const requested: Array<[string, DicomJsonElement]> = [];
  const depth = LEVELS.indexOf(level);

  for (const [rawTag, element] of Object.entries(identifier)) {
    const tag = rawTag.toUpperCase();
    if (!/^[0-9A-F]{8}$/.test(tag) || tag.startsWith('0000') || tag.startsWith('0002') || tag.endsWith('0000')) continue;
    requested.push([tag, element]);
    if (CONTROL_TAGS.has(tag)) continue;
    const value = element.vr === 'SQ' ? undefined : matchingValue(element);
    const keyLevel = levelOfKey(tag);
    if (keyLevel !== undefined && LEVELS.indexOf(keyLevel) > depth) {
      if (value !== undefined) {
        throw new QueryRetrieveError('INVALID_IDENTIFIER', `${keywordOf(tag)} is below the ${level} level and cannot be matched there`);
      }
      continue; // a return key below the level: answered empty
    }
    if ((Object.values(PATIENT_COUNTS) as string[]).includes(tag)) {
      if (level !== 'PATIENT') continue;
      include.add(NUMBER_OF_STUDY_RELATED_SERIES).add(NUMBER_OF_STUDY_RELATED_INSTANCES);
      if (value !== undefined) aggregateFilters.push(localFilter(tag, 'IS', value));
      continue;
    }
    const attribute = resolveAttribute(tag);
    const archiveMatches =
      attribute !== undefined &&
      element.vr !== 'SQ' &&
      !attribute.returnOnly &&
      (attribute.level === 'any' || levelsInScope(qido.level).includes(attribute.level as QidoLevel)) &&
      !(attribute.computed && attribute.level !== qido.level && attribute.level !== 'any');
    if (value !== undefined && archiveMatches) params.append(attribute.keyword, value);
    else {
      include.add(tag);
      if (value !== undefined) postFilters.push(localFilter(tag, vrOf(tag, element), value));
    }
  }
  if (level === 'PATIENT') include.add(QR_TAGS.PatientID).add(QR_TAGS.IssuerOfPatientID);
  if (include.size > 0) params.set('includefield', [...include].join(','));

  const pages = splitUidLists(params);
  for (const page of pages) {
    if (page.toString().length > MAX_QUERY_CHARS) {
      throw new QueryRetrieveError('UNABLE_TO_PROCESS', 'C-FIND: the identifier is too large for a query (too many keys or values)');
    }
    // The same parser as the archive's: a value it would refuse is refused here, with the attribute named.
    try {
      parseQidoQuery(page, qido.level);
    } catch (error) {
      throw new QueryRetrieveError('UNABLE_TO_PROCESS', `C-FIND: ${(error as Error).message}`, { cause: error });
    }
  }
  return { level, path: qido.path, params, searches: pages, postFilters, aggregateFilters, requested };
}

/**
 * The response identifiers of a C-FIND, one per match (each goes out as a
 * Pending response, PS3.4 C.4.1.1.4). Throws QueryRetrieveError (with the
 * DIMSE status) before the first match for a bad identifier, and at any
 * point when the archive becomes unreachable (CLOUD_UNAVAILABLE, 0xA700).
 */
export async function* findMatches(
  client: DicomWebClient,
  model: InformationModel,
  identifier: DicomJsonDataset,
  options: FindOptions = {},
): AsyncIterable<DicomJsonDataset> {
  const plan = planFind(model, identifier);
  const results = searchAll(client, plan);
  if (plan.level !== 'PATIENT') {
    for await (const r of results) yield responseIdentifier(plan, r, model, options);
    return;
  }
  // PATIENT: all studies must be seen before the counts are known.
  const patients = new Map<string, { first: DicomJsonDataset; studies: number; series: number; instances: number }>();
  for await (const r of results) {
    const key = `${firstText(r, QR_TAGS.PatientID)}\0${firstText(r, QR_TAGS.IssuerOfPatientID)}`;
    const p = patients.get(key) ?? { first: r, studies: 0, series: 0, instances: 0 };
    p.studies += 1;
    p.series += Number(r[NUMBER_OF_STUDY_RELATED_SERIES]?.Value?.[0] ?? 0) || 0;
    p.instances += Number(r[NUMBER_OF_STUDY_RELATED_INSTANCES]?.Value?.[0] ?? 0) || 0;
    patients.set(key, p);
  }
  for (const p of patients.values()) {
    const ds: DicomJsonDataset = {
      ...p.first,
      [PATIENT_COUNTS.NumberOfPatientRelatedStudies]: { vr: 'IS', Value: [p.studies] },
      [PATIENT_COUNTS.NumberOfPatientRelatedSeries]: { vr: 'IS', Value: [p.series] },
      [PATIENT_COUNTS.NumberOfPatientRelatedInstances]: { vr: 'IS', Value: [p.instances] },
    };
    if (!matches(plan.aggregateFilters, ds, { fuzzy: false })) continue;
    yield responseIdentifier(plan, ds, model, options);
  }
}

async function* searchAll(client: DicomWebClient, plan: Plan): AsyncIterable<DicomJsonDataset> {
  try {
    const seen = new Set<string>();
    for (const params of plan.searches) {
      for await (const r of client.search(plan.path, params)) {
        if (plan.searches.length > 1) {
          // Slices of one UID list cannot overlap, but a record must not be answered twice if they did.
          const key = JSON.stringify([r['0020000D']?.Value, r['0020000E']?.Value, r['00080018']?.Value]);
          if (seen.has(key)) continue;
          seen.add(key);
        }
        if (plan.postFilters.length === 0 || matches(plan.postFilters, r, { fuzzy: false })) yield r;
      }
    }
  } catch (error) {
    throw fromCloudError(error);
  }
}

/** Exactly the requested keys (request order), plus what PS3.4 C.4.1.1.3.2 makes the SCP add. */
function responseIdentifier(plan: Plan, result: DicomJsonDataset, model: InformationModel, options: FindOptions): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  const depth = LEVELS.indexOf(plan.level);
  for (const [tag, element] of plan.requested) {
    if (tag === QR_TAGS.QueryRetrieveLevel) out[tag] = { vr: 'CS', Value: [plan.level] };
    else if (tag === QR_TAGS.SpecificCharacterSet) out[tag] = { vr: 'CS', Value: [RESPONSE_CHARACTER_SET] };
    else if (tag === QR_TAGS.RetrieveAETitle) out[tag] = options.retrieveAETitle ? { vr: 'AE', Value: [options.retrieveAETitle] } : { vr: 'AE' };
    else if (tag === QR_TAGS.QueryRetrieveView) out[tag] = { vr: 'CS' };
    else {
      const keyLevel = levelOfKey(tag);
      const below = keyLevel !== undefined && LEVELS.indexOf(keyLevel) > depth;
      out[tag] = below ? { vr: vrOf(tag, element) } : returnedElement(tag, element, result[tag]);
    }
  }
  // Always present: level, character set, retrieve AE, unique keys of this level and above (hierarchical model).
  out[QR_TAGS.QueryRetrieveLevel] ??= { vr: 'CS', Value: [plan.level] };
  out[QR_TAGS.SpecificCharacterSet] ??= { vr: 'CS', Value: [RESPONSE_CHARACTER_SET] };
  if (options.retrieveAETitle) out[QR_TAGS.RetrieveAETitle] ??= { vr: 'AE', Value: [options.retrieveAETitle] };
  const start = model === 'PATIENT' ? 0 : 1;
  for (const level of LEVELS.slice(start, depth + 1)) {
    const tag = UNIQUE_KEY[level];
    if (!out[tag]) out[tag] = returnedElement(tag, { vr: level === 'PATIENT' ? 'LO' : 'UI' }, result[tag]);
  }
  return out;
}

/** The archive's value for a requested key, or the key empty (zero length) when it has none. */
function returnedElement(tag: string, requested: DicomJsonElement, found: DicomJsonElement | undefined): DicomJsonElement {
  const vr = found?.vr && found.vr !== 'UN' ? found.vr : vrOf(tag, requested);
  if (!found || found.Value === undefined || found.Value.length === 0) return { vr };
  if (vr !== 'SQ') return { vr, Value: found.Value };
  // Sequence: items as stored, limited to the requested item keys when the request named any.
  const template = requested.Value?.[0];
  const keys = template && typeof template === 'object' && !isPersonName(template) ? Object.keys(template as DicomJsonDataset) : [];
  const items = found.Value.filter((i): i is DicomJsonDataset => typeof i === 'object' && i !== null && !isPersonName(i));
  return {
    vr,
    Value: items.map((item) => {
      const sub: DicomJsonDataset = {};
      const wanted = keys.length > 0 ? keys : Object.keys(item);
      for (const k of wanted) {
        const el = item[k];
        if (el?.BulkDataURI !== undefined || el?.InlineBinary !== undefined) continue;
        sub[k] = el && el.Value !== undefined ? { vr: el.vr, Value: el.Value } : { vr: el?.vr ?? vrOf(k, (template as DicomJsonDataset)?.[k]) };
      }
      return sub;
    }),
  };
}

function vrOf(tag: string, element: DicomJsonElement | undefined): string {
  if (element?.vr && element.vr !== 'UN') return element.vr;
  const vr = lookupTagKey(tag)?.vr ?? 'UN';
  // Ambiguous dictionary VRs ("US or SS") resolve to their first choice for an empty key.
  return vr.split(/\s+or\s+|\//)[0]!.trim() || 'UN';
}

function keywordOf(tag: string): string {
  return lookupTagKey(tag)?.keyword ?? `(${tag.slice(0, 4)},${tag.slice(4)})`;
}

function firstText(ds: DicomJsonDataset, tag: string): string {
  const v = ds[tag]?.Value?.[0];
  return typeof v === 'string' || typeof v === 'number' ? String(v).trim() : '';
}

/**
 * A request line longer than this would meet the HTTP server's header limit
 * (Node: 16 KiB for the request line and headers together).
 */
const MAX_QUERY_CHARS = 8 * 1024;
/** UIDs per search when a UID list is split (PS3.4 C.2.2.2.2 lists can be long; URLs cannot). */
export const UID_LIST_SLICE = 50;
const UID_LIST_KEYS = ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'];

/** One search per slice of the longest UID list (any-of semantics make the union the same answer). */
export function splitUidLists(params: URLSearchParams): URLSearchParams[] {
  let longest: { key: string; values: string[] } | undefined;
  for (const key of UID_LIST_KEYS) {
    const all = params.getAll(key);
    if (all.length !== 1) continue;
    const values = all[0]!.split(/[\\,]/).map((v) => v.trim()).filter(Boolean);
    if (values.length > UID_LIST_SLICE && (!longest || values.length > longest.values.length)) longest = { key, values };
  }
  if (!longest) return [params];
  const out: URLSearchParams[] = [];
  for (let i = 0; i < longest.values.length; i += UID_LIST_SLICE) {
    const p = new URLSearchParams(params);
    p.set(longest.key, longest.values.slice(i, i + UID_LIST_SLICE).join('\\'));
    out.push(p);
  }
  return out;
}

const TEMPORAL = new Set(['DA', 'TM', 'DT']);
const NUMERIC = new Set(['IS', 'DS', 'US', 'UL', 'SS', 'SL', 'FL', 'FD', 'SV', 'UV']);
const SINGLE_TEXT = new Set(['LT', 'ST', 'UT', 'UR']);

/** A filter for a key the archive cannot match, with the PS3.4 C.2.2.2 semantics of the core matcher. */
function localFilter(tag: string, vr: string, value: string): Filter {
  const values: ValueMatcher[] = [];
  for (const item of SINGLE_TEXT.has(vr) ? [value] : value.split('\\')) {
    const v = item.trim();
    if (v === '') continue;
    if (TEMPORAL.has(vr)) values.push(localRange(tag, vr, v));
    else if (NUMERIC.has(vr)) {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new QueryRetrieveError('UNABLE_TO_PROCESS', `C-FIND: ${keywordOf(tag)} must be a number`);
      values.push({ kind: 'number', value: n });
    } else if (v.includes('*') || v.includes('?')) values.push({ kind: 'wildcard', pattern: v });
    else values.push({ kind: 'exact', text: v });
  }
  return { tag, keyword: keywordOf(tag), vr, match: 'values', values, requireAll: false };
}

function localRange(tag: string, vr: string, v: string): ValueMatcher {
  const valid = (t: string) => t === '' || parseTemporal(vr, t) !== undefined;
  if (parseTemporal(vr, v) !== undefined) return { kind: 'range', lower: v, upper: v };
  for (let i = v.indexOf('-'); i >= 0; i = v.indexOf('-', i + 1)) {
    const lower = v.slice(0, i);
    const upper = v.slice(i + 1);
    if (valid(lower) && valid(upper) && (lower || upper)) return { kind: 'range', ...(lower ? { lower } : {}), ...(upper ? { upper } : {}) };
  }
  throw new QueryRetrieveError('UNABLE_TO_PROCESS', `C-FIND: ${keywordOf(tag)} is not a valid ${vr} value or range`);
}
