/**
 * Content negotiation for DICOMweb responses (PS3.18 §8.7.8 "Selected Media
 * Type and Transfer Syntax", RFC 9110 §12.5.1 Accept).
 *
 * A route lists what it can produce as `Offer`s, in its order of preference
 * (the first is the Resource Category's default media type, PS3.18 §8.7.7:
 * `*\/*` matches the default). `negotiate` picks one offer and a transfer syntax:
 *
 * 1. PS3.18 §8.7.8.1: media types of the `accept` query parameter (§8.3.3.1)
 *    are tried first; only if none of them can be produced is the Accept header
 *    used. A missing/empty Accept header counts as `*\/*` (RFC 9110 §12.5.1).
 * 2. Within one list, every (offer, transfer syntax) candidate gets the weight
 *    of the most specific media range that matches it (RFC 9110 §12.5.1:
 *    "the most specific reference has precedence"); q=0 excludes it.
 * 3. Highest q wins; ties go to the range that comes first in the list, then to
 *    the server's order of offers and transfer syntaxes.
 *
 * Transfer syntax (PS3.18 §8.7.3.5.2, §8.7.3.4):
 * - `transfer-syntax=<UID>` matches only that syntax;
 * - `transfer-syntax=*` means "any": the chosen syntax is `'*'`, i.e. the
 *   server's choice, which is the stored one (no transcoding);
 * - no parameter (and every wildcard range) means the default transfer syntax
 *   of the media type: Explicit VR Little Endian 1.2.840.10008.1.2.1 for
 *   application/dicom and application/octet-stream (PS3.18 §8.7.3.4,
 *   Table 8.7.3-2/-3), the per-media-type default for image/* and video/*
 *   (Table 8.7.3-5). If the default cannot be produced, the candidate is not
 *   acceptable unless the offer sets `fallbackToAvailable` (§8.7.3.4 lets a
 *   server answer lossy or huge compressed pixel data in its stored syntax).
 *
 * Malformed lists (bad syntax, duplicate parameters, a transfer-syntax that is
 * neither "*" nor a UID, wildcards in the query parameter) throw `INVALID_ACCEPT`.
 * Unknown media types and unknown parameters (e.g. `boundary=**`) are ignored.
 */
import { parseMediaRanges, type MediaRange } from './media-type';
import { isValidUID } from '../dicom/uid';

export const INVALID_ACCEPT = 'INVALID_ACCEPT';

export class AcceptError extends Error {
  readonly code = INVALID_ACCEPT;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AcceptError';
  }
}

/** Explicit VR Little Endian: the default transfer syntax of DICOMweb payloads (PS3.18 §8.7.3.4). */
export const DEFAULT_TRANSFER_SYNTAX = '1.2.840.10008.1.2.1';

/** A representation a route can produce. */
export interface Offer {
  /** e.g. "application/dicom+json", "multipart/related", "application/dicom". */
  mediaType: string;
  /** For multipart/related: the media type of the parts (the `type` parameter), e.g. "application/dicom". */
  type?: string;
  /**
   * Transfer syntaxes this representation can be produced in, best first.
   * Omit for representations without one (JSON): transfer-syntax parameters are then ignored.
   * May be empty (e.g. a study stored in mixed syntaxes): only `transfer-syntax=*` can match.
   */
  transferSyntaxes?: readonly string[];
  /** The syntax meant by "no transfer-syntax parameter" (PS3.18 §8.7.3.4; Table 8.7.3-5 for image/video types). */
  defaultTransferSyntax?: string;
  /** When the default cannot be produced, serve the first of `transferSyntaxes` (or `'*'`) instead of refusing (PS3.18 §8.7.3.4). */
  fallbackToAvailable?: boolean;
  /** Charsets this representation can be produced in (lower-case); omit to ignore `charset` parameters (PS3.18 §8.7.3.5.3). */
  charsets?: readonly string[];
}

export interface Chosen {
  offer: Offer;
  offerIndex: number;
  mediaType: string;
  type?: string;
  /** A transfer syntax UID, `'*'` (any: serve as stored), or undefined when the offer has no transfer syntaxes. */
  transferSyntax?: string;
  /** The charset the client asked for, when the offer lists charsets. */
  charset?: string;
  q: number;
  /** Which list decided: the `accept` query parameter, the Accept header, or no Accept header at all. */
  source: 'query' | 'header' | 'default';
}

