/**
 * Text decoding per Specific Character Set (0008,0005): PS3.5 §6.1, PS3.3 C.12.1.1.2.
 *
 * Three families:
 *  - a single character set without code extensions (default repertoire, ISO_IR 100…,
 *    ISO_IR 13, ISO_IR 192 UTF-8, GB18030, GBK): the whole value goes to one decoder;
 *  - ISO 2022 code extensions ("ISO 2022 IR xxx", or several values): the bytes are split
 *    on escape sequences into runs, each run decoded with the designated G0/G1 set
 *    (JIS X 0208/0212 as EUC-JP with the high bits set, KS X 1001 as EUC-KR,
 *    GB 2312 as GB18030); the initial designations of value 1 come back at every
 *    delimiter (PS3.5 §6.1.2.5.3).
 *
 * Decoding never throws: unknown terms fall back to the default repertoire
 * (decoded as ISO 8859-1, like most toolkits) and invalid bytes become U+FFFD.
 * Uses only the global TextDecoder (full ICU in Node 22).
 */

/** How a run of bytes becomes text. 'latin1' is exact ISO 8859-1 (WHATWG's latin1 is windows-1252). */
type Decoder = 'latin1' | 'jisx0201' | string;

/** A G1 (or single-byte) code element. */
interface G1Set {
  /** TextDecoder label or 'latin1'/'jisx0201' for our own tables */
  decoder: Decoder;
  /** multi-byte (KS X 1001, GB 2312) in G1: bytes come in pairs */
  double?: boolean;
}

type G0Set = 'ascii' | 'romaji' | 'jisx0208' | 'jisx0212';

/** Parsed Specific Character Set, ready to decode values. Build it with `parseSpecificCharacterSet`. */
export interface CharacterSet {
  /** the values of (0008,0005) as given (trimmed) */
  readonly terms: readonly string[];
  /** single decoder for the whole value, or undefined when ISO 2022 code extensions are in use */
  readonly decoder?: Decoder;
  readonly initialG0: G0Set;
  readonly initialG1?: G1Set;
  /** true when ISO 2022 code extensions are in use (escape sequences, several values) */
  readonly iso2022: boolean;
}

const SB: Record<string, string> = {
  // Single-byte sets, with their ISO 2022 G1 final byte (ESC - F) and decoder (PS3.3 Tables C.12-2/C.12-3).
  '100': 'latin1',
  '101': 'iso-8859-2',
  '109': 'iso-8859-3',
  '110': 'iso-8859-4',
  '144': 'iso-8859-5',
  '127': 'iso-8859-6',
  '126': 'iso-8859-7',
  '138': 'iso-8859-8',
  '148': 'iso-8859-9',
  '203': 'iso-8859-15',
  '166': 'windows-874', // TIS 620-2533 (WHATWG label tis-620 → windows-874, a superset)
};

/** ESC - F : final byte F of a 96-character G1 set → decoder. */
const G1_96_FINALS: Record<number, string> = {
  0x41: 'latin1', // IR 100
  0x42: 'iso-8859-2', // IR 101
  0x43: 'iso-8859-3', // IR 109
  0x44: 'iso-8859-4', // IR 110
  0x4c: 'iso-8859-5', // IR 144
  0x47: 'iso-8859-6', // IR 127
  0x46: 'iso-8859-7', // IR 126
  0x48: 'iso-8859-8', // IR 138
  0x4d: 'iso-8859-9', // IR 148
  0x62: 'iso-8859-15', // IR 203
  0x54: 'windows-874', // IR 166
};

export const DEFAULT_CHARACTER_SET: CharacterSet = Object.freeze({
  terms: [],
  decoder: 'latin1',
  initialG0: 'ascii' as G0Set,
  iso2022: false,
});

/** Normalises spelling variants seen in the wild ("ISO_IR_100", "ISO-IR 100", "iso_ir 100"). */
function normaliseTerm(term: string): string {
  const t = term.trim().toUpperCase().replace(/[-_ ]+/g, ' ');
  // "ISO IR 100" → "ISO_IR 100"; "ISO 2022 IR 100" stays
  const m = /^ISO ?IR ?(\d+)$/.exec(t);
  if (m) return `ISO_IR ${m[1]}`;
  const m2 = /^ISO ?2022 ?IR ?(\d+)$/.exec(t);
  if (m2) return `ISO 2022 IR ${m2[1]}`;
  return t;
}

const cache = new Map<string, CharacterSet>();

/**
 * Builds a CharacterSet from the values of (0008,0005). Empty or absent → default repertoire.
 * A leading empty value with more values means "ISO 2022 IR 6" (PS3.3 C.12.1.1.2).
 */
export function parseSpecificCharacterSet(values: readonly (string | null | undefined)[] | undefined): CharacterSet {
  const terms = (values ?? []).map((v) => (v ?? '').trim());
  if (terms.length === 0 || (terms.length === 1 && terms[0] === '')) return DEFAULT_CHARACTER_SET;
  const key = terms.join('\\');
  const hit = cache.get(key);
  if (hit) return hit;
  const cs = build(terms);
  if (cache.size < 64) cache.set(key, cs);
  return cs;
}

