/**
 * What QIDO-RS can search and return at each level (PS3.18 §10.6.1.2,
 * Tables 10.6.3-3/-4/-5; PS3.4 C.6.1.1 Study Root information model), in one
 * readable table — the role Microsoft dicom-server's QueryLimit.cs plays.
 *
 * The same table decides which attributes of a stored instance are study,
 * series or instance level (`splitAttributesByLevel`), so what STOW writes
 * into the index and what QIDO may match can never disagree.
 */
import type { DicomJsonDataset, DicomJsonElement } from '../dicom/json-model';

export type QidoLevel = 'study' | 'series' | 'instance';

/**
 * Level an attribute belongs to. 'any' = present at every level (SOP Common
 * attributes the standard lists in all three return tables).
 */
export type AttributeLevel = QidoLevel | 'any';

export interface QidoAttribute {
  keyword: string;
  /** DICOM JSON key: 8 upper-case hex digits */
  tag: string;
  vr: string;
  level: AttributeLevel;
  /**
   * Not stored from the instance: the archive derives it (aggregates,
   * availability, URLs) and must add it to the data set before matching.
   */
  computed?: boolean;
  /** Never a matching key (PS3.4 C.2.2.2: Specific Character Set is never matched; URLs are not searchable). */
  returnOnly?: boolean;
}

type Flag = 'computed' | 'return-only' | 'computed+return-only';
type Row = readonly [keyword: string, tag: string, vr: string, level: AttributeLevel, flag?: Flag];

/**
 * The table. Attributes not listed here are instance level (PS3.4 C.6.1.1.5:
 * everything below the series is the composite instance). Rows nested only
 * inside sequences (Code Sequence Macro, Request Attributes) are listed so
 * sequence paths such as `RequestAttributesSequence.ScheduledProcedureStepID`
 * resolve; at top level they are instance level like any other attribute.
 */
