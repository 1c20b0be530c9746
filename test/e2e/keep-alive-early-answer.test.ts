/**
 * Early answers on keep-alive connections (functions/adapters/http/node-server.ts).
 * The archive may answer before it has read the request body (413 for a STOW
 * over the limit, 415, 401). The rest of the body is still on the wire; the
 * client's next request on the same keep-alive connection must be answered,
 * not reset: either the server discards the (small) rest and keeps the
 * connection, or it says `Connection: close` so the client opens a new one.
 */
import * as http from 'node:http';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import type { Authenticator } from '../../functions/core/archive/app';
import { ctSeries } from '../fixtures/synthetic';
import { multipartBody } from '../helpers/archive';
import { makeTempDir } from '../helpers/tmp';

interface Answer {
  status: number;
  body: string;
  connection?: string;
  /** The request went out on a connection an earlier request used. */
  reused: boolean;
}

/** One request through `agent`; errors of the request side after the answer (EPIPE once the server closed) are ignored. */
function send(agent: http.Agent, url: string, method: string, headers: http.OutgoingHttpHeaders, write?: (req: http.ClientRequest) => void): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(url, { method, agent, headers }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString(), connection: res.headers.connection, reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    if (write) write(req);
    else req.end();
  });
}

const MiB = 1024 * 1024;
const BEARER = 'Bearer early-answer-test-token';
const authenticate: Authenticator = async (request) =>
  request.headers.get('authorization') === BEARER ? { id: 'test', scopes: new Set(['read', 'write', 'delete'] as const) } : undefined;

describe('early answers keep keep-alive clients working', () => {
  const tmp = makeTempDir('early-answer-');
  let archive: Awaited<ReturnType<typeof startEmbeddedArchive>>;
  let agent: http.Agent;
  const auth = { Authorization: BEARER };
  const search = () => send(agent, `${archive.dicomWebUrl}/studies`, 'GET', { Accept: 'application/dicom+json', ...auth });

  beforeAll(async () => {
    archive = await startEmbeddedArchive({ dataDir: tmp.dir, port: 0, log: silentLogger, limits: { maxRequestBytes: 1 * MiB }, authenticate });
  });
  afterAll(async () => {
    await archive.close();
    tmp.cleanup();
  });
  // One socket per agent: a second request can only go out on the connection of the first, or a new one.
  beforeEach(() => (agent = new http.Agent({ keepAlive: true, maxSockets: 1 })));
  afterEach(() => agent.destroy());

  it('STOW over the limit (declared length, small rest): 413, then the next request on the same connection', async () => {
    const body = Buffer.alloc(3 * MiB, 0x41);
    const refused = await send(agent, `${archive.dicomWebUrl}/studies`, 'POST', { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=x', 'Content-Length': body.length, ...auth }, (r) => r.end(body));
    expect(refused.status).toBe(413);
    expect(JSON.parse(refused.body).code).toBe('PAYLOAD_TOO_LARGE');
    expect(refused.connection).toBe('keep-alive');
    const next = await search();
    expect(next).toMatchObject({ status: 200, body: '[]', reused: true });
  });

  it('STOW far over the limit: 413 with Connection: close, the next request goes out on a new connection', async () => {
    const body = Buffer.alloc(40 * MiB, 0x41);
    const refused = await send(agent, `${archive.dicomWebUrl}/studies`, 'POST', { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=x', 'Content-Length': body.length, ...auth }, (r) => r.end(body));
    expect(refused.status).toBe(413);
    expect(refused.connection).toBe('close');
    const next = await search();
    expect(next).toMatchObject({ status: 200, body: '[]', reused: false });
  });

  it('chunked STOW over the limit, refused mid-body: 413 with Connection: close, then the next request', async () => {
    const refused = await send(agent, `${archive.dicomWebUrl}/studies`, 'POST', { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=x', ...auth }, (r) => {
      for (let i = 0; i < 4; i++) r.write(Buffer.alloc(MiB, 0x41));
      r.end();
    });
    expect(refused.status).toBe(413);
    expect(refused.connection).toBe('close');
    expect((await search()).status).toBe(200);
  });

  it('415 and 401 with a body: the next request on the same connection is answered', async () => {
    const body = Buffer.alloc(256 * 1024, 0x41);
    const unsupported = await send(agent, `${archive.dicomWebUrl}/studies`, 'POST', { 'Content-Type': 'text/plain', 'Content-Length': body.length, ...auth }, (r) => r.end(body));
    expect(unsupported.status).toBe(415);
    expect(await search()).toMatchObject({ status: 200, reused: true });
    const anonymous = await send(agent, `${archive.dicomWebUrl}/studies`, 'POST', { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=x', 'Content-Length': body.length }, (r) => r.end(body));
    expect(anonymous.status).toBe(401);
    expect(await search()).toMatchObject({ status: 200, reused: true });
  });

  it('after the refusals, a STOW within the limit on a reused connection stores', async () => {
    const [instance] = ctSeries({ count: 1, rows: 16, columns: 16 });
    const refusedBody = Buffer.alloc(2 * MiB, 0x41);
    expect((await send(agent, `${archive.dicomWebUrl}/studies`, 'POST', { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=x', 'Content-Length': refusedBody.length, ...auth }, (r) => r.end(refusedBody))).status).toBe(413);
    const { body, contentType } = multipartBody([instance!.bytes]);
    const stored = await send(agent, `${archive.dicomWebUrl}/studies`, 'POST', { 'Content-Type': contentType, 'Content-Length': body.length, Accept: 'application/dicom+json', ...auth }, (r) => r.end(body));
    expect(stored).toMatchObject({ status: 200, reused: true });
  });
});
