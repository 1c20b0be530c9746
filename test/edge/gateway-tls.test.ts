/**
 * The gateway as configured in production: DIMSE over mutual TLS from the
 * config's PEM files, and the real spool when a sender aborts mid-transfer.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfig } from '../../edge-gateway/src/config';
import { connectDimse, SopClass } from '../../edge-gateway/src/dimse';
import { startGateway } from '../../edge-gateway/src/gateway';
import { silentLogger } from '../../edge-gateway/src/ops/logger';
import { ctSeries } from '../fixtures/synthetic';
import { PYDICOM_DIR } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';
import { datasetBytes, dcmtkHasTls, makeSelfSignedCert, run } from './dimse-helpers';

const AE = 'EDGE_TLS';

describe('gateway over mutual TLS, and aborted transfers with the real spool', () => {
  const tmp = makeTempDir('gateway-tls-');
  afterAll(() => tmp.cleanup());

  (dcmtkHasTls() ? it : it.skip)('requires a client certificate when requireClientCert is set; stores over TLS', async () => {
    // One self-signed certificate serves as server certificate, client certificate and CA.
    const { certFile, keyFile } = makeSelfSignedCert(tmp.dir);
    const config = parseConfig(
      {
        dimse: { aeTitle: AE, host: '127.0.0.1', port: 11112, destinations: {}, tls: { certFile: 'cert.pem', keyFile: 'key.pem', caFile: 'cert.pem', requireClientCert: true } },
        cloud: { dicomWebUrl: 'http://127.0.0.1:1/dicom-web', auth: { kind: 'none' }, requestTimeoutMs: 5000 },
        spool: { dir: 'spool-tls' },
        uploader: { retry: { initialDelayMs: 600_000, maxDelayMs: 600_000, maxAttempts: 0 } },
        http: { port: 0 },
      },
      tmp.dir,
      {},
    );
    config.dimse.port = 0;
    const gateway = await startGateway(config, { logger: silentLogger, closeGraceMs: 500 });
    try {
      // dcmtk without a client certificate: the handshake fails, nothing is stored.
      const anonymous = await run('echoscu', ['-to', '5', '+tla', '+cf', certFile, '-aec', AE, '127.0.0.1', String(gateway.dimsePort)]);
      expect(anonymous.code).not.toBe(0);
      // dcmtk with the client certificate.
      const withCert = await run('storescu', ['-to', '5', '+tls', keyFile, certFile, '+cf', certFile, '-aec', AE, '127.0.0.1', String(gateway.dimsePort), path.join(PYDICOM_DIR, 'CT_small.dcm')]);
      expect(withCert.stderr).toBe('');
      expect(withCert.code).toBe(0);
      // our requestor with the client certificate.
      const a = await connectDimse({
        host: '127.0.0.1',
        port: gateway.dimsePort,
        tls: { ca: fs.readFileSync(certFile), cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), servername: 'localhost' },
        callingAETitle: 'MTLS',
        calledAETitle: AE,
        presentationContexts: [{ abstractSyntax: SopClass.Verification, transferSyntaxes: ['1.2.840.10008.1.2'] }],
      });
      expect((await a.echo()).status).toBe(0);
      await a.release();
      expect((await gateway.spool.stats()).queued + (await gateway.spool.stats()).inflight).toBe(1);
    } finally {
      await gateway.close();
    }
  });

  it('an association aborted mid-transfer leaves nothing in the spool, and the gateway keeps accepting', async () => {
    const config = parseConfig(
      {
        dimse: { aeTitle: AE, host: '127.0.0.1', port: 11112, destinations: {} },
        cloud: { dicomWebUrl: 'http://127.0.0.1:1/dicom-web', auth: { kind: 'none' }, requestTimeoutMs: 5000 },
        spool: { dir: 'spool-abort' },
        uploader: { retry: { initialDelayMs: 600_000, maxDelayMs: 600_000, maxAttempts: 0 } },
        http: { port: 0 },
      },
      tmp.dir,
      {},
    );
    config.dimse.port = 0;
    const gateway = await startGateway(config, { logger: silentLogger, closeGraceMs: 500 });
    const [inst] = ctSeries({ count: 1, rows: 256, columns: 256 });
    const data = datasetBytes(inst!.bytes);
    try {
      const a = await connectDimse({
        host: '127.0.0.1',
        port: gateway.dimsePort,
        callingAETitle: 'FLAKY',
        calledAETitle: AE,
        presentationContexts: [{ abstractSyntax: inst!.sopClassUID, transferSyntaxes: [inst!.transferSyntaxUID] }],
      });
      let half!: () => void;
      const reachedHalf = new Promise<void>((r) => (half = r));
      async function* stalls(): AsyncIterable<Uint8Array> {
        yield data.subarray(0, data.length >> 1);
        half();
        await new Promise(() => {});
      }
      const storing = a.store({ sopClassUID: inst!.sopClassUID, sopInstanceUID: inst!.sopInstanceUID, transferSyntaxUID: inst!.transferSyntaxUID, dataset: stalls() });
      storing.catch(() => {});
      await reachedHalf;
      for (let i = 0; i < 200 && (await gateway.spool.stats()).incoming === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect((await gateway.spool.stats()).incoming).toBe(1);
      a.abort();
      await expect(storing).rejects.toMatchObject({ code: 'ASSOCIATION_ABORTED' });
      for (let i = 0; i < 200 && (await gateway.spool.stats()).incoming > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(await gateway.spool.stats()).toMatchObject({ incoming: 0, queued: 0, inflight: 0, done: 0, quarantine: 0 });
      // and the same instance, sent whole, is accepted
      const again = await connectDimse({
        host: '127.0.0.1',
        port: gateway.dimsePort,
        callingAETitle: 'FLAKY',
        calledAETitle: AE,
        presentationContexts: [{ abstractSyntax: inst!.sopClassUID, transferSyntaxes: [inst!.transferSyntaxUID] }],
      });
      expect((await again.store({ sopClassUID: inst!.sopClassUID, sopInstanceUID: inst!.sopInstanceUID, transferSyntaxUID: inst!.transferSyntaxUID, dataset: data })).status).toBe(0);
      await again.release();
      expect((await gateway.spool.stats()).queued + (await gateway.spool.stats()).inflight).toBe(1);
    } finally {
      await gateway.close();
    }
  });
});
