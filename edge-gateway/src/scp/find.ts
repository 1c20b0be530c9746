/**
 * C-FIND SCP (PS3.4 Annex C, C.4.1) for the Patient Root and Study Root
 * Query/Retrieve information models, answered from the archive with QIDO-RS
 * (query-retrieve/find.ts does the translation).
 *
 * Statuses (PS3.4 C.4.1.1.4): one 0xFF00 Pending per match, then 0x0000;
 * 0xFE00 after C-CANCEL (PS3.7 §9.3.2.3) — stopped between two matches or
 * while waiting for the archive; 0xA900 for an identifier that does not fit
 * the model (no or bad Query/Retrieve Level, missing unique keys above the
 * level, keys below it with values); 0xC000 for values that cannot be matched;
 * 0xA700 when the archive cannot be reached. Error comments name attributes,
 * never values (PHI).
 */
import type { DicomWebClient } from '../cloud/dicomweb-client';
import { Status } from '../dimse/command';
import { silentDimseLogger, type DimseLogger, type DimseServices, type ServiceResult } from '../dimse/types';
import { findMatches } from '../query-retrieve/find';
import { isQueryRetrieveError } from '../query-retrieve/errors';
import { errorComment, modelOfAbstractSyntax, untilCancelled } from './qr-common';

export interface FindServiceOptions {
  client: DicomWebClient;
  /** Our AE title: the Retrieve AE Title (0008,0054) of every match. */
  aeTitle: string;
  logger?: DimseLogger;
}

export function createFindService(options: FindServiceOptions): NonNullable<DimseServices['find']> {
  const logger = options.logger ?? silentDimseLogger;
  return async (ctx, identifier, respond, cancelled): Promise<ServiceResult> => {
    const model = modelOfAbstractSyntax(ctx.presentationContext.abstractSyntax);
    if (!model) return { status: Status.SOPClassNotSupported };
    let matches = 0;
    const iterator = findMatches(options.client, model, identifier, { retrieveAETitle: options.aeTitle })[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await untilCancelled(iterator.next(), cancelled);
        if (next === 'cancelled') return { status: Status.Cancel };
        if (next.done) break;
        await respond.pending(next.value);
        matches += 1;
        if (cancelled.aborted) return { status: Status.Cancel };
      }
      logger.info('c-find done', { matches });
      return { status: Status.Success };
    } catch (error) {
      if (cancelled.aborted) return { status: Status.Cancel };
      if (isQueryRetrieveError(error)) {
        logger.info('c-find failed', { code: error.code, status: error.status });
        return { status: error.status, errorComment: errorComment(error.message) };
      }
      logger.error('c-find failed', { error: (error as Error).name });
      return { status: Status.UnableToProcess, errorComment: 'internal error' };
    } finally {
      // Stop the QIDO paging (and its open request) when we leave early.
      void iterator.return?.(undefined).catch(() => undefined);
    }
  };
}
