import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { decodeText, parseSpecificCharacterSet } from '../../../functions/core/dicom/charset';
import { parsePart10 } from '../../../functions/core/dicom/part10';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import { CHARSET_DIR } from '../../helpers/paths';
import { el, part10, seq, item, concat } from './build';

const bytes = (...b: (number | string)[]): Uint8Array =>
  Uint8Array.from(b.flatMap((x) => (typeof x === 'string' ? Array.from(x, (c) => c.charCodeAt(0)) : [x])));
const ESC = 0x1b;

function load(name: string): DicomJsonDataset {
  return parsePart10(new Uint8Array(readFileSync(path.join(CHARSET_DIR, name)))).dataset;
}
const pn = (ds: DicomJsonDataset, key = '00100010') => ds[key]?.Value?.[0];

describe('charset_files (FileInfo.txt)', () => {
  // Expected Unicode of Patient's Name, from charset_files/FileInfo.txt.
  const expected: Record<string, object> = {
    'chrArab.dcm': { Alphabetic: 'قباني^لنزار' },
    'chrFren.dcm': { Alphabetic: 'Buc^Jérôme' },
    'chrFrenMulti.dcm': { Alphabetic: 'Buc^Jérôme' },
    'chrGerm.dcm': { Alphabetic: 'Äneas^Rüdiger' },
    'chrGreek.dcm': { Alphabetic: 'Διονυσιος' },
    'chrH31.dcm': { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' },
    'chrH32.dcm': { Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' },
    'chrHbrw.dcm': { Alphabetic: 'שרון^דבורה' },
    'chrI2.dcm': { Alphabetic: 'Hong^Gildong', Ideographic: '洪^吉洞', Phonetic: '홍^길동' },
    'chrRuss.dcm': { Alphabetic: 'Люкceмбypг' },
    'chrX1.dcm': { Alphabetic: 'Wang^XiaoDong', Ideographic: '王^小東' },
    'chrX2.dcm': { Alphabetic: 'Wang^XiaoDong', Ideographic: '王^小东' },
    'chrJapMulti.dcm': { Alphabetic: 'やまだ^たろう' },
    'chrJapMultiExplicitIR6.dcm': { Alphabetic: 'やまだ^たろう' },
    'chrKoreanMulti.dcm': { Alphabetic: '김희중' },
  };
  it.each(Object.entries(expected))('%s', (file, name) => {
    expect(pn(load(file))).toEqual(name);
  });

  it('multi-valued PN and LO (chrFrenMulti)', () => {
    const ds = load('chrFrenMulti.dcm');
    expect(ds['00101001'].Value).toEqual([{ Alphabetic: 'Buc^Jérôme' }, { Alphabetic: 'Buc^Jérôme' }]);
    expect(ds['00101000'].Value).toEqual(['eggs', 'spam']);
  });

  it('ISO 2022 in multi-valued PN and LT (chrJapMulti, chrKoreanMulti)', () => {
    const jap = load('chrJapMulti.dcm');
    expect(jap['00101001'].Value).toEqual([{ Alphabetic: 'やまだ^たろう' }, { Alphabetic: 'やまだ^たろう' }]);
    expect(jap['001021B0'].Value).toEqual(['たろう']);
    const kor = load('chrKoreanMulti.dcm');
    expect(kor['00081070'].Value).toEqual([{ Alphabetic: '김희중' }]);
    expect(kor['001021B0'].Value).toEqual(['김희중']);
  });

  it('a sequence item with its own Specific Character Set (chrSQEncoding)', () => {
    const ds = load('chrSQEncoding.dcm');
    expect(ds['00080005'].Value).toEqual(['ISO_IR 192']);
    const itm = (ds['00321064'].Value as DicomJsonDataset[])[0];
    expect(itm['00080005'].Value).toEqual(['ISO 2022 IR 13', 'ISO 2022 IR 87']);
    expect(pn(itm)).toEqual({ Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' });
  });

  it('an item inherits the data set character set (chrSQEncoding1)', () => {
    const ds = load('chrSQEncoding1.dcm');
    const itm = (ds['00321064'].Value as DicomJsonDataset[])[0];
    expect(itm['00080005']).toBeUndefined();
    expect(pn(itm)).toEqual({ Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' });
  });

  it('nested items switch charset and switch back (crafted)', () => {
    const latin1Name = Uint8Array.from([0x4a, 0xe9, 0x72, 0xf4, 0x6d, 0x65]); // Jérôme in ISO 8859-1
    const utf8Name = new TextEncoder().encode('Jérôme');
    const ds = concat(
      el(0x00080005, 'CS', 'ISO_IR 100'),
      el(0x00100010, 'PN', latin1Name),
      seq(0x00400275, [item(concat(el(0x00080005, 'CS', 'ISO_IR 192'), el(0x00100010, 'PN', utf8Name))), item(el(0x00100010, 'PN', latin1Name))]),
    );
    const parsed = parsePart10(part10(ds)).dataset;
    expect(pn(parsed)).toEqual({ Alphabetic: 'Jérôme' });
    const items = parsed['00400275'].Value as DicomJsonDataset[];
    expect(pn(items[0])).toEqual({ Alphabetic: 'Jérôme' });
    expect(pn(items[1])).toEqual({ Alphabetic: 'Jérôme' });
  });
});

describe('decodeText', () => {
  const cs = (...terms: string[]) => parseSpecificCharacterSet(terms);

  it('default repertoire and empty SCS', () => {
    expect(decodeText(bytes('ABC'), cs())).toBe('ABC');
    expect(decodeText(bytes('ABC'), cs(''))).toBe('ABC');
    expect(decodeText(bytes('ABC'), parseSpecificCharacterSet(undefined))).toBe('ABC');
  });

  it.each([
    ['ISO_IR 100', [0xe9], 'é'],
    ['ISO_IR 101', [0xb1], 'ą'],
    ['ISO_IR 109', [0xa1], 'Ħ'],
    ['ISO_IR 110', [0xa1], 'Ą'],
    ['ISO_IR 144', [0xb0], 'А'],
    ['ISO_IR 127', [0xc7], 'ا'],
    ['ISO_IR 126', [0xc1], 'Α'],
    ['ISO_IR 138', [0xe0], 'א'],
    ['ISO_IR 148', [0xfd], 'ı'],
    ['ISO_IR 203', [0xa4], '€'],
    ['ISO_IR 166', [0xa1], 'ก'],
    ['ISO_IR 13', [0xb1], 'ｱ'],
    ['ISO_IR 192', [0xe2, 0x82, 0xac], '€'],
    ['GB18030', [0xcd, 0xf5], '王'],
    ['GBK', [0xcd, 0xf5], '王'],
  ])('%s', (term, b, text) => {
    expect(decodeText(Uint8Array.from(b), cs(term))).toBe(text);
  });

  it('tolerates spelling variants of the defined terms', () => {
    expect(decodeText(Uint8Array.from([0xe9]), cs('ISO_IR_100'))).toBe('é');
    expect(decodeText(Uint8Array.from([0xe9]), cs('ISO-IR 100'))).toBe('é');
  });

  it('ISO 2022 IR 100 with code extensions, G1 designated by escape', () => {
    expect(decodeText(bytes('a', 0xe9, 'b'), cs('ISO 2022 IR 100'))).toBe('aéb');
    // switch G1 to Greek and back to Latin-1
    expect(decodeText(bytes(0xe9, ESC, '-F', 0xc1, ESC, '-A', 0xe9), cs('ISO 2022 IR 100', 'ISO 2022 IR 126'))).toBe('éΑé');
  });

  it('JIS X 0212 (ISO 2022 IR 159) via EUC-JP SS3', () => {
    // JIS X 0212 0x3021 is 丂 (U+4E02)
    expect(decodeText(bytes(ESC, '$(D', 0x30, 0x21, ESC, '(B'), cs('', 'ISO 2022 IR 87', 'ISO 2022 IR 159'))).toBe('丂');
  });

  it('GB 2312 (ISO 2022 IR 58) in G1', () => {
    expect(decodeText(bytes('Wang=', ESC, '$)A', 0xcd, 0xf5), cs('', 'ISO 2022 IR 58'), 'pn')).toBe('Wang=王');
  });

  it('JIS X 0201 romaji and katakana (ISO 2022 IR 13)', () => {
    expect(decodeText(bytes(0xd4, 0xcf, 'A~'), cs('ISO 2022 IR 13'))).toBe('ﾔﾏA‾');
  });

  it('resets to the initial code elements at delimiters (PS3.5 §6.1.2.5.3)', () => {
    // A writer that "forgot" ESC ( B before '^' and '\': the reader still resets there.
    const b = bytes(ESC, '$B', 0x3b, 0x33, '^', 'AB');
    expect(decodeText(b, cs('', 'ISO 2022 IR 87'), 'pn')).toBe('山^AB');
    const multi = bytes(ESC, '$B', 0x3b, 0x33, '\\', 'AB');
    expect(decodeText(multi, cs('', 'ISO 2022 IR 87'), 'multi')).toBe('山\\AB');
    // in text mode, backslash is a character, CR/LF still reset
    const text = bytes(ESC, '$B', 0x3b, 0x33, 0x0d, 0x0a, 'AB');
    expect(decodeText(text, cs('', 'ISO 2022 IR 87'), 'text')).toBe('山\r\nAB');
  });

  it('GB18030: a trailing 0x5C byte is not a value delimiter', () => {
    const char = new TextDecoder('gb18030').decode(Uint8Array.from([0x81, 0x5c]));
    const ds = concat(el(0x00080005, 'CS', 'GB18030'), el(0x00081030, 'LO', Uint8Array.from([0x81, 0x5c, 0x5c, 0x41])));
    expect(parsePart10(part10(ds)).dataset['00081030'].Value).toEqual([char, 'A']);
  });

  it('never throws on junk (unknown terms, unknown escapes, lone bytes)', () => {
    expect(decodeText(bytes('A', 0xe9), cs('NOT_A_CHARSET'))).toBe('Aé');
    expect(() => decodeText(bytes(ESC, 'zz', 0xff, 0x80, ESC), cs('', 'ISO 2022 IR 149'))).not.toThrow();
    expect(() => decodeText(bytes(0xff, 0xfe, 0x80), cs('ISO_IR 192'))).not.toThrow();
  });
});
