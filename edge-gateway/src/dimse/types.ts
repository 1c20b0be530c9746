/**
 * The DIMSE service API: what a service (scp/*.ts) implements and what it
 * gets from the association. Both acceptor (`createDimseServer`) and
 * requestor (`connectDimse`) associations dispatch incoming requests to the
 * same `DimseServices` — a C-GET SCU, for instance, receives C-STOREs.
 *
 * ## For service authors (C-FIND, C-MOVE, C-GET, storage commitment)
 *
 * - Identifiers arrive decoded to DICOM JSON (PS3.18 F.2) with the core
 *   parser; identifiers you return are encoded with the core writer in the
 *   presentation context's transfer syntax (implicit or explicit VR LE). Do
 *   not put group 0000/0002 elements in them.
 * - `find(ctx, identifier, respond, cancelled)`: call `await respond.pending(id)`
 *   once per match (each becomes a C-FIND-RSP, status 0xFF00, PS3.4 C.4.1.2);
 *   then return the final status (0x0000 Success, or a failure 0xA700/0xA900/
 *   0xC000…). When the peer sends C-CANCEL-RQ (PS3.7 §9.3.2.3) `cancelled`
 *   fires: stop and return `Status.Cancel` (0xFE00). Throwing maps to 0xC000
 *   with the error message as ErrorComment (keep messages PHI-free).
 * - `move(ctx, identifier, respond, cancelled)` / `get(...)`: perform the
 *   sub-operations; report progress with `respond.pending(counts)` (C-MOVE-RSP /
 *   C-GET-RSP 0xFF00 with NumberOfRemaining/Completed/Failed/Warning
 *   Suboperations, PS3.7 §9.1.3/9.1.4); return the final status and counts,
 *   plus `failedSOPInstanceUIDs` which become (0008,0058) in the final
 *   response identifier (PS3.4 C.4.2.1.5). For C-MOVE the destination AE is
 *   `ctx.command.moveDestination`; open a new association with `connectDimse`
 *   (requestor.ts) and send with `association.store({ ..., moveOriginator })`.
 *   For C-GET, send the sub-operations on the same association:
 *   `ctx.association.store(...)` — the requestor must have proposed the
 *   storage SOP class with SCP role (PS3.7 D.3.3.4); `ctx.association.
 *   findPresentationContext(sopClassUID, transferSyntaxUID)` tells you whether
 *   it did and in which transfer syntax.
 * - `nAction(ctx, request)`: storage commitment request (PS3.4 J.3.2):
 *   return `{ status, reply? }` promptly; send the result later with
 *   `ctx.association.nEventReport(...)` if the association is still open
 *   (`ctx.association.isOpen`), else over a new association to the
 *   requesting AE, proposing the commitment class with SCP role
 *   (`roles: [{ sopClassUID, scuRole: false, scpRole: true }]`).
 * - One request at a time per association (async operations window 1), but
 *   C-CANCEL and A-ABORT may arrive while your service runs: `cancelled` is
 *   also fired when the association is aborted or closes.
 */
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import type { DimseCommand } from './command';
import type { RoleSelection } from './pdu';

export type { DimseCommand } from './command';
export type { RoleSelection } from './pdu';

export interface PresentationContextInfo {
  id: number;
  abstractSyntax: string;
  transferSyntax: string;
}

/** The association as a service sees it (acceptor or requestor side). */
export interface DimseAssociation {
  readonly callingAETitle: string;
  readonly calledAETitle: string;
  /** The peer's AE title (calling AE on the acceptor side, called AE on the requestor side). */
  readonly peerAETitle: string;
  readonly peerAddress: string;
  readonly peerPort: number;
  readonly tls: boolean;
  /** Accepted presentation contexts only. */
  readonly presentationContexts: readonly PresentationContextInfo[];
  /** Role selections agreed in the A-ASSOCIATE-AC (PS3.7 D.3.3.4). */
  readonly roles: readonly RoleSelection[];
  /** The peer's maximum PDU length (0 = unlimited). */
  readonly peerMaxPduLength: number;
  readonly isOpen: boolean;
  /** Resolves once the transport is closed (release, abort or error). */
  readonly closed: Promise<void>;

  /** An accepted context for this SOP class (and transfer syntax, when given). */
  findPresentationContext(abstractSyntax: string, transferSyntax?: string): PresentationContextInfo | undefined;
  echo(): Promise<DimseResponse>;
  /** C-STORE-RQ with the data set's raw bytes; no re-encoding (PS3.7 §9.1.1). */
  store(request: StoreRequest): Promise<DimseResponse>;
  /** N-EVENT-REPORT-RQ (PS3.7 §10.1.1), e.g. storage commitment results. */
  nEventReport(request: NEventReportRequest): Promise<DimseResponse>;
  /** N-ACTION-RQ (PS3.7 §10.1.4), e.g. a storage commitment request. */
  nAction(request: NActionRequest): Promise<DimseResponse>;
  /**
   * Any request with an identifier (C-FIND/C-MOVE/C-GET as SCU). `onPending`
   * sees each pending response; the final response is returned.
   */
  request(
    command: Omit<DimseCommand, 'messageID' | 'commandDataSetType'>,
    identifier: DicomJsonDataset | undefined,
    onPending?: (response: DimseResponse) => void | Promise<void>,
  ): Promise<DimseResponse>;
  /** C-CANCEL-RQ for an outstanding request (PS3.7 §9.3.2.3). */
  cancel(messageID: number, presentationContextId: number): Promise<void>;
  release(): Promise<void>;
  abort(): void;
}

