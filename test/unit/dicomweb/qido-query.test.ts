import {
  parseQidoQuery,
  studySearchHints,
  QidoQueryError,
  type Filter,
  type QidoLevel,
  type QidoQueryOptions,
} from '../../../functions/core/dicomweb/qido-query';
import { REQUIRED_MATCHING_KEYS } from '../../../functions/core/dicomweb/qido-attributes';

const STUDY = '1.2.840.113619.2.1';
const SERIES = '1.2.840.113619.2.1.3';

function parse(qs: string, level: QidoLevel = 'study', options?: QidoQueryOptions) {
  return parseQidoQuery(new URLSearchParams(qs), level, options);
}

function filter(qs: string, keyword: string, level: QidoLevel = 'study', options?: QidoQueryOptions): Filter {
  const f = parse(qs, level, options).filters.find((x) => x.keyword === keyword);
  if (!f) throw new Error(`no filter for ${keyword}`);
  return f;
}

function error(fn: () => unknown): QidoQueryError {
  try {
    fn();
  } catch (e) {
    return e as QidoQueryError;
  }
  throw new Error('expected an error');
}

describe('parseQidoQuery: invalid queries → INVALID_QUERY naming the parameter', () => {
  const seriesOfStudy: QidoQueryOptions = { scope: { studyInstanceUID: STUDY } };
  const cases: Array<[string, QidoLevel, QidoQueryOptions | undefined, string, RegExp]> = [
    ['Foo=bar', 'study', undefined, 'Foo', /unknown query parameter or attribute "Foo"/],
    ['PatientNam=Doe', 'study', undefined, 'PatientNam', /unknown/],
    ['patientname=Doe', 'study', undefined, 'patientname', /unknown/], // keywords are case-sensitive (PS3.6)
    ['orderby=PatientName', 'study', undefined, 'orderby', /unknown/],
    ['001000ZZ=x', 'study', undefined, '001000ZZ', /unknown/],
    ['00191010=x', 'instance', undefined, '00191010', /not a searchable attribute/],
    ['SOPInstanceUID=1.2.3', 'study', undefined, 'SOPInstanceUID', /instance level and is not permitted in a search for studies/],
    ['Modality=CT', 'study', undefined, 'Modality', /series level/],
    ['PatientName=Doe', 'series', seriesOfStudy, 'PatientName', /not permitted in a search for the series of one study/],
    ['StudyInstanceUID=1.2.3', 'series', seriesOfStudy, 'StudyInstanceUID', /study level/],
    ['SeriesInstanceUID=1.2.3', 'instance', { scope: { studyInstanceUID: STUDY, seriesInstanceUID: SERIES } }, 'SeriesInstanceUID', /instances of one series/],
    ['ModalitiesInStudy=CT', 'series', undefined, 'ModalitiesInStudy', /only be matched in a search for studies/],
    ['NumberOfSeriesRelatedInstances=3', 'instance', undefined, 'NumberOfSeriesRelatedInstances', /only be matched in a search for series/],
    ['StudyInstanceUID=1.2.abc', 'study', undefined, 'StudyInstanceUID', /invalid UID/],
    ['StudyInstanceUID=1.02.3', 'study', undefined, 'StudyInstanceUID', /invalid UID/],
    ['StudyInstanceUID=1.2.*', 'study', undefined, 'StudyInstanceUID', /wild cards are not allowed for UIDs/],
    ['StudyInstanceUID=1.2.3,,1.2.4', 'study', undefined, 'StudyInstanceUID', /invalid UID/],
    ['StudyDate=2024011', 'study', undefined, 'StudyDate', /DA value/],
    ['StudyDate=20241301', 'study', undefined, 'StudyDate', /DA value/],
    ['StudyDate=20230229', 'study', undefined, 'StudyDate', /DA value/],
    ['StudyDate=2024-01-01', 'study', undefined, 'StudyDate', /DA value/],
    ['StudyDate=2024*', 'study', undefined, 'StudyDate', /wild cards are not allowed for VR DA/],
    ['StudyDate=20240201-20240101', 'study', undefined, 'StudyDate', /ends before it starts/],
    ['StudyDate=-', 'study', undefined, 'StudyDate', /range/],
    ['StudyDate=20240101-20240201-20240301', 'study', undefined, 'StudyDate', /range/],
    ['StudyTime=25', 'study', undefined, 'StudyTime', /TM value/],
    ['StudyTime=10:30', 'study', undefined, 'StudyTime', /TM value/],
    ['StudyTime=1030.5', 'study', undefined, 'StudyTime', /TM value/],
    ['StudyTime=103000.1234567', 'study', undefined, 'StudyTime', /TM value/],
    ['AcquisitionDateTime=20240101120000+1500', 'instance', undefined, 'AcquisitionDateTime', /DT value/],
    ['NumberOfStudyRelatedInstances=abc', 'study', undefined, 'NumberOfStudyRelatedInstances', /integer/],
    ['PatientWeight=7O', 'study', undefined, 'PatientWeight', /decimal/],
    ['PatientAge=54', 'study', undefined, 'PatientAge', /age string/],
    ['PatientName=Doe\\', 'study', undefined, 'PatientName', /empty value in a list/],
    ['limit=-1', 'study', undefined, 'limit', /non-negative integer/],
    ['limit=abc', 'study', undefined, 'limit', /non-negative integer/],
    ['limit=1.5', 'study', undefined, 'limit', /non-negative integer/],
    ['limit=1&limit=2', 'study', undefined, 'limit', /only once/],
    ['offset=x', 'study', undefined, 'offset', /non-negative integer/],
    ['offset=99999999999999999999', 'study', undefined, 'offset', /too large/],
    ['fuzzymatching=yes', 'study', undefined, 'fuzzymatching', /true or false/],
    ['emptyvaluematching=1', 'study', undefined, 'emptyvaluematching', /true or false/],
    ['includefield=Foo', 'study', undefined, 'includefield', /unknown attribute "Foo"/],
    ['includefield=PatientName,,StudyDate', 'study', undefined, 'includefield', /empty attribute/],
    ['RequestAttributesSequence=x', 'series', undefined, 'RequestAttributesSequence', /takes no value/],
    ['PatientName.PatientID=x', 'study', undefined, 'PatientName.PatientID', /PatientName is not a sequence/],
    ['RequestAttributesSequence.Bogus=x', 'series', undefined, 'RequestAttributesSequence.Bogus', /"Bogus" is not a searchable attribute/],
    ['SpecificCharacterSet=ISO_IR 192', 'study', undefined, 'SpecificCharacterSet', /cannot be used for matching/],
    ['RetrieveURL=http://x', 'study', undefined, 'RetrieveURL', /cannot be used for matching/],
    ['multiplevaluematching=true&ModalitiesInStudy=C*\\PT', 'study', undefined, 'ModalitiesInStudy', /multiple value matching/],
    ['PixelSpacing=0.5\\abc', 'instance', undefined, 'PixelSpacing', /decimal/],
  ];
  it.each(cases)('%s (%s)', (qs, level, options, parameter, message) => {
    const e = error(() => parse(qs, level, options));
    expect(e).toBeInstanceOf(QidoQueryError);
    expect(e.code).toBe('INVALID_QUERY');
    expect(e.parameter).toBe(parameter);
    expect(e.message).toMatch(message);
  });

  it('never echoes the query value (it may be PHI)', () => {
    expect(error(() => parse('PatientBirthDate=SECRET-NAME')).message).not.toContain('SECRET');
    expect(error(() => parse('StudyInstanceUID=SECRET')).message).not.toContain('SECRET');
  });

  it('rejects an invalid UID in the resource path', () => {
    const e = error(() => parse('', 'series', { scope: { studyInstanceUID: '../x' } }));
    expect(e.code).toBe('INVALID_QUERY');
    expect(e.parameter).toBe('path');
  });
});

