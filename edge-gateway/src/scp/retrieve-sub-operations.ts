/**
 * What C-MOVE (scp/move.ts) and C-GET (scp/get.ts) share: turning a
 * retrieve identifier into a plan, sending each instance as a C-STORE
 * sub-operation (PS3.4 C.4.2.3 / C.4.3.3), counting, pending responses,
 * cancel, and the final status (PS3.4 C.4.2.1.5, C.4.3.1.4).
 *
 * Bytes: each instance is fetched from the archive as stored (WADO-RS,
 * `transfer-syntax=*`) and streamed into the C-STORE without its preamble and
 * file meta — never decoded or re-encoded — when the peer accepted a
 * presentation context in the instance's own transfer syntax. Only when it
 * did not, and the instance is in a native (uncompressed) syntax, is it
 * buffered and converted with the core's `transcodeNative` into one the peer
 * accepted (Explicit or Implicit VR Little Endian). Otherwise the
 * sub-operation fails; the others go on.
 */
import { UNCOMPRESSED_TRANSFER_SYNTAXES } from '../../../functions/core/dicom/tags';
import { transcodeNative } from '../../../functions/core/dicom/transcode';
import { readFileMeta } from '../../../functions/core/dicom/part10';
import type { DicomWebClient, RetrievedInstance } from '../cloud/dicomweb-client';
import { isQueryRetrieveError } from '../query-retrieve/errors';
import { planRetrieve, type InstanceRef } from '../query-retrieve/retrieve';
import type { InformationModel } from '../query-retrieve/identifier';
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
): Promise<{ refs: InstanceRef[] } | { result: RetrieveResult }> {
  if (!model) return { result: { status: Status.SOPClassNotSupported, counts: zero() } };
  try {
    return { refs: await planRetrieve(client, model, identifier, { withTransferSyntax: true }) };
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
  /** Downloads started ahead of the instance being sent (default DEFAULT_PREFETCH). */
  prefetch?: number;
}

/** Largest native instance converted in memory when the peer lacks the stored syntax. */
const MAX_TRANSCODE_BYTES = 512 * 1024 * 1024;
/**
 * Instances whose download is started ahead of the one being sent: hides the
 * archive's per-request latency (API Gateway + Lambda: ~0.1 s each) behind
 * the transfer. Waiting bodies hold only socket buffers; the client's timeout
 * counts only time spent waiting for the archive, not their turn.
 */
export const DEFAULT_PREFETCH = 2;

type Fetched = { ok: true; instance: RetrievedInstance } | { ok: false; error: unknown };

/** Send every instance; the result is the final C-MOVE/C-GET response (status, counts, failed UIDs). */
export async function runSubOperations(refs: readonly InstanceRef[], o: SubOperationOptions): Promise<RetrieveResult> {
  const counts: SubOperationCounts = { remaining: refs.length, completed: 0, failed: 0, warning: 0 };
  const failed: string[] = [];
  const prefetch = Math.max(0, o.prefetch ?? DEFAULT_PREFETCH);
  const fetches = new Map<number, Promise<Fetched>>();
  const startFetch = (i: number): void => {
    const ref = refs[i];
    if (!ref || fetches.has(i) || !sendable(ref, o)) return;
    fetches.set(
      i,
      o.client.retrieveInstance(ref.studyInstanceUID, ref.seriesInstanceUID, ref.sopInstanceUID).then(
        (instance): Fetched => ({ ok: true, instance }),
        (error): Fetched => ({ ok: false, error }),
      ),
    );
  };
  let index = 0;
  try {
    for (; index < refs.length; index++) {
      if (o.cancelled.aborted) break;
      for (let k = index; k <= index + prefetch; k++) startFetch(k);
      const ref = refs[index]!;
      const outcome = await sendOne(ref, fetches.get(index), o);
      fetches.delete(index);
      // Cancelled while waiting for the archive: this one was not attempted and stays remaining.
      if (outcome === 'cancelled') break;
      counts.remaining -= 1;
      if (outcome === 'completed') counts.completed += 1;
      else if (outcome === 'warning') counts.warning += 1;
      else {
        counts.failed += 1;
        failed.push(ref.sopInstanceUID);
      }
      // A pending response after each sub-operation but the last (the final response carries those counts).
      if (index < refs.length - 1 && !o.cancelled.aborted) await o.pending({ ...counts });
    }
  } finally {
    // Downloads started for instances we will not send (cancel, closed association): stop them.
    for (const f of fetches.values()) void f.then((r) => (r.ok ? drain(r.instance.body) : undefined)).catch(() => undefined);
  }
  if (o.cancelled.aborted && index < refs.length) {
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
