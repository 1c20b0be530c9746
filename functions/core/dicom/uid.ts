/**
 * UID syntax (PS3.5 §9.1): components of digits separated by '.', at most 64
 * characters, no empty component, no leading zero in a multi-digit component.
 * Applied to every UID from the wire before it is used as a key.
 */
const UID_PATTERN = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

export function isValidUID(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 64 && UID_PATTERN.test(value);
}

export class InvalidUIDError extends Error {
  readonly code = 'INVALID_UID';
  constructor(what = 'UID') {
    super(`invalid ${what}`);
    this.name = 'InvalidUIDError';
  }
}

export function assertValidUID(value: unknown, what = 'UID'): asserts value is string {
  if (!isValidUID(value)) throw new InvalidUIDError(what);
}
