/**
 * The gateway's DICOMweb client against a real embedded archive with
 * authentication on (API keys and HS256 JWTs), plus a tiny OAuth 2.0 token
 * endpoint started here: credentials, token caching and the one retry after
 * a 401, QIDO paging across pages (our limit, and the archive capping it with
 * `Warning: 299`), WADO original bytes byte-identical to what was stored, and
 * the error codes a caller sees.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import type * as Jose from 'jose';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { createEmbeddedAuthenticator } from '../../functions/adapters/auth/embedded-auth';
import { parseApiKeys } from '../../functions/adapters/auth/api-keys';
import { silentLogger } from '../../functions/core/archive/context';
import { DicomWebClient } from '../../edge-gateway/src/cloud/dicomweb-client';
import { readAhead } from '../../edge-gateway/src/cloud/read-ahead';
import type { CloudConfig } from '../../edge-gateway/src/config-types';
import { ctSeries, mrInstance, crInstance, syntheticPatient, uid, TS, type SyntheticInstance } from '../fixtures/synthetic';
import { multipartBody, withZeroPreamble } from '../helpers/archive';
import { PROJECT_ROOT } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';

// jose is ESM-only and jest loads CommonJS: hand jest a CommonJS bundle of the real jose (as auth-embedded.test.ts does).
const joseDir = makeTempDir('jose-cjs-');
const JOSE_CJS = path.join(joseDir.dir, 'jose.cjs');
buildSync({ entryPoints: [path.join(PROJECT_ROOT, 'node_modules', 'jose', 'dist', 'webapi', 'index.js')], bundle: true, format: 'cjs', platform: 'node', target: 'node22', outfile: JOSE_CJS, logLevel: 'warning' });
jest.mock('jose', () => jest.requireActual(JOSE_CJS));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const jose = require('jose') as typeof Jose;

const ISSUER = 'http://127.0.0.1/token-issuer';
const CLIENT_ID = 'edge-gateway-test';
const CLIENT_SECRET = randomBytes(16).toString('hex');
const JWT_SECRET = randomBytes(32).toString('hex');
const API_KEY = randomBytes(24).toString('base64url');
const WRITE_KEY = randomBytes(24).toString('base64url');

let archive: Awaited<ReturnType<typeof startEmbeddedArchive>>;
const dataDir = makeTempDir('cloud-client-');

// ---- the token endpoint (RFC 6749 §4.4)
interface TokenRequest { authorization?: string; form: URLSearchParams }
const tokenRequests: TokenRequest[] = [];
/** What the next answers carry: 'good' tokens, tokens the archive rejects ('bad-signature'), or an error. */
let tokenMode: 'good' | 'bad-signature' | 'bad-then-good' | 'refuse' = 'good';
let expiresIn = 3600;
let tokenServer: http.Server;
let tokenUrl: string;

