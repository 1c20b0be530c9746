/**
 * A refused authentication configuration (bad API_KEYS, half an OIDC
 * setup, ...). The embedded server exits 2 on it with the message, which
 * names the setting and never repeats a secret.
 */
export class AuthConfigError extends Error {
  readonly code = 'AUTH_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'AuthConfigError';
  }
}
