/**
 * Storage Commitment Push Model SCP (edge-gateway/src/scp/commitment.ts)
 * driven by the gateway's own DIMSE requestor as the modality, against a real
 * embedded archive: the report on the same association while it stays open,
 * the spool's done/ records counting as committed, failures with reason
 * 0x0110 after the deadline, refused requests with their N-ACTION statuses,
 * and close() reporting what is still waiting. (The new-association path is
 * exercised with Orthanc in qr-orthanc.test.ts.)
 */
import type { DicomJsonDataset } from '../../functions/core/dicom/json-model';
import { DicomWebClient } from '../../edge-gateway/src/cloud/dicomweb-client';
import { connectDimse, STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE, SopClass as DimseSop, type DimseAssociation, type DimseServer, type NEventReportRequest } from '../../edge-gateway/src/dimse';
import { startTestDimseServer } from './dimse-helpers';
import { createCommitmentService, type CommitmentService } from '../../edge-gateway/src/scp/commitment';
import { ctSeries, syntheticPatient, uid, SopClass, type SyntheticInstance } from '../fixtures/synthetic';
import { startTestArchive, stow, type TestArchive } from '../helpers/archive';

const AE = 'EDGE_QR';
let archive: TestArchive;
let server: DimseServer;
let commitment: CommitmentService;
let ct: SyntheticInstance[];
/** Instances the (fake) spool says it delivered: done/ records. */
const spoolDone = new Set<string>();

const EXPLICIT_LE = '1.2.840.10008.1.2.1';

beforeAll(async () => {
  archive = await startTestArchive();
  ct = ctSeries({ count: 2, rows: 16, columns: 16, patient: syntheticPatient(21) });
  expect((await stow(archive.dicomWebUrl, ct.map((i) => i.bytes))).status).toBe(200);
  const client = new DicomWebClient({ dicomWebUrl: archive.dicomWebUrl, auth: { kind: 'none' }, requestTimeoutMs: 10_000 });
  commitment = createCommitmentService({
    client,
    aeTitle: AE,
    destinations: {},
    spool: { findDone: async (sop) => (spoolDone.has(sop) ? { state: 'done' } : undefined) },
    timeoutMs: 1000,
    pollMs: 100,
    maxPending: 1,
  });
  server = await startTestDimseServer(AE, { nAction: commitment.nAction });
}, 60_000);

afterAll(async () => {
  await commitment?.close();
  await server?.close(0);
  await archive?.stop();
});

/** A modality: associates, and collects the N-EVENT-REPORTs the gateway sends on this association. */
async function modality(): Promise<{ association: DimseAssociation; reports: NEventReportRequest[]; next: () => Promise<NEventReportRequest> }> {
  const reports: NEventReportRequest[] = [];
  const waiters: Array<(r: NEventReportRequest) => void> = [];
  const association = await connectDimse({
    host: '127.0.0.1',
    port: server.port,
    callingAETitle: 'MODALITY',
    calledAETitle: AE,
    presentationContexts: [{ abstractSyntax: DimseSop.StorageCommitmentPushModel, transferSyntaxes: [EXPLICIT_LE] }],
    services: {
      nEventReport: async (_ctx, request) => {
        reports.push(request);
        waiters.shift()?.(request);
        return { status: 0 };
      },
    },
  });
  let cursor = 0; // reports handed out by next()
  return {
    association,
    reports,
    next: () =>
      cursor < reports.length
        ? Promise.resolve(reports[cursor++]!)
        : new Promise((r) => waiters.push((report) => {
            cursor++;
            r(report);
          })),
  };
}

function request(transactionUID: string, refs: Array<[string, string]>): DicomJsonDataset {
  return {
    '00081195': { vr: 'UI', Value: [transactionUID] },
    '00081199': { vr: 'SQ', Value: refs.map(([c, i]) => ({ '00081150': { vr: 'UI', Value: [c] }, '00081155': { vr: 'UI', Value: [i] } })) },
  };
}