describe('parseQidoQuery: keys, values and options', () => {
  it('accepts keywords and tags (upper or lower hex) for the same attribute', () => {
    expect(filter('PatientName=Doe*', 'PatientName')).toEqual(filter('00100010=Doe*', 'PatientName'));
    expect(filter('0020000d=1.2.3', 'StudyInstanceUID')).toMatchObject({ tag: '0020000D', vr: 'UI' });
  });

  it('parses single value, wildcard and universal matching for strings', () => {
    expect(filter('PatientID=PID-1', 'PatientID')).toMatchObject({ match: 'values', values: [{ kind: 'exact', text: 'PID-1' }] });
    expect(filter('PatientID=PID?', 'PatientID')).toMatchObject({ match: 'values', values: [{ kind: 'wildcard', pattern: 'PID?' }] });
    expect(filter('PatientID=', 'PatientID')).toMatchObject({ match: 'universal' });
    expect(filter('PatientID=*', 'PatientID')).toMatchObject({ match: 'universal' });
    expect(filter('PatientID=**', 'PatientID')).toMatchObject({ match: 'universal' });
    expect(filter('ModalitiesInStudy=CT\\*', 'ModalitiesInStudy')).toMatchObject({ match: 'universal' });
  });

  it('trims insignificant spaces (trailing for text VRs only)', () => {
    expect(filter('PatientID=%20PID-1%20%20', 'PatientID')).toMatchObject({ values: [{ kind: 'exact', text: 'PID-1' }] });
    expect(filter('ImageComments=%20%20note%20', 'ImageComments', 'instance')).toMatchObject({ values: [{ kind: 'exact', text: '  note' }] });
  });

  it('parses UID lists separated by commas (PS3.18 uid-list-match) or backslashes', () => {
    const f = filter('StudyInstanceUID=1.2.3,1.2.4\\1.2.5', 'StudyInstanceUID');
    expect(f).toMatchObject({ match: 'values', requireAll: false });
    expect(f.match === 'values' && f.values.map((v) => (v as { text: string }).text)).toEqual(['1.2.3', '1.2.4', '1.2.5']);
  });

  it('merges repeated keys into one any-of list', () => {
    const f = filter('ModalitiesInStudy=CT&ModalitiesInStudy=MR\\PT&ModalitiesInStudy=', 'ModalitiesInStudy');
    expect(f.match === 'values' && f.values.map((v) => (v as { text: string }).text)).toEqual(['CT', 'MR', 'PT']);
  });

  it('keeps backslashes literal in single-valued text VRs', () => {
    expect(filter('ImageComments=a\\b*', 'ImageComments', 'instance')).toMatchObject({ values: [{ kind: 'wildcard', pattern: 'a\\b*' }] });
  });

  it('parses numbers for numeric VRs', () => {
    expect(filter('SeriesNumber=+3', 'SeriesNumber', 'series')).toMatchObject({ values: [{ kind: 'number', value: 3 }] });
    expect(filter('PatientWeight=72.50', 'PatientWeight')).toMatchObject({ values: [{ kind: 'number', value: 72.5 }] });
    expect(filter('SliceThickness=1e0', 'SliceThickness', 'instance')).toMatchObject({ values: [{ kind: 'number', value: 1 }] });
  });

  const ranges: Array<[string, QidoLevel, string, object]> = [
    ['StudyDate=20240101', 'study', 'StudyDate', { kind: 'range', lower: '20240101', upper: '20240101' }],
    ['StudyDate=20240101-20240131', 'study', 'StudyDate', { kind: 'range', lower: '20240101', upper: '20240131' }],
    ['StudyDate=20240101-', 'study', 'StudyDate', { kind: 'range', lower: '20240101' }],
    ['StudyDate=-20240101', 'study', 'StudyDate', { kind: 'range', upper: '20240101' }],
    ['StudyTime=0800-120000.5', 'study', 'StudyTime', { kind: 'range', lower: '0800', upper: '120000.5' }],
    ['AcquisitionDateTime=20240101120000-0500', 'instance', 'AcquisitionDateTime', { kind: 'range', lower: '20240101120000-0500', upper: '20240101120000-0500' }],
    ['AcquisitionDateTime=2024-2025', 'instance', 'AcquisitionDateTime', { kind: 'range', lower: '2024', upper: '2025' }],
    ['AcquisitionDateTime=20240101120000-0500-20240102', 'instance', 'AcquisitionDateTime', { kind: 'range', lower: '20240101120000-0500', upper: '20240102' }],
    ['AcquisitionDateTime=-202401011200%2B0100', 'instance', 'AcquisitionDateTime', { kind: 'range', upper: '202401011200+0100' }],
    // an unencoded '+' arrives as a space
    ['AcquisitionDateTime=-202401011200+0100', 'instance', 'AcquisitionDateTime', { kind: 'range', upper: '202401011200+0100' }],
    ['TimezoneOffsetFromUTC=+0100', 'study', 'TimezoneOffsetFromUTC', { kind: 'exact', text: '+0100' }],
  ];
  it.each(ranges)('range %s', (qs, level, keyword, expected) => {
    const f = filter(qs, keyword, level);
    expect(f.match === 'values' && f.values[0]).toEqual(expected);
  });

  it('builds one sequence filter from item keys of the same sequence (keywords or tags)', () => {
    const f = filter('RequestAttributesSequence.ScheduledProcedureStepID=SPS1&00400275.00401001=RP*', 'RequestAttributesSequence', 'series');
    expect(f).toMatchObject({
      tag: '00400275',
      match: 'sequence',
      items: [
        { keyword: 'ScheduledProcedureStepID', match: 'values', values: [{ kind: 'exact', text: 'SPS1' }] },
        { keyword: 'RequestedProcedureID', match: 'values', values: [{ kind: 'wildcard', pattern: 'RP*' }] },
      ],
    });
  });

  it('treats a sequence with only universal item keys as a return key', () => {
    expect(filter('RequestAttributesSequence.ScheduledProcedureStepID=', 'RequestAttributesSequence', 'series')).toMatchObject({ match: 'universal' });
    expect(filter('RequestAttributesSequence=', 'RequestAttributesSequence', 'series')).toMatchObject({ match: 'universal' });
  });

  it('empty value matching and multiple value matching (PS3.18 §8.3.4.5/6)', () => {
    expect(filter('emptyvaluematching=true&AccessionNumber=""', 'AccessionNumber')).toMatchObject({ values: [{ kind: 'empty' }] });
    expect(filter('AccessionNumber=""', 'AccessionNumber')).toMatchObject({ values: [{ kind: 'exact', text: '""' }] });
    expect(filter('multiplevaluematching=true&ModalitiesInStudy=CT\\PT', 'ModalitiesInStudy')).toMatchObject({ requireAll: true });
    expect(filter('ModalitiesInStudy=CT\\PT', 'ModalitiesInStudy')).toMatchObject({ requireAll: false });
    // not a multi-value VR: stays any-of
    expect(filter('multiplevaluematching=true&StudyDate=20240101\\20240105', 'StudyDate')).toMatchObject({ requireAll: false });
  });

  it('parses includefield: comma lists, repeats, tags, keywords, sequence paths, all', () => {
    const q = parse('includefield=StudyDescription,00081032&includefield=0020000d&includefield=RequestAttributesSequence.ScheduledProcedureStepID&includefield=00191010');
    expect(q.includeFields).toEqual(new Set(['00081030', '00081032', '0020000D', '00400275', '00191010']));
    expect(parse('includefield=PatientAge&includefield=all').includeFields).toBe('all');
    // lower-level attributes are accepted (OHIF asks for Modality at study level) and simply absent
    expect(parse('includefield=00080060').includeFields).toEqual(new Set(['00080060']));
  });

  it('parses fuzzymatching (ABNF literals are case-insensitive)', () => {
    expect(parse('fuzzymatching=TRUE').fuzzy).toBe(true);
    expect(parse('fuzzymatching=false').fuzzy).toBe(false);
    expect(parse('').fuzzy).toBe(false);
  });

  const limits: Array<[string, QidoQueryOptions | undefined, number, number, boolean]> = [
    ['', undefined, 100, 0, false],
    ['limit=10&offset=20', undefined, 10, 20, false],
    ['limit=0', undefined, 0, 0, false],
    ['limit=1000', undefined, 1000, 0, false],
    ['limit=5000', undefined, 1000, 0, true],
    ['limit=99999999999999999999999', undefined, 1000, 0, true],
    ['limit=60', { limits: { maxLimit: 50 } }, 50, 0, true],
    ['', { limits: { maxLimit: 50, defaultLimit: 200 } }, 50, 0, false],
    ['', { limits: { defaultLimit: 25 } }, 25, 0, false],
  ];
  it.each(limits)('limit/offset %s', (qs, options, limit, offset, capped) => {
    const q = parse(qs, 'study', options);
    expect([q.limit, q.offset, q.limitCapped]).toEqual([limit, offset, capped]);
  });

  it('ignores the accept and charset negotiation parameters (PS3.18 §8.3.3)', () => {
    expect(parse('accept=application/dicom%2Bjson&charset=utf-8').filters).toEqual([]);
  });

  it('adds the path UIDs as filters and allows higher levels only when the path leaves them open', () => {
    const q = parse('PatientName=Doe*&Modality=CT', 'instance');
    expect(q.filters.map((f) => f.keyword)).toEqual(['PatientName', 'Modality']);
    const scoped = parse('Modality=CT', 'instance', { scope: { studyInstanceUID: STUDY } });
    expect(scoped.filters.map((f) => f.keyword)).toEqual(['StudyInstanceUID', 'Modality']);
    const series = parse('SOPClassUID=1.2.840.10008.5.1.4.1.1.2', 'instance', { scope: { studyInstanceUID: STUDY, seriesInstanceUID: SERIES } });
    expect(series.filters.map((f) => f.keyword)).toEqual(['StudyInstanceUID', 'SeriesInstanceUID', 'SOPClassUID']);
    expect(series.scope).toEqual({ studyInstanceUID: STUDY, seriesInstanceUID: SERIES });
  });

  it('accepts every required matching key of PS3.18 Table 10.6.1-5 at its level', () => {
    const samples: Record<string, string> = {
      StudyDate: '20240101',
      StudyTime: '1200',
      StudyInstanceUID: '1.2.3',
      SeriesInstanceUID: '1.2.3',
      SOPInstanceUID: '1.2.3',
      SOPClassUID: '1.2.3',
      SeriesNumber: '1',
      InstanceNumber: '1',
      PerformedProcedureStepStartDate: '20240101',
      PerformedProcedureStepStartTime: '12',
    };
    for (const level of ['study', 'series', 'instance'] as const) {
      for (const key of REQUIRED_MATCHING_KEYS[level]) {
        const value = samples[key] ?? 'X*';
        expect(() => parse(`${key}=${encodeURIComponent(value)}`, level)).not.toThrow();
      }
    }
  });
});

