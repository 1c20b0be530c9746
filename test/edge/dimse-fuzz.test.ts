/**
 * Mutated PDUs (seeded, reproducible) against the acceptor: every connection
 * ends with an answer, an A-ABORT or a close — never a crash, a hang or a
 * leaked association — and the server still answers echoscu afterwards.
 */
import * as net from 'node:net';
import { CommandField, NO_DATA_SET, encodeCommand } from '../../edge-gateway/src/dimse/command';
import { createDimseServer, SopClass } from '../../edge-gateway/src/dimse';
import { DICOM_APPLICATION_CONTEXT, PduType, encodePDataTF, encodePdu } from '../../edge-gateway/src/dimse/pdu';
import { createEchoService } from '../../edge-gateway/src/scp/echo';
import { createRng } from '../fixtures/synthetic';
import { run } from './dimse-helpers';

const AE = 'FUZZ_SCP';
const RQ = encodePdu({
  type: PduType.AssociateRQ,
  protocolVersion: 1,
  calledAETitle: AE,
  callingAETitle: 'FUZZER',
  applicationContext: DICOM_APPLICATION_CONTEXT,
  presentationContexts: [
    { id: 1, abstractSyntax: SopClass.Verification, transferSyntaxes: ['1.2.840.10008.1.2'] },
    { id: 3, abstractSyntax: SopClass.StudyRootFind, transferSyntaxes: ['1.2.840.10008.1.2.1'] },
  ],
  userInformation: { maxPduLength: 16384, implementationClassUID: '1.2.3.4', roles: [{ sopClassUID: SopClass.StudyRootFind, scuRole: true, scpRole: false }] },
});
const ECHO = encodePDataTF([
  {
    presentationContextId: 1,
    command: true,
    last: true,
    data: encodeCommand({ commandField: CommandField.CEchoRQ, messageID: 1, affectedSOPClassUID: SopClass.Verification, commandDataSetType: NO_DATA_SET }),
  },
]);
const FIND = encodePDataTF([
  {
    presentationContextId: 3,
    command: true,
    last: true,
    data: encodeCommand({ commandField: CommandField.CFindRQ, messageID: 2, affectedSOPClassUID: SopClass.StudyRootFind, priority: 0, commandDataSetType: 0 }),
  },
  { presentationContextId: 3, command: false, last: true, data: Uint8Array.of(0x08, 0, 0x52, 0, 6, 0, 0, 0, 0x53, 0x54, 0x55, 0x44, 0x59, 0x20) },
]);

function mutate(bytes: Uint8Array, rng: () => number): Uint8Array {
  const out = Uint8Array.from(bytes);
  const n = 1 + Math.floor(rng() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rng() * out.length);
    const kind = rng();
    if (kind < 0.6) out[at] = Math.floor(rng() * 256);
    else if (kind < 0.8) out[at] = 0xff;
    else out[at] = 0;
  }
  // Sometimes cut it short.
  return rng() < 0.2 ? out.subarray(0, Math.floor(rng() * out.length)) : out;
}

/** Send, half-close, and wait for the server to close (a hang fails the test by its timeout). */
function exchange(port: number, parts: Uint8Array[]): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      for (const p of parts) socket.write(p);
      socket.end();
    });
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

describe('DIMSE acceptor under mutated input', () => {
  it('survives 300 mutated association requests and 300 mutated P-DATA exchanges', async () => {
    const server = await createDimseServer({
      aeTitle: AE,
      host: '127.0.0.1',
      port: 0,
      services: {
        echo: createEchoService(),
        find: async () => 0,
      },
      // High: closes are asynchronous, and this test is about input, not the limit.
      maxAssociations: 1000,
      maxPduLength: 16384,
      idleTimeoutMs: 2000,
      artimTimeoutMs: 2000,
    });
    const rng = createRng(20261203);
    try {
      for (let i = 0; i < 300; i++) {
        const answer = await exchange(server.port, [mutate(RQ, rng)]);
        // Nothing, or one of A-ASSOCIATE-AC / -RJ / A-ABORT.
        if (answer.length > 0) expect([PduType.AssociateAC, PduType.AssociateRJ, PduType.Abort]).toContain(answer[0]);
      }
      for (let i = 0; i < 300; i++) {
        const answer = await exchange(server.port, [RQ, mutate(rng() < 0.5 ? ECHO : FIND, rng)]);
        expect(answer[0]).toBe(PduType.AssociateAC);
      }
      for (let i = 0; i < 100 && server.activeAssociations > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(server.activeAssociations).toBe(0);
      const r = await run('echoscu', ['-aec', AE, '127.0.0.1', String(server.port)]);
      expect(r.code).toBe(0);
    } finally {
      await server.close(500);
    }
  });
});
