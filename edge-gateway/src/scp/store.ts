/**
 * C-STORE SCP (PS3.4 Annex B): each received data set becomes a Part 10 file
 * in the spool — preamble + file meta built here (PS3.10 §7.1: Media Storage
 * SOP Class/Instance from the command's Affected SOP Class/Instance UID,
 * Transfer Syntax from the presentation context, Source AE = calling AE) and
 * then the data set bytes exactly as received, streamed, never re-encoded.
 *
 * Statuses (PS3.4 B.2.3):
 * - 0x0000 only after the spool committed the file (fsync per config), or in
 *   ackMode 'cloud' after the archive confirmed it (uploader.settled).
 * - 0xA700 out of resources: the spool could not take the file (disk full…).
 * - 0xA900 data set does not match SOP class: its SOP Class/Instance UID
 *   (peeked from the first bytes) differ from the command's, or are missing.
 * - 0xC000 cannot understand: invalid UIDs in the command, or the archive
 *   refused the instance for good (ackMode 'cloud', quarantined).
 * An association that ends mid-transfer aborts the writer: nothing is queued.
 */
import { isValidUID } from '../../../functions/core/dicom/uid';
import { transferSyntaxEncoding } from '../../../functions/core/dicom/transfer-syntax';
import { encodeFileMeta } from '../../../functions/core/dicom/writer';
import { safeMessage } from '../dimse/association';
import { Status } from '../dimse/command';
import { GATEWAY_IMPLEMENTATION_CLASS_UID, GATEWAY_IMPLEMENTATION_VERSION_NAME } from '../dimse/negotiate';
import { silentDimseLogger, type DimseLogger, type DimseServices, type ServiceResult, type StoreContext, type StoreSink } from '../dimse/types';
import { concatBytes } from '../../../functions/core/bytes';

/** What the store SCP needs of the spool (spool/spool.ts `Spool` satisfies it). */
export interface StoreSpool {
  createIncoming(): Promise<{
    write(chunk: Uint8Array): Promise<void>;
    commit(meta: {
      sopInstanceUID: string;
      sopClassUID: string;
      transferSyntaxUID: string;
      callingAETitle?: string;
      studyInstanceUID?: string;
      seriesInstanceUID?: string;
    }): Promise<{ id: string; state: string; sizeBytes?: number }>;
    abort(): Promise<void>;
  }>;
}

/** What the store SCP needs of the uploader in ackMode 'cloud'. */
export interface StoreUploader {
  settled(id: string): Promise<{ state: string; reason?: string }>;
}

export interface StoreServiceOptions {
  spool: StoreSpool;
  ackMode: 'spool' | 'cloud';
  uploader?: StoreUploader;
  logger?: DimseLogger;
  /** Called once per C-STORE with its outcome (metrics). */
  observe?: (outcome: { status: number; bytes: number }) => void;
}

/** Bytes kept back to find SOP Class/Instance UID before anything is written (they sit in the first few hundred). */
const PEEK_LIMIT = 16 * 1024;

