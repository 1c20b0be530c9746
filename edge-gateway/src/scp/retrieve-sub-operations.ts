/**
 * What C-MOVE (scp/move.ts) and C-GET (scp/get.ts) share: turning a
 * retrieve identifier into a plan, sending each instance as a C-STORE
 * sub-operation (PS3.4 C.4.2.3 / C.4.3.3), counting, pending responses,
 * cancel, and the final status (PS3.4 C.4.2.1.5, C.4.3.1.4).
 *
 * Bytes: instances are fetched from the archive as stored (WADO-RS,
 * `transfer-syntax=*`) — a whole series in one multipart answer when the
 * retrieve takes whole series (SERIES level and above), else one request per
 * instance with a few downloads ahead — read ahead of the sender within a
 * byte budget, and streamed into the C-STORE without preamble and file meta
 * — never decoded or re-encoded — when the peer accepted a
 * presentation context in the instance's own transfer syntax. Only when it
 * did not, and the instance is in a native (uncompressed) syntax, is it
 * buffered and converted with the core's `transcodeNative` into one the peer
 * accepted (Explicit or Implicit VR Little Endian). Otherwise the
 * sub-operation fails; the others go on.
 */
import { UNCOMPRESSED_TRANSFER_SYNTAXES } from '../../../functions/core/dicom/tags';
import { transcodeNative } from '../../../functions/core/dicom/transcode';
import { readFileMeta } from '../../../functions/core/dicom/part10';
import type { DicomWebClient, RetrievedInstance, RetrievedSeriesInstance } from '../cloud/dicomweb-client';
import { isQueryRetrieveError } from '../query-retrieve/errors';
import { planRetrieve, type InstanceRef } from '../query-retrieve/retrieve';
import { queryLevelOf, type InformationModel } from '../query-retrieve/identifier';
import { Status } from '../dimse/command';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../dimse/sop-classes';
import type { ProposedContext } from '../dimse/requestor';
import type { DimseAssociation, DimseLogger, RetrieveResult, SubOperationCounts } from '../dimse/types';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import { modelOfAbstractSyntax, untilCancelled } from './qr-common';

export { modelOfAbstractSyntax } from './qr-common';

const zero = (): SubOperationCounts => ({ remaining: 0, completed: 0, failed: 0, warning: 0 });

/** Plan a retrieve; a bad identifier or an unreachable archive becomes the final result (C.4.2.1.5: A701 when matches cannot be counted). */
export async function planOrFail(
  client: DicomWebClient,
  model: InformationModel | undefined,
  identifier: DicomJsonDataset,
): Promise<{ refs: InstanceRef[]; wholeSeries: boolean } | { result: RetrieveResult }> {
  if (!model) return { result: { status: Status.SOPClassNotSupported, counts: zero() } };
  try {
    const refs = await planRetrieve(client, model, identifier, { withTransferSyntax: true });
    // Above IMAGE level the plan is every instance of each series it names (PS3.4 C.4.2.2.1): a series retrieve fetches nothing more.
    return { refs, wholeSeries: queryLevelOf(model, identifier) !== 'IMAGE' };
  } catch (error) {
    if (isQueryRetrieveError(error)) {
      const status = error.code === 'CLOUD_UNAVAILABLE' ? Status.OutOfResourcesNumberOfMatches : error.status;
      return { result: { status, errorComment: error.message.slice(0, 64), counts: zero() } };
    }
    throw error;
  }
}

const NATIVE = new Set(UNCOMPRESSED_TRANSFER_SYNTAXES);
const FALLBACK = [EXPLICIT_VR_LE, IMPLICIT_VR_LE];

/**
 * Presentation contexts a C-MOVE requestor proposes (PS3.8 §9.3.2.2, at most
 * 128): per SOP class, one context per stored transfer syntax alone (so the
 * acceptor cannot pick another one for it: original bytes go out unchanged),
 * then one with Explicit + Implicit VR LE for conversion when the acceptor
 * refused the stored syntax of a native instance.
 */
export function proposeContexts(refs: readonly InstanceRef[]): ProposedContext[] {
  const byClass = new Map<string, Set<string>>();
  for (const r of refs) {
    const set = byClass.get(r.sopClassUID) ?? new Set<string>();
    if (r.transferSyntaxUID) set.add(r.transferSyntaxUID);
    byClass.set(r.sopClassUID, set);
  }
  const own: ProposedContext[] = [];
  const fallback: ProposedContext[] = [];
  for (const [sopClass, syntaxes] of byClass) {
    for (const ts of syntaxes) own.push({ abstractSyntax: sopClass, transferSyntaxes: [ts] });
    fallback.push({ abstractSyntax: sopClass, transferSyntaxes: [...FALLBACK] });
  }
  // Over 128, the exact-syntax contexts win; classes left without one fail their sub-operations.
  return [...own, ...fallback].slice(0, 128);
}

