/**
 * The one error table: stable codes → HTTP status. Domain code throws
 * `ArchiveError(code)`; only the HTTP layer turns a code into a status, and a
 * 500 never carries internals (the message of an unexpected error is logged
 * without PHI, and the client gets a generic text). docs/errors.md is checked
 * against this table by a test.
 *
 * Per-instance STOW outcomes are values (FailureReason codes), not exceptions.
 */
export const ERRORS = {
  BAD_REQUEST: { status: 400, message: 'The request is malformed.' },
  INVALID_UID: { status: 400, message: 'A UID in the request is not a valid DICOM UID (PS3.5 §9.1).' },
  INVALID_QUERY: { status: 400, message: 'A query parameter is invalid.' },
  INVALID_ACCEPT: { status: 400, message: 'The Accept header or accept parameter is malformed.' },
  INVALID_FRAME_LIST: { status: 400, message: 'The frame list must be positive integers separated by commas.' },
  MULTIPART_MALFORMED: { status: 400, message: 'The multipart/related body is malformed.' },
  UNAUTHORIZED: { status: 401, message: 'Authentication is required: send a valid bearer token or API key.' },
  FORBIDDEN: { status: 403, message: 'The credentials do not grant the scope this route needs.' },
  NOT_FOUND: { status: 404, message: 'The resource does not exist.' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No such resource.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'The method is not allowed on this resource.' },
  NOT_ACCEPTABLE: { status: 406, message: 'None of the acceptable media types or transfer syntaxes can be produced.' },
  NO_INSTANCES_STORED: { status: 409, message: 'None of the instances was stored.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body exceeds the size limit.' },
  RESPONSE_TOO_LARGE: { status: 413, message: 'The answer is too large for one response: see the message for the route that serves it.' },
  MULTIPART_LIMIT: { status: 413, message: 'The multipart/related body exceeds a limit (parts or size).' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The Content-Type is not supported here.' },
  INVALID_MEDIA_TYPE: { status: 415, message: 'The Content-Type is not a valid media type.' },
  FRAME_OUT_OF_RANGE: { status: 404, message: 'A requested frame does not exist in the instance.' },
  RANGE_NOT_SATISFIABLE: { status: 416, message: 'The requested byte range cannot be served.' },
  TIMEOUT: { status: 503, message: 'The request took too long.' },
  INTERNAL: { status: 500, message: 'Internal server error.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class ArchiveError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Safe, PHI-free detail for the client (never patient attribute values). */
  readonly detail?: string;
  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ?? ERRORS[code].message, options);
    this.name = 'ArchiveError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.detail = detail;
  }
}

/** Check errors by stable code, not instanceof (bundles may hold two copies of a class). */
export function errorCodeOf(error: unknown): string | undefined {
  if (error && typeof error === 'object' && 'code' in error && typeof (error as { code: unknown }).code === 'string') {
    return (error as { code: string }).code;
  }
  return undefined;
}

/** Map any thrown value to a table entry; unknown errors become INTERNAL. */
export function toArchiveError(error: unknown): ArchiveError {
  const code = errorCodeOf(error);
  if (error instanceof ArchiveError) return error;
  if (code && code in ERRORS) {
    const detail = error instanceof Error ? error.message : undefined;
    return new ArchiveError(code as ErrorCode, detail, { cause: error });
  }
  return new ArchiveError('INTERNAL', undefined, { cause: error });
}