const TABLE: readonly Row[] = [
  // ---- every level (SOP Common; Q/R attributes computed per level)
  ['SpecificCharacterSet', '00080005', 'CS', 'any', 'return-only'],
  ['TimezoneOffsetFromUTC', '00080201', 'SH', 'any'],
  ['InstanceAvailability', '00080056', 'CS', 'any', 'computed'],
  ['RetrieveURL', '00081190', 'UR', 'any', 'computed+return-only'],

  // ---- study: Patient IE (Patient, Clinical Trial Subject modules; PS3.3 C.7.1)
  ['PatientName', '00100010', 'PN', 'study'],
  ['PatientID', '00100020', 'LO', 'study'],
  ['IssuerOfPatientID', '00100021', 'LO', 'study'],
  ['TypeOfPatientID', '00100022', 'CS', 'study'],
  ['IssuerOfPatientIDQualifiersSequence', '00100024', 'SQ', 'study'],
  ['PatientBirthDate', '00100030', 'DA', 'study'],
  ['PatientBirthTime', '00100032', 'TM', 'study'],
  ['PatientSex', '00100040', 'CS', 'study'],
  ['QualityControlSubject', '00100200', 'CS', 'study'],
  ['OtherPatientIDs', '00101000', 'LO', 'study'],
  ['OtherPatientNames', '00101001', 'PN', 'study'],
  ['OtherPatientIDsSequence', '00101002', 'SQ', 'study'],
  ['PatientBirthName', '00101005', 'PN', 'study'],
  ['PatientMotherBirthName', '00101060', 'PN', 'study'],
  ['PatientAddress', '00101040', 'LO', 'study'],
  ['MedicalAlerts', '00102000', 'LO', 'study'],
  ['Allergies', '00102110', 'LO', 'study'],
  ['EthnicGroup', '00102160', 'SH', 'study'],
  ['PatientSpeciesDescription', '00102201', 'LO', 'study'],
  ['PatientSexNeutered', '00102203', 'CS', 'study'],
  ['PatientBreedDescription', '00102292', 'LO', 'study'],
  ['ResponsiblePerson', '00102297', 'PN', 'study'],
  ['ResponsibleOrganization', '00102299', 'LO', 'study'],
  ['PatientComments', '00104000', 'LT', 'study'],
  ['ClinicalTrialSponsorName', '00120010', 'LO', 'study'],
  ['ClinicalTrialProtocolID', '00120020', 'LO', 'study'],
  ['ClinicalTrialSubjectID', '00120040', 'LO', 'study'],
  ['PatientIdentityRemoved', '00120062', 'CS', 'study'],
  ['DeidentificationMethod', '00120063', 'LO', 'study'],

  // ---- study: Study IE (General Study, Patient Study, Clinical Trial Study; PS3.3 C.7.2)
  ['StudyDate', '00080020', 'DA', 'study'],
  ['StudyTime', '00080030', 'TM', 'study'],
  ['AccessionNumber', '00080050', 'SH', 'study'],
  ['IssuerOfAccessionNumberSequence', '00080051', 'SQ', 'study'],
  ['ReferringPhysicianName', '00080090', 'PN', 'study'],
  ['ReferringPhysicianIdentificationSequence', '00080096', 'SQ', 'study'],
  ['ConsultingPhysicianName', '0008009C', 'PN', 'study'],
  ['StudyDescription', '00081030', 'LO', 'study'],
  ['ProcedureCodeSequence', '00081032', 'SQ', 'study'],
  ['PhysiciansOfRecord', '00081048', 'PN', 'study'],
  ['NameOfPhysiciansReadingStudy', '00081060', 'PN', 'study'],
  ['AdmittingDiagnosesDescription', '00081080', 'LO', 'study'],
  ['ReferencedStudySequence', '00081110', 'SQ', 'study'],
  ['PatientAge', '00101010', 'AS', 'study'],
  ['PatientSize', '00101020', 'DS', 'study'],
  ['PatientWeight', '00101030', 'DS', 'study'],
  ['Occupation', '00102180', 'SH', 'study'],
  ['SmokingStatus', '001021A0', 'CS', 'study'],
  ['AdditionalPatientHistory', '001021B0', 'LT', 'study'],
  ['PregnancyStatus', '001021C0', 'US', 'study'],
  ['ClinicalTrialTimePointID', '00120050', 'LO', 'study'],
  ['StudyInstanceUID', '0020000D', 'UI', 'study'],
  ['StudyID', '00200010', 'SH', 'study'],
  ['AdmissionID', '00380010', 'LO', 'study'],
  ['ReasonForPerformedProcedureCodeSequence', '00401012', 'SQ', 'study'],
  // Q/R study aggregates (PS3.4 Table C.3-1), derived from the instances
  ['ModalitiesInStudy', '00080061', 'CS', 'study', 'computed'],
  ['SOPClassesInStudy', '00080062', 'UI', 'study', 'computed'],
  ['NumberOfStudyRelatedSeries', '00201206', 'IS', 'study', 'computed'],
  ['NumberOfStudyRelatedInstances', '00201208', 'IS', 'study', 'computed'],

  // ---- series: Series IE (General Series, PS3.3 C.7.3.1) + Equipment + Frame of Reference
  ['SeriesDate', '00080021', 'DA', 'series'],
  ['SeriesTime', '00080031', 'TM', 'series'],
  ['Modality', '00080060', 'CS', 'series'],
  ['Manufacturer', '00080070', 'LO', 'series'],
  ['InstitutionName', '00080080', 'LO', 'series'],
  ['InstitutionAddress', '00080081', 'ST', 'series'],
  ['StationName', '00081010', 'SH', 'series'],
  ['SeriesDescription', '0008103E', 'LO', 'series'],
  ['SeriesDescriptionCodeSequence', '0008103F', 'SQ', 'series'],
  ['InstitutionalDepartmentName', '00081040', 'LO', 'series'],
  ['PerformingPhysicianName', '00081050', 'PN', 'series'],
  ['OperatorsName', '00081070', 'PN', 'series'],
  ['ManufacturerModelName', '00081090', 'LO', 'series'],
  ['ReferencedPerformedProcedureStepSequence', '00081111', 'SQ', 'series'],
  ['RelatedSeriesSequence', '00081250', 'SQ', 'series'],
  ['AnatomicalOrientationType', '00102210', 'CS', 'series'],
  ['BodyPartExamined', '00180015', 'CS', 'series'],
  ['DeviceSerialNumber', '00181000', 'LO', 'series'],
  ['SoftwareVersions', '00181020', 'LO', 'series'],
  ['ProtocolName', '00181030', 'LO', 'series'],
  ['PatientPosition', '00185100', 'CS', 'series'],
  ['SeriesInstanceUID', '0020000E', 'UI', 'series'],
  ['SeriesNumber', '00200011', 'IS', 'series'],
  ['FrameOfReferenceUID', '00200052', 'UI', 'series'],
  ['Laterality', '00200060', 'CS', 'series'],
  ['PerformedProcedureStepStartDate', '00400244', 'DA', 'series'],
  ['PerformedProcedureStepStartTime', '00400245', 'TM', 'series'],
  ['PerformedProcedureStepID', '00400253', 'SH', 'series'],
  ['PerformedProcedureStepDescription', '00400254', 'LO', 'series'],
  ['PerformedProtocolCodeSequence', '00400260', 'SQ', 'series'],
  ['RequestAttributesSequence', '00400275', 'SQ', 'series'],
  ['NumberOfSeriesRelatedInstances', '00201209', 'IS', 'series', 'computed'],

  // ---- instance (listed for their VR; unlisted attributes are instance level too)
  ['ImageType', '00080008', 'CS', 'instance'],
  ['InstanceCreationDate', '00080012', 'DA', 'instance'],
  ['InstanceCreationTime', '00080013', 'TM', 'instance'],
  ['SOPClassUID', '00080016', 'UI', 'instance'],
  ['SOPInstanceUID', '00080018', 'UI', 'instance'],
  ['AcquisitionDate', '00080022', 'DA', 'instance'],
  ['ContentDate', '00080023', 'DA', 'instance'],
  ['AcquisitionDateTime', '0008002A', 'DT', 'instance'],
  ['AcquisitionTime', '00080032', 'TM', 'instance'],
  ['ContentTime', '00080033', 'TM', 'instance'],
  ['SliceThickness', '00180050', 'DS', 'instance'],
  ['AcquisitionNumber', '00200012', 'IS', 'instance'],
  ['InstanceNumber', '00200013', 'IS', 'instance'],
  ['ImagePositionPatient', '00200032', 'DS', 'instance'],
  ['ImageOrientationPatient', '00200037', 'DS', 'instance'],
  ['SliceLocation', '00201041', 'DS', 'instance'],
  ['ImageComments', '00204000', 'LT', 'instance'],
  ['SamplesPerPixel', '00280002', 'US', 'instance'],
  ['PhotometricInterpretation', '00280004', 'CS', 'instance'],
  ['NumberOfFrames', '00280008', 'IS', 'instance'],
  ['Rows', '00280010', 'US', 'instance'],
  ['Columns', '00280011', 'US', 'instance'],
  ['PixelSpacing', '00280030', 'DS', 'instance'],
  ['BitsAllocated', '00280100', 'US', 'instance'],
  ['BitsStored', '00280101', 'US', 'instance'],
  ['HighBit', '00280102', 'US', 'instance'],
  ['PixelRepresentation', '00280103', 'US', 'instance'],
  ['WindowCenter', '00281050', 'DS', 'instance'],
  ['WindowWidth', '00281051', 'DS', 'instance'],
  ['LossyImageCompression', '00282110', 'CS', 'instance'],
  ['DocumentTitle', '00420010', 'ST', 'instance'],
  ['MIMETypeOfEncapsulatedDocument', '00420012', 'LO', 'instance'],
  ['ContentLabel', '00700080', 'CS', 'instance'],
  ['ContentDescription', '00700081', 'LO', 'instance'],
  ['PresentationCreationDate', '00700082', 'DA', 'instance'],
  ['PresentationCreationTime', '00700083', 'TM', 'instance'],
  ['ContentCreatorName', '00700084', 'PN', 'instance'],
  ['ObservationDateTime', '0040A032', 'DT', 'instance'],
  ['ConceptNameCodeSequence', '0040A043', 'SQ', 'instance'],
  ['CompletionFlag', '0040A491', 'CS', 'instance'],
  ['VerificationFlag', '0040A493', 'CS', 'instance'],

  // ---- item attributes (Code Sequence Macro, HL7v2 Hierarchic Designator, Request Attributes, SOP references)
  ['CodeValue', '00080100', 'SH', 'instance'],
  ['CodingSchemeDesignator', '00080102', 'SH', 'instance'],
  ['CodingSchemeVersion', '00080103', 'SH', 'instance'],
  ['CodeMeaning', '00080104', 'LO', 'instance'],
  ['ReferencedSOPClassUID', '00081150', 'UI', 'instance'],
  ['ReferencedSOPInstanceUID', '00081155', 'UI', 'instance'],
  ['RequestedProcedureDescription', '00321060', 'LO', 'instance'],
  ['ScheduledProcedureStepDescription', '00400007', 'LO', 'instance'],
  ['ScheduledProcedureStepID', '00400009', 'SH', 'instance'],
  ['LocalNamespaceEntityID', '00400031', 'UT', 'instance'],
  ['UniversalEntityID', '00400032', 'UT', 'instance'],
  ['UniversalEntityIDType', '00400033', 'CS', 'instance'],
  ['RequestedProcedureID', '00401001', 'SH', 'instance'],
];