export interface SubOperationOptions {
  client: DicomWebClient;
  /** The association the C-STOREs go out on (a new one for C-MOVE, the request's for C-GET). */
  association: DimseAssociation;
  /** C-GET: the requestor must have taken the SCP role for the storage class (PS3.4 C.4.3.1, PS3.7 D.3.3.4). */
  requireScpRole?: boolean;
  /** C-MOVE: Move Originator AE title and message ID for each C-STORE-RQ (PS3.7 §9.1.1.1). */
  moveOriginator?: { aeTitle: string; messageID: number };
  pending(counts: SubOperationCounts): Promise<void>;
  cancelled: AbortSignal;
  logger: DimseLogger;
  /** The refs are every instance of their series (planOrFail): fetch each series of two or more in one request. */
  wholeSeries?: boolean;
  /** Per-instance downloads started ahead of the instance being sent (default DEFAULT_PREFETCH). */
  prefetch?: number;
  /** Bytes downloaded ahead of the sender, at most (default DEFAULT_READ_AHEAD_BYTES). */
  readAheadBytes?: number;
}

/** Largest native instance converted in memory when the peer lacks the stored syntax. */
const MAX_TRANSCODE_BYTES = 512 * 1024 * 1024;
/**
 * Instances whose download is started ahead of the one being sent, when they
 * are fetched one by one: hides the archive's per-request latency (API
 * Gateway + Lambda: ~0.1 s each) behind the transfer. The client's timeout
 * counts only time spent waiting for the archive, not their turn.
 */
export const DEFAULT_PREFETCH = 2;
/**
 * Bytes read from the archive ahead of the C-STORE being sent (a series
 * answer, or shared by the per-instance downloads in flight). The download
 * and the DIMSE transfer then overlap instead of taking turns; the budget
 * bounds memory whatever the series or instance size (a 512 MB instance is
 * never held whole, except to convert it). Measured on the 600-slice CT
 * move (scripts/measure-gateway-move.ts): 2–8 MiB are as fast as 16 MiB;
 * 16 and 64 MiB only cost memory and garbage-collector time.
 */
export const DEFAULT_READ_AHEAD_BYTES = 4 * 1024 * 1024;

type Fetched = { ok: true; instance: RetrievedInstance } | { ok: false; error: unknown };

/** Send every instance; the result is the final C-MOVE/C-GET response (status, counts, failed UIDs). */
export async function runSubOperations(refs: readonly InstanceRef[], o: SubOperationOptions): Promise<RetrieveResult> {
  const counts: SubOperationCounts = { remaining: refs.length, completed: 0, failed: 0, warning: 0 };
  const failed: string[] = [];
  const record = async (ref: InstanceRef, outcome: Exclude<Outcome, 'cancelled'>): Promise<void> => {
    counts.remaining -= 1;
    if (outcome === 'completed') counts.completed += 1;
    else if (outcome === 'warning') counts.warning += 1;
    else {
      counts.failed += 1;
      failed.push(ref.sopInstanceUID);
    }
    // A pending response after each sub-operation but the last (the final response carries those counts).
    if (counts.remaining > 0 && !o.cancelled.aborted) await o.pending({ ...counts });
  };
  // 'cancelled' from the senders means the signal fired (untilCancelled): the loop stops on the signal alone.
  for (const group of bySeries(refs)) {
    if (o.cancelled.aborted) break;
    let rest = group;
    // One instance: its own request (no gain from a series answer).
    if (o.wholeSeries && group.length > 1 && group.some((r) => sendable(r, o))) {
      const streamed = await sendSeries(group, o, record);
      if (streamed === 'cancelled') break;
      rest = streamed;
    }
    if ((await sendEach(rest, o, record)) === 'cancelled') break;
  }
  if (o.cancelled.aborted && counts.remaining > 0) {
    // PS3.4 C.4.2.1.5: Cancel carries the counts so far; the not-attempted ones are the remaining.
    return { status: Status.Cancel, counts: { ...counts }, failedSOPInstanceUIDs: failed };
  }
  const final = { ...counts, remaining: 0 };
  if (counts.failed === 0 && counts.warning === 0) return { status: Status.Success, counts: final };
  if (counts.completed === 0 && counts.warning === 0) {
    return { status: Status.OutOfResourcesSubOperations, errorComment: 'all sub-operations failed', counts: final, failedSOPInstanceUIDs: failed };
  }
  return { status: Status.SubOperationsWarning, counts: final, failedSOPInstanceUIDs: failed };
}