function build(terms: string[]): CharacterSet {
  const norm = terms.map(normaliseTerm);
  const first = norm[0];
  // Character sets that do not allow code extensions (PS3.3 Table C.12-4/C.12-5): only value 1 counts.
  if (first === 'ISO_IR 192') return { terms, decoder: 'utf-8', initialG0: 'ascii', iso2022: false };
  if (first === 'GB18030') return { terms, decoder: 'gb18030', initialG0: 'ascii', iso2022: false };
  if (first === 'GBK') return { terms, decoder: 'gbk', initialG0: 'ascii', iso2022: false };

  const multi = norm.length > 1 || first.startsWith('ISO 2022');
  if (!multi) {
    if (first === 'ISO_IR 6' || first === '') return { ...DEFAULT_CHARACTER_SET, terms };
    if (first === 'ISO_IR 13') {
      // JIS X 0201: G0 romaji, G1 katakana, no extensions.
      return { terms, decoder: 'jisx0201', initialG0: 'romaji', iso2022: false };
    }
    const m = /^ISO_IR (\d+)$/.exec(first);
    const dec = m ? SB[m[1]] : undefined;
    return { terms, decoder: dec ?? 'latin1', initialG0: 'ascii', iso2022: false };
  }

  // ISO 2022: initial G0/G1 from value 1 (empty value 1 = ISO 2022 IR 6).
  let initialG0: G0Set = 'ascii';
  let initialG1: G1Set | undefined;
  const m = /^(?:ISO 2022 IR|ISO_IR) (\d+)$/.exec(first);
  if (m) {
    const ir = m[1];
    if (ir === '13') {
      initialG0 = 'romaji';
      initialG1 = { decoder: 'jisx0201' };
    } else if (SB[ir]) {
      initialG1 = { decoder: SB[ir] };
    } else if (ir === '149') {
      initialG1 = { decoder: 'euc-kr', double: true };
    } else if (ir === '58') {
      initialG1 = { decoder: 'gb18030', double: true };
    }
    // IR 87 / 159 as value 1 are not allowed (they are G0 sets); start in ASCII.
  }
  return { terms, initialG0, initialG1, iso2022: true };
}

// ---------------------------------------------------------------------------

const decoders = new Map<string, TextDecoder>();
function textDecoder(label: string): TextDecoder {
  let d = decoders.get(label);
  if (!d) {
    try {
      d = new TextDecoder(label);
    } catch {
      d = new TextDecoder('utf-8');
    }
    decoders.set(label, d);
  }
  return d;
}

/** Exact ISO 8859-1: byte value = code point. */
export function decodeLatin1(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let out = '';
  if (end - start < 64) {
    for (let i = start; i < end; i++) out += String.fromCharCode(bytes[i]);
    return out;
  }
  const CHUNK = 8192;
  for (let i = start; i < end; i += CHUNK) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(end, i + CHUNK)) as unknown as number[]);
  }
  return out;
}

function decodeJisX0201(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += jisX0201Char(b);
  return out;
}

function jisX0201Char(b: number): string {
  if (b >= 0xa1 && b <= 0xdf) return String.fromCharCode(0xff61 + (b - 0xa1)); // half-width katakana
  // JIS X 0201 Romaji: 7E is OVERLINE. 5C (YEN SIGN) stays '\' because 05/12 is the value
  // delimiter in every G0 set (PS3.5 §6.1.2.3 note, §6.2).
  if (b === 0x7e) return '\u203e';
  return String.fromCharCode(b);
}

function decodeWith(decoder: Decoder, bytes: Uint8Array): string {
  if (decoder === 'latin1') return decodeLatin1(bytes);
  if (decoder === 'jisx0201') return decodeJisX0201(bytes);
  return textDecoder(decoder).decode(bytes);
}

/** Which bytes end a run and bring back the initial code elements (PS3.5 §6.1.2.5.3). */
export type DelimiterMode = 'text' | 'multi' | 'pn';

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] >= 0x80 || bytes[i] === 0x1b) return false;
  return true;
}

/**
 * Decodes the bytes of one text value (all its multiple values, delimiters included) to a string.
 * `mode` says which characters reset ISO 2022 state: always CR, LF, FF, TAB; '\' for multi-valued
 * VRs; also '^' and '=' for PN.
 */
export function decodeText(bytes: Uint8Array, cs: CharacterSet = DEFAULT_CHARACTER_SET, mode: DelimiterMode = 'multi'): string {
  if (bytes.length === 0) return '';
  if (!cs.iso2022) {
    if (cs.decoder === 'latin1' || isAscii(bytes)) {
      return cs.decoder === 'jisx0201' ? decodeJisX0201(bytes) : decodeLatin1(bytes);
    }
    return decodeWith(cs.decoder ?? 'latin1', bytes);
  }
  if (isAscii(bytes) && cs.initialG0 === 'ascii') return decodeLatin1(bytes);
  return decodeIso2022(bytes, cs, mode);
}

