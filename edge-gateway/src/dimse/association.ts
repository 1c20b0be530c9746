/**
 * One DICOM association over one TCP/TLS socket: the PS3.8 §9.2 state
 * machine (reduced to the states a single-threaded endpoint needs), P-DATA
 * fragment assembly into DIMSE messages (PS3.7 §6.3, PS3.8 Annex E), request
 * dispatch to `DimseServices`, and sending requests/responses with data sets
 * fragmented to the peer's maximum PDU length.
 *
 * Used by both the acceptor (server.ts) and the requestor (requestor.ts).
 *
 * Resource bounds: at most one PDU is buffered beyond what the kernel holds
 * (the socket is paused above a high-water mark); command sets are bounded;
 * small data sets (identifiers, action information) are bounded; C-STORE data
 * sets are never buffered here: each fragment goes to the service's sink and
 * the next PDU is not read until the sink has taken it.
 */
import type { Socket } from 'node:net';
import { concatBytes } from '../../../functions/core/bytes';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import { CommandError, CommandField, DATA_SET_PRESENT, NO_DATA_SET, Status, decodeCommand, encodeCommand, hasDataSet, isPending, type DimseCommand } from './command';
import { DatasetError, decodeDimseDataset, encodeDimseDataset } from './dataset';
import {
  AbortReason,
  AbortSource,
  PduError,
  PduType,
  decodePdu,
  encodePdu,
  pDataTFHeader,
  type AssociateAC,
  type AssociateRJ,
  type AssociateRQ,
  type PDataTF,
  type Pdu,
  type RoleSelection,
} from './pdu';
import { PduReader } from './pdu-reader';
import { SopClass } from './sop-classes';
import type {
  DimseAssociation,
  DimseHooks,
  DimseLogger,
  DimseResponse,
  DimseServices,
  DimseTimeouts,
  NActionRequest,
  NEventReportRequest,
  PresentationContextInfo,
  RequestContext,
  RetrieveResult,
  ServiceResult,
  StoreRequest,
  StoreSink,
  SubOperationCounts,
} from './types';

export type DimseErrorCode =
  | 'ASSOCIATION_REJECTED'
  | 'ASSOCIATION_ABORTED'
  | 'ASSOCIATION_CLOSED'
  | 'NO_PRESENTATION_CONTEXT'
  | 'TIMEOUT'
  | 'PROTOCOL_ERROR';

export class DimseError extends Error {
  readonly code: DimseErrorCode;
  /** For ASSOCIATION_REJECTED: the A-ASSOCIATE-RJ fields. */
  readonly reject?: { result: number; source: number; reason: number };
  constructor(code: DimseErrorCode, message: string, extra?: { reject?: { result: number; source: number; reason: number }; cause?: unknown }) {
    super(message, { cause: extra?.cause });
    this.code = code;
    this.reject = extra?.reject;
    this.name = 'DimseError';
  }
}

export interface AssociationLimits {
  /** Largest command set accepted (they are a few hundred bytes). */
  maxCommandBytes: number;
  /** Largest non-C-STORE data set accepted (identifiers, action information). */
  maxSmallDatasetBytes: number;
}

export const DEFAULT_ASSOCIATION_LIMITS: AssociationLimits = { maxCommandBytes: 64 * 1024, maxSmallDatasetBytes: 4 * 1024 * 1024 };

export interface AssociationOptions {
  socket: Socket;
  role: 'acceptor' | 'requestor';
  tls: boolean;
  /** Our maximum receive PDU length (announced). */
  maxPduLength: number;
  maxAssociateLength?: number;
  timeouts: DimseTimeouts;
  services: DimseServices;
  logger: DimseLogger;
  hooks?: DimseHooks;
  limits?: Partial<AssociationLimits>;
  /**
   * Send the PDUs written in one turn of the event loop in one system call.
   * Each P-DATA-TF PDU is written on its own, sized to the peer's maximum
   * (16 KiB for dcmtk's default): with TCP_NODELAY each would be a write and a
   * segment of its own, and on loopback those system calls (and the peer's
   * wake-ups) were the largest CPU cost of a C-MOVE. Corked on the first
   * write, uncorked on the next tick; order, framing and backpressure are
   * unchanged (the socket's high-water mark still bounds a batch).
   */
  coalesceWrites?: boolean;
  /** Acceptor: decide on an A-ASSOCIATE-RQ. */
  onAssociateRequest?: (rq: AssociateRQ, association: Association) => { ok: true; ac: AssociateAC } | { ok: false; rj: AssociateRJ; reason: string };
}

type State = 'awaiting-rq' | 'awaiting-ac' | 'established' | 'releasing' | 'released' | 'closed';

interface DataTarget {
  write(chunk: Uint8Array): Promise<void>;
  /** All data received; returns what the dispatcher needs. */
  finish(): Promise<{ bytes?: Uint8Array; storeResult?: Promise<ServiceResult> }>;
  abort(reason: string): Promise<void>;
}

interface Incoming {
  pcId: number;
  commandChunks: Uint8Array[];
  commandBytes: number;
  command?: DimseCommand;
  target?: DataTarget;
}

interface Outstanding {
  pcId: number;
  onPending?: (r: DimseResponse) => void | Promise<void>;
  resolve(r: DimseResponse): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
}

/** Fragment size when the peer announces no limit (PS3.8 D.1: 0 = unlimited). */
const UNLIMITED_FRAGMENT = 256 * 1024;
const DEFAULT_MAX_ASSOCIATE = 64 * 1024;

