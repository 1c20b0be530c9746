/**
 * DIMSE command sets (PS3.7 §6.3, §9.3, §10.3, Annex E): group 0000 elements,
 * always Implicit VR Little Endian whatever the presentation context's
 * transfer syntax (PS3.7 §6.3.1), starting with CommandGroupLength (0000,0000).
 *
 * Decoding checks every element length against the bytes present and keeps
 * only the elements named here (others are skipped, PS3.7 §6.3.1 allows
 * receivers to ignore unknown command elements... except retired ones we
 * never use). The caller bounds the command set's total size.
 */

export const CommandField = {
  CStoreRQ: 0x0001,
  CStoreRSP: 0x8001,
  CGetRQ: 0x0010,
  CGetRSP: 0x8010,
  CFindRQ: 0x0020,
  CFindRSP: 0x8020,
  CMoveRQ: 0x0021,
  CMoveRSP: 0x8021,
  CEchoRQ: 0x0030,
  CEchoRSP: 0x8030,
  NEventReportRQ: 0x0100,
  NEventReportRSP: 0x8100,
  NGetRQ: 0x0110,
  NGetRSP: 0x8110,
  NSetRQ: 0x0120,
  NSetRSP: 0x8120,
  NActionRQ: 0x0130,
  NActionRSP: 0x8130,
  NCreateRQ: 0x0140,
  NCreateRSP: 0x8140,
  NDeleteRQ: 0x0150,
  NDeleteRSP: 0x8150,
  CCancelRQ: 0x0fff,
} as const;

/** CommandDataSetType (0000,0800): this value means "no data set"; anything else means one follows (PS3.7 E.1). */
export const NO_DATA_SET = 0x0101;
export const DATA_SET_PRESENT = 0x0000;

export const Priority = { Medium: 0x0000, High: 0x0001, Low: 0x0002 } as const;

/** DIMSE status codes used by the gateway (PS3.7 Annex C, PS3.4 B.2.3 / C.4). */
export const Status = {
  Success: 0x0000,
  Pending: 0xff00,
  PendingWarning: 0xff01,
  Cancel: 0xfe00,
  Warning: 0xb000,
  /** Sub-operations complete, one or more failures or warnings (PS3.4 C.4.2.1.5). */
  SubOperationsWarning: 0xb000,
  CoercionOfDataElements: 0xb000,
  NoSuchSOPClass: 0x0118,
  SOPClassNotSupported: 0x0122,
  NoSuchActionType: 0x0123,
  ProcessingFailure: 0x0110,
  DuplicateInvocation: 0x0210,
  UnrecognizedOperation: 0x0211,
  MistypedArgument: 0x0212,
  OutOfResources: 0xa700,
  /** C-MOVE: out of resources, unable to calculate number of matches (PS3.4 C.4.2.1.5). */
  OutOfResourcesNumberOfMatches: 0xa701,
  OutOfResourcesSubOperations: 0xa702,
  MoveDestinationUnknown: 0xa801,
  /** C-STORE: data set does not match SOP class (PS3.4 B.2.3). */
  DataSetDoesNotMatchSOPClass: 0xa900,
  /** C-FIND/MOVE/GET: identifier does not match SOP class (PS3.4 C.4.1.1.4). */
  IdentifierDoesNotMatchSOPClass: 0xa900,
  /** C-STORE "Cannot understand" range 0xC000-0xCFFF (PS3.4 B.2.3). */
  CannotUnderstand: 0xc000,
  UnableToProcess: 0xc000,
} as const;

export function isPending(status: number): boolean {
  return status === Status.Pending || status === Status.PendingWarning;
}

/** A decoded command set; field names are the PS3.7 keywords. */
export interface DimseCommand {
  commandField: number;
  messageID?: number;
  messageIDBeingRespondedTo?: number;
  affectedSOPClassUID?: string;
  requestedSOPClassUID?: string;
  affectedSOPInstanceUID?: string;
  requestedSOPInstanceUID?: string;
  priority?: number;
  commandDataSetType: number;
  status?: number;
  offendingElement?: number[];
  errorComment?: string;
  errorID?: number;
  moveDestination?: string;
  moveOriginatorApplicationEntityTitle?: string;
  moveOriginatorMessageID?: number;
  eventTypeID?: number;
  actionTypeID?: number;
  numberOfRemainingSuboperations?: number;
  numberOfCompletedSuboperations?: number;
  numberOfFailedSuboperations?: number;
  numberOfWarningSuboperations?: number;
  attributeIdentifierList?: number[];
}

