/**
 * Authentication headers for requests to the archive, for the kinds the
 * uploader can serve on its own. The embedded archive takes an API key as
 * `Authorization: Bearer <secret>` (RFC 6750 §2.1; functions/adapters/auth/
 * embedded-auth.ts also accepts X-API-Key). OAuth2 client credentials need a
 * token cache: the gateway passes DicomWebClient.authHeaders (edge-gateway/src/
 * cloud/) instead of this function.
 */
import type { CloudAuthConfig } from '../config-types';

export type AuthHeaders = () => Promise<Record<string, string>>;

export function staticAuthHeaders(auth: CloudAuthConfig): AuthHeaders {
  switch (auth.kind) {
    case 'none':
      return async () => ({});
    case 'apiKey': {
      const headers = { Authorization: `Bearer ${auth.apiKey}` };
      return async () => ({ ...headers });
    }
    case 'clientCredentials':
      return async () => {
        throw Object.assign(new Error('client-credentials auth needs the DicomWebClient token cache (pass deps.authHeaders)'), { code: 'AUTH_NOT_CONFIGURED' });
      };
  }
}
