/**
 * Gateway configuration: defaults, relative paths, env overrides for secrets,
 * and validation errors that name the offending field.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONFIG_DEFAULTS, ConfigError, loadConfig, parseConfig } from '../../edge-gateway/src/config';
import { PROJECT_ROOT } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';

const minimal = () => ({
  dimse: { aeTitle: 'EDGE' },
  cloud: { dicomWebUrl: 'http://127.0.0.1:8080/dicom-web/' },
  spool: { dir: 'spool' },
});

function errorOf(raw: unknown, env = {}): ConfigError {
  try {
    parseConfig(raw, '/etc/gw', env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('gateway config', () => {
  test('defaults are filled in; relative paths resolve against the file; the URL loses its trailing slash', () => {
    const tmp = makeTempDir('gwcfg-');
    try {
      const file = path.join(tmp.dir, 'gateway.json');
      fs.writeFileSync(file, JSON.stringify(minimal()));
      const c = loadConfig(file, {});
      expect(c.spool.dir).toBe(path.join(tmp.dir, 'spool'));
      expect(c.cloud.dicomWebUrl).toBe('http://127.0.0.1:8080/dicom-web');
      expect(c.cloud.auth).toEqual({ kind: 'none' });
      expect(c.dimse).toMatchObject({ maxPduLength: 116794, maxAssociations: 32, idleTimeoutMs: 60000, artimTimeoutMs: 30000, destinations: {} });
      expect(c.uploader).toEqual({ concurrency: 4, largeObjectThresholdBytes: 32 * 1024 * 1024, retry: { initialDelayMs: 1000, maxDelayMs: 300000, maxAttempts: 0 } });
      expect(c.spool).toMatchObject({ fsync: true, ackMode: 'spool', doneRetentionMs: CONFIG_DEFAULTS.spool.doneRetentionMs, minFreeBytes: 256 * 1024 * 1024 });
      expect(c.http).toEqual(CONFIG_DEFAULTS.http);
    } finally {
      tmp.cleanup();
    }
  });

  test('the documented example file is valid', () => {
    const c = loadConfig(path.join(PROJECT_ROOT, 'edge-gateway', 'gateway.example.json'), {});
    expect(c.dimse.aeTitle).toBe('EDGE_GW');
    expect(c.dimse.destinations.PACS).toEqual({ host: '10.0.0.20', port: 104 });
    expect(c.spool.dir).toBe(path.join(PROJECT_ROOT, 'edge-gateway', 'spool'));
  });

  test('secrets from the environment override the file', () => {
    const withKey = parseConfig({ ...minimal(), cloud: { dicomWebUrl: 'https://a.example/dicom-web', auth: { kind: 'apiKey', apiKey: 'from-file' } } }, '/x', { GATEWAY_API_KEY: 'from-env' });
    expect(withKey.cloud.auth).toEqual({ kind: 'apiKey', apiKey: 'from-env' });
    // An API key in the environment alone is enough.
    expect(parseConfig(minimal(), '/x', { GATEWAY_API_KEY: 'k' }).cloud.auth).toEqual({ kind: 'apiKey', apiKey: 'k' });
    const cc = parseConfig(
      { ...minimal(), cloud: { dicomWebUrl: 'https://a.example/dicom-web', auth: { kind: 'clientCredentials', tokenUrl: 'https://auth.example/oauth2/token', clientId: 'gw' } } },
      '/x',
      { GATEWAY_CLIENT_SECRET: 's3cret' },
    );
    expect(cc.cloud.auth).toEqual({ kind: 'clientCredentials', tokenUrl: 'https://auth.example/oauth2/token', clientId: 'gw', clientSecret: 's3cret' });
  });

  test.each([
    ['an AE title over 16 characters', { dimse: { aeTitle: 'A'.repeat(17) } }, 'dimse.aeTitle'],
    ['an AE title with a backslash', { dimse: { aeTitle: 'AB\\C' } }, 'dimse.aeTitle'],
    ['an empty AE title', { dimse: { aeTitle: '' } }, 'dimse.aeTitle'],
    ['an all-space AE title', { dimse: { aeTitle: '    ' } }, 'dimse.aeTitle'],
    ['a bad calling AE title', { dimse: { aeTitle: 'EDGE', allowedCallingAETitles: ['OK', 'BAD\\ONE'] } }, 'dimse.allowedCallingAETitles[1]'],
    ['a destination AE title too long', { dimse: { aeTitle: 'EDGE', destinations: { ['X'.repeat(17)]: { host: 'h', port: 104 } } } }, `dimse.destinations.${'X'.repeat(17)}`],
    ['a destination port out of range', { dimse: { aeTitle: 'EDGE', destinations: { PACS: { host: 'h', port: 70000 } } } }, 'dimse.destinations.PACS.port'],
    ['a port that is not a number', { dimse: { aeTitle: 'EDGE', port: '104' } }, 'dimse.port'],
    ['a negative port', { dimse: { aeTitle: 'EDGE', port: -1 } }, 'dimse.port'],
    ['zero associations', { dimse: { aeTitle: 'EDGE', maxAssociations: 0 } }, 'dimse.maxAssociations'],
    ['a tiny PDU', { dimse: { aeTitle: 'EDGE', maxPduLength: 100 } }, 'dimse.maxPduLength'],
    ['a misspelt field', { dimse: { aeTitle: 'EDGE', maxPDULength: 16384 } }, 'dimse.maxPDULength'],
    ['requireClientCert without a CA', { dimse: { aeTitle: 'EDGE', tls: { certFile: 'c.pem', keyFile: 'k.pem', requireClientCert: true } } }, 'dimse.tls.requireClientCert'],
    ['a URL that is not http', { cloud: { dicomWebUrl: 'ftp://x/dicom-web' } }, 'cloud.dicomWebUrl'],
    ['a relative URL', { cloud: { dicomWebUrl: '/dicom-web' } }, 'cloud.dicomWebUrl'],
    ['credentials in the URL', { cloud: { dicomWebUrl: 'https://u:p@x/dicom-web' } }, 'cloud.dicomWebUrl'],
    ['an unknown auth kind', { cloud: { dicomWebUrl: 'https://x/d', auth: { kind: 'basic' } } }, 'cloud.auth.kind'],
    ['an API key missing', { cloud: { dicomWebUrl: 'https://x/d', auth: { kind: 'apiKey' } } }, 'cloud.auth.apiKey'],
    ['a client secret missing', { cloud: { dicomWebUrl: 'https://x/d', auth: { kind: 'clientCredentials', tokenUrl: 'https://t/x', clientId: 'c' } } }, 'cloud.auth.clientSecret'],
    ['a zero request timeout', { cloud: { dicomWebUrl: 'https://x/d', requestTimeoutMs: 0 } }, 'cloud.requestTimeoutMs'],
    ['a missing spool dir', { spool: {} }, 'spool.dir'],
    ['an unknown ackMode', { spool: { dir: 's', ackMode: 'never' } }, 'spool.ackMode'],
    ['fsync not a boolean', { spool: { dir: 's', fsync: 'yes' } }, 'spool.fsync'],
    ['negative free space', { spool: { dir: 's', minFreeBytes: -1 } }, 'spool.minFreeBytes'],
    ['zero concurrency', { uploader: { concurrency: 0 } }, 'uploader.concurrency'],
    ['a fractional threshold', { uploader: { largeObjectThresholdBytes: 1.5 } }, 'uploader.largeObjectThresholdBytes'],
    ['a max delay below the initial delay', { uploader: { retry: { initialDelayMs: 5000, maxDelayMs: 1000 } } }, 'uploader.retry.maxDelayMs'],
    ['a negative retry count', { uploader: { retry: { maxAttempts: -1 } } }, 'uploader.retry.maxAttempts'],
    ['an http port out of range', { http: { port: 65536 } }, 'http.port'],
  ])('refuses %s, naming the field', (_name, patch, field) => {
    const raw: Record<string, unknown> = { ...minimal(), ...patch };
    const e = errorOf(raw);
    expect(e.field).toBe(field);
    expect(e.message.startsWith(`${field}: `)).toBe(true);
  });

  test('missing sections and non-objects are named', () => {
    expect(errorOf({ cloud: minimal().cloud, spool: minimal().spool }).field).toBe('dimse');
    expect(errorOf([]).message).toMatch(/JSON object/);
    expect(errorOf({ ...minimal(), uploader: 5 }).field).toBe('uploader');
  });

  test('unreadable and malformed files give a clear error; a secret is never echoed', () => {
    const tmp = makeTempDir('gwcfg-');
    try {
      expect(() => loadConfig(path.join(tmp.dir, 'absent.json'), {})).toThrow(/cannot read the configuration file .*ENOENT/);
      const bad = path.join(tmp.dir, 'bad.json');
      fs.writeFileSync(bad, '{ "dimse": ');
      expect(() => loadConfig(bad, {})).toThrow(/not valid JSON/);
      const secret = path.join(tmp.dir, 'secret.json');
      fs.writeFileSync(secret, JSON.stringify({ ...minimal(), cloud: { dicomWebUrl: 'https://x/d', auth: { kind: 'apiKey', apiKey: 'has space-TOPSECRET' } } }));
      let message = '';
      try {
        loadConfig(secret, {});
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/cloud\.auth\.apiKey/);
      expect(message).not.toContain('TOPSECRET');
    } finally {
      tmp.cleanup();
    }
  });
});
