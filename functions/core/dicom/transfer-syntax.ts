/**
 * How a transfer syntax encodes the data set (PS3.5 §10, Annex A; UIDs from PS3.6 Annex A).
 * Every registered syntax is one of: Implicit VR LE, Explicit VR LE, Explicit VR BE,
 * Deflated Explicit VR LE, or Explicit VR LE with encapsulated pixel data (PS3.5 A.4).
 */
import { TransferSyntax } from './tags';

export interface TransferSyntaxEncoding {
  uid: string;
  explicitVR: boolean;
  littleEndian: boolean;
  /** the data set after the file meta is a raw deflate stream (PS3.5 A.5) */
  deflated: boolean;
  /** pixel data is encapsulated (PS3.5 A.4) */
  encapsulated: boolean;
}

const JPIP_REFERENCED = new Set([
  '1.2.840.10008.1.2.4.94', // JPIP Referenced
  '1.2.840.10008.1.2.4.95', // JPIP Referenced Deflate
  '1.2.840.10008.1.2.4.204', // JPIP HTJ2K Referenced
  '1.2.840.10008.1.2.4.205', // JPIP HTJ2K Referenced Deflate
]);

/** Encapsulated syntaxes outside the 1.2.840.10008.1.2.4.x arc. */
const OTHER_ENCAPSULATED = new Set([
  '1.2.840.10008.1.2.5', // RLE Lossless
  TransferSyntax.EncapsulatedUncompressedExplicitVRLittleEndian, // 1.2.840.10008.1.2.1.98
  '1.2.840.10008.1.2.8.1', // Deflated Image Frame Compression
]);

/**
 * The encoding of a transfer syntax, or undefined when we cannot know it: private
 * syntaxes, JPIP-referenced ones (pixel data lives elsewhere), the retired MIME/XML
 * encodings (1.2.840.10008.1.2.6.x) and SMPTE ST 2110 (1.2.840.10008.1.2.7.x).
 */
export function transferSyntaxEncoding(uid: string): TransferSyntaxEncoding | undefined {
  switch (uid) {
    case TransferSyntax.ImplicitVRLittleEndian:
      return { uid, explicitVR: false, littleEndian: true, deflated: false, encapsulated: false };
    case TransferSyntax.ExplicitVRLittleEndian:
      return { uid, explicitVR: true, littleEndian: true, deflated: false, encapsulated: false };
    case TransferSyntax.ExplicitVRBigEndian:
      return { uid, explicitVR: true, littleEndian: false, deflated: false, encapsulated: false };
    case TransferSyntax.DeflatedExplicitVRLittleEndian:
      return { uid, explicitVR: true, littleEndian: true, deflated: true, encapsulated: false };
  }
  if (OTHER_ENCAPSULATED.has(uid) || (/^1\.2\.840\.10008\.1\.2\.4\.\d+(\.1)?$/.test(uid) && !JPIP_REFERENCED.has(uid))) {
    // JPEG family (50-70), JPEG-LS (80/81), JPEG 2000 (90-93), MPEG-2/4, HEVC (100-108 and .1),
    // JPEG XL (110-112), HTJ2K (201-203): all Explicit VR LE + encapsulated (PS3.5 A.4).
    return { uid, explicitVR: true, littleEndian: true, deflated: false, encapsulated: true };
  }
  return undefined;
}

/** Video syntaxes: all fragments together form one stream holding every frame (PS3.5 A.4.5-A.4.7). */
export function isVideoTransferSyntax(uid: string): boolean {
  return /^1\.2\.840\.10008\.1\.2\.4\.10[0-8](\.1)?$/.test(uid);
}
