/**
 * The DIMSE requestor: open a TCP or TLS connection, propose presentation
 * contexts and roles (PS3.8 §7.1, PS3.7 D.3.3.4), and return the
 * association once accepted. Used for C-MOVE sub-operations, storage
 * commitment reports on a new association, and in tests.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Association } from './association';
import { DICOM_APPLICATION_CONTEXT, PduType, type RoleSelection } from './pdu';
import { GATEWAY_IMPLEMENTATION_CLASS_UID, GATEWAY_IMPLEMENTATION_VERSION_NAME } from './negotiate';
import { silentDimseLogger, type DimseAssociation, type DimseHooks, type DimseLogger, type DimseServices } from './types';

export interface ProposedContext {
  abstractSyntax: string;
  transferSyntaxes: string[];
}

export interface ConnectDimseOptions {
  host: string;
  port: number;
  /** true for default TLS options, or node TLS connect options (ca, cert, key, servername…). */
  tls?: boolean | tls.ConnectionOptions;
  callingAETitle: string;
  calledAETitle: string;
  presentationContexts: ProposedContext[];
  roles?: RoleSelection[];
  /** Our max receive PDU length (default 64 KiB). */
  maxPduLength?: number;
  timeouts?: { connectMs?: number; artimMs?: number; idleMs?: number; responseMs?: number };
  /** Services for requests the peer sends us (e.g. C-STOREs during a C-GET). */
  services?: DimseServices;
  logger?: DimseLogger;
  hooks?: DimseHooks;
}

export async function connectDimse(options: ConnectDimseOptions): Promise<DimseAssociation> {
  if (options.presentationContexts.length === 0 || options.presentationContexts.length > 128) {
    throw new RangeError('propose between 1 and 128 presentation contexts (PS3.8 §9.3.2.2: odd IDs 1-255)');
  }
  const timeouts = options.timeouts ?? {};
  const connectMs = timeouts.connectMs ?? 10_000;
  const useTls = !!options.tls;
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const onError = (e: Error) => {
      clearTimeout(timer);
      reject(e);
    };
    const s: net.Socket = useTls
      ? tls.connect({ host: options.host, port: options.port, ...(typeof options.tls === 'object' ? options.tls : {}) }, () => done())
      : net.connect(plainConnectOptions(options.host, options.port), () => done());
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect to ${options.host}:${options.port} timed out after ${connectMs} ms`));
    }, connectMs);
    function done() {
      clearTimeout(timer);
      s.off('error', onError);
      resolve(s);
    }
    s.once('error', onError);
  });
  const association = new Association({
    socket,
    role: 'requestor',
    tls: useTls,
    maxPduLength: options.maxPduLength ?? 64 * 1024,
    timeouts: { artimMs: timeouts.artimMs ?? 30_000, idleMs: timeouts.idleMs ?? 0, responseMs: timeouts.responseMs },
    services: options.services ?? {},
    logger: options.logger ?? silentDimseLogger,
    hooks: options.hooks,
    coalesceWrites: true,
  });
  await association.requestAssociation({
    type: PduType.AssociateRQ,
    protocolVersion: 1,
    calledAETitle: options.calledAETitle,
    callingAETitle: options.callingAETitle,
    applicationContext: DICOM_APPLICATION_CONTEXT,
    presentationContexts: options.presentationContexts.map((pc, i) => ({ id: 2 * i + 1, abstractSyntax: pc.abstractSyntax, transferSyntaxes: pc.transferSyntaxes })),
    userInformation: {
      maxPduLength: options.maxPduLength ?? 64 * 1024,
      implementationClassUID: GATEWAY_IMPLEMENTATION_CLASS_UID,
      implementationVersionName: GATEWAY_IMPLEMENTATION_VERSION_NAME,
      roles: options.roles ?? [],
    },
  });
  return association;
}

/** net.Socket passes its options to stream.Duplex, which takes writableHighWaterMark (not in NetConnectOpts' type). */
function plainConnectOptions(host: string, port: number): net.NetConnectOpts {
  const o: net.TcpNetConnectOpts & { writableHighWaterMark: number } = { host, port, writableHighWaterMark: WRITE_BATCH_BYTES };
  return o;
}

/** Bytes of PDUs a plain TCP socket gathers before a write has to wait for 'drain' (see AssociationOptions.coalesceWrites). */
const WRITE_BATCH_BYTES = 256 * 1024;
