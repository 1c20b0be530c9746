import { DEFAULT_TRANSFER_SYNTAX, negotiate, parseAccept, type Offer } from '../../../functions/core/dicomweb/accept';

const ELE = '1.2.840.10008.1.2.1';
const ILE = '1.2.840.10008.1.2';
const EBE = '1.2.840.10008.1.2.2';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const JPEG_LOSSLESS = '1.2.840.10008.1.2.4.70';
const JLS = '1.2.840.10008.1.2.4.80';

const instanceNative: Offer[] = [{ mediaType: 'multipart/related', type: 'application/dicom', transferSyntaxes: [ELE, ILE, EBE], defaultTransferSyntax: ELE }];
const instanceJpeg: Offer[] = [{ mediaType: 'multipart/related', type: 'application/dicom', transferSyntaxes: [JPEG_BASELINE], defaultTransferSyntax: ELE }];
const instanceMixed: Offer[] = [{ mediaType: 'multipart/related', type: 'application/dicom', transferSyntaxes: [], defaultTransferSyntax: ELE }];
const metadata: Offer[] = [{ mediaType: 'application/dicom+json', charsets: ['utf-8'] }, { mediaType: 'application/json', charsets: ['utf-8'] }];
const framesNative: Offer[] = [{ mediaType: 'multipart/related', type: 'application/octet-stream', transferSyntaxes: [ELE], defaultTransferSyntax: ELE }];
const framesJpeg: Offer[] = [
  { mediaType: 'multipart/related', type: 'image/jpeg', transferSyntaxes: [JPEG_BASELINE], defaultTransferSyntax: JPEG_BASELINE },
  { mediaType: 'multipart/related', type: 'application/octet-stream', transferSyntaxes: [JPEG_BASELINE], defaultTransferSyntax: ELE },
];
const framesJls: Offer[] = [
  { mediaType: 'multipart/related', type: 'image/jls', transferSyntaxes: [JLS], defaultTransferSyntax: JLS },
  { mediaType: 'multipart/related', type: 'application/octet-stream', transferSyntaxes: [JLS], defaultTransferSyntax: ELE },
];