/** Legacy or alternate names of media types used in DICOMweb, to their PS3.18 names (dicomweb-client sends the x- forms). */
const ALIASES: Record<string, string> = {
  'image/x-jls': 'image/jls',
  'image/x-dicom-rle': 'image/dicom-rle',
  'video/mpeg2': 'video/mpeg',
};

function canonical(type: string): string {
  const t = type.toLowerCase();
  return ALIASES[t] ?? t;
}

const ANY = '*';
const TCHARS = "A-Za-z0-9!#$%&'*.^_`|~-";
// "application/dicom+json" in a URL query arrives as "application/dicom json" when "+" was not percent-encoded.
const PLUS_DECODED_AS_SPACE = new RegExp(`([${TCHARS}]+/[${TCHARS}]*[${TCHARS}]) (?=[${TCHARS}])`, 'g');

/** Parse an Accept value (header or query parameter) into media ranges; throws INVALID_ACCEPT. */
export function parseAccept(value: string, options: { query?: boolean } = {}): MediaRange[] {
  let text = value;
  if (options.query) {
    let previous: string;
    do {
      previous = text;
      text = text.replace(PLUS_DECODED_AS_SPACE, '$1+');
    } while (text !== previous);
  }
  let ranges: MediaRange[];
  try {
    // PS3.18 §8.3.3.1: the accept query parameter "shall not have wildcards".
    ranges = parseMediaRanges(text, { wildcards: !options.query });
  } catch (error) {
    throw new AcceptError(`${options.query ? 'accept query parameter' : 'Accept header'}: ${(error as Error).message}`, { cause: error });
  }
  for (const r of ranges) {
    const ts = r.params.get('transfer-syntax');
    // PS3.18 §8.7.3.5.2: ts-value = transfer-syntax-uid / "*"
    if (ts !== undefined && ts !== ANY && !isValidUID(ts)) throw new AcceptError(`transfer-syntax "${ts}" is neither "*" nor a UID`);
    const type = r.params.get('type');
    if (type !== undefined && r.type === 'multipart/related') {
      try {
        parseMediaRanges(type, { wildcards: true });
      } catch (error) {
        throw new AcceptError('the type parameter of multipart/related is not a media type', { cause: error });
      }
    }
  }
  return ranges;
}

interface Candidate {
  offerIndex: number;
  tsIndex: number;
  transferSyntax?: string;
}

/** How closely a range matches a candidate, compared lexicographically; undefined when it does not match. */
type Specificity = [mediaType: number, partType: number, transferSyntax: number, charset: number];

function effectiveDefault(offer: Offer): string | undefined {
  const list = offer.transferSyntaxes ?? [];
  const def = offer.defaultTransferSyntax;
  if (def !== undefined && list.includes(def)) return def;
  if (def === undefined || offer.fallbackToAvailable) return list[0] ?? ANY;
  return undefined;
}

function partTypeLevel(range: MediaRange, offer: Offer): number | undefined {
  const requested = range.params.get('type');
  if (requested === undefined) return 0; // RFC 2387 requires it; a missing type accepts any part type
  const [rt] = parseMediaRanges(requested, { wildcards: true });
  if (!rt || rt.type === '*/*') return 0;
  if (offer.type === undefined) return undefined;
  const want = canonical(offer.type);
  if (rt.subtype === '*') return want.startsWith(`${rt.topLevel}/`) ? 1 : undefined;
  return canonical(rt.type) === want ? 2 : undefined;
}

function match(range: MediaRange, offer: Offer, candidate: Candidate, charsetOut: { value?: string }): Specificity | undefined {
  const offered = canonical(offer.mediaType);
  let level: number;
  if (range.type === '*/*') level = 0;
  else if (range.subtype === '*') level = offered.startsWith(`${range.topLevel}/`) ? 1 : -1;
  else level = canonical(range.type) === offered ? 2 : -1;
  if (level < 0) return undefined;

  // Parameters only qualify an exact media type; a wildcard range means "anything, in its default form".
  const exact = level === 2;
  let typeLevel = 0;
  if (exact && offer.type !== undefined) {
    const t = partTypeLevel(range, offer);
    if (t === undefined) return undefined;
    typeLevel = t;
  }

  let tsLevel = 0;
  if (offer.transferSyntaxes !== undefined) {
    const requested = exact ? range.params.get('transfer-syntax') : undefined;
    if (requested === undefined) {
      if (candidate.transferSyntax !== effectiveDefault(offer)) return undefined;
    } else {
      if (candidate.transferSyntax !== requested) return undefined;
      tsLevel = 1;
    }
  }

  let charsetLevel = 0;
  const charset = exact ? range.params.get('charset') : undefined;
  if (charset !== undefined && offer.charsets !== undefined) {
    const wanted = charset.toLowerCase();
    if (!offer.charsets.some((c) => c.toLowerCase() === wanted)) return undefined;
    charsetLevel = 1;
    charsetOut.value = wanted;
  }
  return [level, typeLevel, tsLevel, charsetLevel];
}

