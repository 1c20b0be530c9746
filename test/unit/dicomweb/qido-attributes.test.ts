import {
  COMPUTED_TAGS,
  DEFAULT_RETURN_TAGS,
  QIDO_ATTRIBUTES,
  defaultReturnTags,
  levelOfAttribute,
  levelsInScope,
  resolveAttribute,
  splitAttributesByLevel,
  utf8Length,
} from '../../../functions/core/dicomweb/qido-attributes';
import { Tag } from '../../../functions/core/dicom/tags';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import { ds } from './qido-fixtures';

describe('the QIDO attribute table', () => {
  it('has unique keywords and tags in JSON-model form', () => {
    const keywords = QIDO_ATTRIBUTES.map((a) => a.keyword);
    const tags = QIDO_ATTRIBUTES.map((a) => a.tag);
    expect(new Set(keywords).size).toBe(keywords.length);
    expect(new Set(tags).size).toBe(tags.length);
    for (const t of tags) expect(t).toMatch(/^[0-9A-F]{8}$/);
  });

  it('agrees with Tag for every keyword both name', () => {
    for (const [keyword, tag] of Object.entries(Tag)) {
      const a = resolveAttribute(keyword);
      if (a) expect([keyword, a.tag]).toEqual([keyword, tag]);
    }
  });

  it('resolves keywords (case-sensitive) and tags (any hex case)', () => {
    expect(resolveAttribute('PatientName')).toMatchObject({ tag: '00100010', vr: 'PN', level: 'study' });
    expect(resolveAttribute('0020000e')).toMatchObject({ keyword: 'SeriesInstanceUID', level: 'series' });
    expect(resolveAttribute('patientname')).toBeUndefined();
    expect(resolveAttribute('00191010')).toBeUndefined();
  });

  const levels: Array<[string, string]> = [
    ['00100010', 'study'],
    ['00080050', 'study'],
    ['00081032', 'study'],
    ['00080061', 'study'],
    ['00080060', 'series'],
    ['00400275', 'series'],
    ['00080080', 'series'],
    ['00080018', 'instance'],
    ['00280010', 'instance'],
    ['00191010', 'instance'], // private: instance level
    ['00400009', 'instance'], // item attribute at top level
    ['00080005', 'any'],
    ['00080201', 'any'],
  ];
  it.each(levels)('levelOfAttribute(%s) = %s', (tag, level) => {
    expect(levelOfAttribute(tag)).toBe(level);
  });

  it('levels in scope follow the resource path', () => {
    expect(levelsInScope('study')).toEqual(['study']);
    expect(levelsInScope('series')).toEqual(['series', 'study']);
    expect(levelsInScope('series', { studyInstanceUID: '1.2' })).toEqual(['series']);
    expect(levelsInScope('instance')).toEqual(['instance', 'series', 'study']);
    expect(levelsInScope('instance', { studyInstanceUID: '1.2' })).toEqual(['instance', 'series']);
    expect(levelsInScope('instance', { studyInstanceUID: '1.2', seriesInstanceUID: '1.3' })).toEqual(['instance']);
  });

  it('default return attributes are those of PS3.18 Tables 10.6.3-3/-4/-5', () => {
    const names = (tags: readonly string[]) => tags.map((t) => QIDO_ATTRIBUTES.find((a) => a.tag === t)!.keyword);
    expect(names(DEFAULT_RETURN_TAGS.study)).toEqual(
      expect.arrayContaining([
        'SpecificCharacterSet', 'StudyDate', 'StudyTime', 'AccessionNumber', 'InstanceAvailability', 'ModalitiesInStudy',
        'ReferringPhysicianName', 'TimezoneOffsetFromUTC', 'RetrieveURL', 'PatientName', 'PatientID', 'PatientBirthDate',
        'PatientSex', 'StudyInstanceUID', 'StudyID', 'NumberOfStudyRelatedSeries', 'NumberOfStudyRelatedInstances',
      ]),
    );
    expect(names(DEFAULT_RETURN_TAGS.series)).toEqual(
      expect.arrayContaining([
        'SpecificCharacterSet', 'Modality', 'TimezoneOffsetFromUTC', 'SeriesDescription', 'RetrieveURL', 'SeriesInstanceUID',
        'SeriesNumber', 'NumberOfSeriesRelatedInstances', 'PerformedProcedureStepStartDate', 'PerformedProcedureStepStartTime',
        'RequestAttributesSequence',
      ]),
    );
    expect(names(DEFAULT_RETURN_TAGS.instance)).toEqual(
      expect.arrayContaining([
        'SpecificCharacterSet', 'SOPClassUID', 'SOPInstanceUID', 'InstanceAvailability', 'TimezoneOffsetFromUTC', 'RetrieveURL',
        'InstanceNumber', 'Rows', 'Columns', 'BitsAllocated', 'NumberOfFrames',
      ]),
    );
    expect(defaultReturnTags('instance').has(Tag.PatientName)).toBe(true);
    expect(defaultReturnTags('instance', { studyInstanceUID: '1.2' }).has(Tag.PatientName)).toBe(false);
    expect(defaultReturnTags('instance', { studyInstanceUID: '1.2' }).has(Tag.Modality)).toBe(true);
  });
});