function toAttribute([keyword, tag, vr, level, flag]: Row): QidoAttribute {
  const attribute: QidoAttribute = { keyword, tag, vr, level };
  if (flag === 'computed' || flag === 'computed+return-only') attribute.computed = true;
  if (flag === 'return-only' || flag === 'computed+return-only') attribute.returnOnly = true;
  return attribute;
}

/** Every attribute QIDO knows by name, in table order. */
export const QIDO_ATTRIBUTES: readonly QidoAttribute[] = TABLE.map(toAttribute);

const BY_KEYWORD = new Map(QIDO_ATTRIBUTES.map((a) => [a.keyword, a]));
const BY_TAG = new Map(QIDO_ATTRIBUTES.map((a) => [a.tag, a]));

const TAG_PATTERN = /^[0-9A-Fa-f]{8}$/;

/** True for an 8-hex-digit tag (PS3.18 §8.3.4.1 `tag = 8HEXDIG`; ABNF hex is case-insensitive). */
export function isTagKey(text: string): boolean {
  return TAG_PATTERN.test(text);
}

/**
 * Resolve a PS3.6 keyword (case-sensitive) or an 8-hex-digit tag to its
 * attribute definition; undefined when unknown.
 *
 * TODO(dictionary): when functions/core/dicom/dictionary.ts lands, fall back
 * to it for keywords/tags not in this table (level = instance, VR from the
 * dictionary), so any standard attribute becomes a matching key at instance
 * level without growing this table.
 */