function moreSpecific(a: Specificity, b: Specificity): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return false;
}

function candidatesOf(offers: readonly Offer[]): Candidate[] {
  const out: Candidate[] = [];
  offers.forEach((offer, offerIndex) => {
    if (offer.transferSyntaxes === undefined) {
      out.push({ offerIndex, tsIndex: 0 });
      return;
    }
    offer.transferSyntaxes.forEach((ts, tsIndex) => out.push({ offerIndex, tsIndex, transferSyntax: ts }));
    // '*': "any transfer syntax", answered as stored (PS3.18 §8.7.3.5.2).
    out.push({ offerIndex, tsIndex: offer.transferSyntaxes.length, transferSyntax: ANY });
  });
  return out;
}

/** Best candidate for one list of ranges (RFC 9110 §12.5.1 precedence), or undefined. */
function select(ranges: readonly MediaRange[], offers: readonly Offer[], source: Chosen['source']): Chosen | undefined {
  let best: { chosen: Chosen; rangeIndex: number; candidate: Candidate } | undefined;
  for (const candidate of candidatesOf(offers)) {
    const offer = offers[candidate.offerIndex]!;
    let decider: { spec: Specificity; index: number; charset?: string } | undefined;
    for (let index = 0; index < ranges.length; index++) {
      const charsetOut: { value?: string } = {};
      const spec = match(ranges[index]!, offer, candidate, charsetOut);
      if (spec && (!decider || moreSpecific(spec, decider.spec))) decider = { spec, index, charset: charsetOut.value };
    }
    if (!decider) continue;
    const q = ranges[decider.index]!.q;
    if (q <= 0) continue; // q=0: "not acceptable" (RFC 9110 §12.4.2)
    const better =
      !best ||
      q > best.chosen.q ||
      (q === best.chosen.q &&
        (decider.index < best.rangeIndex ||
          (decider.index === best.rangeIndex &&
            (candidate.offerIndex < best.candidate.offerIndex ||
              (candidate.offerIndex === best.candidate.offerIndex && candidate.tsIndex < best.candidate.tsIndex)))));
    if (better) {
      best = {
        rangeIndex: decider.index,
        candidate,
        chosen: {
          offer,
          offerIndex: candidate.offerIndex,
          mediaType: offer.mediaType,
          type: offer.type,
          transferSyntax: candidate.transferSyntax,
          charset: decider.charset,
          q,
          source,
        },
      };
    }
  }
  return best?.chosen;
}

const ANYTHING: MediaRange[] = [{ type: '*/*', topLevel: '*', subtype: '*', params: new Map(), q: 1 }];

/**
 * Choose the response representation. `acceptQuery` holds the values of every
 * `accept` query parameter (already URL-decoded). Returns undefined when
 * nothing acceptable can be produced (the caller answers 406); throws
 * `INVALID_ACCEPT` when the header or the query parameter is malformed (400).
 */
export function negotiate(acceptHeader: string | undefined | null, acceptQuery: readonly string[] | undefined, offers: readonly Offer[]): Chosen | undefined {
  // Parse both up front: a malformed value is a 400 even if the other one would do.
  const queryRanges = (acceptQuery ?? []).flatMap((v) => parseAccept(v, { query: true }));
  const header = acceptHeader?.trim() ? acceptHeader : undefined;
  const headerRanges = header !== undefined ? parseAccept(header) : undefined;

  if (queryRanges.length > 0) {
    const fromQuery = select(queryRanges, offers, 'query');
    if (fromQuery) return fromQuery;
  }
  // PS3.18 §8.7.8.1 step 3; a request without Accept accepts anything (RFC 9110 §12.5.1).
  return headerRanges ? select(headerRanges, offers, 'header') : select(ANYTHING, offers, 'default');
}