describe('splitAttributesByLevel', () => {
  const big = 'x'.repeat(5000);
  const instance: DicomJsonDataset = {
    ...ds({
      SpecificCharacterSet: 'ISO_IR 192',
      TimezoneOffsetFromUTC: '+0100',
      PatientName: 'Doe^John',
      PatientID: 'PID-1',
      StudyInstanceUID: '1.2.3',
      StudyDate: '20240115',
      ProcedureCodeSequence: [ds({ CodeValue: 'CTCHEST', CodingSchemeDesignator: 'L', CodeMeaning: 'CT chest' })],
      SeriesInstanceUID: '1.2.3.1',
      Modality: 'CT',
      InstitutionName: 'General',
      RequestAttributesSequence: [ds({ ScheduledProcedureStepID: 'SPS1' })],
      SOPInstanceUID: '1.2.3.1.1',
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.2',
      Rows: 512,
      ImageType: ['ORIGINAL', 'PRIMARY'],
      ConceptNameCodeSequence: [ds({ CodeValue: 'X', CodeMeaning: big })],
      ImageComments: big,
      ModalitiesInStudy: ['CT'], // computed: never taken from an instance
    }),
    '00020010': { vr: 'UI', Value: ['1.2.840.10008.1.2.1'] },
    '00080000': { vr: 'UL', Value: [100] },
    '00091010': { vr: 'LO', Value: ['PRIVATE CREATOR'] },
    '00091011': { vr: 'OB', InlineBinary: 'AAAA' },
    '00091012': { vr: 'OB', InlineBinary: 'A'.repeat(2000) },
    '7FE00010': { vr: 'OW', BulkDataURI: 'bulkdata/7FE00010' },
    FFFCFFFC: { vr: 'OB', InlineBinary: 'AAAA' },
  };
  const split = splitAttributesByLevel(instance);

  it('puts patient/study attributes in the study set', () => {
    expect(Object.keys(split.study).sort()).toEqual(['00080005', '00080020', '00080201', '00081032', '00100010', '00100020', '0020000D']);
  });

  it('puts series attributes in the series set', () => {
    expect(Object.keys(split.series).sort()).toEqual(['00080005', '00080060', '00080080', '00080201', '0020000E', '00400275']);
  });

  it('puts everything else small in the instance set', () => {
    expect(Object.keys(split.instance).sort()).toEqual([
      '00080005', '00080008', '00080016', '00080018', '00080201', '00091010', '00091011', '00280010',
    ]);
  });

  it('keeps a typical record well inside a DynamoDB item', () => {
    expect(utf8Length(JSON.stringify(split))).toBeLessThan(4096);
  });

  it('drops the largest non-default elements when a set exceeds its budget', () => {
    const many: DicomJsonDataset = { ...ds({ SOPInstanceUID: '1.2.3', Rows: 1 }) };
    for (let i = 0; i < 40; i++) many[`0011${(0x1000 + i).toString(16).toUpperCase()}`] = { vr: 'LO', Value: ['y'.repeat(60 + i)] };
    const out = splitAttributesByLevel(many, { maxBytes: { instance: 2048 } }).instance;
    expect(utf8Length(JSON.stringify(out))).toBeLessThanOrEqual(2048);
    expect(out['00080018']).toBeDefined();
    expect(out['00280010']).toBeDefined();
    expect(out['00111000']).toBeDefined(); // smallest kept
    expect(out['00111027']).toBeUndefined(); // largest dropped
  });

  it('counts UTF-8 bytes', () => {
    expect(utf8Length('abc')).toBe(3);
    expect(utf8Length('Δ')).toBe(2);
    expect(utf8Length('山')).toBe(3);
    expect(utf8Length('𠮷')).toBe(4);
  });

  it('never indexes computed attributes', () => {
    expect([...COMPUTED_TAGS].some((t) => t in split.study || t in split.series || t in split.instance)).toBe(false);
  });
});
