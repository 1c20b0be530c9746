/**
 * Incremental PDU framing on a byte stream (PS3.8 §9.3.1): collect chunks,
 * read the 6-byte header, and validate type and length BEFORE buffering the
 * body, so a peer cannot make us hold more than one PDU of the size we agreed.
 *
 * - The first PDU an acceptor sees must be an A-ASSOCIATE-RQ (PS3.8 §9.2,
 *   state Sta2); anything else — "GET / HTTP/1.1", a TLS hello on a plain port —
 *   is NOT_DICOM and the caller just closes the connection.
 * - P-DATA-TF longer than our announced maximum (plus a little slack for
 *   peers that count the header) is PDU_TOO_LARGE → A-ABORT.
 * - Every other PDU type is bounded by `maxAssociateLength` (A-ASSOCIATE-RQ/AC)
 *   or its fixed size.
 */
import { AbortReason, PduError, PduType } from './pdu';

export interface PduReaderOptions {
  /** Largest P-DATA-TF variable field accepted (our announced max PDU length). */
  maxPDataLength: number;
  /** Largest A-ASSOCIATE-RQ/AC accepted. */
  maxAssociateLength: number;
  /** When set, the first PDU must be of this type (the acceptor expects A-ASSOCIATE-RQ). */
  expectFirst?: number;
}

/** Slack above the announced P-DATA maximum: some peers include the PDV headers twice. */
const PDATA_SLACK = 1024;
/** Fixed-size PDUs (RJ, release, abort) have a 4-byte body; allow a little more for padding. */
const SMALL_PDU_MAX = 64;

export class PduReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private first = true;

  constructor(private readonly options: PduReaderOptions) {}

  /** Bytes received but not yet returned as a PDU. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete PDU (header + body), or undefined when more bytes are needed. */
  next(): Uint8Array | undefined {
    if (this.buffered < 6) return undefined;
    const header = this.peek(6);
    const type = header[0]!;
    const length = ((header[2]! << 24) >>> 0) + (header[3]! << 16) + (header[4]! << 8) + header[5]!;
    this.validate(type, length);
    if (this.buffered < 6 + length) return undefined;
    this.first = false;
    return this.take(6 + length);
  }

  private validate(type: number, length: number): void {
    if (this.first && this.options.expectFirst !== undefined && type !== this.options.expectFirst) {
      throw new PduError('NOT_DICOM', `first PDU is not an A-ASSOCIATE-RQ (type byte 0x${type.toString(16)})`, AbortReason.UnexpectedPdu);
    }
    switch (type) {
      case PduType.AssociateRQ:
      case PduType.AssociateAC:
        if (length > this.options.maxAssociateLength) {
          throw new PduError(this.first ? 'NOT_DICOM' : 'PDU_TOO_LARGE', `A-ASSOCIATE PDU of ${length} bytes exceeds ${this.options.maxAssociateLength}`, AbortReason.InvalidPduParameterValue);
        }
        if (length < 68) throw new PduError('INVALID_PDU', 'A-ASSOCIATE PDU shorter than its fixed fields', AbortReason.InvalidPduParameterValue);
        return;
      case PduType.PDataTF:
        if (length > this.options.maxPDataLength + PDATA_SLACK) {
          throw new PduError('PDU_TOO_LARGE', `P-DATA-TF of ${length} bytes exceeds the negotiated maximum ${this.options.maxPDataLength}`, AbortReason.InvalidPduParameterValue);
        }
        return;
      case PduType.AssociateRJ:
      case PduType.ReleaseRQ:
      case PduType.ReleaseRP:
      case PduType.Abort:
        if (length > SMALL_PDU_MAX) throw new PduError('PDU_TOO_LARGE', `PDU type ${type} of ${length} bytes`, AbortReason.InvalidPduParameterValue);
        return;
      default:
        throw new PduError('UNRECOGNIZED_PDU', `unknown PDU type 0x${type.toString(16)}`, AbortReason.UnrecognizedPdu);
    }
  }

  private peek(n: number): Uint8Array {
    const head = this.chunks[0]!;
    if (head.length >= n) return head;
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.length, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (at === n) break;
    }
    return out;
  }

  private take(n: number): Uint8Array {
    const head = this.chunks[0]!;
    if (head.length >= n) {
      // Common case (one PDU in one chunk): a view, no copy.
      const out = head.subarray(0, n);
      if (head.length === n) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}
