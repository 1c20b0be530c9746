/**
 * Storage Commitment Push Model SCP (PS3.4 Annex J). A modality asks, with
 * N-ACTION "Request Storage Commitment" (Action Type ID 1, J.3.2), whether
 * the gateway has taken responsibility for a list of instances; the gateway
 * answers at once (N-ACTION-RSP Success: request accepted) and reports later
 * with N-EVENT-REPORT (J.3.3):
 * - event 1 "Storage Commitment Request Successful" once every referenced
 *   instance is in the archive (the spool's done/ record, else a QIDO lookup);
 * - event 2 "Storage Commitment Request Complete – Failures Exist" when the
 *   deadline passes first: the instances not in the archive go into Failed
 *   SOP Sequence with Failure Reason 0x0110 (processing failure, J.3.3.1.1).
 * The report goes on the request's association while it is open, else on a
 * new association to the requesting AE (config.dimse.destinations), where
 * the gateway proposes the commitment class with the SCP role (PS3.4 J.3.3,
 * PS3.7 D.3.3.4) — what a modality that released its association expects.
 *
 * Requests are bounded (number of references) and every UID is validated;
 * pending reports are tracked so `close()` can stop them on shutdown.
 */
import type { DicomJsonDataset, DicomJsonValue } from '../../../functions/core/dicom/json-model';
import { isValidUID } from '../../../functions/core/dicom/uid';
import type { DicomWebClient } from '../cloud/dicomweb-client';
import type { RemoteNodeConfig } from '../config-types';
import { Status } from '../dimse/command';
import { connectDimse, type ConnectDimseOptions } from '../dimse/requestor';
import { COMMAND_TRANSFER_SYNTAXES, STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE, SopClass } from '../dimse/sop-classes';
import { silentDimseLogger, type DimseAssociation, type DimseLogger, type NActionRequest, type RequestContext, type ServiceResult } from '../dimse/types';
import type * as tls from 'node:tls';

const Tags = {
  TransactionUID: '00081195',
  ReferencedSOPSequence: '00081199',
  FailedSOPSequence: '00081198',
  ReferencedSOPClassUID: '00081150',
  ReferencedSOPInstanceUID: '00081155',
  FailureReason: '00081197',
  RetrieveAETitle: '00080054',
} as const;

/** PS3.4 J.3.3.1.1: the reason given for instances not committed in time. */
export const FAILURE_REASON_PROCESSING_FAILURE = 0x0110;
/** PS3.7 C.5.9 / Annex C: resource limitation (too many references). */
const RESOURCE_LIMITATION = 0x0213;
const MISSING_ATTRIBUTE_VALUE = 0x0121;
const INVALID_ATTRIBUTE_VALUE = 0x0106;

export interface CommitmentSpool {
  /** The done/ record of an instance the uploader delivered (spool/spool.ts). */
  findDone(sopInstanceUID: string): Promise<{ state: string } | undefined>;
}

export interface CommitmentServiceOptions {
  client: DicomWebClient;
  spool?: CommitmentSpool;
  aeTitle: string;
  /** Where to send reports when the request's association has closed (config.dimse.destinations). */
  destinations: Record<string, RemoteNodeConfig>;
  /** Give up waiting and report failures after this long (default 10 minutes). */
  timeoutMs?: number;
  /**
   * First wait before looking again for instances not yet in the archive
   * (default 2 s); it doubles each round up to 30 s — instances the gateway
   * did not upload itself are looked up with a QIDO by SOP Instance UID (the
   * archive answers it by key), and a long deadline should not hammer it.
   */
  pollMs?: number;
  /** Most references in one request (default 10 000). */
  maxReferences?: number;
  /** Most requests waiting for their report at once; more are refused with 0x0213 (default 100). */
  maxPending?: number;
  tlsOptions?: tls.ConnectionOptions;
  connectTimeouts?: ConnectDimseOptions['timeouts'];
  logger?: DimseLogger;
  connect?: (options: ConnectDimseOptions) => Promise<DimseAssociation>;
}

interface Reference {
  sopClassUID: string;
  sopInstanceUID: string;
}

export interface CommitmentService {
  nAction(ctx: RequestContext, request: NActionRequest): Promise<ServiceResult & { reply?: DicomJsonDataset }>;
  /** Reports still being prepared or sent (tests, shutdown). */
  readonly pending: number;
  /** Resolves when no report is outstanding. */
  idle(): Promise<void>;
  /** Stop waiting: outstanding requests are reported now with what is known (failures for the rest). */
  close(): Promise<void>;
}

