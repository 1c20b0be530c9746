/**
 * Errors of the query/retrieve translation, each with the DIMSE status the
 * SCP answers with (PS3.4 C.4.1.1.4 C-FIND, C.4.2.1.5 C-MOVE, C.4.3.1.4 C-GET).
 * Messages name attributes by keyword, never their values (PHI).
 */
import { isCloudError, isCloudUnavailable } from '../cloud/errors';

export type QueryRetrieveErrorCode =
  /** The identifier is not valid for the model/level (missing or multi-valued unique keys, bad level): 0xA900. */
  | 'INVALID_IDENTIFIER'
  /** A level the information model does not have (PATIENT in Study Root): 0xA900. */
  | 'UNSUPPORTED_LEVEL'
  /** A key value the archive cannot match (malformed date range, wild card in a UID…): 0xC000. */
  | 'UNABLE_TO_PROCESS'
  /** The archive is unreachable, times out or fails (5xx): 0xA700 (out of resources: try later). */
  | 'CLOUD_UNAVAILABLE';

export const DimseStatus = {
  Success: 0x0000,
  Pending: 0xff00,
  Cancel: 0xfe00,
  OutOfResources: 0xa700,
  /** C-MOVE/C-GET: out of resources, unable to calculate number of matches */
  OutOfResourcesCalculating: 0xa701,
  /** C-MOVE/C-GET: out of resources, unable to perform sub-operations */
  OutOfResourcesSubOperations: 0xa702,
  MoveDestinationUnknown: 0xa801,
  IdentifierDoesNotMatchSopClass: 0xa900,
  UnableToProcess: 0xc000,
  /** C-MOVE/C-GET: sub-operations complete, one or more failures or warnings */
  SubOperationsCompleteWithFailures: 0xb000,
} as const;

const STATUS: Record<QueryRetrieveErrorCode, number> = {
  INVALID_IDENTIFIER: DimseStatus.IdentifierDoesNotMatchSopClass,
  UNSUPPORTED_LEVEL: DimseStatus.IdentifierDoesNotMatchSopClass,
  UNABLE_TO_PROCESS: DimseStatus.UnableToProcess,
  CLOUD_UNAVAILABLE: DimseStatus.OutOfResources,
};

export class QueryRetrieveError extends Error {
  readonly code: QueryRetrieveErrorCode;
  /** DIMSE status for the final response. */
  readonly status: number;
  constructor(code: QueryRetrieveErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'QueryRetrieveError';
    this.code = code;
    this.status = options.status ?? STATUS[code];
  }
}

export function isQueryRetrieveError(error: unknown): error is QueryRetrieveError {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && code in STATUS && typeof (error as { status?: unknown }).status === 'number';
}

/** Cloud failures become CLOUD_UNAVAILABLE (network, timeout, 5xx, auth) or UNABLE_TO_PROCESS (the archive refused the query). */
export function fromCloudError(error: unknown): unknown {
  if (!isCloudError(error)) return error;
  if (isCloudUnavailable(error) || error.code === 'CLOUD_AUTH' || error.code === 'CLOUD_PROTOCOL') {
    return new QueryRetrieveError('CLOUD_UNAVAILABLE', `archive: ${error.message}`, { cause: error });
  }
  return new QueryRetrieveError('UNABLE_TO_PROCESS', `archive: ${error.message}`, { cause: error });
}
