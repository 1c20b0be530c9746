/**
 * PS3.8 PDU codec and framing, PS3.7 command sets: round trips, and refusal
 * of garbage and oversized input before anything of the claimed size is held.
 */
import { CommandField, NO_DATA_SET, decodeCommand, encodeCommand } from '../../edge-gateway/src/dimse/command';
import { decodeDimseDataset, encodeDimseDataset } from '../../edge-gateway/src/dimse/dataset';
import { negotiateAssociation } from '../../edge-gateway/src/dimse/negotiate';
import { DICOM_APPLICATION_CONTEXT, PduError, PduType, decodePdu, encodePdu, type AssociateAC, type AssociateRQ, type Pdu } from '../../edge-gateway/src/dimse/pdu';
import { PduReader } from '../../edge-gateway/src/dimse/pdu-reader';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const rq: AssociateRQ = {
  type: PduType.AssociateRQ,
  protocolVersion: 1,
  calledAETitle: 'EDGE',
  callingAETitle: 'MODALITY',
  applicationContext: DICOM_APPLICATION_CONTEXT,
  presentationContexts: [
    { id: 1, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: ['1.2.840.10008.1.2'] },
    { id: 3, abstractSyntax: CT, transferSyntaxes: ['1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.1'] },
    { id: 5, abstractSyntax: '1.2.840.10008.5.1.4.1.2.2.3', transferSyntaxes: ['1.2.840.10008.1.2.1'] },
    { id: 7, abstractSyntax: '1.2.3.4.5', transferSyntaxes: ['1.2.840.10008.1.2'] },
  ],
  userInformation: {
    maxPduLength: 16384,
    implementationClassUID: '1.2.3.4',
    implementationVersionName: 'TEST_1',
    asyncOps: { invoked: 1, performed: 1 },
    roles: [{ sopClassUID: CT, scuRole: false, scpRole: true }],
  },
};

describe('PDU codec (PS3.8 §9.3)', () => {
  it('round-trips every PDU type', () => {
    const ac: AssociateAC = {
      type: PduType.AssociateAC,
      protocolVersion: 1,
      calledAETitle: 'EDGE',
      callingAETitle: 'MODALITY',
      applicationContext: DICOM_APPLICATION_CONTEXT,
      presentationContexts: [
        { id: 1, result: 0, transferSyntax: '1.2.840.10008.1.2' },
        { id: 3, result: 4, transferSyntax: '' },
      ],
      userInformation: { maxPduLength: 0, implementationClassUID: '1.2.3', roles: [{ sopClassUID: CT, scuRole: true, scpRole: true }] },
    };
    const pdus: Pdu[] = [
      rq,
      ac,
      { type: PduType.AssociateRJ, result: 2, source: 3, reason: 2 },
      { type: PduType.PDataTF, pdvs: [{ presentationContextId: 3, command: true, last: true, data: Uint8Array.of(1, 2, 3, 4) }, { presentationContextId: 3, command: false, last: false, data: new Uint8Array(10) }] },
      { type: PduType.ReleaseRQ },
      { type: PduType.ReleaseRP },
      { type: PduType.Abort, source: 2, reason: 6 },
    ];
    for (const p of pdus) expect(decodePdu(encodePdu(p))).toEqual(p);
  });

  it('rejects inner lengths that run past their PDU', () => {
    const bytes = encodePdu(rq);
    // Make the first presentation context item claim 60000 bytes.
    const at = bytes.indexOf(0x20, 6 + 68 + 4 + 21);
    expect(bytes[at]).toBe(0x20);
    bytes[at + 2] = 0xea;
    bytes[at + 3] = 0x60;
    expect(() => decodePdu(bytes)).toThrow(PduError);
    expect(() => decodePdu(Uint8Array.of(0x09, 0, 0, 0, 0, 4, 0, 0, 0, 0))).toThrow(/unknown PDU type/);
  });

  it('negotiates: storage takes the first known transfer syntax, others LE only; unknown classes refused; roles echoed', () => {
    const out = negotiateAssociation(rq, { aeTitle: 'EDGE', kinds: new Set(['verification', 'storage', 'get']), maxPduLength: 65536 });
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(out.ac.presentationContexts).toEqual([
      { id: 1, result: 0, transferSyntax: '1.2.840.10008.1.2' },
      { id: 3, result: 0, transferSyntax: '1.2.840.10008.1.2.4.201' },
      { id: 5, result: 0, transferSyntax: '1.2.840.10008.1.2.1' },
      { id: 7, result: 3, transferSyntax: '' },
    ]);
    expect(out.ac.userInformation.roles).toEqual([{ sopClassUID: CT, scuRole: false, scpRole: true }]);
    const wrongCalled = negotiateAssociation({ ...rq, calledAETitle: 'OTHER' }, { aeTitle: 'EDGE', kinds: new Set(['verification']), maxPduLength: 65536 });
    expect(wrongCalled.ok ? undefined : wrongCalled.rj).toEqual({ type: PduType.AssociateRJ, result: 1, source: 1, reason: 7 });
    const notAllowed = negotiateAssociation(rq, { aeTitle: 'EDGE', allowedCallingAETitles: ['CT1'], kinds: new Set(['verification']), maxPduLength: 65536 });
    expect(notAllowed.ok ? undefined : notAllowed.rj).toEqual({ type: PduType.AssociateRJ, result: 1, source: 1, reason: 3 });
  });
});