export function createCommitmentService(options: CommitmentServiceOptions): CommitmentService {
  const logger = options.logger ?? silentDimseLogger;
  const timeoutMs = options.timeoutMs ?? 10 * 60_000;
  const pollMs = options.pollMs ?? 2000;
  const maxReferences = options.maxReferences ?? 10_000;
  const maxPending = options.maxPending ?? 100;
  const connect = options.connect ?? connectDimse;
  const tasks = new Set<Promise<void>>();
  const stop = new AbortController();

  /** The references now known to be in the archive: the spool's done/ records first, then one QIDO per 50 of the rest. */
  const committed = async (refs: Reference[]): Promise<Set<string>> => {
    const out = new Set<string>();
    const ask: string[] = [];
    for (const ref of refs) {
      const done = await options.spool?.findDone(ref.sopInstanceUID).catch(() => undefined);
      if (done?.state === 'done') out.add(ref.sopInstanceUID);
      else ask.push(ref.sopInstanceUID);
    }
    if (ask.length > 0) {
      try {
        for (const sop of await options.client.instancesPresent(ask)) out.add(sop);
      } catch (error) {
        // Archive unreachable: not known to be committed (yet); asked again on the next round.
        logger.debug('storage commitment: archive lookup failed', { code: (error as { code?: string }).code });
      }
    }
    return out;
  };

  const report = async (association: DimseAssociation, transactionUID: string, refs: Reference[]): Promise<void> => {
    // The N-ACTION-RSP is queued as soon as nAction returns: let it go out before any report can (PS3.4 J.3.2 then J.3.3).
    await new Promise((resolve) => setImmediate(resolve));
    const deadline = Date.now() + timeoutMs;
    let outstanding = refs;
    const success: Reference[] = [];
    let wait = pollMs;
    for (;;) {
      const present = await committed(outstanding);
      const still: Reference[] = [];
      for (const ref of outstanding) (present.has(ref.sopInstanceUID) ? success : still).push(ref);
      outstanding = still;
      if (outstanding.length === 0 || Date.now() >= deadline || stop.signal.aborted) break;
      await sleep(Math.min(wait, Math.max(0, deadline - Date.now())), stop.signal);
      wait = Math.min(wait * 2, Math.max(pollMs, MAX_POLL_MS));
    }
    const eventInformation: DicomJsonDataset = {
      [Tags.TransactionUID]: { vr: 'UI', Value: [transactionUID] },
      [Tags.RetrieveAETitle]: { vr: 'AE', Value: [options.aeTitle] },
    };
    if (success.length > 0) eventInformation[Tags.ReferencedSOPSequence] = { vr: 'SQ', Value: success.map(item) };
    if (outstanding.length > 0) {
      eventInformation[Tags.FailedSOPSequence] = {
        vr: 'SQ',
        Value: outstanding.map((r) => ({ ...item(r), [Tags.FailureReason]: { vr: 'US', Value: [FAILURE_REASON_PROCESSING_FAILURE] } })),
      };
    }
    const eventTypeID = outstanding.length === 0 ? 1 : 2;
    const request = { sopClassUID: SopClass.StorageCommitmentPushModel, sopInstanceUID: STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE, eventTypeID, eventInformation };
    logger.info('storage commitment report', { eventTypeID, committed: success.length, failed: outstanding.length });

    if (association.isOpen && association.findPresentationContext(SopClass.StorageCommitmentPushModel)) {
      try {
        // Bounded: a requester that never answers on this association gets the report on a new one.
        await withTimeout(association.nEventReport(request), REPORT_RESPONSE_MS);
        return;
      } catch (error) {
        logger.info('storage commitment: report on the request association failed, opening a new one', { code: (error as { code?: string }).code });
      }
    }
    const peer = association.peerAETitle;
    const node = Object.prototype.hasOwnProperty.call(options.destinations, peer) ? options.destinations[peer] : undefined;
    if (!node) {
      logger.warn('storage commitment: requester is not a known destination; report not delivered');
      return;
    }
    const reportAssociation = await connect({
      host: node.host,
      port: node.port,
      tls: node.tls ? (options.tlsOptions ?? true) : undefined,
      callingAETitle: options.aeTitle,
      calledAETitle: peer,
      presentationContexts: [{ abstractSyntax: SopClass.StorageCommitmentPushModel, transferSyntaxes: [...COMMAND_TRANSFER_SYNTAXES] }],
      // We send the N-EVENT-REPORT: we are the SCP of the class on an association we requested (PS3.4 J.3.3).
      roles: [{ sopClassUID: SopClass.StorageCommitmentPushModel, scuRole: false, scpRole: true }],
      timeouts: options.connectTimeouts ?? { connectMs: 10_000, artimMs: 30_000, responseMs: 60_000 },
      logger,
    });
    try {
      const rsp = await reportAssociation.nEventReport(request);
      if (rsp.status !== Status.Success) logger.warn('storage commitment: report answered with a failure', { status: rsp.status });
    } finally {
      await reportAssociation.release().catch(() => reportAssociation.abort());
    }
  };

  const nAction: CommitmentService['nAction'] = async (ctx, request) => {
    if (request.sopClassUID !== SopClass.StorageCommitmentPushModel) return { status: Status.NoSuchSOPClass };
    // PS3.4 J.3.5: the one well-known SOP Instance of the Push Model.
    if (request.sopInstanceUID !== STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE) return { status: 0x0112, errorComment: 'no such SOP instance' };
    if (request.actionTypeID !== 1) return { status: Status.NoSuchActionType };
    const info = request.actionInformation ?? {};
    const transactionUID = info[Tags.TransactionUID]?.Value?.[0];
    if (typeof transactionUID !== 'string' || !isValidUID(transactionUID.trim())) {
      return { status: MISSING_ATTRIBUTE_VALUE, errorComment: 'Transaction UID missing or invalid' };
    }
    const items = info[Tags.ReferencedSOPSequence]?.Value ?? [];
    if (items.length === 0) return { status: MISSING_ATTRIBUTE_VALUE, errorComment: 'Referenced SOP Sequence is empty' };
    if (items.length > maxReferences) return { status: RESOURCE_LIMITATION, errorComment: `more than ${maxReferences} references` };
    // Each accepted request polls until its deadline: bound how many can (PS3.7 C.5.x resource limitation).
    if (tasks.size >= maxPending) return { status: RESOURCE_LIMITATION, errorComment: 'too many storage commitment requests pending' };
    const refs: Reference[] = [];
    for (const v of items) {
      const ref = referenceOf(v);
      if (!ref) return { status: INVALID_ATTRIBUTE_VALUE, errorComment: 'a referenced SOP has no valid class/instance UID' };
      refs.push(ref);
    }
    const task = report(ctx.association, transactionUID.trim(), refs)
      .catch((error) => logger.warn('storage commitment: report not delivered', { code: (error as { code?: string }).code ?? (error as Error).name }))
      .finally(() => tasks.delete(task));
    tasks.add(task);
    return { status: Status.Success };
  };

  return {
    nAction,
    get pending() {
      return tasks.size;
    },
    idle: async () => {
      while (tasks.size > 0) await Promise.allSettled([...tasks]);
    },
    close: async () => {
      stop.abort();
      while (tasks.size > 0) await Promise.allSettled([...tasks]);
    },
  };
}

function item(r: Reference): DicomJsonDataset {
  return {
    [Tags.ReferencedSOPClassUID]: { vr: 'UI', Value: [r.sopClassUID] },
    [Tags.ReferencedSOPInstanceUID]: { vr: 'UI', Value: [r.sopInstanceUID] },
  };
}

function referenceOf(v: DicomJsonValue): Reference | undefined {
  if (!v || typeof v !== 'object' || 'Alphabetic' in v) return undefined;
  const ds = v as DicomJsonDataset;
  const cls = ds[Tags.ReferencedSOPClassUID]?.Value?.[0];
  const inst = ds[Tags.ReferencedSOPInstanceUID]?.Value?.[0];
  if (typeof cls !== 'string' || typeof inst !== 'string') return undefined;
  const [c, i] = [cls.trim(), inst.trim()];
  return isValidUID(c) && isValidUID(i) ? { sopClassUID: c, sopInstanceUID: i } : undefined;
}

const REPORT_RESPONSE_MS = 60_000;
const MAX_POLL_MS = 30_000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(Object.assign(new Error(`no N-EVENT-REPORT-RSP within ${ms} ms`), { code: 'TIMEOUT' })), ms);
    timer.unref?.();
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
