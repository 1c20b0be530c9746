/**
 * The DIMSE acceptor against real peers (dcmtk) and hostile ones (raw
 * sockets): what is refused, how, and that the server keeps serving.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { createDimseServer, connectDimse, SopClass, type DimseServer, type DimseServerOptions } from '../../edge-gateway/src/dimse';
import { DICOM_APPLICATION_CONTEXT, PduType, encodePdu } from '../../edge-gateway/src/dimse/pdu';
import { createEchoService } from '../../edge-gateway/src/scp/echo';
import { createStoreService } from '../../edge-gateway/src/scp/store';
import { PYDICOM_DIR } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';
import { FakeSpool, dcmtkHasTls, makeSelfSignedCert, run } from './dimse-helpers';

const AE = 'EDGE_ACC';

function start(extra: Partial<DimseServerOptions> = {}): Promise<DimseServer> {
  return createDimseServer({
    aeTitle: AE,
    host: '127.0.0.1',
    port: 0,
    services: { echo: createEchoService() },
    maxAssociations: 4,
    maxPduLength: 16384,
    idleTimeoutMs: 30_000,
    artimTimeoutMs: 10_000,
    ...extra,
  });
}

const associateRQ = (calledAETitle = AE) =>
  encodePdu({
    type: PduType.AssociateRQ,
    protocolVersion: 1,
    calledAETitle,
    callingAETitle: 'RAW',
    applicationContext: DICOM_APPLICATION_CONTEXT,
    presentationContexts: [{ id: 1, abstractSyntax: SopClass.Verification, transferSyntaxes: ['1.2.840.10008.1.2'] }],
    userInformation: { maxPduLength: 16384, roles: [] },
  });

/** A raw TCP peer: collects what the server sends until it closes the connection. */
function rawPeer(port: number): Promise<{ socket: net.Socket; received: () => Buffer; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve({ socket, received: () => Buffer.concat(chunks), closed }));
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => {});
    socket.once('error', reject);
  });
}