export interface DimseResponse {
  command: DimseCommand;
  status: number;
  /** Data set of the response, decoded (C-FIND identifiers, N-ACTION/N-EVENT-REPORT replies). */
  dataset?: DicomJsonDataset;
}

export interface StoreRequest {
  sopClassUID: string;
  sopInstanceUID: string;
  /** Transfer syntax of `dataset`; a presentation context with it must have been accepted. */
  transferSyntaxUID: string;
  /** The data set bytes (no preamble, no file meta). */
  dataset: AsyncIterable<Uint8Array> | Uint8Array;
  priority?: number;
  /** C-MOVE sub-operations carry the originator (PS3.7 §9.1.1.1). */
  moveOriginator?: { aeTitle: string; messageID: number };
}

export interface NEventReportRequest {
  sopClassUID: string;
  sopInstanceUID: string;
  eventTypeID: number;
  eventInformation?: DicomJsonDataset;
}

export interface NActionRequest {
  sopClassUID: string;
  sopInstanceUID: string;
  actionTypeID: number;
  actionInformation?: DicomJsonDataset;
}

/** Passed to every service call. */
export interface RequestContext {
  association: DimseAssociation;
  presentationContext: PresentationContextInfo;
  /** The request's command set. */
  command: DimseCommand;
}

export interface ServiceResult {
  status: number;
  errorComment?: string;
  offendingElement?: number[];
}

export interface SubOperationCounts {
  remaining: number;
  completed: number;
  failed: number;
  warning: number;
}

export interface RetrieveResult extends ServiceResult {
  counts: SubOperationCounts;
  /** Become FailedSOPInstanceUIDList (0008,0058) in the final response identifier. */
  failedSOPInstanceUIDs?: string[];
}

/** Receives one C-STORE data set as it arrives; nothing is buffered by the DIMSE layer. */
export interface StoreSink {
  /** Resolve when the chunk is consumed; the socket is paused until then (backpressure). */
  write(chunk: Uint8Array): Promise<void>;
  /** The last fragment arrived: finish and return the C-STORE-RSP status. */
  end(): Promise<ServiceResult>;
  /** The association ended mid-transfer: discard everything. */
  abort(reason: string): Promise<void>;
}

export interface StoreContext extends RequestContext {
  sopClassUID: string;
  sopInstanceUID: string;
  /** The presentation context's transfer syntax: the data set's encoding. */
  transferSyntaxUID: string;
}

export interface DimseServices {
  /** C-ECHO (PS3.7 §9.1.5). Default: Success. */
  echo?(ctx: RequestContext): Promise<ServiceResult | number> | ServiceResult | number;
  /** C-STORE (PS3.4 Annex B): return a sink for the data set. */
  store?(ctx: StoreContext): Promise<StoreSink>;
  find?(
    ctx: RequestContext,
    identifier: DicomJsonDataset,
    respond: { pending(identifier: DicomJsonDataset): Promise<void> },
    cancelled: AbortSignal,
  ): Promise<ServiceResult | number>;
  move?(
    ctx: RequestContext,
    identifier: DicomJsonDataset,
    respond: { pending(counts: SubOperationCounts): Promise<void> },
    cancelled: AbortSignal,
  ): Promise<RetrieveResult>;
  get?(
    ctx: RequestContext,
    identifier: DicomJsonDataset,
    respond: { pending(counts: SubOperationCounts): Promise<void> },
    cancelled: AbortSignal,
  ): Promise<RetrieveResult>;
  nAction?(ctx: RequestContext, request: NActionRequest): Promise<ServiceResult & { reply?: DicomJsonDataset }>;
  nEventReport?(ctx: RequestContext, request: NEventReportRequest): Promise<ServiceResult & { reply?: DicomJsonDataset }>;
}

/**
 * Structurally the same as ops/logger.ts's Logger: fields must never carry PHI. The DIMSE layer only
 * logs fields on that logger's allow-list: host (peer address), callingAETitle, reason, code, state,
 * count, command, id, durationMs, port.
 */
export interface DimseLogger {
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
  error(msg: string, fields?: object): void;
  debug(msg: string, fields?: object): void;
}

export const silentDimseLogger: DimseLogger = { info() {}, warn() {}, error() {}, debug() {} };

/** Counters the gateway turns into metrics. */
export interface DimseHooks {
  associationAccepted?(a: DimseAssociation): void;
  associationRejected?(reason: string): void;
  associationClosed?(a: DimseAssociation, how: 'released' | 'aborted' | 'closed'): void;
  /** Data set bytes received in P-DATA (all messages). */
  bytesReceived?(n: number): void;
}

export interface DimseTimeouts {
  /** ARTIM (PS3.8 §9.1.5): A-ASSOCIATE-RQ after connect / AC after RQ / RP after release RQ. */
  artimMs: number;
  /** No PDU either way while nothing is in progress → A-ABORT. */
  idleMs: number;
  /** Requestor: wait for a DIMSE response at most this long (0 = forever). */
  responseMs?: number;
}