type RecordOutcome = (ref: InstanceRef, outcome: Exclude<Outcome, 'cancelled'>) => Promise<void>;

/** The refs by series, in plan order (a series retrieve answers one series). */
function bySeries(refs: readonly InstanceRef[]): InstanceRef[][] {
  const groups = new Map<string, InstanceRef[]>();
  for (const r of refs) {
    const key = `${r.studyInstanceUID}/${r.seriesInstanceUID}`;
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  }
  return [...groups.values()];
}

/**
 * One series retrieve for the group: each instance is sent as its part
 * arrives (archive order). Parts the plan does not name (stored since the
 * query) are skipped. Returns the refs it did not attempt — the answer broke
 * off, the archive cannot answer a series in one response, or the
 * association closed — for the per-instance path, or 'cancelled'.
 */
async function sendSeries(group: InstanceRef[], o: SubOperationOptions, record: RecordOutcome): Promise<InstanceRef[] | 'cancelled'> {
  // The refs not yet sent; each leaves as its part arrives.
  const wanted = new Map(group.map((r) => [r.sopInstanceUID, r]));
  const first = group[0]!;
  const parts = o.client
    .retrieveSeries(first.studyInstanceUID, first.seriesInstanceUID, { readAheadBytes: o.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES, signal: o.cancelled })
    [Symbol.asyncIterator]();
  try {
    while (wanted.size > 0 && o.association.isOpen) {
      let next: IteratorResult<RetrievedSeriesInstance> | 'cancelled';
      try {
        next = await untilCancelled(parts.next(), o.cancelled);
      } catch (error) {
        const e = error as { code?: string; status?: number };
        // 413 and the like: this archive answers per instance; a break mid-answer: the rest per instance.
        o.logger.info('series retrieve stopped; the rest per instance', { code: e.code, status: e.status, sent: group.length - wanted.size, of: group.length });
        break;
      }
      if (next === 'cancelled') return 'cancelled';
      if (next.done) break;
      const instance = next.value;
      const ref = wanted.get(instance.sopInstanceUID);
      // Not asked for, or a repeat: asking for the next part skips its bytes.
      if (!ref) continue;
      wanted.delete(ref.sopInstanceUID);
      const outcome = await sendOne(ref, sendable(ref, o) ? Promise.resolve({ ok: true, instance }) : undefined, o);
      if (outcome === 'cancelled') return 'cancelled';
      await record(ref, outcome);
      if (o.cancelled.aborted) return 'cancelled';
    }
  } finally {
    // Unread parts (cancel, a closed association, all sent before the end): stop the download.
    void parts.return?.(undefined).catch(() => undefined);
  }
  return group.filter((r) => wanted.has(r.sopInstanceUID));
}

/** One WADO-RS request per instance, `prefetch` downloads ahead of the one being sent. */
async function sendEach(refs: readonly InstanceRef[], o: SubOperationOptions, record: RecordOutcome): Promise<'done' | 'cancelled'> {
  if (refs.length === 0) return 'done';
  const prefetch = Math.max(0, o.prefetch ?? DEFAULT_PREFETCH);
  // The read-ahead budget is shared by the downloads in flight.
  const readAheadBytes = Math.floor((o.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES) / (prefetch + 1));
  const fetches = new Map<number, Promise<Fetched>>();
  const startFetch = (i: number): void => {
    const ref = refs[i];
    if (!ref || fetches.has(i) || !sendable(ref, o)) return;
    fetches.set(
      i,
      o.client.retrieveInstance(ref.studyInstanceUID, ref.seriesInstanceUID, ref.sopInstanceUID, { readAheadBytes }).then(
        (instance): Fetched => ({ ok: true, instance }),
        (error): Fetched => ({ ok: false, error }),
      ),
    );
  };
  try {
    for (let index = 0; index < refs.length; index++) {
      if (o.cancelled.aborted) return 'cancelled';
      for (let k = index; k <= index + prefetch; k++) startFetch(k);
      const ref = refs[index]!;
      const outcome = await sendOne(ref, fetches.get(index), o);
      fetches.delete(index);
      // Cancelled while waiting for the archive: this one was not attempted and stays remaining.
      if (outcome === 'cancelled') return 'cancelled';
      await record(ref, outcome);
    }
  } finally {
    // Downloads started for instances we will not send (cancel, closed association): stop them.
    for (const f of fetches.values()) void f.then((r) => (r.ok ? drain(r.instance.body) : undefined)).catch(() => undefined);
  }
  return 'done';
}