export function resolveAttribute(keyOrTag: string): QidoAttribute | undefined {
  if (isTagKey(keyOrTag)) return BY_TAG.get(keyOrTag.toUpperCase());
  return BY_KEYWORD.get(keyOrTag);
}

/** Level of a top-level attribute by tag key; anything not in the table is instance level. */
export function levelOfAttribute(tagKey: string): AttributeLevel {
  return BY_TAG.get(tagKey.toUpperCase())?.level ?? 'instance';
}

// ------------------------------------------------------------ return keys

function tags(...keywords: string[]): readonly string[] {
  return keywords.map((k) => {
    const a = BY_KEYWORD.get(k);
    if (!a) throw new Error(`qido-attributes: ${k} is not in the table`);
    return a.tag;
  });
}

/**
 * Attributes returned by default at each level (PS3.18 Tables 10.6.3-3,
 * 10.6.3-4, 10.6.3-5), own level only; see `defaultReturnTags` for the
 * higher-level attributes an unscoped query adds.
 */
export const DEFAULT_RETURN_TAGS: Readonly<Record<QidoLevel, readonly string[]>> = {
  study: tags(
    'SpecificCharacterSet',
    'StudyDate',
    'StudyTime',
    'AccessionNumber',
    'InstanceAvailability',
    'ModalitiesInStudy',
    'SOPClassesInStudy',
    'ReferringPhysicianName',
    'TimezoneOffsetFromUTC',
    'RetrieveURL',
    'StudyDescription',
    'PatientName',
    'PatientID',
    'PatientBirthDate',
    'PatientSex',
    'StudyInstanceUID',
    'StudyID',
    'NumberOfStudyRelatedSeries',
    'NumberOfStudyRelatedInstances',
  ),
  series: tags(
    'SpecificCharacterSet',
    'Modality',
    'TimezoneOffsetFromUTC',
    'SeriesDescription',
    'RetrieveURL',
    'StudyInstanceUID',
    'SeriesInstanceUID',
    'SeriesNumber',
    'NumberOfSeriesRelatedInstances',
    'PerformedProcedureStepStartDate',
    'PerformedProcedureStepStartTime',
    'RequestAttributesSequence',
  ),
  instance: tags(
    'SpecificCharacterSet',
    'SOPClassUID',
    'SOPInstanceUID',
    'InstanceAvailability',
    'TimezoneOffsetFromUTC',
    'RetrieveURL',
    'StudyInstanceUID',
    'SeriesInstanceUID',
    'InstanceNumber',
    'Rows',
    'Columns',
    'BitsAllocated',
    'NumberOfFrames',
  ),
};

