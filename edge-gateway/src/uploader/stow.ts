/**
 * One instance by STOW-RS (PS3.18 §10.5): POST {base}/studies with a
 * multipart/related body of one application/dicom part, streamed from the
 * spooled file with an exact Content-Length (never buffered). The response
 * data set says per instance: ReferencedSOPSequence (stored — an identical
 * duplicate is stored too), or FailedSOPSequence with a FailureReason.
 */
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { newBoundary } from '../../../functions/core/dicomweb/multipart';
import { Tag } from '../../../functions/core/dicom/tags';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import { httpRequest, type HttpRequest } from './http-request';
import { classifyHttpError, hex4, isTransientFailureReason, type UploadOutcome } from './outcome';

export interface TransferContext {
  dicomWebUrl: string;
  authHeaders: () => Promise<Record<string, string>>;
  timeoutMs: number;
  agents?: HttpRequest['agents'];
}

function sequenceItems(ds: DicomJsonDataset | undefined, tag: string): DicomJsonDataset[] {
  const v = ds?.[tag]?.Value;
  return Array.isArray(v) ? (v.filter((x) => typeof x === 'object' && x !== null) as DicomJsonDataset[]) : [];
}

function firstString(ds: DicomJsonDataset, tag: string): string | undefined {
  const v = ds[tag]?.Value?.[0];
  return typeof v === 'string' ? v : undefined;
}

/** Read the outcome for one SOP Instance from a STOW-RS response data set. */
export function outcomeFromStowResponse(status: number, body: Buffer, sopInstanceUID: string): UploadOutcome {
  let ds: DicomJsonDataset | undefined;
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    // The response is one data set (PS3.18 F.2); some servers wrap it in an array.
    ds = (Array.isArray(parsed) ? parsed[0] : parsed) as DicomJsonDataset;
  } catch {
    ds = undefined;
  }
  if (sequenceItems(ds, Tag.ReferencedSOPSequence).some((i) => firstString(i, Tag.ReferencedSOPInstanceUID) === sopInstanceUID)) return { kind: 'done' };
  const failed = sequenceItems(ds, Tag.FailedSOPSequence).find((i) => firstString(i, Tag.ReferencedSOPInstanceUID) === sopInstanceUID) ?? sequenceItems(ds, Tag.FailedSOPSequence)[0];
  const code = failed?.[Tag.FailureReason]?.Value?.[0];
  if (typeof code === 'number') {
    if (isTransientFailureReason(code)) return { kind: 'retry', reason: `STOW FailureReason ${hex4(code)}` };
    if (code === 0x0111) return { kind: 'reject', reason: `STOW FailureReason 0x0111 DUPLICATE_SOP_INSTANCE: the archive holds different content under this SOP Instance UID` };
    return { kind: 'reject', reason: `STOW FailureReason ${hex4(code)}` };
  }
  // 200 means every instance stored (PS3.18 §10.5.3.1), even if the body is not one we can read.
  if (status === 200) return { kind: 'done', note: 'STOW 200 without a readable response data set' };
  return { kind: 'reject', reason: `STOW HTTP ${status} without a failure reason for this instance` };
}

export async function stowInstance(ctx: TransferContext, file: string, sopInstanceUID: string): Promise<UploadOutcome> {
  const size = (await fs.promises.stat(file)).size;
  const boundary = newBoundary();
  const head = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const res = await httpRequest({
    method: 'POST',
    url: `${ctx.dicomWebUrl}/studies`,
    headers: {
      ...(await ctx.authHeaders()),
      'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      Accept: 'application/dicom+json',
    },
    contentLength: head.length + size + tail.length,
    body: () =>
      Readable.from(
        (async function* () {
          yield head;
          // Exactly the size announced, even if the file were to change under us.
          yield* fs.createReadStream(file, { start: 0, end: Math.max(0, size - 1), highWaterMark: 256 * 1024 });
          yield tail;
        })(),
      ),
    timeoutMs: ctx.timeoutMs,
    agents: ctx.agents,
  });
  if ([200, 202, 409].includes(res.status)) {
    const outcome = outcomeFromStowResponse(res.status, res.body, sopInstanceUID);
    // 409 with no per-instance verdict: treat as any other 4xx below.
    if (!(res.status === 409 && outcome.kind === 'reject' && outcome.reason.startsWith('STOW HTTP'))) return outcome;
  }
  // Too large for STOW here (a Lambda body limit): the large-object upload API takes it (docs/upload-api.md).
  if (res.status === 413) return { kind: 'retry', reason: 'HTTP 413 from STOW: switching to the upload API', route: 'upload', retryAfterMs: 0 };
  return classifyHttpError(res.status, res.headers, res.body);
}
