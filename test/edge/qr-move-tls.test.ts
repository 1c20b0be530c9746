/**
 * C-MOVE to a destination over DIMSE TLS (PS3.15 B.1): a dcmtk storescp with
 * +tls that requires a client certificate. The gateway verifies the
 * destination's certificate against the configured CA and presents its own;
 * with a CA that does not know the destination, nothing is sent (0xA702).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parsePart10 } from '../../functions/core/dicom/part10';
import { DicomWebClient } from '../../edge-gateway/src/cloud/dicomweb-client';
import { createDimseServer, type DimseServer } from '../../edge-gateway/src/dimse';
import { createMoveService } from '../../edge-gateway/src/scp/move';
import { ctSeries, syntheticPatient } from '../fixtures/synthetic';
import { startTestArchive, stow, type TestArchive } from '../helpers/archive';
import { makeTempDir } from '../helpers/tmp';
import { datasetBytes, dcmtkHasTls, freePort, makeSelfSignedCert, run } from './dimse-helpers';

const AE = 'EDGE_TLS';
const describeIfTls = dcmtkHasTls() ? describe : describe.skip;

describeIfTls('C-MOVE over TLS', () => {
  const tmp = makeTempDir('qr-move-tls-');
  let archive: TestArchive;
  let storescp: ChildProcess;
  const servers: DimseServer[] = [];
  const destDir = path.join(tmp.dir, 'dest');
  const instances = ctSeries({ count: 2, rows: 16, columns: 16, patient: syntheticPatient(41) });
  let cert: { certFile: string; keyFile: string };
  let destPort: number;

  beforeAll(async () => {
    archive = await startTestArchive();
    expect((await stow(archive.dicomWebUrl, instances.map((i) => i.bytes))).status).toBe(200);
    cert = makeSelfSignedCert(tmp.dir);
    fs.mkdirSync(destDir);
    destPort = await freePort();
    // Requires a client certificate (-rc is dcmtk's default) signed by what it trusts (+cf).
    storescp = spawn('storescp', ['-aet', 'SECURE', '+tls', cert.keyFile, cert.certFile, '-pw', '+cf', cert.certFile, '-od', destDir, String(destPort)], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const r = await run('echoscu', ['+tls', cert.keyFile, cert.certFile, '-pw', '+cf', cert.certFile, '-aec', 'SECURE', '127.0.0.1', String(destPort)]);
      if (r.code === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 60_000);

  afterAll(async () => {
    for (const s of servers) await s.close(0);
    storescp?.kill();
    await archive?.stop();
    tmp.cleanup();
  });

  async function gatewayWith(tlsOptions: Parameters<typeof createMoveService>[0]['tlsOptions']): Promise<DimseServer> {
    const client = new DicomWebClient({ dicomWebUrl: archive.dicomWebUrl, auth: { kind: 'none' }, requestTimeoutMs: 10_000 });
    const server = await createDimseServer({
      aeTitle: AE,
      host: '127.0.0.1',
      port: 0,
      services: { move: createMoveService({ client, aeTitle: AE, destinations: { SECURE: { host: '127.0.0.1', port: destPort, tls: true } }, tlsOptions }) },
      maxAssociations: 4,
      maxPduLength: 64 * 1024,
      idleTimeoutMs: 30_000,
      artimTimeoutMs: 10_000,
    });
    servers.push(server);
    return server;
  }

  const move = (server: DimseServer) =>
    run('movescu', ['-d', '-S', '-aet', 'SCU', '-aec', AE, '-aem', 'SECURE', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${instances[0]!.studyInstanceUID}`, '127.0.0.1', String(server.port)]);

  test('mutual TLS: the destination receives the data sets byte for byte', async () => {
    const pem = (f: string) => fs.readFileSync(f);
    const server = await gatewayWith({ ca: pem(cert.certFile), cert: pem(cert.certFile), key: pem(cert.keyFile), servername: 'localhost' });
    const r = await move(server);
    expect(r.stdout + r.stderr).toMatch(/DIMSE Status\s*:\s*0x0000/);
    const got = new Map(fs.readdirSync(destDir).map((f) => {
      const bytes = fs.readFileSync(path.join(destDir, f));
      return [parsePart10(bytes).dataset['00080018']?.Value?.[0] as string, bytes] as const;
    }));
    expect([...got.keys()].sort()).toEqual(instances.map((i) => i.sopInstanceUID).sort());
    for (const inst of instances) expect(datasetBytes(got.get(inst.sopInstanceUID)!).equals(datasetBytes(inst.bytes))).toBe(true);
  });

  test('a destination certificate the gateway cannot verify: no association, all sub-operations failed (0xA702)', async () => {
    fs.rmSync(destDir, { recursive: true, force: true });
    fs.mkdirSync(destDir);
    const server = await gatewayWith({ cert: fs.readFileSync(cert.certFile), key: fs.readFileSync(cert.keyFile) }); // system CAs only
    const r = await move(server);
    expect(r.stdout + r.stderr).toMatch(/DIMSE Status\s*:\s*0xa702/);
    expect(fs.readdirSync(destDir)).toEqual([]);
  });
});