function decodeIso2022(bytes: Uint8Array, cs: CharacterSet, mode: DelimiterMode): string {
  let g0: G0Set = cs.initialG0;
  let g1: G1Set | undefined = cs.initialG1;
  const parts: string[] = [];
  let run: number[] = [];
  let runDecoder: Decoder = '';

  const flush = (): void => {
    if (run.length) parts.push(decodeWith(runDecoder, Uint8Array.from(run)));
    run = [];
  };
  const emit = (decoder: Decoder, ...bs: number[]): void => {
    if (decoder !== runDecoder) {
      flush();
      runDecoder = decoder;
    }
    for (const b of bs) run.push(b);
  };
  const emitString = (s: string): void => {
    flush();
    parts.push(s);
  };
  /** The decoder for single G0 bytes: one that also decodes the current G1, to keep runs long. */
  const g0Decoder = (): Decoder => {
    if (g0 === 'jisx0208' || g0 === 'jisx0212') return 'euc-jp';
    if (g1 && g1.decoder !== 'jisx0201') return g1.decoder;
    return 'latin1';
  };

  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const b = bytes[i];
    if (b === 0x1b) {
      const esc = readEscape(bytes, i);
      if (esc) {
        i += esc.length - 1;
        if (esc.g0) g0 = esc.g0;
        if (esc.g1) g1 = esc.g1;
        continue;
      }
      emitString('\u001b'); // unknown escape: keep the byte, do not guess
      continue;
    }
    if (b < 0x80) {
      const delimiter =
        b === 0x0d || b === 0x0a || b === 0x0c || b === 0x09 || (mode !== 'text' && b === 0x5c) || (mode === 'pn' && (b === 0x5e || b === 0x3d));
      if (delimiter) {
        g0 = cs.initialG0;
        g1 = cs.initialG1;
        emitString(String.fromCharCode(b));
        continue;
      }
      if ((g0 === 'jisx0208' || g0 === 'jisx0212') && b >= 0x21 && b <= 0x7e && i + 1 < n && bytes[i + 1] >= 0x21 && bytes[i + 1] <= 0x7e) {
        // JIS X 0208 → EUC-JP two bytes with the high bit set; JIS X 0212 → SS3 (8F) prefix.
        if (g0 === 'jisx0212') emit('euc-jp', 0x8f, b | 0x80, bytes[i + 1] | 0x80);
        else emit('euc-jp', b | 0x80, bytes[i + 1] | 0x80);
        i++;
        continue;
      }
      if (g0 === 'romaji' && b === 0x7e) {
        emitString('\u203e');
        continue;
      }
      emit(g0Decoder(), b);
      continue;
    }
    // G1 (GR) bytes
    if (!g1) {
      emit('latin1', b); // nothing designated: lenient
    } else if (g1.decoder === 'jisx0201') {
      if (g0 === 'jisx0208' || g0 === 'jisx0212') emit('euc-jp', 0x8e, b); // EUC-JP SS2 = half-width katakana
      else emitString(jisX0201Char(b));
    } else if (g1.double) {
      if (i + 1 < n && bytes[i + 1] >= 0x80) {
        emit(g1.decoder, b, bytes[i + 1]);
        i++;
      } else {
        emit(g1.decoder, b);
      }
    } else {
      emit(g1.decoder, b);
    }
  }
  flush();
  return parts.join('');
}

interface Escape {
  length: number;
  g0?: G0Set;
  g1?: G1Set;
}

/** Escape sequences of PS3.3 Tables C.12-3 and C.12-4. */
function readEscape(bytes: Uint8Array, i: number): Escape | undefined {
  const b1 = bytes[i + 1];
  const b2 = bytes[i + 2];
  const b3 = bytes[i + 3];
  if (b1 === 0x28) {
    if (b2 === 0x42) return { length: 3, g0: 'ascii' }; // ESC ( B  ISO 646 IRV
    if (b2 === 0x4a) return { length: 3, g0: 'romaji' }; // ESC ( J  JIS X 0201 Romaji
  } else if (b1 === 0x29) {
    if (b2 === 0x49) return { length: 3, g1: { decoder: 'jisx0201' } }; // ESC ) I  JIS X 0201 Katakana
  } else if (b1 === 0x2d) {
    const dec = b2 !== undefined ? G1_96_FINALS[b2] : undefined;
    if (dec) return { length: 3, g1: { decoder: dec } }; // ESC - F  ISO 8859 right halves
  } else if (b1 === 0x24) {
    if (b2 === 0x42 || b2 === 0x40) return { length: 3, g0: 'jisx0208' }; // ESC $ B  JIS X 0208
    if (b2 === 0x28 && b3 === 0x44) return { length: 4, g0: 'jisx0212' }; // ESC $ ( D  JIS X 0212
    if (b2 === 0x29 && b3 === 0x43) return { length: 4, g1: { decoder: 'euc-kr', double: true } }; // ESC $ ) C  KS X 1001
    if (b2 === 0x29 && b3 === 0x41) return { length: 4, g1: { decoder: 'gb18030', double: true } }; // ESC $ ) A  GB 2312
  }
  return undefined;
}