const nAction = (a: DimseAssociation, info: DicomJsonDataset | undefined, overrides: { actionTypeID?: number; sopInstanceUID?: string } = {}) =>
  a.nAction({ sopClassUID: DimseSop.StorageCommitmentPushModel, sopInstanceUID: overrides.sopInstanceUID ?? STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE, actionTypeID: overrides.actionTypeID ?? 1, actionInformation: info });

const uidsIn = (ds: DicomJsonDataset | undefined, seq: string) =>
  (ds?.[seq]?.Value ?? []).map((item) => (item as DicomJsonDataset)['00081155']?.Value?.[0]).sort();

test('all archived: N-ACTION Success, then event 1 on the same association with every reference', async () => {
  const m = await modality();
  const tx = uid();
  const rsp = await nAction(m.association, request(tx, ct.map((i) => [SopClass.CTImage, i.sopInstanceUID])));
  expect(rsp.status).toBe(0);
  const report = await m.next();
  expect(report.eventTypeID).toBe(1);
  expect(report.sopInstanceUID).toBe(STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE);
  expect(report.eventInformation?.['00081195']?.Value).toEqual([tx]);
  expect(uidsIn(report.eventInformation, '00081199')).toEqual(ct.map((i) => i.sopInstanceUID).sort());
  expect(report.eventInformation?.['00081198']).toBeUndefined();
  await m.association.release();
});

test('a spool done/ record counts as committed; an unknown instance fails with 0x0110 after the deadline (event 2)', async () => {
  const delivered = uid();
  const unknown = uid();
  spoolDone.add(delivered);
  const m = await modality();
  const tx = uid();
  expect((await nAction(m.association, request(tx, [[SopClass.CTImage, ct[0]!.sopInstanceUID], [SopClass.CTImage, delivered], [SopClass.CTImage, unknown]]))).status).toBe(0);
  const report = await m.next();
  expect(report.eventTypeID).toBe(2);
  expect(uidsIn(report.eventInformation, '00081199')).toEqual([ct[0]!.sopInstanceUID, delivered].sort());
  const failed = report.eventInformation?.['00081198']?.Value as DicomJsonDataset[];
  expect(failed).toHaveLength(1);
  expect(failed[0]!['00081155']?.Value).toEqual([unknown]);
  expect(failed[0]!['00081150']?.Value).toEqual([SopClass.CTImage]);
  expect(failed[0]!['00081197']?.Value).toEqual([0x0110]);
  await m.association.release();
});

test('refused requests: action type, SOP instance, transaction UID, references', async () => {
  const m = await modality();
  const good = request(uid(), [[SopClass.CTImage, ct[0]!.sopInstanceUID]]);
  expect((await nAction(m.association, good, { actionTypeID: 2 })).status).toBe(0x0123);
  expect((await nAction(m.association, good, { sopInstanceUID: '1.2.3.4' })).status).toBe(0x0112);
  expect((await nAction(m.association, { ...good, '00081195': { vr: 'UI' } })).status).toBe(0x0121);
  expect((await nAction(m.association, request(uid(), []))).status).toBe(0x0121);
  expect((await nAction(m.association, request(uid(), [[SopClass.CTImage, '1.2.x']]))).status).toBe(0x0106);
  expect(m.reports).toHaveLength(0);
  expect(commitment.pending).toBe(0);
  await m.association.release();
});

test('one request waiting for its report at a time here (maxPending 1): a second one is refused with 0x0213, later ones accepted again', async () => {
  const m = await modality();
  expect((await nAction(m.association, request(uid(), [[SopClass.CTImage, uid()]]))).status).toBe(0); // waits for its deadline
  expect((await nAction(m.association, request(uid(), [[SopClass.CTImage, ct[0]!.sopInstanceUID]]))).status).toBe(0x0213);
  expect((await m.next()).eventTypeID).toBe(2);
  await commitment.idle();
  expect((await nAction(m.association, request(uid(), [[SopClass.CTImage, ct[0]!.sopInstanceUID]]))).status).toBe(0);
  expect((await m.next()).eventTypeID).toBe(1);
  await m.association.release();
});