/** Required matching keys per level (PS3.18 §10.6.1.2, Table 10.6.1-5), for the conformance ledger and tests. */
export const REQUIRED_MATCHING_KEYS: Readonly<Record<QidoLevel, readonly string[]>> = {
  study: [
    'StudyDate',
    'StudyTime',
    'AccessionNumber',
    'ModalitiesInStudy',
    'ReferringPhysicianName',
    'PatientName',
    'PatientID',
    'StudyInstanceUID',
    'StudyID',
  ],
  series: [
    'Modality',
    'SeriesInstanceUID',
    'SeriesNumber',
    'PerformedProcedureStepStartDate',
    'PerformedProcedureStepStartTime',
    'RequestAttributesSequence.ScheduledProcedureStepID',
    'RequestAttributesSequence.RequestedProcedureID',
  ],
  instance: ['SOPClassUID', 'SOPInstanceUID', 'InstanceNumber'],
};

/** What the resource path fixes: /studies/{study}/series/{series}/instances. */
export interface QidoScope {
  studyInstanceUID?: string;
  seriesInstanceUID?: string;
}

/**
 * Levels whose attributes a query may match and returns by default: the
 * target level, plus every higher level the path leaves open (PS3.18
 * §10.6.1.2: a search over all series may use study attributes; Tables
 * 10.6.3-4/-5: unscoped series/instance results carry the study (and series)
 * attributes too).
 */
export function levelsInScope(level: QidoLevel, scope: QidoScope = {}): QidoLevel[] {
  const levels: QidoLevel[] = [level];
  if (level === 'instance' && !scope.seriesInstanceUID) levels.push('series');
  if (level !== 'study' && !scope.studyInstanceUID) levels.push('study');
  return levels;
}

/** Default return tags for a query at `level` with the given path scope. */
export function defaultReturnTags(level: QidoLevel, scope: QidoScope = {}): Set<string> {
  const out = new Set<string>();
  for (const l of levelsInScope(level, scope)) for (const t of DEFAULT_RETURN_TAGS[l]) out.add(t);
  return out;
}

/** Attributes the archive derives rather than stores; callers add them to the data set before matching/returning. */
export const COMPUTED_TAGS: ReadonlySet<string> = new Set(QIDO_ATTRIBUTES.filter((a) => a.computed).map((a) => a.tag));