async function issue(secret: string): Promise<string> {
  return new jose.SignJWT({ client_id: CLIENT_ID, scope: 'dicomweb/read' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(secret));
}

function startTokenServer(): Promise<void> {
  tokenServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        tokenRequests.push({ authorization: req.headers.authorization, form });
        const expected = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
        if (tokenMode === 'refuse' || req.headers.authorization !== expected || form.get('grant_type') !== 'client_credentials') {
          res.writeHead(401, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: 'invalid_client' }));
          return;
        }
        const bad = tokenMode === 'bad-signature' || (tokenMode === 'bad-then-good' && tokenRequests.length % 2 === 1);
        const token = await issue(bad ? randomBytes(32).toString('hex') : JWT_SECRET);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: expiresIn }));
      })();
    });
  });
  return new Promise((resolve) => tokenServer.listen(0, '127.0.0.1', () => {
    tokenUrl = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/oauth2/token`;
    resolve();
  }));
}

// ---- data
const studyA = uid();
const seriesA = uid();
let ct: SyntheticInstance[];
let mr: SyntheticInstance;
let cr: SyntheticInstance;

function cloud(auth: CloudConfig['auth'], requestTimeoutMs = 10_000, url?: string): CloudConfig {
  return { dicomWebUrl: url ?? archive.dicomWebUrl, auth, requestTimeoutMs };
}

/** fetch that records the URLs it was asked for. */
function recordingFetch(log: string[]): typeof fetch {
  return (input, init) => {
    log.push(String(input));
    return fetch(input, init);
  };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function codeOf(p: Promise<unknown>): Promise<{ code?: string; status?: number }> {
  try {
    await p;
  } catch (e) {
    return { code: (e as { code?: string }).code, status: (e as { status?: number }).status };
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  await startTokenServer();
  const authenticate = createEmbeddedAuthenticator({
    apiKeys: parseApiKeys(`gateway:${API_KEY}:read,loader:${WRITE_KEY}:write`),
    jwt: { issuer: ISSUER, audiences: [CLIENT_ID], secret: JWT_SECRET, scopePrefix: 'dicomweb/' },
  });
  // A small query cap so the archive cuts pages and says so (Warning: 299).
  archive = await startEmbeddedArchive({ dataDir: dataDir.dir, port: 0, log: silentLogger, authenticate, limits: { maxQueryLimit: 4, defaultQueryLimit: 4 } });
  ct = ctSeries({ count: 10, rows: 64, columns: 64, studyInstanceUID: studyA, seriesInstanceUID: seriesA, patient: syntheticPatient(1) });
  mr = mrInstance({ patient: syntheticPatient(2), transferSyntaxUID: TS.ImplicitVRLittleEndian, rows: 32, columns: 32 });
  cr = crInstance({ patient: syntheticPatient(3), transferSyntaxUID: TS.ExplicitVRBigEndian, rows: 300, columns: 280 });
  for (const inst of [...ct, mr, cr]) {
    const { body, contentType } = multipartBody([inst.bytes]);
    const res = await fetch(`${archive.dicomWebUrl}/studies`, { method: 'POST', body: body as unknown as BodyInit, headers: { 'Content-Type': contentType, 'X-API-Key': WRITE_KEY } });
    expect(res.status).toBe(200);
    await res.text();
  }
}, 60_000);

afterAll(async () => {
  await archive?.close();
  await new Promise((r) => tokenServer?.close(r));
  dataDir.cleanup();
  joseDir.cleanup();
});

describe('credentials', () => {
  test('no credentials against an archive that needs them: CLOUD_AUTH with status 401', async () => {
    const client = new DicomWebClient(cloud({ kind: 'none' }));
    expect(await client.authHeaders()).toEqual({});
    expect(await codeOf(collect(client.search('/studies', new URLSearchParams())))).toEqual({ code: 'CLOUD_AUTH', status: 401 });
  });

  test('API key: sent as X-API-Key, searches succeed; a wrong key is CLOUD_AUTH 401', async () => {
    const client = new DicomWebClient(cloud({ kind: 'apiKey', apiKey: API_KEY }));
    expect(await client.authHeaders()).toEqual({ 'X-API-Key': API_KEY });
    const studies = await collect(client.search('/studies', new URLSearchParams()));
    expect(studies.map((s) => s['0020000D']?.Value?.[0]).sort()).toEqual([studyA, mr.studyInstanceUID, cr.studyInstanceUID].sort());
    const wrong = new DicomWebClient(cloud({ kind: 'apiKey', apiKey: 'not-the-key' }));
    expect(await codeOf(collect(wrong.search('/studies', new URLSearchParams())))).toEqual({ code: 'CLOUD_AUTH', status: 401 });
  });

  test('client credentials: one token request (Basic client auth, grant_type, scope) serves many requests until shortly before expiry', async () => {
    tokenMode = 'good';
    expiresIn = 3600;
    tokenRequests.length = 0;
    let now = 1_000_000;
    const client = new DicomWebClient(
      cloud({ kind: 'clientCredentials', tokenUrl, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, scope: 'dicomweb/read' }),
      { now: () => now },
    );
    // Concurrent first use: one shared token request.
    const [a, b] = await Promise.all([collect(client.search('/studies', new URLSearchParams())), client.hasInstance(mr.sopInstanceUID)]);
    expect(a).toHaveLength(3);
    expect(b).toBe(true);
    expect(tokenRequests).toHaveLength(1);
    expect(tokenRequests[0]!.form.get('grant_type')).toBe('client_credentials');
    expect(tokenRequests[0]!.form.get('scope')).toBe('dicomweb/read');
    expect((await client.authHeaders()).Authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    expect(tokenRequests).toHaveLength(1);
    // 30 s before expiry the cached token is no longer used.
    now += (3600 - 30) * 1000;
    expect(await client.hasInstance(cr.sopInstanceUID)).toBe(true);
    expect(tokenRequests).toHaveLength(2);
  });

  test('client credentials: a 401 from the archive fetches a new token and retries once', async () => {
    tokenMode = 'bad-then-good';
    tokenRequests.length = 0;
    const client = new DicomWebClient(cloud({ kind: 'clientCredentials', tokenUrl, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }));
    expect(await client.hasInstance(ct[0]!.sopInstanceUID, studyA)).toBe(true);
    expect(tokenRequests).toHaveLength(2);

    // Tokens the archive never accepts: exactly one retry, then CLOUD_AUTH 401.
    tokenMode = 'bad-signature';
    tokenRequests.length = 0;
    const stuck = new DicomWebClient(cloud({ kind: 'clientCredentials', tokenUrl, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }));
    expect(await codeOf(stuck.hasInstance(mr.sopInstanceUID))).toEqual({ code: 'CLOUD_AUTH', status: 401 });
    expect(tokenRequests).toHaveLength(2);
    tokenMode = 'good';
  });

  test('client credentials: a token endpoint refusing the client is CLOUD_AUTH with its status; the secret is not in the message', async () => {
    tokenMode = 'refuse';
    const client = new DicomWebClient(cloud({ kind: 'clientCredentials', tokenUrl, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }));
    let error: { code?: string; status?: number; message?: string } = {};
    await client.authHeaders().catch((e: typeof error) => (error = e));
    expect(error).toMatchObject({ code: 'CLOUD_AUTH', status: 401 });
    expect(error.message).toContain('invalid_client');
    expect(error.message).not.toContain(CLIENT_SECRET);
    tokenMode = 'good';
  });
});

describe('QIDO paging', () => {
  const client = () => new DicomWebClient(cloud({ kind: 'apiKey', apiKey: API_KEY }), { pageSize: 3 });

  test('full pages are followed until a short one: every instance once, in pages of our limit', async () => {
    const urls: string[] = [];
    const c = new DicomWebClient(cloud({ kind: 'apiKey', apiKey: API_KEY }), { pageSize: 3, fetch: recordingFetch(urls) });
    const found = await collect(c.search(`/studies/${studyA}/series/${seriesA}/instances`, new URLSearchParams()));
    const sops = found.map((r) => r['00080018']?.Value?.[0]);
    expect(new Set(sops).size).toBe(10);
    expect(sops.sort()).toEqual(ct.map((i) => i.sopInstanceUID).sort());
    expect(urls.map((u) => new URL(u).searchParams.get('offset'))).toEqual(['0', '3', '6', '9']);
  });

  test('the archive capping our limit (Warning: 299) does not lose matches', async () => {
    const urls: string[] = [];
    const c = new DicomWebClient(cloud({ kind: 'apiKey', apiKey: API_KEY }), { pageSize: 50, fetch: recordingFetch(urls) });
    const found = await collect(c.search('/instances', new URLSearchParams({ StudyInstanceUID: studyA })));
    expect(found).toHaveLength(10);
    // pages of 4 (the cap); the short page still carries the warning (limit capped), so one empty page ends it
    expect(urls.map((u) => new URL(u).searchParams.get('offset'))).toEqual(['0', '4', '8', '10']);
  });

  test('query keys and includefield reach the archive; our limit/offset replace the caller’s', async () => {
    const found = await collect(client().search('/studies', new URLSearchParams({ PatientID: syntheticPatient(2).id, includefield: 'PatientBirthDate', limit: '1', offset: '7' })));
    expect(found).toHaveLength(1);
    expect(found[0]!['00100030']?.Value?.[0]).toBe(syntheticPatient(2).birthDate);
  });

  test('hasInstance: true for a stored instance, false otherwise', async () => {
    expect(await client().hasInstance(ct[3]!.sopInstanceUID)).toBe(true);
    expect(await client().hasInstance(ct[3]!.sopInstanceUID, studyA)).toBe(true);
    expect(await client().hasInstance(uid())).toBe(false);
    expect(await client().hasInstance(ct[3]!.sopInstanceUID, mr.studyInstanceUID)).toBe(false);
  });

  test('instancesPresent: UID lists in chunks, only the stored ones come back', async () => {
    const urls: string[] = [];
    const c = new DicomWebClient(cloud({ kind: 'apiKey', apiKey: API_KEY }), { fetch: recordingFetch(urls) });
    const unknown = uid();
    const asked = [ct[0]!.sopInstanceUID, unknown, mr.sopInstanceUID, cr.sopInstanceUID, ct[9]!.sopInstanceUID];
    const found = await c.instancesPresent(asked, 2);
    expect([...found].sort()).toEqual([ct[0]!.sopInstanceUID, mr.sopInstanceUID, cr.sopInstanceUID, ct[9]!.sopInstanceUID].sort());
    // three chunks (each may take one more, empty page: this archive caps limit and says so)
    expect(urls.filter((u) => new URL(u).searchParams.get('offset') === '0')).toHaveLength(3);
    expect((await codeOf(c.instancesPresent(['1.2.3', 'x']))).code).toBe('CLOUD_INVALID_UID');
  });
});

describe('read-ahead', () => {
  /** A source of `n` chunks of `size` bytes that counts what it handed out; fails at `failAt` when given. */
  function source(n: number, size: number, failAt?: number) {
    const state = { given: 0, returned: false };
    const it: AsyncIterator<Uint8Array> = {
      async next() {
        await new Promise((r) => setImmediate(r));
        if (state.given === failAt) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
        if (state.given >= n) return { done: true, value: undefined };
        return { done: false, value: new Uint8Array(size).fill(state.given++ & 0xff) };
      },
      async return() {
        state.returned = true;
        return { done: true, value: undefined };
      },
    };
    return { it, state };
  }

  test('reads ahead up to its budget while the consumer waits, then only as the consumer takes chunks; all chunks in order', async () => {
    const { it, state } = source(100, 1000);
    const ahead = readAhead(it, { maxBytes: 10_000 });
    const first = await ahead.next();
    expect(first.value![0]).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    // one taken + at most the budget (10 chunks of 1000) held
    expect(state.given).toBeLessThanOrEqual(11);
    expect(state.given).toBeGreaterThanOrEqual(10);
    const rest: number[] = [];
    for await (const c of ahead) rest.push(c[0]!);
    expect(rest).toEqual(Array.from({ length: 99 }, (_, i) => (i + 1) & 0xff));
  });

  test('an error comes after the chunks read before it; return() stops the source', async () => {
    const failing = source(100, 10, 5);
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const c of readAhead(failing.it, { maxBytes: 1000 })) got.push(c[0]!);
      })(),
    ).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(got).toEqual([0, 1, 2, 3, 4]);
    const stopped = source(100, 10);
    let aborted = false;
    const ahead = readAhead(stopped.it, { maxBytes: 100, abort: () => (aborted = true) });
    await ahead.next();
    await ahead.return!();
    expect(aborted).toBe(true);
    expect(stopped.state.returned).toBe(true);
    expect((await ahead.next()).done).toBe(true);
  });
});

describe('WADO retrieve of original bytes', () => {
  const client = () => new DicomWebClient(cloud({ kind: 'apiKey', apiKey: API_KEY }));

  test.each([
    ['Explicit VR Little Endian CT', () => ct[0]!],
    ['Implicit VR Little Endian MR', () => mr],
    ['Explicit VR Big Endian CR (168 kB)', () => cr],
  ])('%s: the stream is the stored file, transfer syntax from its file meta', async (_name, pick) => {
    const inst = pick();
    const got = await client().retrieveInstance(inst.studyInstanceUID, inst.seriesInstanceUID, inst.sopInstanceUID);
    expect(got.transferSyntaxUID).toBe(inst.transferSyntaxUID);
    const bytes = Buffer.concat(await collect(got.body));
    expect(bytes.equals(withZeroPreamble(inst.bytes))).toBe(true);
  });

  test('time the consumer spends elsewhere does not count against the timeout (only waiting for the archive does)', async () => {
    const c = new DicomWebClient(cloud({ kind: 'apiKey', apiKey: API_KEY }, 300));
    const got = await c.retrieveInstance(cr.studyInstanceUID, cr.seriesInstanceUID, cr.sopInstanceUID);
    await new Promise((r) => setTimeout(r, 700)); // e.g. a prefetched instance waiting for its turn
    expect(Buffer.concat(await collect(got.body)).equals(withZeroPreamble(cr.bytes))).toBe(true);
  });

  test('stored transfer syntaxes of a series, from the archive', async () => {
    const syntaxes = await client().seriesTransferSyntaxes(mr.studyInstanceUID, mr.seriesInstanceUID);
    expect([...syntaxes]).toEqual([[mr.sopInstanceUID, TS.ImplicitVRLittleEndian]]);
    const ctSyntaxes = await client().seriesTransferSyntaxes(studyA, seriesA);
    expect(ctSyntaxes.size).toBe(10);
    expect(new Set(ctSyntaxes.values())).toEqual(new Set([TS.ExplicitVRLittleEndian]));
  });

  test('a series in one answer: every instance, named by its file meta, byte-identical, with or without read-ahead', async () => {
    for (const readAheadBytes of [0, 64 * 1024]) {
      const got = new Map<string, { ts: string; bytes: Buffer }>();
      for await (const inst of client().retrieveSeries(studyA, seriesA, { readAheadBytes })) {
        got.set(inst.sopInstanceUID, { ts: inst.transferSyntaxUID, bytes: Buffer.concat(await collect(inst.body)) });
      }
      expect([...got.keys()].sort()).toEqual(ct.map((i) => i.sopInstanceUID).sort());
      for (const i of ct) {
        expect(got.get(i.sopInstanceUID)!.ts).toBe(i.transferSyntaxUID);
        expect(got.get(i.sopInstanceUID)!.bytes.equals(withZeroPreamble(i.bytes))).toBe(true);
      }
    }
  });

  test('a series: bodies left unread are skipped; stopping early, or the signal, ends the download and the client stays usable', async () => {
    let n = 0;
    for await (const inst of client().retrieveSeries(studyA, seriesA, { readAheadBytes: 16 * 1024 })) {
      expect(inst.datasetOffset).toBeGreaterThan(132);
      n += 1; // body not read: the next part is found past it
    }
    expect(n).toBe(ct.length);
    for await (const inst of client().retrieveSeries(studyA, seriesA)) {
      expect(inst.sopInstanceUID).not.toBe('');
      break;
    }
    const stop = new AbortController();
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const inst of client().retrieveSeries(studyA, seriesA, { readAheadBytes: 16 * 1024, signal: stop.signal })) {
          seen.push(inst.sopInstanceUID);
          stop.abort();
          await collect(inst.body);
        }
      })(),
    ).rejects.toMatchObject({ code: expect.stringMatching(/^CLOUD_/) });
    expect(seen).toHaveLength(1);
    expect(await client().hasInstance(cr.sopInstanceUID)).toBe(true);
  });

  test('a consumer may stop early; the client stays usable', async () => {
    const got = await client().retrieveInstance(cr.studyInstanceUID, cr.seriesInstanceUID, cr.sopInstanceUID);
    for await (const chunk of got.body) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    expect(await client().hasInstance(cr.sopInstanceUID)).toBe(true);
  });
});

describe('errors', () => {
  test('unknown instance: CLOUD_HTTP 404', async () => {
    const c = new DicomWebClient(cloud({ kind: 'apiKey', apiKey: API_KEY }));
    expect(await codeOf(c.retrieveInstance(studyA, seriesA, uid()))).toEqual({ code: 'CLOUD_HTTP', status: 404 });
  });

  test('a UID that is not one never reaches a URL: CLOUD_INVALID_UID', async () => {
    const c = new DicomWebClient(cloud({ kind: 'apiKey', apiKey: API_KEY }));
    expect((await codeOf(c.retrieveInstance(studyA, '../../etc', uid()))).code).toBe('CLOUD_INVALID_UID');
    expect((await codeOf(c.hasInstance('1.2.3?x=1'))).code).toBe('CLOUD_INVALID_UID');
    expect((await codeOf(collect(c.search('/studies/1.2..3/series', new URLSearchParams())))).code).toBe('CLOUD_INVALID_UID');
    expect((await codeOf(collect(c.search('/patients', new URLSearchParams())))).code).toBe('CLOUD_INVALID_UID');
  });

  test('nothing listening: CLOUD_UNREACHABLE', async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise((r) => server.close(r));
    const c = new DicomWebClient(cloud({ kind: 'none' }, 5000, `http://127.0.0.1:${port}/dicom-web`), { retries: 1 });
    expect((await codeOf(c.hasInstance(uid()))).code).toBe('CLOUD_UNREACHABLE');
  });

  describe('against a misbehaving server', () => {
    let server: http.Server;
    let base: string;
    let behaviour: (req: http.IncomingMessage, res: http.ServerResponse) => void = () => undefined;
    beforeAll(async () => {
      server = http.createServer((req, res) => behaviour(req, res));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web`;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    test('no answer: CLOUD_TIMEOUT', async () => {
      behaviour = () => undefined; // never answers
      const c = new DicomWebClient(cloud({ kind: 'none' }, 300, base));
      expect((await codeOf(c.hasInstance(uid()))).code).toBe('CLOUD_TIMEOUT');
    });

    test('a stall in the middle of an instance: CLOUD_TIMEOUT from the body', async () => {
      const inst = ct[1]!;
      behaviour = (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=B0' });
        res.write(Buffer.concat([Buffer.from('--B0\r\nContent-Type: application/dicom\r\n\r\n'), Buffer.from(inst.bytes.subarray(0, 2000))]));
        // …and nothing more
      };
      const c = new DicomWebClient(cloud({ kind: 'none' }, 300, base));
      const got = await c.retrieveInstance(inst.studyInstanceUID, inst.seriesInstanceUID, inst.sopInstanceUID);
      expect(got.transferSyntaxUID).toBe(TS.ExplicitVRLittleEndian);
      expect((await codeOf(collect(got.body))).code).toBe('CLOUD_TIMEOUT');
    });

    test('a truncated multipart answer: CLOUD_PROTOCOL, not a short file', async () => {
      const inst = ct[2]!;
      behaviour = (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=B1' });
        res.end(Buffer.concat([Buffer.from('--B1\r\nContent-Type: application/dicom\r\n\r\n'), Buffer.from(inst.bytes.subarray(0, 3000))]));
      };
      const c = new DicomWebClient(cloud({ kind: 'none' }, 5000, base));
      const got = await c.retrieveInstance(inst.studyInstanceUID, inst.seriesInstanceUID, inst.sopInstanceUID);
      expect((await codeOf(collect(got.body))).code).toBe('CLOUD_PROTOCOL');
    });

    test('a part that is not Part 10, or not multipart at all: CLOUD_PROTOCOL', async () => {
      behaviour = (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=B2' });
        res.end('--B2\r\nContent-Type: application/dicom\r\n\r\nhello, not dicom\r\n--B2--\r\n');
      };
      const c = new DicomWebClient(cloud({ kind: 'none' }, 5000, base));
      expect((await codeOf(c.retrieveInstance(studyA, seriesA, uid()))).code).toBe('CLOUD_PROTOCOL');
      behaviour = (_req, res) => void res.writeHead(200, { 'Content-Type': 'application/dicom' }).end('x');
      expect((await codeOf(c.retrieveInstance(studyA, seriesA, uid()))).code).toBe('CLOUD_PROTOCOL');
    });

    test('transient answers are tried again (Retry-After honoured): a 503 then a page is a success', async () => {
      let calls = 0;
      behaviour = (_req, res) => {
        calls += 1;
        if (calls === 1) return void res.writeHead(503, { 'Retry-After': '0' }).end();
        if (calls === 2) return void res.writeHead(429, { 'Retry-After': '0' }).end();
        res.writeHead(200, { 'Content-Type': 'application/dicom+json' }).end(JSON.stringify([{ '0020000D': { vr: 'UI', Value: ['1.2.3'] } }]));
      };
      const c = new DicomWebClient(cloud({ kind: 'none' }, 5000, base));
      expect(await collect(c.search('/studies', new URLSearchParams()))).toHaveLength(1);
      expect(calls).toBe(3);
    });

    test('a 503 that stays is CLOUD_HTTP with the status after the retries; a 404 is not retried; a non-JSON page is CLOUD_PROTOCOL', async () => {
      let calls = 0;
      behaviour = (_req, res) => {
        calls += 1;
        res.writeHead(503, { 'Retry-After': '0' }).end();
      };
      const c = new DicomWebClient(cloud({ kind: 'none' }, 5000, base));
      expect(await codeOf(collect(c.search('/studies', new URLSearchParams())))).toEqual({ code: 'CLOUD_HTTP', status: 503 });
      expect(calls).toBe(3);
      calls = 0;
      behaviour = (_req, res) => {
        calls += 1;
        res.writeHead(404).end();
      };
      expect(await codeOf(c.retrieveInstance(studyA, seriesA, uid()))).toEqual({ code: 'CLOUD_HTTP', status: 404 });
      expect(calls).toBe(1);
      behaviour = (_req, res) => void res.writeHead(200, { 'Content-Type': 'application/dicom+json' }).end('<html>');
      expect((await codeOf(collect(c.search('/studies', new URLSearchParams())))).code).toBe('CLOUD_PROTOCOL');
    });

    test('an answer too large for one response (413, AWS Lambda): the bytes alone, by redirect to a presigned URL that gets no credentials', async () => {
      const inst = ct[4]!;
      const seen: Array<{ path: string; accept?: string; apiKey?: string; authorization?: string }> = [];
      behaviour = (req, res) => {
        seen.push({ path: req.url ?? '', accept: req.headers.accept, apiKey: req.headers['x-api-key'] as string | undefined, authorization: req.headers.authorization });
        if (req.url?.startsWith('/object-store/')) {
          res.writeHead(200, { 'Content-Type': 'application/dicom' }).end(Buffer.from(inst.bytes));
        } else if ((req.headers.accept ?? '').startsWith('multipart/related')) {
          res.writeHead(413, { 'Content-Type': 'application/json' }).end('{"code":"RESPONSE_TOO_LARGE"}');
        } else {
          res.writeHead(303, { Location: `http://localhost:${new URL(base).port}/object-store/blob-1?X-Amz-Signature=abc` }).end();
        }
      };
      const c = new DicomWebClient(cloud({ kind: 'apiKey', apiKey: API_KEY }, 5000, base));
      const got = await c.retrieveInstance(inst.studyInstanceUID, inst.seriesInstanceUID, inst.sopInstanceUID);
      expect(got.transferSyntaxUID).toBe(inst.transferSyntaxUID);
      expect(Buffer.concat(await collect(got.body)).equals(Buffer.from(inst.bytes))).toBe(true);
      expect(seen.map((r) => [r.path.split('?')[0]!.replace(/\/studies\/.*/, '/studies/…'), r.accept, r.apiKey])).toEqual([
        ['/dicom-web/studies/…', 'multipart/related; type="application/dicom"; transfer-syntax=*', API_KEY],
        ['/dicom-web/studies/…', 'application/dicom; transfer-syntax=*', API_KEY],
        ['/object-store/blob-1', 'application/dicom; transfer-syntax=*', undefined],
      ]);
      expect(seen[2]!.authorization).toBeUndefined();
    });

    test('a series answer the archive cannot give in one response (413): CLOUD_HTTP before any instance', async () => {
      behaviour = (_req, res) => void res.writeHead(413, { 'Content-Type': 'application/json' }).end('{"code":"RESPONSE_TOO_LARGE"}');
      const c = new DicomWebClient(cloud({ kind: 'none' }, 5000, base));
      expect(await codeOf(collect(c.retrieveSeries(studyA, seriesA, { readAheadBytes: 1024 })))).toEqual({ code: 'CLOUD_HTTP', status: 413 });
    });

    test('with read-ahead, a stall in the middle of an instance still times out; what came is the start of the file', async () => {
      const inst = ct[3]!;
      const body = Buffer.from(inst.bytes);
      let written = 0;
      behaviour = (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=B3' });
        res.write('--B3\r\nContent-Type: application/dicom\r\n\r\n');
        // 1 KiB at a time, as fast as the client takes them; then a stall (no closing boundary)
        const push = () => {
          while (written < body.length) {
            const ok = res.write(body.subarray(written, written + 1024));
            written += 1024;
            if (!ok) return void res.once('drain', push);
          }
        };
        push();
      };
      const c = new DicomWebClient(cloud({ kind: 'none' }, 400, base));
      const got = await c.retrieveInstance(inst.studyInstanceUID, inst.seriesInstanceUID, inst.sopInstanceUID, { readAheadBytes: 4096 });
      await new Promise((r) => setTimeout(r, 300)); // the consumer is elsewhere meanwhile
      const chunks: Uint8Array[] = [];
      const error = await codeOf(
        (async () => {
          for await (const chunk of got.body) chunks.push(chunk);
        })(),
      );
      expect(error.code).toBe('CLOUD_TIMEOUT');
      expect(Buffer.concat(chunks).equals(withZeroPreamble(body).subarray(0, Buffer.concat(chunks).length))).toBe(true);
    });

    test('a redirect to plain http elsewhere is refused', async () => {
      behaviour = (_req, res) => void res.writeHead(303, { Location: 'http://198.51.100.7/object' }).end();
      const c = new DicomWebClient(cloud({ kind: 'none' }, 5000, base));
      expect((await codeOf(c.retrieveInstance(studyA, seriesA, uid()))).code).toBe('CLOUD_PROTOCOL');
    });

    test('stored transfer syntaxes: download manifest pages followed; without a manifest route, the series metadata', async () => {
      const entry = (sop: string, ts: string) => ({ sopInstanceUID: sop, transferSyntaxUID: ts, sopClassUID: '1.2.3', seriesInstanceUID: '1.2.4', size: 1, url: 'x', retrieveURL: 'y' });
      let manifest = true;
      behaviour = (req, res) => {
        const u = new URL(req.url ?? '', base);
        if (u.pathname.endsWith('/download')) {
          if (!manifest) return void res.writeHead(404).end();
          const page = u.searchParams.get('offset') === '1' ? { instances: [entry('1.9.2', TS.RLELossless)] } : { instances: [entry('1.9.1', TS.ExplicitVRLittleEndian)], next: `${u.pathname}?offset=1` };
          return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(page));
        }
        if (u.pathname.endsWith('/metadata')) {
          return void res.writeHead(200, { 'Content-Type': 'application/dicom+json' }).end(JSON.stringify([{ '00080018': { vr: 'UI', Value: ['1.9.3'] }, '00083002': { vr: 'UI', Value: [TS.ImplicitVRLittleEndian] } }]));
        }
        res.writeHead(500).end();
      };
      const c = new DicomWebClient(cloud({ kind: 'none' }, 5000, base));
      expect([...(await c.seriesTransferSyntaxes('1.2.3', '1.2.4'))]).toEqual([['1.9.1', TS.ExplicitVRLittleEndian], ['1.9.2', TS.RLELossless]]);
      manifest = false;
      expect([...(await c.seriesTransferSyntaxes('1.2.3', '1.2.4'))]).toEqual([['1.9.3', TS.ImplicitVRLittleEndian]]);
    });

    test('a manifest whose next page is on another origin is refused (our credentials stay home)', async () => {
      behaviour = (_req, res) => void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ instances: [], next: 'https://elsewhere.example/dicom-web/x/download?offset=1' }));
      const c = new DicomWebClient(cloud({ kind: 'apiKey', apiKey: API_KEY }, 5000, base));
      expect((await codeOf(c.seriesTransferSyntaxes('1.2.3', '1.2.4'))).code).toBe('CLOUD_PROTOCOL');
    });

    test('a server ignoring offset does not make the client loop forever', async () => {
      behaviour = (_req, res) => void res.writeHead(200, { 'Content-Type': 'application/dicom+json' }).end(JSON.stringify([{ '0020000D': { vr: 'UI', Value: ['1.2.3'] } }, { '0020000D': { vr: 'UI', Value: ['1.2.4'] } }]));
      const c = new DicomWebClient(cloud({ kind: 'none' }, 5000, base), { pageSize: 2 });
      expect((await codeOf(collect(c.search('/studies', new URLSearchParams())))).code).toBe('CLOUD_PROTOCOL');
    });
  });
});