export class Association implements DimseAssociation {
  callingAETitle = '';
  calledAETitle = '';
  presentationContexts: PresentationContextInfo[] = [];
  roles: RoleSelection[] = [];
  peerMaxPduLength = 0;
  readonly peerAddress: string;
  readonly peerPort: number;
  readonly tls: boolean;
  readonly closed: Promise<void>;
  /** How the association ended, once it has. */
  endedBy?: 'released' | 'aborted' | 'closed';
  /** Reached the established state (hooks pair associationAccepted with associationClosed). */
  private wasEstablished = false;

  private state: State;
  private readonly socket: Socket;
  private readonly reader: PduReader;
  private readonly opts: AssociationOptions;
  private readonly limits: AssociationLimits;
  private readonly contexts = new Map<number, PresentationContextInfo>();
  private incoming?: Incoming;
  private readonly outstanding = new Map<number, Outstanding>();
  private readonly activeOps = new Map<number, AbortController>();
  private readonly opPromises = new Set<Promise<void>>();
  private sendChain: Promise<void> = Promise.resolve();
  private nextMessageID = 1;
  private pumping = false;
  private paused = false;
  private artim?: NodeJS.Timeout;
  private idle?: NodeJS.Timeout;
  private resolveClosed!: () => void;
  private establishedWaiter?: { resolve(): void; reject(e: Error): void };
  private releaseWaiter?: { resolve(): void; reject(e: Error): void };
  private readonly highWater: number;

  /** A cork for this tick's writes is in place (opts.coalesceWrites). */
  private tickCorked = false;

  constructor(opts: AssociationOptions) {
    this.opts = opts;
    this.socket = opts.socket;
    this.tls = opts.tls;
    this.limits = { ...DEFAULT_ASSOCIATION_LIMITS, ...opts.limits };
    this.peerAddress = normalizeAddress(opts.socket.remoteAddress ?? '');
    this.peerPort = opts.socket.remotePort ?? 0;
    this.state = opts.role === 'acceptor' ? 'awaiting-rq' : 'awaiting-ac';
    this.reader = new PduReader({
      maxPDataLength: opts.maxPduLength,
      maxAssociateLength: opts.maxAssociateLength ?? DEFAULT_MAX_ASSOCIATE,
      expectFirst: opts.role === 'acceptor' ? PduType.AssociateRQ : undefined,
    });
    this.highWater = Math.max(2 * opts.maxPduLength, 256 * 1024);
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.socket.setNoDelay?.(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (e) => this.opts.logger.debug('dimse socket error', { reason: (e as Error).message, host: this.peerAddress }));
    this.socket.on('close', () => this.onClose());
    if (opts.role === 'acceptor') this.startArtim();
  }

  get peerAETitle(): string {
    return this.opts.role === 'acceptor' ? this.callingAETitle : this.calledAETitle;
  }

  get isOpen(): boolean {
    return this.state === 'established';
  }

  /** Requestor: send the A-ASSOCIATE-RQ and wait for AC (or RJ / abort / ARTIM). */
  async requestAssociation(rq: AssociateRQ): Promise<void> {
    this.callingAETitle = rq.callingAETitle;
    this.calledAETitle = rq.calledAETitle;
    const proposed = new Map(rq.presentationContexts.map((pc) => [pc.id, pc]));
    const done = new Promise<void>((resolve, reject) => (this.establishedWaiter = { resolve, reject }));
    this.pendingProposal = proposed;
    this.startArtim();
    await this.writeRaw([encodePdu(rq)]);
    return done;
  }
  private pendingProposal?: Map<number, { abstractSyntax: string }>;

  findPresentationContext(abstractSyntax: string, transferSyntax?: string): PresentationContextInfo | undefined {
    for (const pc of this.presentationContexts) {
      if (pc.abstractSyntax === abstractSyntax && (transferSyntax === undefined || pc.transferSyntax === transferSyntax)) return pc;
    }
    return undefined;
  }

  // -------------------------------------------------------------------------
  // Requests we send

  async echo(): Promise<DimseResponse> {
    const pc = this.requireContext(SopClass.Verification);
    return this.sendRequest(pc, { commandField: CommandField.CEchoRQ, affectedSOPClassUID: SopClass.Verification, commandDataSetType: NO_DATA_SET });
  }

  async store(req: StoreRequest): Promise<DimseResponse> {
    const pc = this.requireContext(req.sopClassUID, req.transferSyntaxUID);
    return this.sendRequest(
      pc,
      {
        commandField: CommandField.CStoreRQ,
        affectedSOPClassUID: req.sopClassUID,
        affectedSOPInstanceUID: req.sopInstanceUID,
        priority: req.priority ?? 0,
        commandDataSetType: DATA_SET_PRESENT,
        moveOriginatorApplicationEntityTitle: req.moveOriginator?.aeTitle,
        moveOriginatorMessageID: req.moveOriginator?.messageID,
      },
      req.dataset,
    );
  }

  async nEventReport(req: NEventReportRequest): Promise<DimseResponse> {
    const pc = this.requireContext(req.sopClassUID);
    const data = req.eventInformation ? encodeDimseDataset(req.eventInformation, pc.transferSyntax) : undefined;
    return this.sendRequest(
      pc,
      {
        commandField: CommandField.NEventReportRQ,
        affectedSOPClassUID: req.sopClassUID,
        affectedSOPInstanceUID: req.sopInstanceUID,
        eventTypeID: req.eventTypeID,
        commandDataSetType: data ? DATA_SET_PRESENT : NO_DATA_SET,
      },
      data,
    );
  }

