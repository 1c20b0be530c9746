/**
 * C-GET SCP (PS3.4 C.4.3) for the Patient Root and Study Root models: the
 * instances go back as C-STORE sub-operations on the same association. The
 * requestor must have proposed each storage SOP class and taken the SCP role
 * for it (SCP/SCU Role Selection, PS3.7 D.3.3.4; PS3.4 C.4.3.1); an instance
 * whose class or transfer syntax it did not negotiate fails on its own
 * (counted, listed in Failed SOP Instance UID List). Original bytes, native
 * conversion only when needed, counts, cancel and final statuses as for
 * C-MOVE (retrieve-sub-operations.ts).
 */
import type { DicomWebClient } from '../cloud/dicomweb-client';
import { Status } from '../dimse/command';
import { silentDimseLogger, type DimseLogger, type DimseServices, type RetrieveResult } from '../dimse/types';
import { modelOfAbstractSyntax, planOrFail, runSubOperations } from './retrieve-sub-operations';

export interface GetServiceOptions {
  client: DicomWebClient;
  logger?: DimseLogger;
}

export function createGetService(options: GetServiceOptions): NonNullable<DimseServices['get']> {
  const logger = options.logger ?? silentDimseLogger;
  return async (ctx, identifier, respond, cancelled): Promise<RetrieveResult> => {
    const planned = await planOrFail(options.client, modelOfAbstractSyntax(ctx.presentationContext.abstractSyntax), identifier);
    if ('result' in planned) return planned.result;
    const refs = planned.refs;
    if (refs.length === 0) return { status: Status.Success, counts: { remaining: 0, completed: 0, failed: 0, warning: 0 } };
    const result = await runSubOperations(refs, {
      client: options.client,
      association: ctx.association,
      requireScpRole: true,
      pending: respond.pending,
      cancelled,
      logger,
      wholeSeries: planned.wholeSeries,
    });
    logger.info('c-get done', { status: result.status, completed: result.counts.completed, failed: result.counts.failed, warning: result.counts.warning });
    return result;
  };
}