type Outcome = 'completed' | 'warning' | 'failed' | 'cancelled';

/** Can this instance go out on the association at all? Decided before any download. */
function sendable(ref: InstanceRef, o: SubOperationOptions): boolean {
  const a = o.association;
  if (!a.isOpen) return false;
  if (o.requireScpRole && !a.roles.some((r) => r.sopClassUID === ref.sopClassUID && r.scpRole)) return false;
  if (ref.transferSyntaxUID && !a.findPresentationContext(ref.sopClassUID, ref.transferSyntaxUID) && !canConvert(a, ref.sopClassUID, ref.transferSyntaxUID)) return false;
  return true;
}

async function sendOne(ref: InstanceRef, fetched: Promise<Fetched> | undefined, o: SubOperationOptions): Promise<Outcome> {
  const a = o.association;
  if (!fetched) {
    // not sendable: say why once per instance
    if (o.requireScpRole && !a.roles.some((r) => r.sopClassUID === ref.sopClassUID && r.scpRole)) {
      o.logger.info('c-get sub-operation failed: no SCP role for the storage class', { sopClassUID: ref.sopClassUID });
    } else if (a.isOpen) {
      o.logger.info('sub-operation failed: no presentation context for the stored transfer syntax', { sopClassUID: ref.sopClassUID, transferSyntaxUID: ref.transferSyntaxUID });
    }
    return 'failed';
  }
  const got = await untilCancelled(fetched, o.cancelled);
  if (got === 'cancelled') return 'cancelled';
  if (!got.ok) {
    const error = got.error as { code?: string; status?: number };
    o.logger.warn('sub-operation failed: archive retrieve', { code: error.code, status: error.status });
    return 'failed';
  }
  const instance = got.instance;
  try {
    let transferSyntaxUID = instance.transferSyntaxUID;
    let dataset: AsyncIterable<Uint8Array> | Uint8Array;
    if (a.findPresentationContext(ref.sopClassUID, transferSyntaxUID)) {
      dataset = skipBytes(instance.body, instance.datasetOffset);
    } else {
      const target = convertTarget(a, ref.sopClassUID, transferSyntaxUID);
      if (!target) {
        await drain(instance.body);
        return 'failed';
      }
      const whole = await collect(instance.body, MAX_TRANSCODE_BYTES);
      const converted = transcodeNative(whole, target);
      dataset = converted.subarray(readFileMeta(converted).datasetOffset);
      transferSyntaxUID = target;
    }
    const rsp = await a.store({
      sopClassUID: ref.sopClassUID,
      sopInstanceUID: ref.sopInstanceUID,
      transferSyntaxUID,
      dataset,
      ...(o.moveOriginator ? { moveOriginator: o.moveOriginator } : {}),
    });
    if (rsp.status === Status.Success) return 'completed';
    // PS3.4 B.2.3: 0xB000, 0xB007, 0xB006 are warnings (stored, with coercion or the like).
    if ((rsp.status & 0xf000) === 0xb000) return 'warning';
    return 'failed';
  } catch (error) {
    o.logger.warn('sub-operation failed', { code: (error as { code?: string }).code });
    await drain(instance.body).catch(() => undefined);
    return 'failed';
  }
}

function canConvert(a: DimseAssociation, sopClassUID: string, stored: string): boolean {
  return convertTarget(a, sopClassUID, stored) !== undefined;
}

function convertTarget(a: DimseAssociation, sopClassUID: string, stored: string): string | undefined {
  if (!NATIVE.has(stored)) return undefined;
  for (const ts of FALLBACK) if (a.findPresentationContext(sopClassUID, ts)) return ts;
  for (const ts of UNCOMPRESSED_TRANSFER_SYNTAXES) if (a.findPresentationContext(sopClassUID, ts)) return ts;
  return undefined;
}

async function* skipBytes(body: AsyncIterable<Uint8Array>, n: number): AsyncGenerator<Uint8Array> {
  let skip = n;
  for await (const chunk of body) {
    if (skip >= chunk.length) {
      skip -= chunk.length;
      continue;
    }
    yield skip > 0 ? chunk.subarray(skip) : chunk;
    skip = 0;
  }
}

async function collect(body: AsyncIterable<Uint8Array>, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const c of body) {
    size += c.length;
    if (size > max) throw new RangeError('instance too large to convert in memory');
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Stop a download we will not use (returning the iterator cancels the request). */
async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  await body[Symbol.asyncIterator]().return?.();
}
