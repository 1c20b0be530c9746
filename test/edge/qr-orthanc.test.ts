/**
 * Orthanc (Debian package, a real PACS) against the gateway's query/retrieve
 * and storage commitment SCPs, backed by a real embedded archive:
 * - Orthanc C-FINDs through the gateway (study and series level) and gets
 *   the stored studies;
 * - Orthanc C-MOVEs a study from the gateway to itself; the instances it
 *   stores have the data sets that were archived, byte for byte;
 * - Orthanc asks for storage commitment (N-ACTION); the gateway answers
 *   with N-EVENT-REPORT on a new association to Orthanc: success for
 *   archived instances, failure (after the gateway's deadline) for one that
 *   is not in the archive.
 * Skipped, saying so, when Orthanc is not installed.
 */
import { readFileMeta } from '../../functions/core/dicom/part10';
import { DicomWebClient } from '../../edge-gateway/src/cloud/dicomweb-client';
import type { DimseServer } from '../../edge-gateway/src/dimse';
import { startTestDimseServer } from './dimse-helpers';
import { createFindService } from '../../edge-gateway/src/scp/find';
import { createMoveService } from '../../edge-gateway/src/scp/move';
import { createGetService } from '../../edge-gateway/src/scp/get';
import { createCommitmentService, type CommitmentService } from '../../edge-gateway/src/scp/commitment';
import { crInstance, ctSeries, mrInstance, syntheticPatient, uid, SopClass, TS, type SyntheticInstance } from '../fixtures/synthetic';
import { startTestArchive, stow, type TestArchive } from '../helpers/archive';
import { orthancAvailable, startOrthanc, type RunningOrthanc } from '../helpers/orthanc';

const AE = 'EDGE_QR';
const available = orthancAvailable();
if (!available) console.warn('qr-orthanc: Orthanc is not installed (apt-get install -y orthanc): skipped');
const describeIfOrthanc = available ? describe : describe.skip;

let archive: TestArchive;
let server: DimseServer;
let orthanc: RunningOrthanc;
let commitment: CommitmentService;

const p1 = syntheticPatient(11);
const p2 = syntheticPatient(12);
const studyA = uid();
let ctA: SyntheticInstance[];
let mrA: SyntheticInstance;
let crB: SyntheticInstance;

