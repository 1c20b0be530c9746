/**
 * `npm start`: the embedded archive on http://127.0.0.1:8080/dicom-web with
 * data in ./data (PORT, DATA_DIR, HOST to change). Authentication follows
 * docs/auth.md: with nothing configured the archive is open, so it must stay
 * on loopback; with API_KEYS or AUTH_* set, every request needs credentials,
 * whatever the host.
 *
 * Beside it, the DIMSE edge gateway (edge-gateway/) listens on
 * 127.0.0.1:${DICOM_PORT:-11112}, AE title DICOMWEB_EDGE, spool in
 * DATA_DIR/gateway-spool, uploading to this archive over loopback (with the
 * first API key of API_KEYS when keys are set). DICOM_PORT=off disables it.
 */
import * as path from 'node:path';
import { startEmbeddedArchive } from '../local/embedded';
import { createEmbeddedAuthenticator, describeAuth, embeddedAuthConfigFromEnv, isLoopbackHost, type EmbeddedAuthConfig } from '../auth/embedded-auth';
import { shortSecrets } from '../auth/api-keys';
import { webSettingsFromEnv } from './static-files';

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
  // Signal handlers go in before anything starts: a SIGTERM that arrives
  // while the gateway is still starting must still close cleanly (exit 0),
  // not kill the process mid-write with the default action.
  let archive: Awaited<ReturnType<typeof startEmbeddedArchive>> | undefined;
  let gateway: { close(): Promise<void> } | undefined;
  let stopping = false;
  let started = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    if (!started) return; // main() closes what it started, then exits
    await gateway?.close();
    await archive?.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  archive = await startEmbeddedArchive({ dataDir, host, port, authenticate: auth && createEmbeddedAuthenticator(auth), web: webSettingsFromEnv(process.env, auth !== undefined) });
  console.log(`DICOMweb archive listening at ${archive.dicomWebUrl} (data in ${dataDir}; ${describeAuth(auth)})`);
  console.log(`web UI at ${archive.url}/, OHIF viewer at ${archive.url}/viewer`);
  gateway = await startDimseGateway(archive.dicomWebUrl, dataDir, auth);
  started = true;
  if (stopping) {
    stopping = false;
    await stop();
  }
}

/** The first API key's secret (name:secret:scopes, the secret may hold ':'). */
function firstApiKeySecret(text: string | undefined): string | undefined {
  const entry = text?.split(',').map((e) => e.trim()).find(Boolean);
  if (!entry) return undefined;
  return entry.slice(entry.indexOf(':') + 1, entry.lastIndexOf(':'));
}

/** The DIMSE gateway is an add-on: when it cannot start, say why and keep serving DICOMweb. */
async function startDimseGateway(archiveUrl: string, dataDir: string, auth: EmbeddedAuthConfig | undefined): Promise<{ close(): Promise<void> } | undefined> {
  const setting = (process.env.DICOM_PORT ?? '').trim() || '11112';
  if (setting.toLowerCase() === 'off') return undefined;
  const port = Number(setting);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`invalid DICOM_PORT "${setting}": a port number, or "off"`);
    process.exit(2);
  }
  const apiKey = firstApiKeySecret(process.env.API_KEYS);
  if (auth && !apiKey) {
    console.warn('DIMSE gateway not started: the archive requires tokens and the gateway needs an API key (add one to API_KEYS, or DICOM_PORT=off)');
    return undefined;
  }
  // The archive may listen on 0.0.0.0; the gateway always talks to it over loopback.
  const url = new URL(archiveUrl);
  if (!isLoopbackHost(url.hostname)) url.hostname = '127.0.0.1';
  const { startGateway, embeddedGatewayConfig, EMBEDDED_GATEWAY_AE_TITLE } = await import('../../../edge-gateway/src/gateway');
  const { createLogger } = await import('../../../edge-gateway/src/ops/logger');
  const config = embeddedGatewayConfig({ dicomWebUrl: url.toString().replace(/\/$/, ''), dataDir, port, apiKey });
  try {
    const gateway = await startGateway(config, { logger: createLogger('edge-gateway', process.env.GATEWAY_LOG_LEVEL ? {} : { level: 'warn' }), closeGraceMs: 2000 });
    console.log(`DIMSE edge gateway listening on 127.0.0.1:${gateway.dimsePort} (AE title ${EMBEDDED_GATEWAY_AE_TITLE}; spool in ${config.spool.dir})`);
    return gateway;
  } catch (error) {
    const code = (error as { code?: string }).code;
    console.error(`DIMSE gateway not started: ${code === 'EADDRINUSE' ? `port ${port} is in use (set DICOM_PORT, or DICOM_PORT=off)` : (error as Error).message}`);
    return undefined;
  }
}

main().catch((error) => {
  console.error('failed to start:', (error as Error).message);
  process.exit((error as { code?: unknown }).code === 'AUTH_CONFIG' ? 2 : 1);
});
