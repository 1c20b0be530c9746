/**
 * PS3.8 upper layer PDUs (§9.3): encode and decode A-ASSOCIATE-RQ/AC/RJ,
 * P-DATA-TF, A-RELEASE-RQ/RP and A-ABORT, including the user information
 * sub-items of PS3.8 Annex D and PS3.7 Annex D.3.3.
 *
 * Pure: Uint8Array / DataView only. Decoders take one complete PDU (header
 * included) whose length the caller (pdu-reader.ts) has already validated, and
 * never trust an inner length: each one is checked against the bytes that are
 * really there, and a violation throws PduError (the association then sends
 * A-ABORT, PS3.8 §9.3.8).
 */

export const PduType = {
  AssociateRQ: 0x01,
  AssociateAC: 0x02,
  AssociateRJ: 0x03,
  PDataTF: 0x04,
  ReleaseRQ: 0x05,
  ReleaseRP: 0x06,
  Abort: 0x07,
} as const;

/** The DICOM Application Context Name (PS3.7 Annex A.2.1). */
export const DICOM_APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';

/** A-ASSOCIATE-RJ Result / Source / Reason (PS3.8 §9.3.4, Table 9-21). */
export const RejectResult = { Permanent: 1, Transient: 2 } as const;
export const RejectSource = { ServiceUser: 1, ServiceProviderAcse: 2, ServiceProviderPresentation: 3 } as const;
export const RejectReason = {
  // source 1 (service-user)
  NoReasonGiven: 1,
  ApplicationContextNotSupported: 2,
  CallingAETitleNotRecognized: 3,
  CalledAETitleNotRecognized: 7,
  // source 2 (ACSE)
  ProtocolVersionNotSupported: 2,
  // source 3 (presentation)
  TemporaryCongestion: 1,
  LocalLimitExceeded: 2,
} as const;

/** A-ABORT source and reason (PS3.8 §9.3.8, Table 9-26). */
export const AbortSource = { ServiceUser: 0, ServiceProvider: 2 } as const;
export const AbortReason = {
  NotSpecified: 0,
  UnrecognizedPdu: 1,
  UnexpectedPdu: 2,
  UnrecognizedPduParameter: 4,
  UnexpectedPduParameter: 5,
  InvalidPduParameterValue: 6,
} as const;

/** Presentation context result/reason in A-ASSOCIATE-AC (PS3.8 §9.3.3.2, Table 9-18). */
export const PresentationContextResult = {
  Acceptance: 0,
  UserRejection: 1,
  NoReason: 2,
  AbstractSyntaxNotSupported: 3,
  TransferSyntaxesNotSupported: 4,
} as const;

