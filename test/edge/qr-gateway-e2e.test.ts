/**
 * Query/retrieve through the composed gateway (startGateway): a modality
 * stores a study with storescu, the uploader delivers it to the embedded
 * archive, then a workstation finds it (findscu, Patient and Study Root),
 * moves it to a storescp configured as a destination (data sets byte for
 * byte as stored), gets it (getscu), and the storage commitment the
 * modality asks for on a new association is reported as successful.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { parsePart10 } from '../../functions/core/dicom/part10';
import { parseConfig } from '../../edge-gateway/src/config';
import type { GatewayConfig } from '../../edge-gateway/src/config-types';
import { connectDimse, createDimseServer, SopClass, STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE, type DimseServer, type NEventReportRequest } from '../../edge-gateway/src/dimse';
import { startGateway, type RunningGateway } from '../../edge-gateway/src/gateway';
import { silentLogger } from '../../edge-gateway/src/ops/logger';
import { ctSeries, mrInstance, syntheticPatient, uid, TS, type SyntheticInstance } from '../fixtures/synthetic';
import { getParts, startTestArchive, type TestArchive } from '../helpers/archive';
import { waitFor } from '../helpers/wait';
import { makeTempDir } from '../helpers/tmp';
import { datasetBytes, freePort, run } from './dimse-helpers';

const AE = 'EDGE_QR_E2E';
const tmp = makeTempDir('qr-gateway-e2e-');
let archive: TestArchive;
let gateway: RunningGateway;
let storescp: ChildProcess;
let modalityScp: DimseServer;
const reports: NEventReportRequest[] = [];
const destDir = path.join(tmp.dir, 'dest');

const patient = syntheticPatient(31);
const study = uid();
let instances: SyntheticInstance[];


function received(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const f of fs.readdirSync(dir)) {
    const bytes = fs.readFileSync(path.join(dir, f));
    out.set(parsePart10(bytes).dataset['00080018']?.Value?.[0] as string, bytes);
  }
  return out;
}

beforeAll(async () => {
  archive = await startTestArchive();
  instances = [
    ...ctSeries({ count: 4, rows: 32, columns: 32, studyInstanceUID: study, patient, studyDate: '20240615' }),
    mrInstance({ studyInstanceUID: study, patient, studyDate: '20240615', rows: 16, columns: 16, transferSyntaxUID: TS.ImplicitVRLittleEndian, seriesNumber: 2 }),
  ];
  fs.mkdirSync(destDir);
  const destPort = await freePort();
  storescp = spawn('storescp', ['-aet', 'WORKSTATION', '+xa', '-od', destDir, String(destPort)], { stdio: 'ignore' });
  // The modality's own SCP for storage commitment reports on a new association.
  modalityScp = await createDimseServer({
    aeTitle: 'MODALITY',
    host: '127.0.0.1',
    port: 0,
    services: {
      nEventReport: async (_ctx, request) => {
        reports.push(request);
        return { status: 0 };
      },
    },
    kinds: ['verification', 'commitment'],
    maxAssociations: 4,
    maxPduLength: 64 * 1024,
    idleTimeoutMs: 30_000,
    artimTimeoutMs: 10_000,
  });
  const spoolDir = path.join(tmp.dir, 'spool');
  const config: GatewayConfig = parseConfig(
    {
      dimse: {
        aeTitle: AE,
        host: '127.0.0.1',
        port: 11112,
        destinations: { WORKSTATION: { host: '127.0.0.1', port: destPort }, MODALITY: { host: '127.0.0.1', port: modalityScp.port } },
      },
      cloud: { dicomWebUrl: archive.dicomWebUrl, auth: { kind: 'none' }, requestTimeoutMs: 30_000 },
      spool: { dir: spoolDir, fsync: true, ackMode: 'spool' },
      uploader: { concurrency: 2, retry: { initialDelayMs: 50, maxDelayMs: 1000, maxAttempts: 0 } },
      http: { host: '127.0.0.1', port: 0 },
    },
    spoolDir,
    {},
  );
  config.dimse.port = 0;
  gateway = await startGateway(config, { logger: silentLogger });
  await waitFor('storescp', async () => (await run('echoscu', ['-aec', 'WORKSTATION', '127.0.0.1', String(destPort)])).code === 0);
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await modalityScp?.close(0);
  storescp?.kill();
  await archive?.stop();
  tmp.cleanup();
});

test('store, find, move, get, commit: the whole round trip through the gateway', async () => {
  const src = path.join(tmp.dir, 'src');
  fs.mkdirSync(src);
  for (const [i, inst] of instances.entries()) fs.writeFileSync(path.join(src, `${i}.dcm`), inst.bytes);
  const port = String(gateway.dimsePort);

  // 1. The modality stores the study.
  const store = await run('storescu', ['-aet', 'MODALITY', '-aec', AE, '-R', '127.0.0.1', port, ...instances.map((_, i) => path.join(src, `${i}.dcm`))]);
  expect(store.code).toBe(0);
  await waitFor('the uploader to deliver the study', async () => (await gateway.spool.stats()).done === instances.length);

  // 2. A workstation finds it, Study Root and Patient Root.
  const findDir = path.join(tmp.dir, 'find');
  fs.mkdirSync(findDir);
  const find = await run('findscu', ['-S', '-aet', 'WORKSTATION', '-aec', AE, '-X', '-od', findDir, '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientName=SYNTH^PATIENT0031', '-k', 'StudyInstanceUID', '-k', 'NumberOfStudyRelatedInstances', '127.0.0.1', port]);
  expect(find.code).toBe(0);
  const answers = fs.readdirSync(findDir).map((f) => parsePart10(fs.readFileSync(path.join(findDir, f))).dataset);
  expect(answers.map((a) => a['0020000D']?.Value?.[0])).toEqual([study]);
  expect(Number(answers[0]!['00201208']?.Value?.[0])).toBe(instances.length);
  const patientRoot = await run('findscu', ['-P', '-v', '-aet', 'WORKSTATION', '-aec', AE, '-k', 'QueryRetrieveLevel=PATIENT', '-k', `PatientID=${patient.id}`, '-k', 'NumberOfPatientRelatedStudies', '127.0.0.1', port]);
  expect(patientRoot.stdout + patientRoot.stderr).toMatch(/Final Find Response \(Success\)/);

  // 3. It moves the study to itself: the data sets as the archive holds them, byte for byte.
  const move = await run('movescu', ['-S', '-aet', 'WORKSTATION', '-aec', AE, '-aem', 'WORKSTATION', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, '127.0.0.1', port]);
  expect(move.code).toBe(0);
  const moved = received(destDir);
  expect([...moved.keys()].sort()).toEqual(instances.map((i) => i.sopInstanceUID).sort());
  // What the archive holds is what storescu sent (it sends the implicit VR file as explicit VR LE): compare with that.
  for (const inst of instances) {
    const stored = await getParts(`${archive.dicomWebUrl}/studies/${study}/series/${inst.seriesInstanceUID}/instances/${inst.sopInstanceUID}`, 'multipart/related; type="application/dicom"; transfer-syntax=*');
    expect(stored.parts).toHaveLength(1);
    expect(datasetBytes(moved.get(inst.sopInstanceUID)!).equals(datasetBytes(stored.parts[0]!.body))).toBe(true);
  }
  // and the explicit VR ones are the modality's own bytes
  for (const inst of instances.slice(0, 4)) expect(datasetBytes(moved.get(inst.sopInstanceUID)!).equals(datasetBytes(inst.bytes))).toBe(true);

  // 4. And gets one series back on its own association.
  const getDir = path.join(tmp.dir, 'get');
  fs.mkdirSync(getDir);
  const get = await run('getscu', ['-S', '-aet', 'WORKSTATION', '-aec', AE, '-od', getDir, '-k', 'QueryRetrieveLevel=SERIES', '-k', `StudyInstanceUID=${study}`, '-k', `SeriesInstanceUID=${instances[0]!.seriesInstanceUID}`, '127.0.0.1', port]);
  expect(get.code).toBe(0);
  expect([...received(getDir).keys()].sort()).toEqual(instances.slice(0, 4).map((i) => i.sopInstanceUID).sort());

  // 5. The modality asks for storage commitment and releases at once: the report comes on a new association.
  const association = await connectDimse({
    host: '127.0.0.1',
    port: gateway.dimsePort,
    callingAETitle: 'MODALITY',
    calledAETitle: AE,
    presentationContexts: [{ abstractSyntax: SopClass.StorageCommitmentPushModel, transferSyntaxes: ['1.2.840.10008.1.2.1'] }],
  });
  const tx = uid();
  const rsp = await association.nAction({
    sopClassUID: SopClass.StorageCommitmentPushModel,
    sopInstanceUID: STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE,
    actionTypeID: 1,
    actionInformation: {
      '00081195': { vr: 'UI', Value: [tx] },
      '00081199': { vr: 'SQ', Value: instances.map((i) => ({ '00081150': { vr: 'UI', Value: [i.sopClassUID] }, '00081155': { vr: 'UI', Value: [i.sopInstanceUID] } })) },
    },
  });
  expect(rsp.status).toBe(0);
  await association.release();
  await waitFor('the storage commitment report', async () => reports.length > 0);
  expect(reports[0]!.eventTypeID).toBe(1);
  expect(reports[0]!.eventInformation?.['00081195']?.Value).toEqual([tx]);
  expect(reports[0]!.eventInformation?.['00081199']?.Value).toHaveLength(instances.length);
}, 120_000);