function pick(accept: string | undefined, offers: Offer[], query?: string[]) {
  const c = negotiate(accept, query, offers);
  return c && { mediaType: c.mediaType, type: c.type, transferSyntax: c.transferSyntax, source: c.source, ...(c.charset ? { charset: c.charset } : {}) };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe('negotiate: headers sent by OHIF / dicomweb-client', () => {
  it('frames: multipart/related; type="application/octet-stream"; transfer-syntax=* (as stored)', () => {
    const h = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
    expect(pick(h, framesNative)).toEqual({ mediaType: 'multipart/related', type: 'application/octet-stream', transferSyntax: '*', source: 'header' });
    expect(pick(h, framesJpeg)).toMatchObject({ type: 'application/octet-stream', transferSyntax: '*' });
  });

  it('frames: unquoted type (OHIF omitQuotationForMultipartRequest)', () => {
    expect(pick('multipart/related; type=application/octet-stream; transfer-syntax=*', framesJpeg)).toMatchObject({ type: 'application/octet-stream', transferSyntax: '*' });
  });

  it('frames: dicomweb-client default (octet-stream, no transfer syntax) means Explicit VR Little Endian', () => {
    expect(pick('multipart/related; type="application/octet-stream"', framesNative)).toMatchObject({ transferSyntax: ELE });
    // compressed frames cannot be given as uncompressed bytes: 406
    expect(pick('multipart/related; type="application/octet-stream"', framesJpeg)).toBeUndefined();
  });

  it('frames: image types with their transfer syntaxes, x- aliases included', () => {
    expect(pick(`multipart/related; type="image/jpeg"; transfer-syntax=${JPEG_BASELINE}`, framesJpeg)).toMatchObject({ type: 'image/jpeg', transferSyntax: JPEG_BASELINE });
    expect(pick(`multipart/related; type="image/x-jls"; transfer-syntax=${JLS}`, framesJls)).toMatchObject({ type: 'image/jls', transferSyntax: JLS });
    expect(pick(`multipart/related; type="image/jpeg"; transfer-syntax=${JPEG_LOSSLESS}`, framesJpeg)).toBeUndefined();
    expect(pick('multipart/related; type="image/*"', framesJpeg)).toMatchObject({ type: 'image/jpeg', transferSyntax: JPEG_BASELINE });
  });

  it('frames: a dicomweb-client list (preferred image type, then octet-stream with *)', () => {
    const h = `multipart/related; type="image/jls"; transfer-syntax=${JLS}, multipart/related; type="application/octet-stream"; transfer-syntax=*`;
    expect(pick(h, framesJls)).toMatchObject({ type: 'image/jls', transferSyntax: JLS });
    expect(pick(h, framesJpeg)).toMatchObject({ type: 'application/octet-stream', transferSyntax: '*' });
  });

  it('instance: multipart/related; type=application/dicom; transfer-syntax=<JPEG baseline>', () => {
    const h = `multipart/related; type=application/dicom; transfer-syntax=${JPEG_BASELINE}`;
    expect(pick(h, instanceJpeg)).toMatchObject({ type: 'application/dicom', transferSyntax: JPEG_BASELINE });
    expect(pick(h, instanceNative)).toBeUndefined();
  });

  it('instance: dicomweb-client default (application/dicom, no transfer syntax) is Explicit VR Little Endian (PS3.18 §8.7.3.4)', () => {
    expect(pick('multipart/related; type="application/dicom"', instanceNative)).toMatchObject({ transferSyntax: ELE });
    expect(pick('multipart/related; type="application/dicom"', instanceJpeg)).toBeUndefined();
    const lenient = instanceJpeg.map((o) => ({ ...o, fallbackToAvailable: true }));
    expect(pick('multipart/related; type="application/dicom"', lenient)).toMatchObject({ transferSyntax: JPEG_BASELINE });
  });

  it('instance: other uncompressed syntaxes on request', () => {
    expect(pick(`multipart/related; type="application/dicom"; transfer-syntax=${ILE}`, instanceNative)).toMatchObject({ transferSyntax: ILE });
  });

  it('metadata: application/dicom+json, multipart/related; type="application/dicom+xml"', () => {
    expect(pick('application/dicom+json, multipart/related; type="application/dicom+xml"', metadata)).toEqual({
      mediaType: 'application/dicom+json',
      type: undefined,
      transferSyntax: undefined,
      source: 'header',
    });
    expect(pick('multipart/related; type="application/dicom+xml", application/dicom+json', metadata)).toMatchObject({ mediaType: 'application/dicom+json' });
    expect(pick('multipart/related; type="application/dicom+xml"', metadata)).toBeUndefined();
  });

  it('*/* gives the default representation of the resource (PS3.18 §8.7.7)', () => {
    expect(pick('*/*', metadata)).toMatchObject({ mediaType: 'application/dicom+json' });
    expect(pick('*/*', instanceNative)).toMatchObject({ type: 'application/dicom', transferSyntax: ELE });
    expect(pick('*/*', framesJpeg)).toMatchObject({ type: 'image/jpeg', transferSyntax: JPEG_BASELINE });
    expect(pick('*/*', instanceJpeg)).toBeUndefined();
    expect(pick('*/*', instanceJpeg.map((o) => ({ ...o, fallbackToAvailable: true })))).toMatchObject({ transferSyntax: JPEG_BASELINE });
  });

  it('a missing or empty Accept is */* (RFC 9110 §12.5.1)', () => {
    expect(pick(undefined, metadata)).toMatchObject({ mediaType: 'application/dicom+json', source: 'default' });
    expect(pick('', instanceNative)).toMatchObject({ transferSyntax: ELE, source: 'default' });
    expect(pick('  ', framesNative)).toMatchObject({ transferSyntax: ELE });
  });

  it('a browser Accept header', () => {
    const h = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7';
    expect(pick(h, metadata)).toMatchObject({ mediaType: 'application/dicom+json' });
    expect(negotiate(h, undefined, metadata)!.q).toBe(0.8);
  });
});

describe('negotiate: RFC 9110 precedence', () => {
  it('highest q wins', () => {
    expect(pick('application/dicom+json;q=0.5, application/json', metadata)).toMatchObject({ mediaType: 'application/json' });
    const both: Offer[] = [{ mediaType: 'multipart/related', type: 'application/dicom', transferSyntaxes: [JPEG_BASELINE, ELE], defaultTransferSyntax: ELE }];
    const h = `multipart/related; type="application/dicom"; transfer-syntax=${JPEG_BASELINE}; q=0.5, multipart/related; type="application/dicom"; transfer-syntax=${ELE}`;
    expect(pick(h, both)).toMatchObject({ transferSyntax: ELE });
    expect(pick(h, instanceJpeg)).toMatchObject({ transferSyntax: JPEG_BASELINE });
  });

  it('ties go to the order in Accept, then to the server order', () => {
    expect(pick('application/json, application/dicom+json', metadata)).toMatchObject({ mediaType: 'application/json' });
    expect(pick('application/*', metadata)).toMatchObject({ mediaType: 'application/dicom+json' });
    const both: Offer[] = [{ mediaType: 'multipart/related', type: 'application/dicom', transferSyntaxes: [JPEG_BASELINE, ELE], defaultTransferSyntax: ELE }];
    expect(pick(`multipart/related; type="application/dicom"; transfer-syntax=${ELE}, multipart/related; type="application/dicom"; transfer-syntax=${JPEG_BASELINE}`, both)).toMatchObject({
      transferSyntax: ELE,
    });
  });

  it('q=0 excludes, and the most specific range decides', () => {
    expect(pick('application/dicom+json;q=0, */*', metadata)).toMatchObject({ mediaType: 'application/json' });
    expect(pick('application/dicom+json;q=0', metadata)).toBeUndefined();
    expect(pick('*/*;q=0.1, application/json', metadata)).toMatchObject({ mediaType: 'application/json' });
    expect(pick('application/*;q=0, application/json', metadata)).toMatchObject({ mediaType: 'application/json' });
    const h = `multipart/related; type="application/dicom"; transfer-syntax=${ELE}; q=0, multipart/related; type="application/dicom"; transfer-syntax=*`;
    expect(pick(h, instanceNative)).toMatchObject({ transferSyntax: '*' });
    expect(pick(`multipart/related; type="application/dicom"; transfer-syntax=${ELE}; q=0, */*`, instanceNative)).toBeUndefined();
  });

  it('multipart/related without type accepts any part type; multipart/* too', () => {
    expect(pick('multipart/related', framesJpeg)).toMatchObject({ type: 'image/jpeg' });
    expect(pick('multipart/*', instanceNative)).toMatchObject({ type: 'application/dicom', transferSyntax: ELE });
  });

  it('single-part types do not match multipart offers (PS3.18 §10.4.4)', () => {
    expect(pick('application/dicom', instanceNative)).toBeUndefined();
    expect(pick('application/octet-stream', framesNative)).toBeUndefined();
    const single: Offer[] = [...instanceNative, { mediaType: 'application/dicom', transferSyntaxes: [ELE], defaultTransferSyntax: ELE }];
    expect(pick('application/dicom', single)).toMatchObject({ mediaType: 'application/dicom', transferSyntax: ELE });
  });

  it('ignores unknown parameters such as boundary=** (PS3.18 §8.7.3.5.1 example)', () => {
    expect(pick('multipart/related; type="application/dicom"; boundary=**; profile=x', instanceNative)).toMatchObject({ transferSyntax: ELE });
  });

  it('a study stored in mixed syntaxes: only transfer-syntax=* (or a lenient offer) can be served', () => {
    expect(pick('multipart/related; type="application/dicom"', instanceMixed)).toBeUndefined();
    expect(pick('multipart/related; type="application/dicom"; transfer-syntax=*', instanceMixed)).toMatchObject({ transferSyntax: '*' });
    expect(pick('*/*', instanceMixed.map((o) => ({ ...o, fallbackToAvailable: true })))).toMatchObject({ transferSyntax: '*' });
  });

  it('honours charset when the offer lists charsets (PS3.18 §8.7.3.5.3)', () => {
    expect(pick('application/dicom+json; charset=UTF-8', metadata)).toMatchObject({ mediaType: 'application/dicom+json', charset: 'utf-8' });
    expect(pick('application/dicom+json; charset=ISO-8859-1', metadata)).toBeUndefined();
    expect(pick('application/dicom+json; charset=ISO-8859-1, application/json', metadata)).toMatchObject({ mediaType: 'application/json' });
    expect(pick('application/dicom+json; charset=ISO-8859-1', [{ mediaType: 'application/dicom+json' }])).toMatchObject({ mediaType: 'application/dicom+json' });
  });

  it('ignores transfer-syntax on representations without one', () => {
    expect(pick(`application/dicom+json; transfer-syntax=${ELE}`, metadata)).toMatchObject({ mediaType: 'application/dicom+json', transferSyntax: undefined });
  });

  it('uses the first transfer syntax when an offer has no default', () => {
    expect(pick('multipart/related; type="application/dicom"', [{ mediaType: 'multipart/related', type: 'application/dicom', transferSyntaxes: [ILE, ELE] }])).toMatchObject({ transferSyntax: ILE });
  });

  it('exports the DICOMweb default transfer syntax', () => {
    expect(DEFAULT_TRANSFER_SYNTAX).toBe(ELE);
  });
});

describe('negotiate: the accept query parameter (PS3.18 §8.3.3.1, §8.7.8.1)', () => {
  it('is tried before the header', () => {
    expect(pick('application/json', metadata, ['application/dicom+json'])).toMatchObject({ mediaType: 'application/dicom+json', source: 'query' });
    expect(pick(undefined, instanceNative, [`multipart/related; type="application/dicom"; transfer-syntax=${ILE}`])).toMatchObject({ transferSyntax: ILE, source: 'query' });
  });

  it('falls back to the header when none of its types can be produced', () => {
    expect(pick('application/json', metadata, ['multipart/related; type="application/dicom+xml"'])).toMatchObject({ mediaType: 'application/json', source: 'header' });
    expect(pick(undefined, metadata, ['multipart/related; type="application/dicom+xml"'])).toMatchObject({ mediaType: 'application/dicom+json', source: 'default' });
  });

  it('combines repeated parameters and their lists', () => {
    expect(pick(undefined, metadata, ['image/jpeg', 'text/html, application/json;q=0.5, application/dicom+json'])).toMatchObject({ mediaType: 'application/dicom+json' });
  });

  it('repairs "+" decoded as a space by URL form decoding', () => {
    expect(pick(undefined, metadata, ['application/dicom json'])).toMatchObject({ mediaType: 'application/dicom+json', source: 'query' });
    expect(pick(undefined, [{ mediaType: 'multipart/related', type: 'application/dicom+xml' }], ['multipart/related; type="application/dicom xml"'])).toMatchObject({ type: 'application/dicom+xml' });
  });

  it('refuses wildcards', () => {
    expect(codeOf(() => negotiate(undefined, ['*/*'], metadata))).toBe('INVALID_ACCEPT');
    expect(codeOf(() => negotiate(undefined, ['application/*'], metadata))).toBe('INVALID_ACCEPT');
  });
});

describe('negotiate: malformed values are INVALID_ACCEPT (400)', () => {
  it.each([
    ['text/html;q=2'],
    ['text/html;q=abc'],
    ['multipart/related; type='],
    ['multipart/related; type="application/dicom'],
    ['multipart/related; type="not a type"'],
    ['application'],
    ['*/json'],
    ['a/b c/d'],
    ['multipart/related; type="application/dicom"; transfer-syntax=JPEG'],
    ['multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50; transfer-syntax=*'],
    ['multipart/related; type="application/dicom"; transfer-syntax=01.2'],
  ])('%s', (h) => {
    expect(codeOf(() => negotiate(h, undefined, instanceNative))).toBe('INVALID_ACCEPT');
  });

  it('even when the other list would do', () => {
    expect(codeOf(() => negotiate('text/html;q=2', ['application/dicom+json'], metadata))).toBe('INVALID_ACCEPT');
  });

  it('parseAccept keeps a readable message', () => {
    expect(() => parseAccept('text/html;q=2')).toThrow(/Accept header: invalid qvalue/);
  });
});
