/**
 * Tags the core refers to by name (PS3.6 keywords), as DICOM JSON keys.
 * Only what code needs by name lives here; the full dictionary is in dictionary.ts.
 */
export const Tag = {
  // File meta (PS3.10 §7.1)
  FileMetaInformationGroupLength: '00020000',
  FileMetaInformationVersion: '00020001',
  MediaStorageSOPClassUID: '00020002',
  MediaStorageSOPInstanceUID: '00020003',
  TransferSyntaxUID: '00020010',
  ImplementationClassUID: '00020012',
  ImplementationVersionName: '00020013',
  SourceApplicationEntityTitle: '00020016',

  SpecificCharacterSet: '00080005',
  ImageType: '00080008',
  InstanceCreationDate: '00080012',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  StudyDate: '00080020',
  SeriesDate: '00080021',
  ContentDate: '00080023',
  StudyTime: '00080030',
  SeriesTime: '00080031',
  AccessionNumber: '00080050',
  InstanceAvailability: '00080056',
  FailedSOPInstanceUIDList: '00080058',
  Modality: '00080060',
  ModalitiesInStudy: '00080061',
  SOPClassesInStudy: '00080062',
  ReferringPhysicianName: '00080090',
  TimezoneOffsetFromUTC: '00080201',
  InstitutionName: '00080080',
  RetrieveURL: '00081190',
  StudyDescription: '00081030',
  SeriesDescription: '0008103E',
  FailedSOPSequence: '00081198',
  ReferencedSOPSequence: '00081199',
  ReferencedSOPClassUID: '00081150',
  ReferencedSOPInstanceUID: '00081155',
  OtherFailuresSequence: '0008119A',
  FailureReason: '00081197',
  WarningReason: '00081196',
  RetrieveAETitle: '00080054',

  PatientName: '00100010',
  PatientID: '00100020',
  IssuerOfPatientID: '00100021',
  PatientBirthDate: '00100030',
  PatientSex: '00100040',
  PatientAge: '00101010',

  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  StudyID: '00200010',
  SeriesNumber: '00200011',
  InstanceNumber: '00200013',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209',

  SamplesPerPixel: '00280002',
  PhotometricInterpretation: '00280004',
  NumberOfFrames: '00280008',
  Rows: '00280010',
  Columns: '00280011',
  BitsAllocated: '00280100',
  BitsStored: '00280101',
  PixelRepresentation: '00280103',

  PerformedProcedureStepStartDate: '00400244',
  PerformedProcedureStepStartTime: '00400245',
  RequestAttributesSequence: '00400275',
  ScheduledProcedureStepID: '00400009',
  RequestedProcedureID: '00401001',

  ExtendedOffsetTable: '7FE00001',
  ExtendedOffsetTableLengths: '7FE00002',
  FloatPixelData: '7FE00008',
  DoubleFloatPixelData: '7FE00009',
  PixelData: '7FE00010',
} as const;

export type TagName = keyof typeof Tag;

/** Transfer syntaxes the archive names in code (PS3.5 Annex A, PS3.6 Annex A). */
export const TransferSyntax = {
  ImplicitVRLittleEndian: '1.2.840.10008.1.2',
  ExplicitVRLittleEndian: '1.2.840.10008.1.2.1',
  EncapsulatedUncompressedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.98',
  DeflatedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.99',
  ExplicitVRBigEndian: '1.2.840.10008.1.2.2',
} as const;

/** The uncompressed (native) syntaxes WADO can convert among without a codec. */
export const UNCOMPRESSED_TRANSFER_SYNTAXES: readonly string[] = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
  TransferSyntax.ExplicitVRBigEndian,
];