  async nAction(req: NActionRequest): Promise<DimseResponse> {
    const pc = this.requireContext(req.sopClassUID);
    const data = req.actionInformation ? encodeDimseDataset(req.actionInformation, pc.transferSyntax) : undefined;
    return this.sendRequest(
      pc,
      {
        commandField: CommandField.NActionRQ,
        requestedSOPClassUID: req.sopClassUID,
        requestedSOPInstanceUID: req.sopInstanceUID,
        actionTypeID: req.actionTypeID,
        commandDataSetType: data ? DATA_SET_PRESENT : NO_DATA_SET,
      },
      data,
    );
  }

  async request(
    command: Omit<DimseCommand, 'messageID' | 'commandDataSetType'>,
    identifier: DicomJsonDataset | undefined,
    onPending?: (response: DimseResponse) => void | Promise<void>,
  ): Promise<DimseResponse> {
    const sopClass = command.affectedSOPClassUID ?? command.requestedSOPClassUID ?? '';
    const pc = this.requireContext(sopClass);
    const data = identifier ? encodeDimseDataset(identifier, pc.transferSyntax) : undefined;
    return this.sendRequest(pc, { ...command, commandDataSetType: data ? DATA_SET_PRESENT : NO_DATA_SET }, data, onPending);
  }

  async cancel(messageID: number, presentationContextId: number): Promise<void> {
    await this.sendMessage(presentationContextId, { commandField: CommandField.CCancelRQ, messageIDBeingRespondedTo: messageID, commandDataSetType: NO_DATA_SET });
  }

  async release(): Promise<void> {
    if (this.state !== 'established') {
      if (this.state !== 'closed') this.destroy();
      return;
    }
    this.state = 'releasing';
    const done = new Promise<void>((resolve, reject) => (this.releaseWaiter = { resolve, reject }));
    this.startArtim();
    await this.sendChain.catch(() => {});
    await this.writeRaw([encodePdu({ type: PduType.ReleaseRQ })]).catch(() => {});
    return done;
  }

  abort(): void {
    this.sendAbort(AbortSource.ServiceUser, AbortReason.NotSpecified);
  }

  // -------------------------------------------------------------------------
  // Reading

