/**
 * Lambda entry point of ingest (docs/upload-api.md): SQS messages that carry S3
 * event notifications (ObjectCreated under uploads/, sent straight or through
 * SNS) → ingestUploadedObject for each key. Partial batch failures
 * (ReportBatchItemFailures): a message is retried only when its failure was not
 * the object's (store or index unavailable) — and after maxReceiveCount it goes
 * to the dead-letter queue; a malformed object is judged once (failure recorded
 * in the upload's status, object deleted) and its message is done.
 * Never logs events or keys' contents beyond the upload id (no PHI there).
 */
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createAwsContext } from '../adapters/aws/aws-context';
import type { ArchiveContext } from '../core/archive/context';
import { errorCodeOf } from '../core/archive/errors';
import { ingestUploadedObject } from '../core/archive/ingest';

interface S3NotificationRecord {
  eventSource?: string;
  eventName?: string;
  s3?: { bucket?: { name?: string }; object?: { key?: string } };
}

/** Object keys in S3 notifications are URL-encoded, with '+' for a space. */
export function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/** The upload keys an SQS message announces; [] for test events and anything else. Throws on a body that is not JSON. */
export function uploadKeysOf(record: SQSRecord, bucket: string): string[] {
  let body = JSON.parse(record.body) as { Event?: string; Records?: S3NotificationRecord[]; Type?: string; Message?: string };
  // S3 → SNS → SQS wraps the notification once more.
  if (body.Type === 'Notification' && typeof body.Message === 'string') body = JSON.parse(body.Message) as typeof body;
  if (body.Event === 's3:TestEvent' || !Array.isArray(body.Records)) return [];
  return body.Records.filter((r) => r.eventSource === 'aws:s3' && r.eventName?.startsWith('ObjectCreated:') && r.s3?.bucket?.name === bucket && typeof r.s3.object?.key === 'string')
    .map((r) => decodeS3Key(r.s3!.object!.key!))
    .filter((key) => key.startsWith('uploads/'));
}

let ctx: ArchiveContext | undefined;

export const handler = async (event: SQSEvent, _context: Context): Promise<SQSBatchResponse> => {
  ctx ??= createAwsContext();
  const bucket = process.env.BUCKET_NAME!;
  const maxUploadBytes = process.env.MAX_UPLOAD_BYTES ? Number(process.env.MAX_UPLOAD_BYTES) : undefined;
  const batchItemFailures: SQSBatchItemFailure[] = [];
  for (const record of event.Records ?? []) {
    let keys: string[];
    try {
      keys = uploadKeysOf(record, bucket);
    } catch (error) {
      // Not JSON, or a key that does not decode: retrying cannot help.
      ctx.log.warn('ingest.message_unreadable', { error: (error as Error | undefined)?.name });
      continue;
    }
    try {
      for (const key of keys) {
        const outcome = await ingestUploadedObject(ctx, key, { maxUploadBytes });
        ctx.log.info('ingest.done', { state: outcome.state });
      }
    } catch (error) {
      ctx.log.error('ingest.retry', { code: errorCodeOf(error), error: (error as Error | undefined)?.name });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
};
