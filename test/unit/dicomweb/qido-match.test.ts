import { matches, parseTemporal, selectReturnAttributes, wildcardMatch } from '../../../functions/core/dicomweb/qido-match';
import { parseQidoQuery, type QidoLevel, type QidoQueryOptions } from '../../../functions/core/dicomweb/qido-query';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import { ds } from './qido-fixtures';

function query(qs: string, level: QidoLevel = 'study', options?: QidoQueryOptions) {
  return parseQidoQuery(new URLSearchParams(qs), level, options);
}

function run(qs: string, record: DicomJsonDataset, level: QidoLevel = 'study'): boolean {
  const q = query(qs, level);
  return matches(q.filters, record, { fuzzy: q.fuzzy });
}

const study = ds({
  StudyInstanceUID: '1.2.3.4',
  StudyDate: '20240115',
  StudyTime: '103015.123',
  AccessionNumber: 'ACC-001',
  PatientID: 'PID-42',
  PatientName: 'Doe^John',
  PatientBirthDate: '19700102',
  PatientAge: '054Y',
  PatientWeight: 72.5,
  PatientSex: 'M',
  ModalitiesInStudy: ['CT', 'PT'],
  StudyDescription: 'CT Chest w/ contrast',
  ReferringPhysicianName: 'Smith^Anna^^Dr.',
  NumberOfStudyRelatedInstances: 120,
  IssuerOfPatientID: null, // zero length
});

describe('matches: study attributes (PS3.4 C.2.2.2)', () => {
  const cases: Array<[string, boolean]> = [
    // universal / empty
    ['', true],
    ['PatientName=', true],
    ['IssuerOfPatientID=', true],
    ['OtherPatientIDs=', true],
    ['OtherPatientIDs=*', true], // "*" is universal (C.2.2.2.4)
    ['OtherPatientIDs=X*', false], // absent attribute: no value matching
    ['IssuerOfPatientID=X', false], // zero-length attribute: no value matching
    ['emptyvaluematching=true&IssuerOfPatientID=""', true],
    ['emptyvaluematching=true&OtherPatientIDs=""', true],
    ['emptyvaluematching=true&PatientID=""', false],
    ['emptyvaluematching=true&PatientID=""\\PID-42', true],
    // single value
    ['PatientID=PID-42', true],
    ['PatientID=pid-42', false], // case-sensitive except PN
    ['PatientID=PID-4', false],
    ['PatientID=PID-42%20%20', true], // trailing spaces insignificant
    ['AccessionNumber=ACC-001', true],
    ['PatientSex=M', true],
    ['PatientAge=054Y', true],
    ['PatientAge=054M', false],
    ['PatientWeight=72.50', true],
    ['PatientWeight=72', false],
    ['NumberOfStudyRelatedInstances=120', true],
    ['NumberOfStudyRelatedInstances=12', false],
    // UID list
    ['StudyInstanceUID=1.2.3.4', true],
    ['StudyInstanceUID=1.2.3.5,1.2.3.4', true],
    ['StudyInstanceUID=1.2.3.5\\1.2.3.6', false],
    ['StudyInstanceUID=1.2.3', false],
    // wild cards
    ['PatientID=PID*', true],
    ['PatientID=P?D-4?', true],
    ['PatientID=P?D-4', false],
    ['PatientID=*42', true],
    ['PatientID=*4*2*', true],
    ['PatientID=pid*', false],
    ['StudyDescription=CT*contrast', true],
    ['StudyDescription=*Chest*', true],
    ['StudyDescription=*chest*', false],
    // lists and multi-valued attributes
    ['ModalitiesInStudy=CT', true],
    ['ModalitiesInStudy=PT', true],
    ['ModalitiesInStudy=MR', false],
    ['ModalitiesInStudy=MR\\PT', true],
    ['ModalitiesInStudy=MR&ModalitiesInStudy=CT', true],
    ['ModalitiesInStudy=C?', true],
    ['multiplevaluematching=true&ModalitiesInStudy=CT\\PT', true],
    ['multiplevaluematching=true&ModalitiesInStudy=PT\\CT', true],
    ['multiplevaluematching=true&ModalitiesInStudy=CT\\MR', false],
    ['PatientID=X\\PID-42\\Y', true],
    // dates and times
    ['StudyDate=20240115', true],
    ['StudyDate=20240116', false],
    ['StudyDate=20240101-20240131', true],
    ['StudyDate=20240115-20240115', true],
    ['StudyDate=20240116-', false],
    ['StudyDate=20240115-', true],
    ['StudyDate=-20240115', true],
    ['StudyDate=-20240114', false],
    ['StudyDate=20230101-20231231\\20240110-20240120', true],
    ['StudyTime=10', true], // a single TM value covers its precision window
    ['StudyTime=1030', true],
    ['StudyTime=103015', true],
    ['StudyTime=103015.12', true],
    ['StudyTime=103015.124', false],
    ['StudyTime=1031', false],
    ['StudyTime=0800-1200', true],
    ['StudyTime=1031-', false],
    ['StudyTime=-1030', true], // inclusive: 10:30:59.999999
    ['StudyTime=-1029', false],
    ['PatientBirthDate=19700101-19700131', true],
    // all keys must match
    ['PatientID=PID-42&StudyDate=20240115&ModalitiesInStudy=CT', true],
    ['PatientID=PID-42&StudyDate=20240116', false],
  ];
  it.each(cases)('%s → %s', (qs, expected) => {
    expect(run(qs, study)).toBe(expected);
  });
});