type Kind = 'UI' | 'US' | 'AE' | 'LO' | 'AT';
const FIELDS: [tag: number, key: keyof DimseCommand, kind: Kind][] = [
  [0x00000002, 'affectedSOPClassUID', 'UI'],
  [0x00000003, 'requestedSOPClassUID', 'UI'],
  [0x00000100, 'commandField', 'US'],
  [0x00000110, 'messageID', 'US'],
  [0x00000120, 'messageIDBeingRespondedTo', 'US'],
  [0x00000600, 'moveDestination', 'AE'],
  [0x00000700, 'priority', 'US'],
  [0x00000800, 'commandDataSetType', 'US'],
  [0x00000900, 'status', 'US'],
  [0x00000901, 'offendingElement', 'AT'],
  [0x00000902, 'errorComment', 'LO'],
  [0x00000903, 'errorID', 'US'],
  [0x00001000, 'affectedSOPInstanceUID', 'UI'],
  [0x00001001, 'requestedSOPInstanceUID', 'UI'],
  [0x00001002, 'eventTypeID', 'US'],
  [0x00001005, 'attributeIdentifierList', 'AT'],
  [0x00001008, 'actionTypeID', 'US'],
  [0x00001020, 'numberOfRemainingSuboperations', 'US'],
  [0x00001021, 'numberOfCompletedSuboperations', 'US'],
  [0x00001022, 'numberOfFailedSuboperations', 'US'],
  [0x00001023, 'numberOfWarningSuboperations', 'US'],
  [0x00001030, 'moveOriginatorApplicationEntityTitle', 'AE'],
  [0x00001031, 'moveOriginatorMessageID', 'US'],
];
const BY_TAG = new Map(FIELDS.map((f) => [f[0], f]));

export class CommandError extends Error {
  readonly code = 'INVALID_COMMAND';
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

const ascii = new TextEncoder();
const latin1 = new TextDecoder('latin1');

/** Encode a command set in Implicit VR LE with a correct CommandGroupLength. */
export function encodeCommand(cmd: DimseCommand): Uint8Array {
  const elements: Uint8Array[] = [];
  let total = 0;
  for (const [tag, key, kind] of FIELDS) {
    const value = cmd[key];
    if (value === undefined) continue;
    let v: Uint8Array;
    if (kind === 'US') {
      v = new Uint8Array(2);
      new DataView(v.buffer).setUint16(0, value as number, true);
    } else if (kind === 'AT') {
      const tags = value as number[];
      v = new Uint8Array(tags.length * 4);
      const dv = new DataView(v.buffer);
      tags.forEach((t, i) => {
        dv.setUint16(i * 4, t >>> 16, true);
        dv.setUint16(i * 4 + 2, t & 0xffff, true);
      });
    } else {
      let s = value as string;
      // Even length (PS3.5 §6.2): UI padded with NUL, AE/LO with space.
      if (s.length % 2 === 1) s += kind === 'UI' ? '\0' : ' ';
      v = ascii.encode(s);
    }
    const el = new Uint8Array(8 + v.length);
    const dv = new DataView(el.buffer);
    dv.setUint16(0, tag >>> 16, true);
    dv.setUint16(2, tag & 0xffff, true);
    dv.setUint32(4, v.length, true);
    el.set(v, 8);
    elements.push(el);
    total += el.length;
  }
  const out = new Uint8Array(12 + total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0, true); // (0000,0000)
  dv.setUint32(4, 4, true);
  dv.setUint32(8, total, true);
  let at = 12;
  for (const el of elements) {
    out.set(el, at);
    at += el.length;
  }
  return out;
}

/** Decode a command set; throws CommandError when it is not one. */
export function decodeCommand(bytes: Uint8Array): DimseCommand {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Record<string, unknown> = {};
  let at = 0;
  while (at < bytes.length) {
    if (at + 8 > bytes.length) throw new CommandError('command set ends inside an element header');
    const group = dv.getUint16(at, true);
    const element = dv.getUint16(at + 2, true);
    const len = dv.getUint32(at + 4, true);
    at += 8;
    if (group !== 0x0000) throw new CommandError(`element (${group.toString(16)},${element.toString(16)}) outside group 0000 in a command set`);
    if (len > bytes.length - at) throw new CommandError('command element length runs past the end of the command set');
    const value = bytes.subarray(at, at + len);
    at += len;
    const field = BY_TAG.get((group << 16) | element);
    if (!field) continue;
    const [, key, kind] = field;
    if (kind === 'US') {
      if (len < 2) throw new CommandError(`${key}: US value shorter than 2 bytes`);
      out[key] = new DataView(value.buffer, value.byteOffset, len).getUint16(0, true);
    } else if (kind === 'AT') {
      const tags: number[] = [];
      const vdv = new DataView(value.buffer, value.byteOffset, len);
      for (let i = 0; i + 4 <= len; i += 4) tags.push(((vdv.getUint16(i, true) << 16) | vdv.getUint16(i + 2, true)) >>> 0);
      out[key] = tags;
    } else {
      out[key] = latin1.decode(value).replace(/[\0 ]+$/, '').replace(/^ +/, '');
    }
  }
  if (typeof out.commandField !== 'number') throw new CommandError('command set has no CommandField (0000,0100)');
  if (typeof out.commandDataSetType !== 'number') throw new CommandError('command set has no CommandDataSetType (0000,0800)');
  return out as unknown as DimseCommand;
}

export function hasDataSet(cmd: DimseCommand): boolean {
  return cmd.commandDataSetType !== NO_DATA_SET;
}
