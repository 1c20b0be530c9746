/**
 * The DIMSE acceptor: a TCP or TLS (PS3.15 B.1) listener that runs one
 * `Association` per connection.
 *
 * Policy enforced here, before any PDU is read or allocated: the IP
 * allow-list (connection closed at once) and a cap on raw connections.
 * Enforced on the A-ASSOCIATE-RQ: called AE (RJ reason 7), calling AE
 * allow-list (RJ reason 3), and maxAssociations (RJ transient, source 3,
 * local limit exceeded — PS3.8 §9.3.4).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Association, normalizeAddress } from './association';
import { PduType, RejectReason, RejectResult, RejectSource } from './pdu';
import { negotiateAssociation } from './negotiate';
import type { AbstractSyntaxKind } from './sop-classes';
import { silentDimseLogger, type DimseAssociation, type DimseHooks, type DimseLogger, type DimseServices } from './types';

export interface DimseServerOptions {
  aeTitle: string;
  host: string;
  port: number;
  services: DimseServices;
  /** PS3.15 B.1 TLS: key/cert (and ca + requestCert for mutual TLS). */
  tls?: tls.TlsOptions;
  allowedCallingAETitles?: string[];
  allowedIPs?: string[];
  maxAssociations: number;
  maxPduLength: number;
  idleTimeoutMs: number;
  artimTimeoutMs: number;
  /** Override which abstract syntax kinds are accepted (default: derived from `services`). */
  kinds?: AbstractSyntaxKind[];
  logger?: DimseLogger;
  hooks?: DimseHooks;
}

export interface DimseServer {
  readonly port: number;
  readonly activeAssociations: number;
  /** Stop accepting, abort remaining associations after `graceMs` (default 5 s). */
  close(graceMs?: number): Promise<void>;
}

function kindsFor(services: DimseServices): Set<AbstractSyntaxKind> {
  const kinds = new Set<AbstractSyntaxKind>(['verification']);
  if (services.store) kinds.add('storage');
  if (services.find) kinds.add('find');
  if (services.move) kinds.add('move');
  if (services.get) kinds.add('get');
  if (services.nAction) kinds.add('commitment');
  return kinds;
}

export async function createDimseServer(options: DimseServerOptions): Promise<DimseServer> {
  const logger = options.logger ?? silentDimseLogger;
  const kinds = new Set(options.kinds ?? kindsFor(options.services));
  const allowedIPs = new Set((options.allowedIPs ?? []).map(normalizeAddress));
  const associations = new Set<Association>();
  const established = new Set<DimseAssociation>();
  // Connections that have not (yet) associated also cost a socket: bound them too.
  const maxConnections = options.maxAssociations + 16;
  const hooks: DimseHooks = {
    ...options.hooks,
    associationAccepted: (a) => {
      established.add(a);
      options.hooks?.associationAccepted?.(a);
    },
    associationClosed: (a, how) => {
      established.delete(a);
      options.hooks?.associationClosed?.(a, how);
    },
  };

  const onConnection = (socket: net.Socket, isTls: boolean) => {
    const address = normalizeAddress(socket.remoteAddress ?? '');
    if (allowedIPs.size > 0 && !allowedIPs.has(address)) {
      logger.info('dimse connection refused: address not allowed', { host: address });
      options.hooks?.associationRejected?.('ip');
      socket.destroy();
      return;
    }
    if (associations.size >= maxConnections) {
      logger.warn('dimse connection refused: too many connections', { host: address });
      options.hooks?.associationRejected?.('connections');
      socket.destroy();
      return;
    }
    const association = new Association({
      socket,
      role: 'acceptor',
      tls: isTls,
      maxPduLength: options.maxPduLength,
      timeouts: { artimMs: options.artimTimeoutMs, idleMs: options.idleTimeoutMs },
      services: options.services,
      logger,
      hooks,
      onAssociateRequest: (rq) => {
        if (established.size >= options.maxAssociations) {
          return {
            ok: false,
            rj: { type: PduType.AssociateRJ, result: RejectResult.Transient, source: RejectSource.ServiceProviderPresentation, reason: RejectReason.LocalLimitExceeded },
            reason: 'association limit',
          };
        }
        return negotiateAssociation(rq, {
          aeTitle: options.aeTitle,
          allowedCallingAETitles: options.allowedCallingAETitles,
          kinds,
          maxPduLength: options.maxPduLength,
        });
      },
    });
    associations.add(association);
    void association.closed.then(() => associations.delete(association));
  };

  let server: net.Server;
  if (options.tls) {
    // The handshake is bounded like the A-ASSOCIATE-RQ that follows it (ARTIM), not Node's default 120 s.
    server = tls.createServer({ handshakeTimeout: options.artimTimeoutMs, ...options.tls }, (socket) => onConnection(socket, true));
    // Handshake failures (plain DICOM on a TLS port, bad client cert) must not take the server down.
    server.on('tlsClientError', (e, socket) => {
      logger.info('dimse TLS handshake failed', { host: normalizeAddress(socket.remoteAddress ?? ''), reason: e.message });
      socket.destroy();
    });
  } else {
    server = net.createServer((socket) => onConnection(socket, false));
  }
  // Sockets still in the TLS handshake are not in `associations` yet: the server itself bounds them all.
  server.maxConnections = maxConnections;
  server.on('error', (e) => logger.error('dimse server error', { reason: e.message }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  logger.info('dimse listening', { host: options.host, port });

  return {
    port,
    get activeAssociations() {
      return established.size;
    },
    async close(graceMs = 5000) {
      const closedServer = new Promise<void>((r) => server.close(() => r()));
      const all = [...associations].map((a) => a.closed);
      const timer = setTimeout(() => {
        for (const a of associations) a.abort();
      }, graceMs);
      timer.unref();
      await Promise.all(all);
      clearTimeout(timer);
      await closedServer;
    },
  };
}