describe('PduReader framing', () => {
  const options = { maxPDataLength: 16384, maxAssociateLength: 65536, expectFirst: PduType.AssociateRQ };

  it('assembles PDUs split across chunks and returns several from one chunk', () => {
    const r = new PduReader(options);
    const a = encodePdu(rq);
    const b = encodePdu({ type: PduType.ReleaseRQ });
    const both = new Uint8Array([...a, ...b]);
    r.push(both.subarray(0, 3));
    expect(r.next()).toBeUndefined();
    r.push(both.subarray(3, 100));
    expect(r.next()).toBeUndefined();
    r.push(both.subarray(100));
    expect(r.next()).toEqual(a);
    expect(r.next()).toEqual(b);
    expect(r.next()).toBeUndefined();
    expect(r.pendingBytes).toBe(0);
  });

  it('refuses an HTTP request as the first bytes without waiting for what it claims', () => {
    const r = new PduReader(options);
    r.push(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(() => r.next()).toThrow(expect.objectContaining({ code: 'NOT_DICOM' }));
  });

  it('refuses an A-ASSOCIATE-RQ above 64 KiB and a P-DATA-TF above the announced maximum from their headers alone', () => {
    const r = new PduReader(options);
    r.push(Uint8Array.of(0x01, 0, 0x7f, 0xff, 0xff, 0xff)); // claims 2 GiB
    expect(() => r.next()).toThrow(expect.objectContaining({ code: 'NOT_DICOM' }));

    const r2 = new PduReader({ ...options, expectFirst: undefined });
    r2.push(Uint8Array.of(0x04, 0, 0x00, 0x10, 0x00, 0x00)); // 1 MiB P-DATA, max is 16 KiB
    expect(() => r2.next()).toThrow(expect.objectContaining({ code: 'PDU_TOO_LARGE', abortReason: 6 }));

    const r3 = new PduReader({ ...options, expectFirst: undefined });
    r3.push(Uint8Array.of(0x0a, 0, 0, 0, 0, 4));
    expect(() => r3.next()).toThrow(expect.objectContaining({ code: 'UNRECOGNIZED_PDU', abortReason: 1 }));
  });
});

describe('command sets (PS3.7 Annex E)', () => {
  it('round-trips a C-MOVE response with counts and an error comment, with a correct group length', () => {
    const cmd = {
      commandField: CommandField.CMoveRSP,
      affectedSOPClassUID: '1.2.840.10008.5.1.4.1.2.2.2',
      messageIDBeingRespondedTo: 7,
      commandDataSetType: NO_DATA_SET,
      status: 0xff00,
      numberOfRemainingSuboperations: 3,
      numberOfCompletedSuboperations: 2,
      numberOfFailedSuboperations: 0,
      numberOfWarningSuboperations: 1,
      errorComment: 'odd',
      offendingElement: [0x00100010],
    };
    const bytes = encodeCommand(cmd);
    expect(new DataView(bytes.buffer).getUint32(8, true)).toBe(bytes.length - 12);
    expect(decodeCommand(bytes)).toEqual({ ...cmd, errorComment: 'odd' });
  });

  it('refuses element lengths beyond the command set and elements outside group 0000', () => {
    const bytes = encodeCommand({ commandField: CommandField.CEchoRQ, messageID: 1, commandDataSetType: NO_DATA_SET, affectedSOPClassUID: '1.2.840.10008.1.1' });
    const broken = bytes.slice();
    new DataView(broken.buffer).setUint32(16, 0x7fffffff, true);
    expect(() => decodeCommand(broken)).toThrow(/runs past/);
    const foreign = Uint8Array.of(0x08, 0, 0x18, 0, 2, 0, 0, 0, 0x31, 0);
    expect(() => decodeCommand(foreign)).toThrow(/outside group 0000/);
  });

  it('identifiers round-trip through the core parser and writer in implicit and explicit LE', () => {
    const id = { '00080052': { vr: 'CS', Value: ['STUDY'] }, '00100010': { vr: 'PN', Value: [{ Alphabetic: 'DOE^J*' }] }, '0020000D': { vr: 'UI' } };
    for (const ts of ['1.2.840.10008.1.2', '1.2.840.10008.1.2.1']) expect(decodeDimseDataset(encodeDimseDataset(id, ts), ts)).toEqual(id);
    expect(() => decodeDimseDataset(Uint8Array.of(0x10, 0, 0x10, 0, 0xff, 0xff, 0xff, 0x7f), '1.2.840.10008.1.2')).toThrow(expect.objectContaining({ code: 'INVALID_DATASET' }));
  });
});