  private onData(chunk: Buffer): void {
    this.reader.push(chunk);
    if (this.reader.pendingBytes > this.highWater && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    this.pump();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.state !== 'closed') {
          const bytes = this.reader.next();
          if (!bytes) break;
          this.touch();
          await this.handlePdu(bytes);
        }
      } catch (e) {
        this.protocolError(e);
      } finally {
        this.pumping = false;
        if (this.paused && this.state !== 'closed') {
          this.paused = false;
          this.socket.resume();
        }
      }
    })();
  }

  private async handlePdu(bytes: Uint8Array): Promise<void> {
    const pdu: Pdu = decodePdu(bytes);
    switch (pdu.type) {
      case PduType.AssociateRQ:
        if (this.state !== 'awaiting-rq') throw new PduError('INVALID_PDU', 'unexpected A-ASSOCIATE-RQ', AbortReason.UnexpectedPdu);
        return this.onAssociateRQ(pdu);
      case PduType.AssociateAC:
        if (this.state !== 'awaiting-ac') throw new PduError('INVALID_PDU', 'unexpected A-ASSOCIATE-AC', AbortReason.UnexpectedPdu);
        return this.onAssociateAC(pdu);
      case PduType.AssociateRJ:
        if (this.state !== 'awaiting-ac') throw new PduError('INVALID_PDU', 'unexpected A-ASSOCIATE-RJ', AbortReason.UnexpectedPdu);
        this.stopArtim();
        this.establishedWaiter?.reject(
          new DimseError('ASSOCIATION_REJECTED', `association rejected (result ${pdu.result}, source ${pdu.source}, reason ${pdu.reason})`, {
            reject: { result: pdu.result, source: pdu.source, reason: pdu.reason },
          }),
        );
        this.destroy();
        return;
      case PduType.PDataTF:
        if (this.state !== 'established' && this.state !== 'releasing') throw new PduError('INVALID_PDU', 'P-DATA-TF outside an association', AbortReason.UnexpectedPdu);
        return this.onPData(pdu);
      case PduType.ReleaseRQ:
        if (this.state !== 'established') throw new PduError('INVALID_PDU', 'unexpected A-RELEASE-RQ', AbortReason.UnexpectedPdu);
        this.state = 'released';
        this.endedBy = 'released';
        // Answer what is still running first (a response after A-RELEASE-RP would be lost), without blocking the reader.
        void (async () => {
          await Promise.allSettled([...this.opPromises]);
          await this.sendChain;
          await this.writeRaw([encodePdu({ type: PduType.ReleaseRP })]).catch(() => {});
          if (this.opts.role === 'requestor') this.socket.end();
          else this.startArtim(); // the requestor closes the transport (PS3.8 §7.2, Sta13)
        })();
        return;
      case PduType.ReleaseRP:
        if (this.state !== 'releasing') throw new PduError('INVALID_PDU', 'unexpected A-RELEASE-RP', AbortReason.UnexpectedPdu);
        this.state = 'released';
        this.endedBy = 'released';
        this.stopArtim();
        this.releaseWaiter?.resolve();
        this.socket.end();
        return;
      case PduType.Abort:
        this.opts.logger.info('dimse association aborted by peer', { host: this.peerAddress, reason: `source ${pdu.source} reason ${pdu.reason}` });
        this.endedBy = 'aborted';
        this.destroy(new DimseError('ASSOCIATION_ABORTED', `peer aborted the association (source ${pdu.source}, reason ${pdu.reason})`));
        return;
    }
  }

  private async onAssociateRQ(rq: AssociateRQ): Promise<void> {
    this.stopArtim();
    this.callingAETitle = rq.callingAETitle;
    this.calledAETitle = rq.calledAETitle;
    const decide = this.opts.onAssociateRequest;
    if (!decide) throw new PduError('INVALID_PDU', 'no acceptor policy', AbortReason.UnexpectedPdu);
    const outcome = decide(rq, this);
    if (!outcome.ok) {
      this.opts.logger.info('dimse association rejected', { host: this.peerAddress, callingAETitle: rq.callingAETitle, reason: outcome.reason });
      this.opts.hooks?.associationRejected?.(outcome.reason);
      this.state = 'closed';
      await this.writeRaw([encodePdu(outcome.rj)]).catch(() => {});
      this.socket.end();
      this.destroyLater();
      return;
    }
    const proposed = new Map(rq.presentationContexts.map((pc) => [pc.id, pc.abstractSyntax]));
    for (const pc of outcome.ac.presentationContexts) {
      if (pc.result !== 0) continue;
      const info = { id: pc.id, abstractSyntax: proposed.get(pc.id)!, transferSyntax: pc.transferSyntax };
      this.contexts.set(pc.id, info);
      this.presentationContexts.push(info);
    }
    this.roles = outcome.ac.userInformation.roles;
    this.peerMaxPduLength = rq.userInformation.maxPduLength;
    // No PDU is read before this returns, so nothing can arrive "established" too early.
    await this.writeRaw([encodePdu(outcome.ac)]);
    if (this.state === 'closed') return;
    this.state = 'established';
    this.wasEstablished = true;
    this.startIdle();
    this.opts.logger.info('dimse association accepted', { host: this.peerAddress, callingAETitle: rq.callingAETitle, count: this.presentationContexts.length });
    this.opts.hooks?.associationAccepted?.(this);
  }

  private onAssociateAC(ac: AssociateAC): void {
    this.stopArtim();
    const proposed = this.pendingProposal ?? new Map();
    for (const pc of ac.presentationContexts) {
      if (pc.result !== 0) continue;
      const p = proposed.get(pc.id);
      if (!p) continue;
      const info = { id: pc.id, abstractSyntax: p.abstractSyntax, transferSyntax: pc.transferSyntax };
      this.contexts.set(pc.id, info);
      this.presentationContexts.push(info);
    }
    this.roles = ac.userInformation.roles;
    this.peerMaxPduLength = ac.userInformation.maxPduLength;
    this.state = 'established';
    this.wasEstablished = true;
    this.startIdle();
    this.establishedWaiter?.resolve();
  }

  private async onPData(pdu: PDataTF): Promise<void> {
    for (const pdv of pdu.pdvs) {
      const ctx = this.contexts.get(pdv.presentationContextId);
      if (!ctx) throw new PduError('INVALID_PDU', `PDV on presentation context ${pdv.presentationContextId}, which was not accepted`, AbortReason.InvalidPduParameterValue);
      let inc = this.incoming;
      if (inc && inc.pcId !== pdv.presentationContextId) throw new PduError('INVALID_PDU', 'message fragments on two presentation contexts interleaved', AbortReason.UnexpectedPduParameter);
      if (pdv.command) {
        if (inc?.command) throw new PduError('INVALID_PDU', 'command fragment while a data set was expected', AbortReason.UnexpectedPduParameter);
        if (!inc) inc = this.incoming = { pcId: pdv.presentationContextId, commandChunks: [], commandBytes: 0 };
        inc.commandBytes += pdv.data.length;
        if (inc.commandBytes > this.limits.maxCommandBytes) throw new PduError('INVALID_PDU', `command set larger than ${this.limits.maxCommandBytes} bytes`, AbortReason.InvalidPduParameterValue);
        inc.commandChunks.push(pdv.data.slice());
        if (!pdv.last) continue;
        let command: DimseCommand;
        try {
          command = decodeCommand(concatBytes(inc.commandChunks, inc.commandBytes));
        } catch (e) {
          if (e instanceof CommandError) throw new PduError('INVALID_PDU', e.message, AbortReason.InvalidPduParameterValue);
          throw e;
        }
        inc.commandChunks = [];
        if (hasDataSet(command)) {
          inc.command = command;
          inc.target = await this.openTarget(command, ctx);
        } else {
          this.incoming = undefined;
          this.dispatch(command, ctx, undefined);
        }
      } else {
        if (!inc?.command || !inc.target) throw new PduError('INVALID_PDU', 'data fragment without a command', AbortReason.UnexpectedPduParameter);
        this.opts.hooks?.bytesReceived?.(pdv.data.length);
        await inc.target.write(pdv.data);
        if (!pdv.last) continue;
        this.incoming = undefined;
        const finished = await inc.target.finish();
        this.dispatch(inc.command, ctx, finished);
      }
    }
  }

  /** Where a data set goes: the store service's sink for C-STORE-RQ, a bounded buffer otherwise. */
  private async openTarget(command: DimseCommand, pc: PresentationContextInfo): Promise<DataTarget> {
    if (command.commandField === CommandField.CStoreRQ) {
      let sink: StoreSink | undefined;
      let failure: ServiceResult | undefined;
      const store = this.opts.services.store;
      if (!store) failure = { status: Status.SOPClassNotSupported, errorComment: 'no storage service' };
      else {
        try {
          sink = await store({
            association: this,
            presentationContext: pc,
            command,
            sopClassUID: command.affectedSOPClassUID ?? '',
            sopInstanceUID: command.affectedSOPInstanceUID ?? '',
            transferSyntaxUID: pc.transferSyntax,
          });
        } catch (e) {
          failure = { status: Status.OutOfResources, errorComment: safeMessage(e) };
        }
      }
      return {
        write: async (chunk) => {
          if (!sink || failure) return;
          try {
            await sink.write(chunk);
          } catch (e) {
            // Keep reading (and discarding) the rest of the data set; answer with the failure.
            failure = { status: Status.OutOfResources, errorComment: safeMessage(e) };
            await sink.abort('write failed').catch(() => {});
          }
        },
        finish: async () => {
          if (failure || !sink) return { storeResult: Promise.resolve(failure!) };
          return { storeResult: sink.end() };
        },
        abort: async (reason) => {
          if (sink && !failure) await sink.abort(reason).catch(() => {});
        },
      };
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    let tooLarge = false;
    return {
      write: async (chunk) => {
        if (tooLarge) return;
        size += chunk.length;
        if (size > this.limits.maxSmallDatasetBytes) {
          tooLarge = true;
          chunks.length = 0;
          return;
        }
        chunks.push(chunk.slice());
      },
      finish: async () => (tooLarge ? {} : { bytes: concatBytes(chunks, size) }),
      abort: async () => {
        chunks.length = 0;
      },
    };
  }

  // -------------------------------------------------------------------------
  // Dispatch of complete messages

  private dispatch(command: DimseCommand, pc: PresentationContextInfo, data: { bytes?: Uint8Array; storeResult?: Promise<ServiceResult> } | undefined): void {
    if ((command.commandField & 0x8000) !== 0) {
      this.onResponse(command, pc, data?.bytes);
      return;
    }
    if (command.commandField === CommandField.CCancelRQ) {
      this.activeOps.get(command.messageIDBeingRespondedTo ?? -1)?.abort();
      return;
    }
    const messageID = command.messageID ?? 0;
    const controller = new AbortController();
    this.activeOps.set(messageID, controller);
    const op: Promise<void> = this.runOperation(command, pc, data, controller.signal)
      .catch((e) => {
        this.opts.logger.warn('dimse operation failed', { reason: safeMessage(e), command: command.commandField });
      })
      .finally(() => {
        this.activeOps.delete(messageID);
        this.opPromises.delete(op);
        this.touch();
      });
    this.opPromises.add(op);
  }

  private onResponse(command: DimseCommand, pc: PresentationContextInfo, bytes: Uint8Array | undefined): void {
    const waiter = this.outstanding.get(command.messageIDBeingRespondedTo ?? -1);
    if (!waiter) {
      this.opts.logger.debug('dimse response to no outstanding request', { id: command.messageIDBeingRespondedTo });
      return;
    }
    let dataset: DicomJsonDataset | undefined;
    if (bytes) {
      try {
        dataset = decodeDimseDataset(bytes, pc.transferSyntax);
      } catch {
        dataset = undefined;
      }
    }
    const response: DimseResponse = { command, status: command.status ?? Status.ProcessingFailure, dataset };
    if (isPending(response.status)) {
      void Promise.resolve(waiter.onPending?.(response)).catch(() => {});
      if (waiter.timer) waiter.timer.refresh();
      return;
    }
    this.outstanding.delete(command.messageIDBeingRespondedTo!);
    if (waiter.timer) clearTimeout(waiter.timer);
    waiter.resolve(response);
  }

  private async runOperation(
    command: DimseCommand,
    pc: PresentationContextInfo,
    data: { bytes?: Uint8Array; storeResult?: Promise<ServiceResult> } | undefined,
    cancelled: AbortSignal,
  ): Promise<void> {
    const services = this.opts.services;
    const ctx: RequestContext = { association: this, presentationContext: pc, command };
    const base = { messageIDBeingRespondedTo: command.messageID, commandDataSetType: NO_DATA_SET };
    const respond = (fields: Partial<DimseCommand> & { commandField: number }, dataset?: DicomJsonDataset) =>
      this.sendMessage(pc.id, { ...base, ...fields, commandDataSetType: dataset ? DATA_SET_PRESENT : NO_DATA_SET }, dataset && encodeDimseDataset(dataset, pc.transferSyntax));
    const decodeIdentifier = (): DicomJsonDataset => {
      if (!data?.bytes) throw new DatasetError('identifier missing or too large');
      return decodeDimseDataset(data.bytes, pc.transferSyntax);
    };

    switch (command.commandField) {
      case CommandField.CEchoRQ: {
        const r = normalize(services.echo ? await guard(() => services.echo!(ctx)) : Status.Success);
        await respond({ commandField: CommandField.CEchoRSP, affectedSOPClassUID: command.affectedSOPClassUID, ...resultFields(r) });
        return;
      }
      case CommandField.CStoreRQ: {
        const r = await guard(() => data?.storeResult ?? Promise.resolve({ status: Status.ProcessingFailure }));
        await respond({
          commandField: CommandField.CStoreRSP,
          affectedSOPClassUID: command.affectedSOPClassUID,
          affectedSOPInstanceUID: command.affectedSOPInstanceUID,
          ...resultFields(r),
        });
        return;
      }
      case CommandField.CFindRQ: {
        const rspField = { commandField: CommandField.CFindRSP, affectedSOPClassUID: command.affectedSOPClassUID };
        if (!services.find) return void (await respond({ ...rspField, status: Status.SOPClassNotSupported }));
        const r = normalize(
          await guard(async () => {
            const identifier = decodeIdentifier();
            return services.find!(ctx, identifier, { pending: (id) => respond({ ...rspField, status: Status.Pending }, id) }, cancelled);
          }, Status.IdentifierDoesNotMatchSOPClass),
        );
        await respond({ ...rspField, ...resultFields(r) });
        return;
      }
      case CommandField.CMoveRQ:
      case CommandField.CGetRQ: {
        const isMove = command.commandField === CommandField.CMoveRQ;
        const service = isMove ? services.move : services.get;
        const rspField = { commandField: isMove ? CommandField.CMoveRSP : CommandField.CGetRSP, affectedSOPClassUID: command.affectedSOPClassUID };
        if (!service) return void (await respond({ ...rspField, status: Status.SOPClassNotSupported }));
        let r: RetrieveResult;
        try {
          const identifier = decodeIdentifier();
          r = await service(ctx, identifier, { pending: (counts) => respond({ ...rspField, status: Status.Pending, ...countFields(counts) }) }, cancelled);
        } catch (e) {
          const status = e instanceof DatasetError ? Status.IdentifierDoesNotMatchSOPClass : Status.UnableToProcess;
          r = { status, errorComment: safeMessage(e), counts: { remaining: 0, completed: 0, failed: 0, warning: 0 } };
        }
        const failedList = r.failedSOPInstanceUIDs?.length ? { '00080058': { vr: 'UI', Value: r.failedSOPInstanceUIDs } } : undefined;
        await respond({ ...rspField, ...resultFields(r), ...countFields(r.counts, r.status !== Status.Cancel) }, failedList as DicomJsonDataset | undefined);
        return;
      }
      case CommandField.NActionRQ: {
        const rspField = {
          commandField: CommandField.NActionRSP,
          affectedSOPClassUID: command.requestedSOPClassUID,
          affectedSOPInstanceUID: command.requestedSOPInstanceUID,
          actionTypeID: command.actionTypeID,
        };
        if (!services.nAction) return void (await respond({ ...rspField, status: Status.NoSuchSOPClass }));
        let r: ServiceResult & { reply?: DicomJsonDataset };
        try {
          const actionInformation = data?.bytes ? decodeDimseDataset(data.bytes, pc.transferSyntax) : undefined;
          r = await services.nAction(ctx, {
            sopClassUID: command.requestedSOPClassUID ?? '',
            sopInstanceUID: command.requestedSOPInstanceUID ?? '',
            actionTypeID: command.actionTypeID ?? 0,
            actionInformation,
          });
        } catch (e) {
          r = { status: Status.ProcessingFailure, errorComment: safeMessage(e) };
        }
        await respond({ ...rspField, ...resultFields(r) }, r.reply);
        return;
      }
      case CommandField.NEventReportRQ: {
        const rspField = {
          commandField: CommandField.NEventReportRSP,
          affectedSOPClassUID: command.affectedSOPClassUID,
          affectedSOPInstanceUID: command.affectedSOPInstanceUID,
          eventTypeID: command.eventTypeID,
        };
        if (!services.nEventReport) return void (await respond({ ...rspField, status: Status.NoSuchSOPClass }));
        let r: ServiceResult & { reply?: DicomJsonDataset };
        try {
          const eventInformation = data?.bytes ? decodeDimseDataset(data.bytes, pc.transferSyntax) : undefined;
          r = await services.nEventReport(ctx, {
            sopClassUID: command.affectedSOPClassUID ?? '',
            sopInstanceUID: command.affectedSOPInstanceUID ?? '',
            eventTypeID: command.eventTypeID ?? 0,
            eventInformation,
          });
        } catch (e) {
          r = { status: Status.ProcessingFailure, errorComment: safeMessage(e) };
        }
        await respond({ ...rspField, ...resultFields(r) }, r.reply);
        return;
      }
      default:
        // PS3.7 C.5.11: unrecognized operation.
        await respond({ commandField: (command.commandField | 0x8000) & 0xffff, status: Status.UnrecognizedOperation });
    }
  }

  // -------------------------------------------------------------------------
  // Sending

  private requireContext(abstractSyntax: string, transferSyntax?: string): PresentationContextInfo {
    const pc = this.findPresentationContext(abstractSyntax, transferSyntax);
    if (!pc) {
      throw new DimseError('NO_PRESENTATION_CONTEXT', `no accepted presentation context for ${abstractSyntax}${transferSyntax ? ` in ${transferSyntax}` : ''}`);
    }
    return pc;
  }

  private sendRequest(
    pc: PresentationContextInfo,
    command: DimseCommand,
    data?: Uint8Array | AsyncIterable<Uint8Array>,
    onPending?: (r: DimseResponse) => void | Promise<void>,
  ): Promise<DimseResponse> {
    if (this.state !== 'established') return Promise.reject(new DimseError('ASSOCIATION_CLOSED', 'association is not established'));
    const messageID = this.allocateMessageID();
    const response = new Promise<DimseResponse>((resolve, reject) => {
      const waiter: Outstanding = { pcId: pc.id, onPending, resolve, reject };
      const ms = this.opts.timeouts.responseMs;
      if (ms && ms > 0) {
        waiter.timer = setTimeout(() => {
          this.outstanding.delete(messageID);
          reject(new DimseError('TIMEOUT', `no response within ${ms} ms`));
          this.abort();
        }, ms);
        waiter.timer.unref();
      }
      this.outstanding.set(messageID, waiter);
    });
    const sent = this.sendMessage(pc.id, { ...command, messageID }, data);
    sent.catch((e) => {
      const w = this.outstanding.get(messageID);
      if (!w) return;
      this.outstanding.delete(messageID);
      if (w.timer) clearTimeout(w.timer);
      w.reject(e instanceof Error ? e : new Error(String(e)));
    });
    return response;
  }

  private allocateMessageID(): number {
    for (let i = 0; i < 0xffff; i++) {
      const id = this.nextMessageID;
      this.nextMessageID = id >= 0xffff ? 1 : id + 1;
      if (!this.outstanding.has(id)) return id;
    }
    throw new DimseError('PROTOCOL_ERROR', 'no free message ID');
  }

  /** Send one whole message; messages are never interleaved (one send chain per association). */
  private sendMessage(pcId: number, command: DimseCommand, data?: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
    const run = async () => {
      if (this.state === 'closed') throw new DimseError('ASSOCIATION_CLOSED', 'association closed');
      const max = this.fragmentSize();
      const cmd = encodeCommand(command);
      for (let at = 0; at < cmd.length; at += max) {
        const part = cmd.subarray(at, Math.min(cmd.length, at + max));
        await this.writeRaw([pDataTFHeader(pcId, true, at + max >= cmd.length, part.length), part]);
      }
      if (data !== undefined) await this.sendData(pcId, data, max);
      this.touch();
    };
    const p = this.sendChain.then(run);
    this.sendChain = p.catch(() => {});
    return p;
  }

  private fragmentSize(): number {
    // The peer's max is the P-DATA-TF variable field; one PDV per PDU costs 6 bytes of it (PS3.8 §9.3.5).
    // Even sizes: peers such as dcmtk refuse odd fragment lengths.
    const peer = this.peerMaxPduLength;
    return peer === 0 ? UNLIMITED_FRAGMENT : Math.max(2, Math.min(peer - 6, 4 * 1024 * 1024) & ~1);
  }

  /**
   * Raw data set bytes in fragments of exactly `max` bytes (the last one shorter); never re-encoded.
   * An odd-length data set gets one trailing NUL: DICOM data sets are even (PS3.5 §7.1; for deflate
   * PS3.5 A.5 prescribes exactly this pad), and peers refuse odd fragments.
   */
  private async sendData(pcId: number, data: Uint8Array | AsyncIterable<Uint8Array>, max: number): Promise<void> {
    const PAD = Uint8Array.of(0);
    if (data instanceof Uint8Array) {
      if (data.length === 0) return this.writeRaw([pDataTFHeader(pcId, false, true, 0)]);
      for (let at = 0; at < data.length; at += max) {
        const part = data.subarray(at, Math.min(data.length, at + max));
        const last = at + max >= data.length;
        const pad = last && part.length % 2 === 1;
        await this.writeRaw([pDataTFHeader(pcId, false, last, part.length + (pad ? 1 : 0)), part, ...(pad ? [PAD] : [])]);
      }
      return;
    }
    let pending: Uint8Array[] = [];
    let pendingLength = 0;
    const emit = async (n: number, last: boolean) => {
      const parts: Uint8Array[] = [];
      let need = n;
      while (need > 0) {
        const head = pending[0]!;
        if (head.length <= need) {
          parts.push(head);
          pending.shift();
          need -= head.length;
        } else {
          parts.push(head.subarray(0, need));
          pending[0] = head.subarray(need);
          need = 0;
        }
      }
      pendingLength -= n;
      await this.writeRaw([pDataTFHeader(pcId, false, last, n), ...parts]);
    };
    for await (const chunk of data) {
      if (chunk.length === 0) continue;
      pending.push(chunk);
      pendingLength += chunk.length;
      // Keep at least one byte back: the last fragment must carry the "last" bit.
      while (pendingLength > max) await emit(max, false);
    }
    if (pendingLength % 2 === 1) {
      pending.push(PAD);
      pendingLength += 1;
    }
    await emit(pendingLength, true);
    pending = [];
  }

  private writeRaw(parts: Uint8Array[]): Promise<void> {
    if (this.socket.destroyed) return Promise.reject(new DimseError('ASSOCIATION_CLOSED', 'connection closed'));
    if (this.opts.coalesceWrites && !this.tickCorked) {
      // cork() nests: the per-PDU cork below still works inside this one.
      this.tickCorked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.tickCorked = false;
        if (!this.socket.destroyed) this.socket.uncork();
      });
    }
    let ok = true;
    if (parts.length > 1) this.socket.cork();
    for (const p of parts) ok = this.socket.write(p) && ok;
    if (parts.length > 1) this.socket.uncork();
    if (ok) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.socket.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        this.socket.off('drain', onDrain);
        reject(new DimseError('ASSOCIATION_CLOSED', 'connection closed while sending'));
      };
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
    });
  }

  // -------------------------------------------------------------------------
  // Timers, errors, teardown

  private startArtim(): void {
    this.stopArtim();
    this.artim = setTimeout(() => {
      this.opts.logger.info('dimse ARTIM timer expired', { host: this.peerAddress, state: this.state });
      const err = new DimseError('TIMEOUT', `ARTIM timer expired in state ${this.state}`);
      this.establishedWaiter?.reject(err);
      this.releaseWaiter?.resolve();
      this.destroy(err);
    }, this.opts.timeouts.artimMs);
    this.artim.unref();
  }

  private stopArtim(): void {
    if (this.artim) clearTimeout(this.artim);
    this.artim = undefined;
  }

  private startIdle(): void {
    const ms = this.opts.timeouts.idleMs;
    if (!ms || ms <= 0) return;
    this.idle = setTimeout(() => this.onIdle(), ms);
    this.idle.unref();
  }

  private touch(): void {
    this.idle?.refresh();
  }

  private onIdle(): void {
    if (this.state !== 'established') return;
    // A service still working, a sink still writing (e.g. a slow disk) or a request of ours awaiting its response is not idleness.
    if (this.activeOps.size > 0 || this.outstanding.size > 0 || this.pumping) {
      this.idle?.refresh();
      return;
    }
    this.opts.logger.info('dimse association idle: aborting', { host: this.peerAddress, durationMs: this.opts.timeouts.idleMs });
    this.sendAbort(AbortSource.ServiceProvider, AbortReason.NotSpecified);
  }

  private protocolError(e: unknown): void {
    if (this.state === 'closed') return;
    if (e instanceof PduError) {
      if (e.code === 'NOT_DICOM') {
        this.opts.logger.info('dimse connection closed: not DICOM', { host: this.peerAddress });
        this.destroy(new DimseError('PROTOCOL_ERROR', e.message));
        return;
      }
      this.opts.logger.warn('dimse protocol error: aborting', { host: this.peerAddress, code: e.code, reason: e.message });
      this.sendAbort(AbortSource.ServiceProvider, e.abortReason);
      return;
    }
    this.opts.logger.error('dimse association failed', { host: this.peerAddress, reason: safeMessage(e) });
    this.sendAbort(AbortSource.ServiceProvider, AbortReason.NotSpecified);
  }

  private sendAbort(source: number, reason: number): void {
    if (this.state === 'closed') return;
    this.endedBy = 'aborted';
    const err = new DimseError('ASSOCIATION_ABORTED', `association aborted (source ${source}, reason ${reason})`);
    this.state = 'closed';
    if (!this.socket.destroyed) {
      this.socket.end(encodePdu({ type: PduType.Abort, source, reason }));
      this.destroyLater();
    }
    this.teardown(err);
  }

  private destroy(err?: Error): void {
    this.state = 'closed';
    this.socket.destroy();
    this.teardown(err ?? new DimseError('ASSOCIATION_CLOSED', 'association closed'));
  }

  /** Give a final PDU a moment to leave, then make sure the socket is gone. */
  private destroyLater(): void {
    const t = setTimeout(() => this.socket.destroy(), Math.min(this.opts.timeouts.artimMs, 2000));
    t.unref();
  }

  private onClose(): void {
    if (!this.endedBy) this.endedBy = 'closed';
    this.state = 'closed';
    this.teardown(new DimseError('ASSOCIATION_CLOSED', 'connection closed'));
    this.resolveClosed();
  }

  private tornDown = false;
  private teardown(err: Error): void {
    if (this.tornDown) return;
    this.tornDown = true;
    this.stopArtim();
    if (this.idle) clearTimeout(this.idle);
    this.establishedWaiter?.reject(err);
    this.releaseWaiter?.resolve();
    for (const [, w] of this.outstanding) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
    this.outstanding.clear();
    for (const [, c] of this.activeOps) c.abort();
    const inc = this.incoming;
    this.incoming = undefined;
    if (inc?.target) void inc.target.abort(err.message);
    if (this.wasEstablished) this.opts.hooks?.associationClosed?.(this, this.endedBy ?? 'closed');
  }
}