export function createStoreService(options: StoreServiceOptions): NonNullable<DimseServices['store']> {
  const logger = options.logger ?? silentDimseLogger;
  if (options.ackMode === 'cloud' && !options.uploader) throw new Error("ackMode 'cloud' needs the uploader");

  return async (ctx: StoreContext): Promise<StoreSink> => {
    const { sopClassUID, sopInstanceUID, transferSyntaxUID } = ctx;
    const observe = (status: number, bytes: number) => options.observe?.({ status, bytes });
    if (!isValidUID(sopClassUID) || !isValidUID(sopInstanceUID)) {
      return failingSink({ status: Status.CannotUnderstand, errorComment: 'invalid Affected SOP Class/Instance UID' }, observe);
    }
    if (sopClassUID !== ctx.presentationContext.abstractSyntax) {
      return failingSink({ status: Status.DataSetDoesNotMatchSOPClass, errorComment: 'SOP class differs from the presentation context' }, observe);
    }
    const writer = await options.spool.createIncoming();
    let bytes = 0;
    let peek: Uint8Array[] | undefined = [];
    let peekLength = 0;
    let failure: ServiceResult | undefined;
    let finished = false;

    const fail = async (result: ServiceResult) => {
      if (!failure) {
        failure = result;
        await writer.abort().catch(() => {});
      }
    };

    // Written together with the first data set bytes (one write call, not two), once the peek is settled.
    const fileMeta = encodeFileMeta({}, transferSyntaxUID, {
      mediaStorageSOPClassUID: sopClassUID,
      mediaStorageSOPInstanceUID: sopInstanceUID,
      sourceApplicationEntityTitle: ctx.association.callingAETitle,
      implementationClassUID: GATEWAY_IMPLEMENTATION_CLASS_UID,
      implementationVersionName: GATEWAY_IMPLEMENTATION_VERSION_NAME,
    });

    /** Check the data set's own UIDs against the command's (PS3.4 B.2.3 0xA900). */
    const settlePeek = async (final: boolean) => {
      if (!peek) return;
      const head = concatBytes(peek, peekLength);
      const found = peekSopUIDs(head, transferSyntaxUID);
      if (found.state === 'more' && !final && peekLength < PEEK_LIMIT) return;
      const buffered = peek;
      peek = undefined;
      if (found.state === 'found' && (found.sopInstanceUID !== sopInstanceUID || (found.sopClassUID !== undefined && found.sopClassUID !== sopClassUID))) {
        logger.warn('c-store data set UIDs differ from the command', { sopInstanceUID, callingAETitle: ctx.association.callingAETitle });
        await fail({ status: Status.DataSetDoesNotMatchSOPClass, errorComment: 'SOP Instance/Class UID in the data set differs from the command' });
        return;
      }
      if (found.state === 'more' && final) {
        await fail({ status: Status.DataSetDoesNotMatchSOPClass, errorComment: 'data set has no SOP Instance UID' });
        return;
      }
      await writeSafely(concatBytes([fileMeta, ...buffered], fileMeta.length + peekLength));
    };

    const writeSafely = async (chunk: Uint8Array) => {
      if (failure) return;
      try {
        await writer.write(chunk);
      } catch (e) {
        await fail({ status: Status.OutOfResources, errorComment: safeMessage(e) });
      }
    };

    return {
      async write(chunk) {
        bytes += chunk.length;
        if (failure) return;
        if (peek) {
          // PDV data are views into a PDU buffer the reader may reuse: copy what we keep.
          peek.push(chunk.slice());
          peekLength += chunk.length;
          await settlePeek(false);
          return;
        }
        await writeSafely(chunk);
      },
      async end() {
        finished = true;
        await settlePeek(true);
        if (failure) {
          observe(failure.status, bytes);
          return failure;
        }
        let record: { id: string; state: string };
        try {
          record = await writer.commit({ sopInstanceUID, sopClassUID, transferSyntaxUID, callingAETitle: ctx.association.callingAETitle });
        } catch (e) {
          await writer.abort().catch(() => {});
          const result = { status: Status.OutOfResources, errorComment: safeMessage(e) };
          logger.error('c-store spool commit failed', { code: (e as { code?: string }).code, sopInstanceUID });
          observe(result.status, bytes);
          return result;
        }
        if (options.ackMode === 'cloud') {
          const settled = await options.uploader!.settled(record.id);
          if (settled.state !== 'done') {
            const result = { status: Status.CannotUnderstand, errorComment: 'the archive refused the instance' };
            observe(result.status, bytes);
            return result;
          }
        }
        observe(Status.Success, bytes);
        return { status: Status.Success };
      },
      async abort() {
        if (finished) return;
        peek = undefined;
        await fail({ status: Status.ProcessingFailure, errorComment: 'association ended mid-transfer' });
      },
    };
  };
}

function failingSink(result: ServiceResult, observe: (status: number, bytes: number) => void): StoreSink {
  let bytes = 0;
  return {
    async write(chunk) {
      bytes += chunk.length; // read and discard the rest of the data set
    },
    async end() {
      observe(result.status, bytes);
      return result;
    },
    async abort() {},
  };
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const SOP_CLASS_UID = 0x00080016;
const SOP_INSTANCE_UID = 0x00080018;

export type PeekResult =
  | { state: 'found'; sopClassUID?: string; sopInstanceUID?: string }
  /** Not enough bytes yet to reach (0008,0018). */
  | { state: 'more' }
  /** Cannot tell without a full parse (deflated data set, undefined-length sequence first): not checked. */
  | { state: 'unknown' };

/**
 * Walk the top-level elements of a data set prefix up to (0008,0018) (PS3.5 §7.1).
 * Only element headers are read; every length is checked against the bytes present.
 */
export function peekSopUIDs(bytes: Uint8Array, transferSyntaxUID: string): PeekResult {
  const enc = transferSyntaxEncoding(transferSyntaxUID);
  if (!enc || enc.deflated) return { state: 'unknown' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = enc.littleEndian;
  let at = 0;
  let sopClassUID: string | undefined;
  for (;;) {
    if (at + 8 > bytes.length) return { state: 'more' };
    const tag = ((view.getUint16(at, le) << 16) | view.getUint16(at + 2, le)) >>> 0;
    if (tag > SOP_INSTANCE_UID) return { state: 'found', sopClassUID };
    let header: number;
    let length: number;
    // Group 0002 inside a data set is explicit LE by definition; otherwise the context's encoding.
    const explicit = enc.explicitVR;
    if (explicit) {
      const vr = String.fromCharCode(bytes[at + 4]!, bytes[at + 5]!);
      if (LONG_VRS.has(vr)) {
        if (at + 12 > bytes.length) return { state: 'more' };
        length = view.getUint32(at + 8, le);
        header = 12;
      } else {
        length = view.getUint16(at + 6, le);
        header = 8;
      }
    } else {
      length = view.getUint32(at + 4, le);
      header = 8;
    }
    if (length === 0xffffffff) return { state: 'unknown' };
    if (tag === SOP_CLASS_UID || tag === SOP_INSTANCE_UID) {
      if (length > 64 + 1) return { state: 'found', sopClassUID: 'invalid', sopInstanceUID: 'invalid' };
      if (at + header + length > bytes.length) return { state: 'more' };
      const value = String.fromCharCode(...bytes.subarray(at + header, at + header + length)).replace(/[\0 ]+$/, '');
      if (tag === SOP_CLASS_UID) sopClassUID = value;
      else return { state: 'found', sopClassUID, sopInstanceUID: value };
    }
    at += header + length;
  }
}
