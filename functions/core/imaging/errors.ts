/**
 * Errors of the imaging core. `code` is a code of the archive's one error
 * table (core/archive/errors.ts), so the HTTP layer maps it without knowing
 * this module; `reason` says which imaging rule failed (stable, PHI-free).
 */
export type ImagingReason =
  | 'NOT_AN_IMAGE' // no Image Pixel module
  | 'UNSUPPORTED_IMAGE' // a pixel layout or photometric interpretation the renderer does not handle
  | 'UNSUPPORTED_TRANSFER_SYNTAX' // no decoder / encoder for the syntax
  | 'DECODE_FAILED' // the codec refused the frame (corrupt or truncated stream)
  | 'INVALID_PARAMETER'; // a rendering parameter (window, viewport, quality) is malformed

const CODE_OF: Record<ImagingReason, 'NOT_ACCEPTABLE' | 'INVALID_QUERY'> = {
  NOT_AN_IMAGE: 'NOT_ACCEPTABLE',
  UNSUPPORTED_IMAGE: 'NOT_ACCEPTABLE',
  UNSUPPORTED_TRANSFER_SYNTAX: 'NOT_ACCEPTABLE',
  DECODE_FAILED: 'NOT_ACCEPTABLE',
  INVALID_PARAMETER: 'INVALID_QUERY',
};

export class ImagingError extends Error {
  readonly code: 'NOT_ACCEPTABLE' | 'INVALID_QUERY';
  readonly reason: ImagingReason;
  constructor(reason: ImagingReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImagingError';
    this.reason = reason;
    this.code = CODE_OF[reason];
  }
}