function normalize(r: ServiceResult | number): ServiceResult {
  return typeof r === 'number' ? { status: r } : r;
}

async function guard<T extends ServiceResult | number>(fn: () => T | Promise<T>, failure: number = Status.UnableToProcess): Promise<ServiceResult | T> {
  try {
    return await fn();
  } catch (e) {
    return { status: e instanceof DatasetError ? failure : Status.UnableToProcess, errorComment: safeMessage(e) };
  }
}

function resultFields(r: ServiceResult | number): Partial<DimseCommand> {
  const n = normalize(r);
  const out: Partial<DimseCommand> = { status: n.status };
  // ErrorComment is LO: at most 64 characters (PS3.7 C.4).
  if (n.errorComment && n.status !== Status.Success) out.errorComment = n.errorComment.slice(0, 64);
  if (n.offendingElement?.length) out.offendingElement = n.offendingElement;
  return out;
}

function countFields(c: SubOperationCounts, final = false): Partial<DimseCommand> {
  const out: Partial<DimseCommand> = {
    numberOfCompletedSuboperations: c.completed,
    numberOfFailedSuboperations: c.failed,
    numberOfWarningSuboperations: c.warning,
  };
  // Remaining is present in pending responses and in a Cancel response (the
  // sub-operations not attempted), absent from other final responses
  // (PS3.7 §9.1.3.1 / §9.1.4.1, PS3.4 C.4.2.1.5 / C.4.3.1.5).
  if (!final) out.numberOfRemainingSuboperations = c.remaining;
  return out;
}

export function safeMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