const datasetOf = (bytes: Uint8Array) => Buffer.from(bytes.subarray(readFileMeta(bytes).datasetOffset));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeIfOrthanc('Orthanc as the PACS', () => {
  beforeAll(async () => {
    archive = await startTestArchive();
    ctA = ctSeries({ count: 3, rows: 32, columns: 32, studyInstanceUID: studyA, patient: p1, studyDate: '20240301' });
    mrA = mrInstance({ studyInstanceUID: studyA, patient: p1, studyDate: '20240301', rows: 16, columns: 16, transferSyntaxUID: TS.ImplicitVRLittleEndian, seriesNumber: 2 });
    crB = crInstance({ patient: p2, studyDate: '20230102', rows: 16, columns: 16 });
    expect((await stow(archive.dicomWebUrl, [...ctA, mrA, crB].map((i) => i.bytes))).status).toBe(200);

    orthanc = await startOrthanc({ aet: 'PACS' });
    const client = new DicomWebClient({ dicomWebUrl: archive.dicomWebUrl, auth: { kind: 'none' }, requestTimeoutMs: 10_000 });
    const destinations = { PACS: { host: '127.0.0.1', port: orthanc.dicomPort } };
    commitment = createCommitmentService({ client, aeTitle: AE, destinations, timeoutMs: 1500, pollMs: 200 });
    server = await startTestDimseServer(AE, {
      find: createFindService({ client, aeTitle: AE }),
      move: createMoveService({ client, aeTitle: AE, destinations }),
      get: createGetService({ client }),
      nAction: commitment.nAction,
    });
    await orthanc.addModality('gateway', { aet: AE, host: '127.0.0.1', port: server.port });
  }, 90_000);

  afterAll(async () => {
    await commitment?.close();
    await server?.close(0);
    await orthanc?.stop();
    await archive?.stop();
  });

  test('C-ECHO from Orthanc', async () => {
    await orthanc.rest('POST', '/modalities/gateway/echo', {});
  });

  test('Orthanc C-FINDs studies and series through the gateway', async () => {
    const q = await orthanc.rest<{ ID: string }>('POST', '/modalities/gateway/query', { Level: 'Study', Query: { PatientName: 'SYNTH*', StudyDate: '20240101-20241231' } });
    const answers = await orthanc.rest<Array<Record<string, { Value: string }>>>('GET', `/queries/${q.ID}/answers?expand&simplify`);
    expect(answers.map((a) => a.StudyInstanceUID)).toEqual([studyA]);
    expect(answers[0]!.PatientName).toBe(p1.name);

    const s = await orthanc.rest<{ ID: string }>('POST', '/modalities/gateway/query', { Level: 'Series', Query: { StudyInstanceUID: studyA, Modality: '', SeriesInstanceUID: '' } });
    const series = await orthanc.rest<Array<Record<string, string>>>('GET', `/queries/${s.ID}/answers?expand&simplify`);
    expect(series.map((a) => a.SeriesInstanceUID).sort()).toEqual([ctA[0]!.seriesInstanceUID, mrA.seriesInstanceUID].sort());
    expect(series.map((a) => a.Modality).sort()).toEqual(['CT', 'MR']);
  }, 30_000);

  test('Orthanc C-MOVEs a study to itself: it stores the archived data sets byte for byte', async () => {
    const q = await orthanc.rest<{ ID: string }>('POST', '/modalities/gateway/query', { Level: 'Study', Query: { StudyInstanceUID: studyA } });
    await orthanc.rest('POST', `/queries/${q.ID}/retrieve`, { TargetAet: 'PACS', Synchronous: true });
    const instances = await orthanc.rest<Array<{ ID: string; MainDicomTags: { SOPInstanceUID: string } }>>('GET', '/instances?expand');
    const bySop = new Map(instances.map((i) => [i.MainDicomTags.SOPInstanceUID, i.ID]));
    for (const inst of [...ctA, mrA]) {
      const id = bySop.get(inst.sopInstanceUID);
      expect(id).toBeDefined();
      const res = await fetch(`${orthanc.httpUrl}/instances/${id}/file`);
      const file = new Uint8Array(await res.arrayBuffer());
      expect(readFileMeta(file).transferSyntaxUID).toBe(inst.transferSyntaxUID);
      expect(datasetOf(file).equals(datasetOf(inst.bytes))).toBe(true);
    }
    expect(bySop.has(crB.sopInstanceUID)).toBe(false);
  }, 60_000);

  test('storage commitment from Orthanc: success for archived instances, failure for one that is not there', async () => {
    type Report = { Status: string; Success?: unknown[]; Failures?: Array<{ SOPInstanceUID: string; FailureReason: number }> };
    const ask = async (instances: Array<[string, string]>) => {
      const job = await orthanc.rest<{ ID: string }>('POST', '/modalities/gateway/storage-commitment', { DicomInstances: instances });
      return waitFor('the storage commitment report', async () => {
        const r = await orthanc.rest<Report>('GET', `/storage-commitment/${job.ID}`);
        return r.Status === 'Pending' ? undefined : r;
      });
    };
    const ok = await ask(ctA.map((i) => [SopClass.CTImage, i.sopInstanceUID]));
    expect(ok.Status).toBe('Success');

    const missing = uid();
    const mixed = await ask([[SopClass.CTImage, ctA[0]!.sopInstanceUID], [SopClass.CTImage, missing]]);
    expect(mixed.Status).toBe('Failure');
    expect(mixed.Failures).toEqual([expect.objectContaining({ SOPInstanceUID: missing, FailureReason: 0x0110 })]);
  }, 60_000);
});
