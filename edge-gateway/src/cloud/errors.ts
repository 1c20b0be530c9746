/**
 * Errors of the cloud (DICOMweb) client. Callers check `code`, not
 * `instanceof` (a bundle can hold two copies of a class). Messages carry the
 * HTTP status and the request path's shape, never query values or response
 * bodies: both can carry PHI.
 */
export type CloudErrorCode =
  /** The archive answered with an unexpected HTTP status (see `status`). */
  | 'CLOUD_HTTP'
  /** 401/403 from the archive, or the token endpoint refused us. */
  | 'CLOUD_AUTH'
  /** Connection refused, DNS, TLS, reset: the archive could not be reached. */
  | 'CLOUD_UNREACHABLE'
  /** No answer (headers, or the next body chunk) within `requestTimeoutMs`. */
  | 'CLOUD_TIMEOUT'
  /** The answer is not what DICOMweb promises (bad JSON, bad multipart, not Part 10). */
  | 'CLOUD_PROTOCOL'
  /** A UID that would go into a URL is not a valid UID (PS3.5 §9). */
  | 'CLOUD_INVALID_UID'
  /** A search matched more than the client's bound (`maxSearchResults`). */
  | 'CLOUD_TOO_MANY_RESULTS';

export class CloudError extends Error {
  readonly code: CloudErrorCode;
  /** HTTP status when the archive (or token endpoint) answered. */
  readonly status?: number;
  constructor(code: CloudErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CloudError';
    this.code = code;
    if (options.status !== undefined) this.status = options.status;
  }
}

export function isCloudError(error: unknown): error is CloudError {
  return typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string' && (error as { code: string }).code.startsWith('CLOUD_');
}

/** True when the cloud could not be asked at all (network, timeout, 5xx): a retry later may work. */
export function isCloudUnavailable(error: unknown): boolean {
  if (!isCloudError(error)) return false;
  if (error.code === 'CLOUD_UNREACHABLE' || error.code === 'CLOUD_TIMEOUT') return true;
  return error.code === 'CLOUD_HTTP' && (error.status ?? 0) >= 500;
}
