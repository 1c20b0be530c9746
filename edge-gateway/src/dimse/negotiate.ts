/**
 * Acceptor-side association negotiation (PS3.8 §7.1, §9.3.2-9.3.4; PS3.7
 * Annex D.3): decide A-ASSOCIATE-AC or -RJ for a request. Pure.
 */
import {
  DICOM_APPLICATION_CONTEXT,
  PduType,
  PresentationContextResult,
  RejectReason,
  RejectResult,
  RejectSource,
  type AcceptedPresentationContext,
  type AssociateAC,
  type AssociateRJ,
  type AssociateRQ,
  type RoleSelection,
} from './pdu';
import { COMMAND_TRANSFER_SYNTAXES, abstractSyntaxKind, isKnownStorageTransferSyntax, type AbstractSyntaxKind } from './sop-classes';

/** This gateway's implementation identity (PS3.7 D.3.3.2), under the project's UID root. */
export const GATEWAY_IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1234.0.2';
export const GATEWAY_IMPLEMENTATION_VERSION_NAME = 'DWSLS_EDGE_0.1';

export interface NegotiationPolicy {
  aeTitle: string;
  /** Empty/absent: any calling AE. */
  allowedCallingAETitles?: readonly string[];
  /** Which kinds of abstract syntax we have a service for. */
  kinds: ReadonlySet<AbstractSyntaxKind>;
  maxPduLength: number;
}

export type NegotiationOutcome = { ok: true; ac: AssociateAC } | { ok: false; rj: AssociateRJ; reason: string };

function reject(result: number, source: number, reason: number, why: string): NegotiationOutcome {
  return { ok: false, rj: { type: PduType.AssociateRJ, result, source, reason }, reason: why };
}

export function negotiateAssociation(rq: AssociateRQ, policy: NegotiationPolicy): NegotiationOutcome {
  // Protocol version: bit 0 must be set (PS3.8 §9.3.2, Table 9-11).
  if ((rq.protocolVersion & 1) === 0) {
    return reject(RejectResult.Permanent, RejectSource.ServiceProviderAcse, RejectReason.ProtocolVersionNotSupported, 'protocol version');
  }
  if (rq.applicationContext !== DICOM_APPLICATION_CONTEXT) {
    return reject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.ApplicationContextNotSupported, 'application context');
  }
  if (rq.calledAETitle !== policy.aeTitle) {
    return reject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAETitleNotRecognized, 'called AE title');
  }
  const allowed = policy.allowedCallingAETitles;
  if (allowed && allowed.length > 0 && !allowed.includes(rq.callingAETitle)) {
    return reject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAETitleNotRecognized, 'calling AE title');
  }

  const proposedRoles = new Map(rq.userInformation.roles.map((r) => [r.sopClassUID, r]));
  const contexts: AcceptedPresentationContext[] = [];
  const seen = new Set<number>();
  const acceptedClasses = new Set<string>();
  for (const pc of rq.presentationContexts) {
    const base = { id: pc.id, transferSyntax: '' };
    // Context IDs are odd and unique (PS3.8 §9.3.2.2).
    if (pc.id % 2 === 0 || seen.has(pc.id)) {
      contexts.push({ ...base, result: PresentationContextResult.NoReason });
      continue;
    }
    seen.add(pc.id);
    const kind = abstractSyntaxKind(pc.abstractSyntax);
    let supported = policy.kinds.has(kind);
    // A C-GET SCU proposes storage classes with itself as SCP: accept those when we serve C-GET (PS3.4 C.4.3.1).
    if (!supported && kind === 'storage' && policy.kinds.has('get') && proposedRoles.get(pc.abstractSyntax)?.scpRole) supported = true;
    if (!supported) {
      contexts.push({ ...base, result: PresentationContextResult.AbstractSyntaxNotSupported });
      continue;
    }
    const ts =
      kind === 'storage'
        ? pc.transferSyntaxes.find(isKnownStorageTransferSyntax)
        : pc.transferSyntaxes.find((t) => COMMAND_TRANSFER_SYNTAXES.includes(t));
    if (!ts) {
      contexts.push({ ...base, result: PresentationContextResult.TransferSyntaxesNotSupported });
      continue;
    }
    acceptedClasses.add(pc.abstractSyntax);
    contexts.push({ id: pc.id, result: PresentationContextResult.Acceptance, transferSyntax: ts });
  }

  // Role selection (PS3.7 D.3.3.4): agree to what was proposed for the classes we accepted.
  const roles: RoleSelection[] = [];
  for (const r of rq.userInformation.roles) if (acceptedClasses.has(r.sopClassUID)) roles.push({ ...r });

  return {
    ok: true,
    ac: {
      type: PduType.AssociateAC,
      protocolVersion: 1,
      calledAETitle: rq.calledAETitle,
      callingAETitle: rq.callingAETitle,
      applicationContext: DICOM_APPLICATION_CONTEXT,
      presentationContexts: contexts,
      userInformation: {
        maxPduLength: policy.maxPduLength,
        implementationClassUID: GATEWAY_IMPLEMENTATION_CLASS_UID,
        implementationVersionName: GATEWAY_IMPLEMENTATION_VERSION_NAME,
        roles,
      },
    },
  };
}
