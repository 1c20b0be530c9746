import {
  formatMediaType,
  formatParameterValue,
  formatParsedMediaType,
  parseMediaRanges,
  parseMediaType,
} from '../../../functions/core/dicomweb/media-type';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe('parseMediaType (RFC 9110 §8.3.1, §5.6.6)', () => {
  it('lower-cases type, subtype and parameter names, keeps value case', () => {
    const mt = parseMediaType('Multipart/Related; Type="Application/DICOM"; BOUNDARY=AbC');
    expect(mt.type).toBe('multipart/related');
    expect(mt.topLevel).toBe('multipart');
    expect(mt.subtype).toBe('related');
    expect([...mt.params]).toEqual([
      ['type', 'Application/DICOM'],
      ['boundary', 'AbC'],
    ]);
  });

  it('accepts quoted and unquoted values in any order, with or without whitespace', () => {
    for (const s of [
      'multipart/related;type="application/dicom";boundary=xyz',
      'multipart/related; boundary="xyz"; type=application/dicom',
      'multipart/related ;\ttype = "application/dicom" ;  boundary = xyz  ',
      '  multipart/related;boundary=xyz;type="application/dicom";',
    ]) {
      const mt = parseMediaType(s);
      expect(mt.params.get('type')).toBe('application/dicom');
      expect(mt.params.get('boundary')).toBe('xyz');
    }
  });

  it('unescapes quoted-pairs', () => {
    const mt = parseMediaType('text/plain; title="a \\"quoted\\" \\\\ value"; x="a;b,c"');
    expect(mt.params.get('title')).toBe('a "quoted" \\ value');
    expect(mt.params.get('x')).toBe('a;b,c');
  });

  it('keeps an empty quoted value and skips empty parameters', () => {
    const mt = parseMediaType('text/plain;; a=""; ;b=1');
    expect(mt.params.get('a')).toBe('');
    expect(mt.params.get('b')).toBe('1');
  });

  it('allows "/" and commas in unquoted values (lenient for real clients and boundaries)', () => {
    expect(parseMediaType('multipart/related; type=application/dicom+xml').params.get('type')).toBe('application/dicom+xml');
    expect(parseMediaType('multipart/related; boundary=a,b').params.get('boundary')).toBe('a,b');
  });

  it.each([
    [''],
    ['   '],
    ['application'],
    ['application/'],
    ['/dicom'],
    ['application/dicom extra'],
    ['application/dicom; charset'],
    ['application/dicom; charset='],
    ['application/dicom; =utf-8'],
    ['application/dicom; a="unterminated'],
    ['application/dicom; a="x"y'],
    ['application/dicom; a=1; A=2'],
    ['*/*'],
    ['application/*'],
    ['appli cation/dicom'],
    ['application/dicom, application/json'],
    ['application/dicom; a="bad\u0001"'],
  ])('rejects %j with INVALID_MEDIA_TYPE', (s) => {
    expect(codeOf(() => parseMediaType(s))).toBe('INVALID_MEDIA_TYPE');
  });
});

describe('parseMediaRanges (RFC 9110 §12.5.1)', () => {
  it('parses lists with weights, wildcards and empty elements', () => {
    const r = parseMediaRanges('text/html, application/xhtml+xml,,application/xml;q=0.9, */*;q=0.8 ,');
    expect(r.map((x) => [x.type, x.q])).toEqual([
      ['text/html', 1],
      ['application/xhtml+xml', 1],
      ['application/xml', 0.9],
      ['*/*', 0.8],
    ]);
  });

  it('treats q case-insensitively and keeps parameters after q (PS3.18 §8.7.3.5.2 example)', () => {
    const [a, b] = parseMediaRanges(
      'multipart/related; type="application/dicom";transfer-syntax=1.2.840.10008.1.2.4.50;boundary=**, multipart/related; type="application/dicom";transfer-syntax=1.2.840.10008.1.2.4.57;Q=0.5;boundary=**',
    );
    expect(a!.q).toBe(1);
    expect(b!.q).toBe(0.5);
    expect(b!.params.get('transfer-syntax')).toBe('1.2.840.10008.1.2.4.57');
    expect(b!.params.get('boundary')).toBe('**');
    expect(b!.params.has('q')).toBe(false);
  });

  it('keeps commas inside quoted values', () => {
    const r = parseMediaRanges('a/b; x="1,2", c/d');
    expect(r.map((x) => x.type)).toEqual(['a/b', 'c/d']);
    expect(r[0]!.params.get('x')).toBe('1,2');
  });

  it('returns nothing for an empty list', () => {
    expect(parseMediaRanges('')).toEqual([]);
    expect(parseMediaRanges(' , ,')).toEqual([]);
  });

  it.each([['q=1.5'], ['q=2'], ['q=.5'], ['q=0.1234'], ['q=-1'], ['q=abc'], ['q=1;q=1']])('rejects weight %s', (w) => {
    expect(codeOf(() => parseMediaRanges(`text/html;${w}`))).toBe('INVALID_MEDIA_TYPE');
  });

  it('accepts the qvalue forms of RFC 9110 §12.4.2', () => {
    expect(parseMediaRanges('a/b;q=0, c/d;q=1.000, e/f;q=0.125, g/h;q=1., i/j;q=0.').map((r) => r.q)).toEqual([0, 1, 0.125, 1, 0]);
  });

  it('rejects */subtype, and wildcards when disabled', () => {
    expect(codeOf(() => parseMediaRanges('*/json'))).toBe('INVALID_MEDIA_TYPE');
    expect(codeOf(() => parseMediaRanges('image/*', { wildcards: false }))).toBe('INVALID_MEDIA_TYPE');
    expect(parseMediaRanges('image/*')[0]!.subtype).toBe('*');
  });

  it('rejects garbage between elements', () => {
    expect(codeOf(() => parseMediaRanges('a/b c/d'))).toBe('INVALID_MEDIA_TYPE');
    expect(codeOf(() => parseMediaRanges('a/b;x="1"junk'))).toBe('INVALID_MEDIA_TYPE');
  });
});

describe('formatMediaType', () => {
  it('quotes values that are not tokens (PS3.18 §8.7.3.5.1 type="...")', () => {
    expect(formatMediaType('multipart/related', { type: 'application/dicom', boundary: 'abc-123' })).toBe(
      'multipart/related; type="application/dicom"; boundary=abc-123',
    );
    expect(formatMediaType('application/dicom', [['transfer-syntax', '1.2.840.10008.1.2.1']])).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
    expect(formatMediaType('text/plain', { a: undefined, b: '' })).toBe('text/plain; b=""');
  });

  it('escapes quotes and backslashes, and round-trips', () => {
    expect(formatParameterValue('a "b" \\ c')).toBe('"a \\"b\\" \\\\ c"');
    const s = formatMediaType('text/plain', { title: 'a "b" \\ c; d' });
    expect(parseMediaType(s).params.get('title')).toBe('a "b" \\ c; d');
    const mt = parseMediaType('Multipart/Related; type=application/dicom; boundary="x y"');
    expect(formatParsedMediaType(mt)).toBe('multipart/related; type="application/dicom"; boundary="x y"');
  });

  it('refuses control characters and bad names', () => {
    expect(codeOf(() => formatParameterValue('a\r\nb'))).toBe('INVALID_MEDIA_TYPE');
    expect(codeOf(() => formatMediaType('a/b', { 'bad name': 'x' }))).toBe('INVALID_MEDIA_TYPE');
  });
});
