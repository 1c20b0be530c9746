/**
 * C-MOVE SCP (PS3.4 C.4.2) for the Patient Root and Study Root models: the
 * instances the identifier names are fetched from the archive and sent as
 * C-STORE sub-operations over a new association to the Move Destination,
 * which must be a known AE (config.dimse.destinations; unknown: 0xA801).
 *
 * The association proposes each needed storage SOP class with the
 * instances' stored transfer syntaxes plus Explicit/Implicit VR Little
 * Endian (retrieve-sub-operations.ts sends original bytes, converting only
 * native syntaxes and only when needed). Pending responses carry the
 * remaining/completed/failed/warning counts; C-CANCEL stops between two
 * instances (0xFE00). Final: 0x0000; 0xB000 with the Failed SOP Instance UID
 * List (0008,0058) when some failed; 0xA702 when all failed (also when the
 * destination cannot be reached); 0xA701 when the archive cannot be asked.
 */
import type { DicomWebClient } from '../cloud/dicomweb-client';
import type { RemoteNodeConfig } from '../config-types';
import { Status } from '../dimse/command';
import { connectDimse, type ConnectDimseOptions } from '../dimse/requestor';
import { silentDimseLogger, type DimseAssociation, type DimseLogger, type DimseServices, type RetrieveResult } from '../dimse/types';
import { modelOfAbstractSyntax, planOrFail, proposeContexts, runSubOperations } from './retrieve-sub-operations';
import type * as tls from 'node:tls';

export interface MoveServiceOptions {
  client: DicomWebClient;
  /** Our AE title: the calling AE of the sub-operation association. */
  aeTitle: string;
  /** Known AEs by title (config.dimse.destinations). */
  destinations: Record<string, RemoteNodeConfig>;
  /** TLS options for destinations with `tls: true` (CA, client certificate). */
  tlsOptions?: tls.ConnectionOptions;
  maxPduLength?: number;
  timeouts?: ConnectDimseOptions['timeouts'];
  logger?: DimseLogger;
  /** For tests: how to open the association. */
  connect?: (options: ConnectDimseOptions) => Promise<DimseAssociation>;
}

/**
 * A destination that stops answering must not hold the C-MOVE (and its
 * association) forever. The response timer runs from the start of a C-STORE,
 * so it bounds sending plus answering: generous enough for a multi-GB instance.
 */
export const DEFAULT_MOVE_TIMEOUTS: NonNullable<ConnectDimseOptions['timeouts']> = { connectMs: 10_000, artimMs: 30_000, responseMs: 10 * 60_000 };

export function createMoveService(options: MoveServiceOptions): NonNullable<DimseServices['move']> {
  const logger = options.logger ?? silentDimseLogger;
  const connect = options.connect ?? connectDimse;
  return async (ctx, identifier, respond, cancelled): Promise<RetrieveResult> => {
    const zero = { remaining: 0, completed: 0, failed: 0, warning: 0 };
    const destinationAE = (ctx.command.moveDestination ?? '').trim();
    // Own properties only: a destination called "constructor" is not a destination.
    const node = Object.prototype.hasOwnProperty.call(options.destinations, destinationAE) ? options.destinations[destinationAE] : undefined;
    if (!node) {
      logger.info('c-move refused: unknown destination');
      return { status: Status.MoveDestinationUnknown, errorComment: 'move destination unknown', counts: zero };
    }
    const planned = await planOrFail(options.client, modelOfAbstractSyntax(ctx.presentationContext.abstractSyntax), identifier);
    if ('result' in planned) return planned.result;
    const refs = planned.refs;
    if (refs.length === 0) return { status: Status.Success, counts: zero };
    if (cancelled.aborted) return { status: Status.Cancel, counts: { ...zero, remaining: refs.length } };

    let association: DimseAssociation;
    try {
      association = await connect({
        host: node.host,
        port: node.port,
        tls: node.tls ? (options.tlsOptions ?? true) : undefined,
        callingAETitle: options.aeTitle,
        calledAETitle: destinationAE,
        presentationContexts: proposeContexts(refs),
        maxPduLength: options.maxPduLength,
        timeouts: options.timeouts ?? DEFAULT_MOVE_TIMEOUTS,
        logger,
      });
    } catch (error) {
      logger.warn('c-move: destination association failed', { code: (error as { code?: string }).code });
      return {
        status: Status.OutOfResourcesSubOperations,
        errorComment: 'cannot associate with the move destination',
        counts: { ...zero, failed: refs.length },
        failedSOPInstanceUIDs: refs.map((r) => r.sopInstanceUID),
      };
    }
    try {
      const result = await runSubOperations(refs, {
        client: options.client,
        association,
        moveOriginator: { aeTitle: ctx.association.peerAETitle, messageID: ctx.command.messageID ?? 0 },
        pending: respond.pending,
        cancelled,
        logger,
        wholeSeries: planned.wholeSeries,
      });
      logger.info('c-move done', { status: result.status, completed: result.counts.completed, failed: result.counts.failed, warning: result.counts.warning });
      return result;
    } finally {
      await association.release().catch(() => association.abort());
    }
  };
}