// ------------------------------------------------------------ index split

export interface SplitOptions {
  /** Elements with InlineBinary longer than this (base64 characters) are dropped. Default 1024. */
  maxInlineBinaryChars?: number;
  /** Elements whose JSON form exceeds this many UTF-8 bytes are dropped (large sequences, long text). Default 4096. */
  maxElementBytes?: number;
  /** Byte budget per level set; the largest droppable elements go first when exceeded. Defaults 16 KiB / 16 KiB / 32 KiB. */
  maxBytes?: Partial<Record<QidoLevel, number>>;
}

export interface LevelAttributes {
  study: DicomJsonDataset;
  series: DicomJsonDataset;
  instance: DicomJsonDataset;
}

const DEFAULT_BUDGET: Record<QidoLevel, number> = { study: 16 * 1024, series: 16 * 1024, instance: 32 * 1024 };

/** UTF-8 length of a string without allocating (lone surrogates count as 3, as TextEncoder writes U+FFFD). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function elementBytes(tag: string, element: DicomJsonElement): number {
  return utf8Length(tag) + 3 + utf8Length(JSON.stringify(element));
}

function isBulkData(element: DicomJsonElement): boolean {
  return element.BulkDataURI !== undefined;
}

/**
 * Split a stored instance's attributes into the study, series and instance
 * sets of its index record (ports.ts InstanceRecord). Study and series sets
 * take the attributes the table assigns to them; the instance set takes every
 * other top-level attribute. 'any'-level attributes (Specific Character Set,
 * Timezone Offset From UTC) go into all three, so each level answers alone.
 *
 * Left out everywhere, to keep one record well inside a DynamoDB item: file
 * meta (group 0002), group lengths, bulk data (BulkDataURI), InlineBinary over
 * `maxInlineBinaryChars`, any element whose JSON exceeds `maxElementBytes`,
 * computed attributes (the archive derives those), and Data Set Trailing
 * Padding. If a set still exceeds its budget, its largest elements are dropped
 * (never the level's default return attributes).
 */
export function splitAttributesByLevel(dataset: DicomJsonDataset, options: SplitOptions = {}): LevelAttributes {
  const maxInline = options.maxInlineBinaryChars ?? 1024;
  const maxElement = options.maxElementBytes ?? 4096;
  const out: LevelAttributes = { study: {}, series: {}, instance: {} };

  for (const tag of Object.keys(dataset).sort()) {
    const element = dataset[tag];
    if (!element || !isTagKey(tag)) continue;
    const key = tag.toUpperCase();
    if (key.startsWith('0002') || key.endsWith('0000') || key === 'FFFCFFFC') continue;
    if (isBulkData(element)) continue;
    if (element.InlineBinary !== undefined && element.InlineBinary.length > maxInline) continue;
    if (COMPUTED_TAGS.has(key)) continue;
    if (elementBytes(key, element) > maxElement) continue;
    const level = levelOfAttribute(key);
    if (level === 'any') {
      out.study[key] = element;
      out.series[key] = element;
      out.instance[key] = element;
    } else {
      out[level][key] = element;
    }
  }

  for (const level of ['study', 'series', 'instance'] as const) {
    enforceBudget(out[level], options.maxBytes?.[level] ?? DEFAULT_BUDGET[level], new Set(DEFAULT_RETURN_TAGS[level]));
  }
  return out;
}

function enforceBudget(set: DicomJsonDataset, budget: number, keep: ReadonlySet<string>): void {
  const sizes = Object.entries(set).map(([tag, el]) => ({ tag, bytes: elementBytes(tag, el) }));
  let total = 2 + sizes.reduce((sum, s) => sum + s.bytes + 1, 0);
  if (total <= budget) return;
  const droppable = sizes.filter((s) => !keep.has(s.tag)).sort((a, b) => b.bytes - a.bytes || (a.tag < b.tag ? -1 : 1));
  for (const s of droppable) {
    if (total <= budget) break;
    delete set[s.tag];
    total -= s.bytes + 1;
  }
}