describe('matches: person names', () => {
  const doe = ds({ PatientName: 'Doe^John^^^' });
  const accented = ds({ PatientName: 'Müller-Lüdenscheidt^Jörg' });
  const greek = ds({ PatientName: 'Διονυσιος' });
  const greekTonos = ds({ PatientName: 'Διονύσιος^Κωνσταντίνος' });
  const japanese = ds({ PatientName: { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' } });
  const korean = ds({ PatientName: { Alphabetic: 'Hong^Gildong', Ideographic: '洪^吉洞', Phonetic: '홍^길동' } });
  const supplementary = ds({ PatientName: { Alphabetic: 'Yoshino^Taro', Ideographic: '𠮷野^太郎' } });
  const twoNames = ds({ OtherPatientNames: ['Roe^Richard', 'Poe^Edgar'] });

  const cases: Array<[string, DicomJsonDataset, string, boolean]> = [
    ['exact, trailing empty components ignored', doe, 'PatientName=Doe^John', true],
    ['exact is case-insensitive for PN', doe, 'PatientName=DOE^JOHN', true],
    ['exact needs every component', doe, 'PatientName=Doe', false],
    ['exact with key trailing carets', doe, 'PatientName=doe^john^^', true],
    ['wildcard family prefix', doe, 'PatientName=Doe*', true],
    ['wildcard case-insensitive', doe, 'PatientName=d?e^j*', true],
    ['wildcard inside', doe, 'PatientName=*^John', true],
    ['wildcard no match', doe, 'PatientName=Roe*', false],
    ['not accent-insensitive without fuzzy', accented, 'PatientName=Muller*', false],
    ['accented exact prefix', accented, 'PatientName=Müller*', true],
    ['accented case-insensitive', accented, 'PatientName=MÜLLER-LÜDENSCHEIDT^JÖRG', true],
    ['multi-valued PN: any value', twoNames, 'OtherPatientNames=Poe*', true],
    ['multi-valued PN: none', twoNames, 'OtherPatientNames=Doe*', false],
    // Greek
    ['Greek exact', greek, 'PatientName=Διονυσιος', true],
    ['Greek upper case', greek, 'PatientName=ΔΙΟΝΥΣΙΟΣ', true],
    ['Greek lower case wildcard', greek, 'PatientName=διον*', true],
    ['Greek ?', greek, 'PatientName=Διονυσι?ς', true],
    ['Greek * in the middle', greek, 'PatientName=Δ*σ', true],
    ['Greek no match', greek, 'PatientName=Αλ*', false],
    ['Greek tonos matters without fuzzy', greekTonos, 'PatientName=Διονυσιος*', false],
    // Japanese: any component group
    ['Japanese ideographic wildcard', japanese, 'PatientName=山田*', true],
    ['Japanese ideographic ?', japanese, 'PatientName=山?^太郎', true],
    ['Japanese phonetic exact', japanese, 'PatientName=やまだ^たろう', true],
    ['Japanese alphabetic', japanese, 'PatientName=yamada^tarou', true],
    ['Japanese ideographic family only', japanese, 'PatientName=山田', false],
    ['Japanese groups: both match', japanese, 'PatientName=Yamada*=山田*', true],
    ['Japanese groups: ideographic differs', japanese, 'PatientName=Yamada*=田中*', false],
    ['Japanese groups: ideographic only', japanese, 'PatientName==山田^太郎', true],
    ['Japanese groups: phonetic only', japanese, 'PatientName===やま*', true],
    ['Japanese no match', japanese, 'PatientName=田中*', false],
    // Korean
    ['Korean phonetic wildcard', korean, 'PatientName=홍*', true],
    ['Korean phonetic ?', korean, 'PatientName=홍^길?', true],
    ['Korean exact', korean, 'PatientName=홍^길동', true],
    ['Korean hanja', korean, 'PatientName=洪^*', true],
    ['Korean decomposed (NFD) key', korean, `PatientName=${encodeURIComponent('홍^길동'.normalize('NFD'))}`, true],
    ['Korean no match', korean, 'PatientName=김*', false],
    // ? is one character, also outside the BMP
    ['supplementary-plane ?', supplementary, 'PatientName=?野^太郎', true],
    ['supplementary-plane ?? is two', supplementary, 'PatientName=??野^太郎', false],
    // fuzzy
    ['fuzzy: case and order', doe, 'PatientName=john%20doe&fuzzymatching=true', true],
    ['fuzzy: caret form', doe, 'PatientName=doe^john&fuzzymatching=true', true],
    ['fuzzy: word prefixes', doe, 'PatientName=jo%20do&fuzzymatching=true', true],
    ['fuzzy: every word must match', doe, 'PatientName=john%20smith&fuzzymatching=true', false],
    ['fuzzy: not a substring', doe, 'PatientName=oe&fuzzymatching=true', false],
    ['fuzzy: wildcard word', doe, 'PatientName=j?hn&fuzzymatching=true', true],
    ['fuzzy: accents', ds({ PatientName: 'DOE^JÖHN' }), 'PatientName=doe^john&fuzzymatching=true', true],
    ['fuzzy: accents in key', doe, 'PatientName=Jöhn&fuzzymatching=true', true],
    ['fuzzy: space-separated stored name', ds({ PatientName: 'John Doe' }), 'PatientName=doe^john&fuzzymatching=true', true],
    ['fuzzy: hyphenated family name', accented, 'PatientName=ludenscheidt&fuzzymatching=true', true],
    ['fuzzy: Greek tonos', greekTonos, 'PatientName=κωνσταντινος%20διονυσιος&fuzzymatching=true', true],
    ['fuzzy: Japanese words', japanese, 'PatientName=太郎%20山田&fuzzymatching=true', true],
    ['fuzzy: Korean prefix', korean, 'PatientName=길&fuzzymatching=true', true],
    ['fuzzy: no match', japanese, 'PatientName=田中&fuzzymatching=true', false],
    ['fuzzy only changes PN', study, 'PatientID=pid-42&fuzzymatching=true', false],
  ];
  it.each(cases)('%s: %s', (_name, record, qs, expected) => {
    expect(run(qs, record)).toBe(expected);
  });
});

describe('matches: sequences and series/instance records', () => {
  const series = ds({
    StudyInstanceUID: '1.2.3',
    SeriesInstanceUID: '1.2.3.1',
    Modality: 'CT',
    SeriesNumber: 3,
    PerformedProcedureStepStartDate: '20240115',
    PerformedProcedureStepStartTime: '1030',
    RequestAttributesSequence: [
      ds({ ScheduledProcedureStepID: 'SPS1', RequestedProcedureID: 'RP1' }),
      ds({ ScheduledProcedureStepID: 'SPS2', RequestedProcedureID: 'RP2' }),
    ],
    PatientName: 'Doe^John',
  });
  const cases: Array<[string, boolean]> = [
    ['RequestAttributesSequence.ScheduledProcedureStepID=SPS2', true],
    ['RequestAttributesSequence.ScheduledProcedureStepID=SPS3', false],
    ['RequestAttributesSequence.ScheduledProcedureStepID=SPS*', true],
    // both item keys must match within the same item (C.2.2.2.6)
    ['RequestAttributesSequence.ScheduledProcedureStepID=SPS1&RequestAttributesSequence.RequestedProcedureID=RP1', true],
    ['RequestAttributesSequence.ScheduledProcedureStepID=SPS1&RequestAttributesSequence.RequestedProcedureID=RP2', false],
    ['00400275.00401001=RP2', true],
    ['RequestAttributesSequence=', true],
    ['RequestAttributesSequence.ScheduledProcedureStepID=', true],
    ['PerformedProcedureStepStartDate=20240101-20240131&PerformedProcedureStepStartTime=10-11', true],
    ['SeriesNumber=3', true],
    ['SeriesNumber=03', true],
    ['SeriesNumber=4', false],
    ['Modality=CT&PatientName=doe*', true], // study attributes in an unscoped series search
    ['Modality=MR', false],
  ];
  it.each(cases)('%s → %s', (qs, expected) => {
    expect(run(qs, series, 'series')).toBe(expected);
  });

  it('a sequence filter on a record without the sequence does not match', () => {
    expect(run('RequestAttributesSequence.ScheduledProcedureStepID=SPS1', ds({ Modality: 'CT' }), 'series')).toBe(false);
    expect(run('RequestAttributesSequence.ScheduledProcedureStepID=', ds({ Modality: 'CT' }), 'series')).toBe(true);
  });

  it('path scope filters restrict to the path UIDs', () => {
    const q = query('', 'instance', { scope: { studyInstanceUID: '1.2.3', seriesInstanceUID: '1.2.3.1' } });
    expect(matches(q.filters, series, { fuzzy: false })).toBe(true);
    const other = query('', 'instance', { scope: { studyInstanceUID: '1.2.3', seriesInstanceUID: '1.2.3.2' } });
    expect(matches(other.filters, series, { fuzzy: false })).toBe(false);
  });

  const instance = ds({
    SOPClassUID: '1.2.840.10008.5.1.4.1.1.2',
    SOPInstanceUID: '1.2.3.1.7',
    InstanceNumber: 7,
    AcquisitionDateTime: '20240115103000.5+0100',
    ImageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
    PixelSpacing: [0.5, 0.5],
    ImageComments: 'a\\b note',
  });
  const instanceCases: Array<[string, boolean]> = [
    ['SOPClassUID=1.2.840.10008.5.1.4.1.1.2', true],
    ['SOPClassUID=1.2.840.10008.5.1.4.1.1.4', false],
    ['InstanceNumber=7', true],
    ['ImageType=AXIAL', true],
    ['ImageType=ORIGINAL\\DERIVED', true],
    ['multiplevaluematching=true&ImageType=AXIAL\\ORIGINAL', true],
    ['multiplevaluematching=true&ImageType=AXIAL\\DERIVED', false],
    ['PixelSpacing=0.5', true],
    ['ImageComments=a\\b*', true],
    // DT: offsets are honoured (10:30 at +0100 = 09:30 UTC)
    ['AcquisitionDateTime=20240115093000%2B0000-20240115093001%2B0000', true],
    ['AcquisitionDateTime=20240115103000-20240115103001', false],
    ['AcquisitionDateTime=2024', true],
    ['AcquisitionDateTime=202401', true],
    ['AcquisitionDateTime=202402-', false],
    ['AcquisitionDateTime=-2023', false],
  ];
  it.each(instanceCases)('instance %s → %s', (qs, expected) => {
    expect(run(qs, instance, 'instance')).toBe(expected);
  });
});

describe('parseTemporal', () => {
  const cases: Array<[string, string, boolean]> = [
    ['DA', '20240229', true],
    ['DA', '20230229', false],
    ['DA', '20241231', true],
    ['DA', '20240001', false],
    ['TM', '23', true],
    ['TM', '2359', true],
    ['TM', '235960', true], // leap second
    ['TM', '2360', false],
    ['TM', '120000.000001', true],
    ['DT', '2024', true],
    ['DT', '2024123123', true],
    ['DT', '20241231235959.999999-1200', true],
    ['DT', '20241231+1401', false],
    ['DT', '202413', false],
  ];
  it.each(cases)('%s %s valid=%s', (vr, text, valid) => {
    expect(parseTemporal(vr, text) !== undefined).toBe(valid);
  });

  it('accepts ACR-NEMA forms only for stored values', () => {
    expect(parseTemporal('DA', '2024.01.15')).toBeUndefined();
    expect(parseTemporal('DA', '2024.01.15', true)).toEqual({ start: 20240115, end: 20240115 });
    expect(parseTemporal('TM', '10:30:15', true)?.start).toBe(parseTemporal('TM', '103015')?.start);
  });

  it('gives the precision window', () => {
    const hour = parseTemporal('TM', '10')!;
    expect(hour.end - hour.start + 1).toBe(3600 * 1_000_000);
    const year = parseTemporal('DT', '2024')!;
    expect(year.end + 1).toBe(parseTemporal('DT', '2025')!.start);
    const feb = parseTemporal('DT', '202402')!;
    expect(feb.end + 1).toBe(parseTemporal('DT', '202403')!.start);
  });
});

describe('wildcardMatch', () => {
  const cases: Array<[string, string, boolean]> = [
    ['*', '', true],
    ['?', '', false],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
    ['*a*a*a*a*a*a*a*b', 'a'.repeat(200), false], // no catastrophic backtracking
    ['王*', '王^小東', true],
    ['?', '𠮷', true],
  ];
  it.each(cases)('%s ~ %s = %s', (pattern, text, expected) => {
    expect(wildcardMatch(pattern, text, false)).toBe(expected);
  });
  it('folds case per code point', () => {
    expect(wildcardMatch('straß*', 'STRAßE', true)).toBe(true);
    expect(wildcardMatch('ΟΔΟΣ', 'οδος', true)).toBe(true);
    expect(wildcardMatch('ΟΔΟΣ', 'οδοσ', true)).toBe(true);
  });
});

describe('selectReturnAttributes', () => {
  const record: DicomJsonDataset = {
    ...study,
    ...ds({
      SeriesInstanceUID: '1.2.3.4.1',
      Modality: 'CT',
      SOPInstanceUID: '1.2.3.4.1.1',
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.2',
      Rows: 512,
      InstitutionName: 'General',
      RequestAttributesSequence: [
        { ...ds({ ScheduledProcedureStepID: 'SPS1' }), '00091001': { vr: 'OB', InlineBinary: 'AAAA' } },
      ],
    }),
    '00020010': { vr: 'UI', Value: ['1.2.840.10008.1.2.1'] },
    '7FE00010': { vr: 'OW', BulkDataURI: 'bulkdata/7FE00010' },
    '00091002': { vr: 'OB', InlineBinary: 'AAAA' },
  };
  const keys = (qs: string, level: QidoLevel, options?: QidoQueryOptions): string[] =>
    Object.keys(selectReturnAttributes(level, record, query(qs, level, options)));

  it('study defaults, sorted, without lower-level attributes', () => {
    const k = keys('', 'study');
    expect(k).toEqual([...k].sort());
    expect(k).toEqual(
      expect.arrayContaining(['00080020', '00080030', '00080050', '00080061', '00080090', '00100010', '00100020', '00100030', '00100040', '0020000D', '00201208']),
    );
    expect(k).not.toContain('00080060');
    expect(k).not.toContain('00101010'); // PatientAge: not a default
    expect(k).not.toContain('00100021'); // present but not requested
  });

  it('adds includefield attributes and matching keys', () => {
    expect(keys('includefield=PatientAge', 'study')).toContain('00101010');
    expect(keys('PatientWeight=72.5', 'study')).toContain('00101030');
    expect(keys('IssuerOfPatientID=', 'study')).toContain('00100021');
    expect(keys('includefield=00080060', 'study')).toContain('00080060'); // returned when the record has it
  });

  it('includefield=all returns everything but bulk data and file meta', () => {
    const k = keys('includefield=all', 'study');
    expect(k).toContain('00080080');
    expect(k).toContain('00101010');
    expect(k).not.toContain('7FE00010');
    expect(k).not.toContain('00091002');
    expect(k).not.toContain('00020010');
  });

  it('unscoped series results carry the study defaults; scoped ones do not', () => {
    expect(keys('', 'series')).toEqual(expect.arrayContaining(['00080060', '0020000E', '00400275', '00100010', '0020000D']));
    const scoped = keys('', 'series', { scope: { studyInstanceUID: '1.2.3.4' } });
    expect(scoped).toContain('00080060');
    expect(scoped).toContain('0020000D');
    expect(scoped).not.toContain('00100010');
  });

  it('instance defaults', () => {
    expect(keys('', 'instance', { scope: { studyInstanceUID: '1.2.3.4', seriesInstanceUID: '1.2.3.4.1' } })).toEqual(
      ['00080016', '00080018', '0020000D', '0020000E', '00280010'],
    );
  });

  it('strips bulk data inside returned sequences', () => {
    const out = selectReturnAttributes('series', record, query('', 'series'));
    const item = out['00400275']!.Value![0] as DicomJsonDataset;
    expect(Object.keys(item)).toEqual(['00400009']);
  });
});