async function echoOk(port: number): Promise<void> {
  const r = await run('echoscu', ['-aec', AE, '127.0.0.1', String(port)]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

describe('DIMSE acceptor', () => {
  const tmp = makeTempDir('dimse-acceptor-');
  afterAll(() => tmp.cleanup());

  it('answers echoscu, and closes a connection that speaks HTTP without answering it; still serving', async () => {
    const server = await start();
    try {
      await echoOk(server.port);
      const peer = await rawPeer(server.port);
      peer.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2147483647\r\n\r\n');
      await peer.closed;
      expect(peer.received().length).toBe(0);
      await echoOk(server.port);
    } finally {
      await server.close();
    }
  });

  it('rejects an unknown called AE (reason 7) and a calling AE not on the allow-list (reason 3)', async () => {
    const server = await start({ allowedCallingAETitles: ['CT_ROOM_1'] });
    try {
      const wrongCalled = await run('echoscu', ['-aet', 'CT_ROOM_1', '-aec', 'NOT_US', '127.0.0.1', String(server.port)]);
      expect(wrongCalled.code).not.toBe(0);
      expect(wrongCalled.stderr).toMatch(/Association Rejected/i);
      expect(wrongCalled.stderr).toMatch(/Called AE Title Not Recognized/i);
      const wrongCalling = await run('echoscu', ['-aet', 'INTRUDER', '-aec', AE, '127.0.0.1', String(server.port)]);
      expect(wrongCalling.code).not.toBe(0);
      expect(wrongCalling.stderr).toMatch(/Calling AE Title Not Recognized/i);
      const allowed = await run('echoscu', ['-aet', 'CT_ROOM_1', '-aec', AE, '127.0.0.1', String(server.port)]);
      expect(allowed.code).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('closes connections from addresses not on the IP allow-list before reading anything', async () => {
    const server = await start({ allowedIPs: ['192.0.2.1'] });
    try {
      const r = await run('echoscu', ['-aec', AE, '127.0.0.1', String(server.port)]);
      expect(r.code).not.toBe(0);
    } finally {
      await server.close();
    }
    const allowed = await start({ allowedIPs: ['127.0.0.1'] });
    try {
      await echoOk(allowed.port);
    } finally {
      await allowed.close();
    }
  });

  it('aborts (source 2, reason 6) a P-DATA-TF larger than the announced maximum, without reading it', async () => {
    const server = await start();
    try {
      const peer = await rawPeer(server.port);
      peer.socket.write(associateRQ());
      await waitFor(() => peer.received().length > 0);
      expect(peer.received()[0]).toBe(PduType.AssociateAC);
      const acLength = peer.received().readUInt32BE(2) + 6;
      // Claims 256 MiB; only the header is ever sent.
      peer.socket.write(Buffer.from([0x04, 0, 0x10, 0, 0, 0]));
      await peer.closed;
      expect([...peer.received().subarray(acLength)]).toEqual([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 6]);
      await echoOk(server.port);
    } finally {
      await server.close();
    }
  });

  it('aborts an idle association after idleTimeoutMs, and closes a connection that never sends A-ASSOCIATE-RQ (ARTIM)', async () => {
    const server = await start({ idleTimeoutMs: 300, artimTimeoutMs: 300 });
    try {
      const idle = await rawPeer(server.port);
      idle.socket.write(associateRQ());
      await idle.closed;
      const got = idle.received();
      expect(got[0]).toBe(PduType.AssociateAC);
      expect([...got.subarray(got.readUInt32BE(2) + 6)]).toEqual([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0]);

      const silent = await rawPeer(server.port);
      await silent.closed;
      expect(silent.received().length).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('rejects associations beyond maxAssociations as transient / local limit exceeded', async () => {
    const server = await start({ maxAssociations: 1 });
    try {
      const first = await connectDimse({
        host: '127.0.0.1',
        port: server.port,
        callingAETitle: 'FIRST',
        calledAETitle: AE,
        presentationContexts: [{ abstractSyntax: SopClass.Verification, transferSyntaxes: ['1.2.840.10008.1.2'] }],
      });
      expect(server.activeAssociations).toBe(1);
      await expect(
        connectDimse({
          host: '127.0.0.1',
          port: server.port,
          callingAETitle: 'SECOND',
          calledAETitle: AE,
          presentationContexts: [{ abstractSyntax: SopClass.Verification, transferSyntaxes: ['1.2.840.10008.1.2'] }],
        }),
      ).rejects.toMatchObject({ code: 'ASSOCIATION_REJECTED', reject: { result: 2, source: 3, reason: 2 } });
      const r = await run('echoscu', ['-aec', AE, '127.0.0.1', String(server.port)]);
      expect(r.stderr).toMatch(/Local Limit Exceeded/i);
      await first.release();
      await waitFor(() => server.activeAssociations === 0);
      await echoOk(server.port);
    } finally {
      await server.close();
    }
  });

  it('refuses abstract syntaxes it has no service for (storage without a store service)', async () => {
    const server = await start();
    try {
      await expect(
        connectDimse({
          host: '127.0.0.1',
          port: server.port,
          callingAETitle: 'X',
          calledAETitle: AE,
          presentationContexts: [{ abstractSyntax: '1.2.840.10008.5.1.4.1.1.2', transferSyntaxes: ['1.2.840.10008.1.2'] }],
        }).then((a) => {
          const found = a.findPresentationContext('1.2.840.10008.5.1.4.1.1.2');
          a.abort();
          return found;
        }),
      ).resolves.toBeUndefined();
    } finally {
      await server.close();
    }
  });

  (dcmtkHasTls() ? it : it.skip)('speaks DICOM over TLS (PS3.15 B.1) with echoscu/storescu +tls and with our requestor', async () => {
    const { certFile, keyFile } = makeSelfSignedCert(tmp.dir);
    const spool = new FakeSpool(path.join(tmp.dir, 'tls-spool'));
    const server = await start({
      tls: { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) },
      services: { echo: createEchoService(), store: createStoreService({ spool, ackMode: 'spool' }) },
    });
    try {
      const echo = await run('echoscu', ['+tla', '+cf', certFile, '-aec', AE, '127.0.0.1', String(server.port)]);
      expect(echo.stderr).toBe('');
      expect(echo.code).toBe(0);
      const store = await run('storescu', ['+tla', '+cf', certFile, '-aec', AE, '127.0.0.1', String(server.port), path.join(PYDICOM_DIR, 'CT_small.dcm')]);
      expect(store.code).toBe(0);
      expect(spool.records).toHaveLength(1);
      // Plain DICOM on the TLS port: refused, server unharmed.
      const plain = await run('echoscu', ['-to', '5', '-aec', AE, '127.0.0.1', String(server.port)]);
      expect(plain.code).not.toBe(0);
      const a = await connectDimse({
        host: '127.0.0.1',
        port: server.port,
        tls: { ca: fs.readFileSync(certFile), servername: 'localhost' },
        callingAETitle: 'TLS_SCU',
        calledAETitle: AE,
        presentationContexts: [{ abstractSyntax: SopClass.Verification, transferSyntaxes: ['1.2.840.10008.1.2'] }],
      });
      expect(a.tls).toBe(true);
      expect((await a.echo()).status).toBe(0);
      await a.release();
    } finally {
      await server.close();
    }
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
