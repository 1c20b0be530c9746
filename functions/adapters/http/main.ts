/**
 * `npm start`: the embedded archive on http://127.0.0.1:8080/dicom-web with
 * data in ./data (PORT, DATA_DIR, HOST to change). Authentication follows
 * docs/auth.md: with nothing configured the archive is open, so it must stay
 * on loopback; with API_KEYS or AUTH_* set, every request needs credentials,
 * whatever the host.
 */
import * as path from 'node:path';
import { startEmbeddedArchive } from '../local/embedded';
import { createEmbeddedAuthenticator, describeAuth, embeddedAuthConfigFromEnv, isLoopbackHost, type EmbeddedAuthConfig } from '../auth/embedded-auth';
import { shortSecrets } from '../auth/api-keys';

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8080);
  const host = process.env.HOST ?? '127.0.0.1';
  let auth: EmbeddedAuthConfig | undefined;
  try {
    auth = embeddedAuthConfigFromEnv(process.env);
  } catch (error) {
    console.error(`invalid authentication settings: ${(error as Error).message} (see docs/auth.md)`);
    process.exit(2);
  }
  if (!auth && !isLoopbackHost(host)) {
    console.error(`refusing to bind ${host}: no authentication is configured; set API_KEYS, or AUTH_JWKS_URL + AUTH_ISSUER + AUTH_AUDIENCE (see docs/auth.md)`);
    process.exit(2);
  }
  if (process.env.API_KEYS) for (const name of shortSecrets(process.env.API_KEYS)) console.warn(`warning: the secret of API key "${name}" is short; use 32+ random characters (openssl rand -hex 32)`);
  const dataDir = path.resolve(process.env.DATA_DIR ?? 'data');
  const archive = await startEmbeddedArchive({ dataDir, host, port, authenticate: auth && createEmbeddedAuthenticator(auth) });
  console.log(`DICOMweb archive listening at ${archive.dicomWebUrl} (data in ${dataDir}; ${describeAuth(auth)})`);
  const stop = async () => {
    await archive.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error) => {
  console.error('failed to start:', (error as Error).message);
  process.exit((error as { code?: unknown }).code === 'AUTH_CONFIG' ? 2 : 1);
});