describe('studySearchHints', () => {
  const cases: Array<[string, QidoQueryOptions | undefined, QidoLevel, object]> = [
    ['', undefined, 'study', {}],
    ['StudyInstanceUID=1.2.3,1.2.4', undefined, 'study', { studyInstanceUIDs: ['1.2.3', '1.2.4'] }],
    ['', { scope: { studyInstanceUID: STUDY } }, 'series', { studyInstanceUIDs: [STUDY] }],
    ['PatientID=PID-1&AccessionNumber=A1', undefined, 'study', { patientID: 'PID-1', accessionNumber: 'A1' }],
    ['PatientID=PID*&AccessionNumber=A1\\A2', undefined, 'study', {}],
    ['StudyDate=20240101', undefined, 'study', { studyDateFrom: '20240101', studyDateTo: '20240101' }],
    ['StudyDate=20240101-20240131', undefined, 'study', { studyDateFrom: '20240101', studyDateTo: '20240131' }],
    ['StudyDate=-20240131', undefined, 'study', { studyDateTo: '20240131' }],
    ['StudyDate=20240101-', undefined, 'study', { studyDateFrom: '20240101' }],
    ['StudyDate=20240301\\20240101-20240105', undefined, 'study', { studyDateFrom: '20240101', studyDateTo: '20240301' }],
    ['emptyvaluematching=true&StudyDate=""', undefined, 'study', {}],
    ['ModalitiesInStudy=MR', undefined, 'study', { modalitiesInStudy: ['MR'] }],
    ['ModalitiesInStudy=CT\\MR', undefined, 'study', { modalitiesInStudy: ['CT', 'MR'] }],
    ['ModalitiesInStudy=M*', undefined, 'study', {}],
    ['PatientName=Doe*', undefined, 'study', { patientNamePrefix: 'DOE' }],
    ['PatientName=doe^jo*', undefined, 'study', { patientNamePrefix: 'DOE' }],
    ['PatientName=Müller', undefined, 'study', { patientNamePrefix: 'MULLER' }],
    ['PatientName=Do?e*', undefined, 'study', { patientNamePrefix: 'DO' }],
    ['PatientName=*Doe', undefined, 'study', {}],
    ['PatientName=Doe*&fuzzymatching=true', undefined, 'study', {}],
    ['PatientName=Doe*\\Roe*', undefined, 'study', {}],
    ['PatientName=山田*', undefined, 'study', {}],
    ['PatientName=Yamada*=山田*', undefined, 'study', { patientNamePrefix: 'YAMADA' }],
    ['PatientName=Διον*=', undefined, 'study', { patientNamePrefix: 'ΔΙΟΝ' }],
    ['PatientName==山田*', undefined, 'study', {}],
    ['PatientName=Doe*&Modality=CT', undefined, 'series', { patientNamePrefix: 'DOE' }],
  ];
  it.each(cases)('%s', (qs, options, level, expected) => {
    expect(studySearchHints(parse(qs, level, options))).toEqual(expected);
  });
});