export interface ProposedPresentationContext {
  /** Odd integer 1-255 (PS3.8 §9.3.2.2). */
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

export interface AcceptedPresentationContext {
  id: number;
  result: number;
  /** Meaningful only when result is Acceptance. */
  transferSyntax: string;
}

/** SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4). */
export interface RoleSelection {
  sopClassUID: string;
  scuRole: boolean;
  scpRole: boolean;
}

export interface UserInformation {
  /** Maximum length of the P-DATA-TF variable field we can receive; 0 = unlimited (PS3.8 D.1). */
  maxPduLength: number;
  implementationClassUID?: string;
  implementationVersionName?: string;
  /** Async operations window (PS3.7 D.3.3.3); we never offer more than 1. */
  asyncOps?: { invoked: number; performed: number };
  roles: RoleSelection[];
}

export interface AssociateRQ {
  type: typeof PduType.AssociateRQ;
  protocolVersion: number;
  calledAETitle: string;
  callingAETitle: string;
  applicationContext: string;
  presentationContexts: ProposedPresentationContext[];
  userInformation: UserInformation;
}

export interface AssociateAC {
  type: typeof PduType.AssociateAC;
  protocolVersion: number;
  calledAETitle: string;
  callingAETitle: string;
  applicationContext: string;
  presentationContexts: AcceptedPresentationContext[];
  userInformation: UserInformation;
}

export interface AssociateRJ {
  type: typeof PduType.AssociateRJ;
  result: number;
  source: number;
  reason: number;
}

export interface Pdv {
  presentationContextId: number;
  command: boolean;
  last: boolean;
  data: Uint8Array;
}

export interface PDataTF {
  type: typeof PduType.PDataTF;
  pdvs: Pdv[];
}

export interface ReleaseRQ {
  type: typeof PduType.ReleaseRQ;
}
export interface ReleaseRP {
  type: typeof PduType.ReleaseRP;
}
export interface Abort {
  type: typeof PduType.Abort;
  source: number;
  reason: number;
}

export type Pdu = AssociateRQ | AssociateAC | AssociateRJ | PDataTF | ReleaseRQ | ReleaseRP | Abort;

export type PduErrorCode = 'UNRECOGNIZED_PDU' | 'INVALID_PDU' | 'PDU_TOO_LARGE' | 'NOT_DICOM';

/** A PDU that cannot be accepted; `abortReason` is the A-ABORT reason to send (PS3.8 §9.3.8). */
export class PduError extends Error {
  readonly code: PduErrorCode;
  readonly abortReason: number;
  constructor(code: PduErrorCode, message: string, abortReason: number = AbortReason.InvalidPduParameterValue) {
    super(message);
    this.code = code;
    this.abortReason = abortReason;
    this.name = 'PduError';
  }
}

// ---------------------------------------------------------------------------
// Encoding

const ascii = new TextEncoder();

function aeField(title: string): Uint8Array {
  // AE titles travel as 16 bytes, space padded (PS3.8 §9.3.2 "Called-AE-title").
  const out = new Uint8Array(16).fill(0x20);
  out.set(ascii.encode(title.slice(0, 16)));
  return out;
}

class Builder {
  private parts: Uint8Array[] = [];
  length = 0;
  bytes(b: Uint8Array): this {
    this.parts.push(b);
    this.length += b.length;
    return this;
  }
  u8(v: number): this {
    return this.bytes(Uint8Array.of(v & 0xff));
  }
  u16(v: number): this {
    return this.bytes(Uint8Array.of((v >>> 8) & 0xff, v & 0xff));
  }
  u32(v: number): this {
    return this.bytes(Uint8Array.of((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff));
  }
  zeros(n: number): this {
    return this.bytes(new Uint8Array(n));
  }
  /** Item header (type, reserved, 16-bit length) + body. */
  item(type: number, body: Uint8Array): this {
    if (body.length > 0xffff) throw new PduError('INVALID_PDU', `item 0x${type.toString(16)} longer than 65535 bytes`);
    return this.u8(type).u8(0).u16(body.length).bytes(body);
  }
  result(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

function pdu(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(6 + body.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(2, body.length);
  out.set(body, 6);
  return out;
}

function encodeUserInformation(ui: UserInformation): Uint8Array {
  const b = new Builder();
  b.item(0x51, new Builder().u32(ui.maxPduLength).result());
  if (ui.implementationClassUID) b.item(0x52, ascii.encode(ui.implementationClassUID));
  if (ui.asyncOps) b.item(0x53, new Builder().u16(ui.asyncOps.invoked).u16(ui.asyncOps.performed).result());
  for (const r of ui.roles) {
    const uid = ascii.encode(r.sopClassUID);
    b.item(0x54, new Builder().u16(uid.length).bytes(uid).u8(r.scuRole ? 1 : 0).u8(r.scpRole ? 1 : 0).result());
  }
  if (ui.implementationVersionName) b.item(0x55, ascii.encode(ui.implementationVersionName.slice(0, 16)));
  return b.result();
}

function encodeAssociate(p: AssociateRQ | AssociateAC): Uint8Array {
  const b = new Builder();
  b.u16(p.protocolVersion).zeros(2).bytes(aeField(p.calledAETitle)).bytes(aeField(p.callingAETitle)).zeros(32);
  b.item(0x10, ascii.encode(p.applicationContext));
  if (p.type === PduType.AssociateRQ) {
    for (const pc of p.presentationContexts) {
      const sub = new Builder().u8(pc.id).zeros(3).item(0x30, ascii.encode(pc.abstractSyntax));
      for (const ts of pc.transferSyntaxes) sub.item(0x40, ascii.encode(ts));
      b.item(0x20, sub.result());
    }
  } else {
    for (const pc of p.presentationContexts) {
      const sub = new Builder().u8(pc.id).u8(0).u8(pc.result).u8(0);
      // PS3.8 §9.3.3.2: the transfer syntax sub-item is present even when rejected (ignored then).
      sub.item(0x40, ascii.encode(pc.result === PresentationContextResult.Acceptance ? pc.transferSyntax : ''));
      b.item(0x21, sub.result());
    }
  }
  b.item(0x50, encodeUserInformation(p.userInformation));
  return pdu(p.type, b.result());
}

export function encodePdu(p: Pdu): Uint8Array {
  switch (p.type) {
    case PduType.AssociateRQ:
    case PduType.AssociateAC:
      return encodeAssociate(p);
    case PduType.AssociateRJ:
      return pdu(p.type, Uint8Array.of(0, p.result, p.source, p.reason));
    case PduType.PDataTF:
      return encodePDataTF(p.pdvs);
    case PduType.ReleaseRQ:
    case PduType.ReleaseRP:
      return pdu(p.type, new Uint8Array(4));
    case PduType.Abort:
      return pdu(p.type, Uint8Array.of(0, 0, p.source, p.reason));
  }
}

/** P-DATA-TF with the given PDVs (PS3.8 §9.3.5); each PDV item is length(4) + context id + control header + data. */
export function encodePDataTF(pdvs: Pdv[]): Uint8Array {
  let total = 0;
  for (const v of pdvs) total += 6 + v.data.length;
  const out = new Uint8Array(6 + total);
  const view = new DataView(out.buffer);
  out[0] = PduType.PDataTF;
  view.setUint32(2, total);
  let at = 6;
  for (const v of pdvs) {
    view.setUint32(at, v.data.length + 2);
    out[at + 4] = v.presentationContextId;
    // Message control header (PS3.8 Annex E.2): bit 0 command, bit 1 last fragment.
    out[at + 5] = (v.command ? 1 : 0) | (v.last ? 2 : 0);
    out.set(v.data, at + 6);
    at += 6 + v.data.length;
  }
  return out;
}

/** Just the 12-byte PDU + PDV header of a single-PDV P-DATA-TF, so big data can be sent without copying. */
export function pDataTFHeader(presentationContextId: number, command: boolean, last: boolean, dataLength: number): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  out[0] = PduType.PDataTF;
  view.setUint32(2, dataLength + 6);
  view.setUint32(6, dataLength + 2);
  out[10] = presentationContextId;
  out[11] = (command ? 1 : 0) | (last ? 2 : 0);
  return out;
}

// ---------------------------------------------------------------------------
// Decoding

const latin1 = new TextDecoder('latin1');

/** Trailing NUL/space padding is not part of a UID or AE title (PS3.8 Annex F / §9.3.2). */
function text(bytes: Uint8Array): string {
  return latin1.decode(bytes).replace(/[\0 ]+$/, '').replace(/^ +/, '');
}

class Cursor {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    public at: number,
    readonly end: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number, what: string): void {
    if (this.at + n > this.end) throw new PduError('INVALID_PDU', `${what}: length runs past the end of its PDU/item`);
  }
  u8(): number {
    this.need(1, 'u8');
    return this.bytes[this.at++]!;
  }
  u16(): number {
    this.need(2, 'u16');
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4, 'u32');
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const v = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  /** Items of a variable field: type, reserved, 16-bit length. */
  *items(what: string): Generator<{ type: number; body: Uint8Array }> {
    while (this.at < this.end) {
      this.need(4, `${what} item header`);
      const type = this.bytes[this.at]!;
      const len = this.view.getUint16(this.at + 2);
      this.at += 4;
      yield { type, body: this.take(len, `${what} item 0x${type.toString(16)}`) };
    }
  }
}

/** Bounds on what a peer may list in one association request (they cost memory and CPU). */
const MAX_PRESENTATION_CONTEXTS = 128;
const MAX_TRANSFER_SYNTAXES_PER_CONTEXT = 64;
const MAX_ROLE_ITEMS = 128;
/** UIDs are at most 64 characters (PS3.5 §9.1). */
const MAX_UID = 64;

function uid(body: Uint8Array, what: string): string {
  if (body.length > MAX_UID + 1) throw new PduError('INVALID_PDU', `${what} longer than 64 characters`);
  return text(body);
}

function decodeUserInformation(body: Uint8Array): UserInformation {
  const ui: UserInformation = { maxPduLength: 0, roles: [] };
  const c = new Cursor(body, 0, body.length);
  for (const item of c.items('user information')) {
    const s = new Cursor(item.body, 0, item.body.length);
    switch (item.type) {
      case 0x51:
        ui.maxPduLength = s.u32();
        break;
      case 0x52:
        ui.implementationClassUID = uid(item.body, 'implementation class UID');
        break;
      case 0x53:
        ui.asyncOps = { invoked: s.u16(), performed: s.u16() };
        break;
      case 0x54: {
        if (ui.roles.length >= MAX_ROLE_ITEMS) throw new PduError('INVALID_PDU', 'too many role selection items');
        const n = s.u16();
        const sopClassUID = uid(s.take(n, 'role selection UID'), 'role selection UID');
        ui.roles.push({ sopClassUID, scuRole: s.u8() === 1, scpRole: s.u8() === 1 });
        break;
      }
      case 0x55:
        ui.implementationVersionName = text(item.body.subarray(0, 16));
        break;
      default:
        // Extended negotiation, user identity, …: not negotiated; ignoring means "not supported" (PS3.7 D.3.3.5-7).
        break;
    }
  }
  return ui;
}

function decodeAssociate(bytes: Uint8Array, type: 1 | 2): AssociateRQ | AssociateAC {
  const c = new Cursor(bytes, 6, bytes.length);
  const protocolVersion = c.u16();
  c.take(2, 'reserved');
  const calledAETitle = text(c.take(16, 'called AE title'));
  const callingAETitle = text(c.take(16, 'calling AE title'));
  c.take(32, 'reserved');
  let applicationContext = '';
  let userInformation: UserInformation | undefined;
  const rqContexts: ProposedPresentationContext[] = [];
  const acContexts: AcceptedPresentationContext[] = [];
  for (const item of c.items('associate')) {
    if (item.type === 0x10) {
      applicationContext = uid(item.body, 'application context');
    } else if (item.type === 0x20 && type === PduType.AssociateRQ) {
      if (rqContexts.length >= MAX_PRESENTATION_CONTEXTS) throw new PduError('INVALID_PDU', 'too many presentation contexts');
      const s = new Cursor(item.body, 0, item.body.length);
      const id = s.u8();
      s.take(3, 'reserved');
      const pc: ProposedPresentationContext = { id, abstractSyntax: '', transferSyntaxes: [] };
      for (const sub of s.items('presentation context')) {
        if (sub.type === 0x30) pc.abstractSyntax = uid(sub.body, 'abstract syntax');
        else if (sub.type === 0x40) {
          if (pc.transferSyntaxes.length >= MAX_TRANSFER_SYNTAXES_PER_CONTEXT) throw new PduError('INVALID_PDU', 'too many transfer syntaxes');
          pc.transferSyntaxes.push(uid(sub.body, 'transfer syntax'));
        } else throw new PduError('INVALID_PDU', `unexpected sub-item 0x${sub.type.toString(16)} in presentation context`, AbortReason.UnexpectedPduParameter);
      }
      rqContexts.push(pc);
    } else if (item.type === 0x21 && type === PduType.AssociateAC) {
      const s = new Cursor(item.body, 0, item.body.length);
      const id = s.u8();
      s.u8();
      const result = s.u8();
      s.u8();
      let transferSyntax = '';
      for (const sub of s.items('presentation context')) if (sub.type === 0x40) transferSyntax = uid(sub.body, 'transfer syntax');
      acContexts.push({ id, result, transferSyntax });
    } else if (item.type === 0x50) {
      userInformation = decodeUserInformation(item.body);
    } else {
      throw new PduError('INVALID_PDU', `unexpected item 0x${item.type.toString(16)} in A-ASSOCIATE`, AbortReason.UnexpectedPduParameter);
    }
  }
  const ui = userInformation ?? { maxPduLength: 0, roles: [] };
  return type === PduType.AssociateRQ
    ? { type, protocolVersion, calledAETitle, callingAETitle, applicationContext, presentationContexts: rqContexts, userInformation: ui }
    : { type, protocolVersion, calledAETitle, callingAETitle, applicationContext, presentationContexts: acContexts, userInformation: ui };
}

/** PDV items of a P-DATA-TF (PS3.8 §9.3.5.1). The data are views into `bytes`, not copies. */
export function decodePDataTF(bytes: Uint8Array): PDataTF {
  const c = new Cursor(bytes, 6, bytes.length);
  const pdvs: Pdv[] = [];
  while (c.at < c.end) {
    const len = c.u32();
    if (len < 2) throw new PduError('INVALID_PDU', 'PDV item shorter than its 2-byte header');
    const presentationContextId = c.u8();
    const control = c.u8();
    pdvs.push({ presentationContextId, command: (control & 1) !== 0, last: (control & 2) !== 0, data: c.take(len - 2, 'PDV data') });
  }
  if (pdvs.length === 0) throw new PduError('INVALID_PDU', 'P-DATA-TF without PDV items');
  return { type: PduType.PDataTF, pdvs };
}

/** Decode one complete PDU (6-byte header + body). */
export function decodePdu(bytes: Uint8Array): Pdu {
  if (bytes.length < 6) throw new PduError('INVALID_PDU', 'PDU shorter than its header');
  const type = bytes[0]!;
  const declared = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(2);
  if (declared !== bytes.length - 6) throw new PduError('INVALID_PDU', 'PDU length does not match its bytes');
  switch (type) {
    case PduType.AssociateRQ:
    case PduType.AssociateAC:
      return decodeAssociate(bytes, type);
    case PduType.AssociateRJ:
      if (declared < 4) throw new PduError('INVALID_PDU', 'A-ASSOCIATE-RJ too short');
      return { type, result: bytes[7]!, source: bytes[8]!, reason: bytes[9]! };
    case PduType.PDataTF:
      return decodePDataTF(bytes);
    case PduType.ReleaseRQ:
    case PduType.ReleaseRP:
      return { type };
    case PduType.Abort:
      if (declared < 4) throw new PduError('INVALID_PDU', 'A-ABORT too short');
      return { type, source: bytes[8]!, reason: bytes[9]! };
    default:
      throw new PduError('UNRECOGNIZED_PDU', `unknown PDU type 0x${type.toString(16)}`, AbortReason.UnrecognizedPdu);
  }
}
