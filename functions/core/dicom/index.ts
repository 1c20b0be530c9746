/** Public API of the DICOM core: Part 10 reading, character sets, dictionary, native transcoding. */
export { parsePart10, readFileMeta, inflatePart10, PixelDataScanner, type ParsePart10Options, type FileMetaInfo } from './part10';
export {
  DicomParseError,
  DEFAULT_PARSE_LIMITS,
  type ParsedPart10,
  type ParseLimits,
  type PixelDataLayout,
  type BulkDataRef,
  type ByteRange,
  type DicomParseErrorCode,
} from './part10-types';
export { transcodeNative } from './transcode';
export { decodeText, parseSpecificCharacterSet, DEFAULT_CHARACTER_SET, type CharacterSet, type DelimiterMode } from './charset';
export { lookupTag, lookupTagKey, lookupKeyword, tagForKeyword, implicitVR, type DictionaryEntry } from './dictionary';
export { transferSyntaxEncoding, isVideoTransferSyntax, type TransferSyntaxEncoding } from './transfer-syntax';
export { bytesToBase64, base64ToBytes } from './base64';
export * from './json-model';
export { Tag, TransferSyntax, UNCOMPRESSED_TRANSFER_SYNTAXES, type TagName } from './tags';
export { isValidUID, assertValidUID, InvalidUIDError } from './uid';
