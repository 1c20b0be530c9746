/**
 * Orthanc (Debian package) as the hospital PACS pushing to the gateway:
 * Orthanc C-STOREs a study (native and compressed instances) to the whole
 * gateway (DIMSE → spool → uploader → embedded archive); every instance
 * reaches the archive with the data set Orthanc held, byte for byte.
 * Skipped, saying so, when Orthanc is not installed (npm test installs it).
 */
import { startGateway, type RunningGateway } from '../../edge-gateway/src/gateway';
import { silentLogger } from '../../edge-gateway/src/ops/logger';
import { readFileMeta } from '../../functions/core/dicom/part10';
import { ctSeries, encapsulatedInstance, syntheticPatient, uid } from '../fixtures/synthetic';
import { getParts, startTestArchive, type TestArchive } from '../helpers/archive';
import { orthancAvailable, startOrthanc, type RunningOrthanc } from '../helpers/orthanc';
import { waitFor } from '../helpers/wait';
import { makeTempDir } from '../helpers/tmp';
import { testGatewayConfig } from './gateway-config';

const AE = 'EDGE_FROM_PACS';
const available = orthancAvailable();
if (!available) console.warn('gateway-orthanc-store: Orthanc is not installed (apt-get install -y orthanc): skipped');
const describeIfOrthanc = available ? describe : describe.skip;

const datasetOf = (bytes: Uint8Array) => Buffer.from(bytes.subarray(readFileMeta(bytes).datasetOffset));


describeIfOrthanc('Orthanc C-STOREs to the gateway', () => {
  const tmp = makeTempDir('gateway-orthanc-store-');
  let archive: TestArchive;
  let orthanc: RunningOrthanc;
  let gateway: RunningGateway;

  beforeAll(async () => {
    archive = await startTestArchive();
    const config = testGatewayConfig(archive.dicomWebUrl, `${tmp.dir}/spool`, { aeTitle: AE, allowedCallingAETitles: ['PACS'] });
    gateway = await startGateway(config, { logger: silentLogger });
    orthanc = await startOrthanc({ aet: 'PACS' });
    await orthanc.addModality('gateway', { aet: AE, host: '127.0.0.1', port: gateway.dimsePort });
  }, 90_000);

  afterAll(async () => {
    await orthanc?.stop();
    await gateway?.close();
    await archive?.stop();
    tmp.cleanup();
  });

  it('a study pushed by Orthanc arrives in the archive with the data sets Orthanc held', async () => {
    const patient = syntheticPatient(31);
    const studyInstanceUID = uid();
    const instances = [
      ...ctSeries({ count: 5, rows: 32, columns: 32, studyInstanceUID, patient, studyDate: '20240611' }),
      encapsulatedInstance({ studyInstanceUID, patient, studyDate: '20240611', rows: 16, columns: 16, seriesNumber: 2 }),
    ];
    const ids: string[] = [];
    for (const inst of instances) {
      const res = await fetch(`${orthanc.httpUrl}/instances`, { method: 'POST', body: inst.bytes as unknown as BodyInit });
      expect(res.status).toBe(200);
      ids.push(((await res.json()) as { ID: string }).ID);
    }
    // Orthanc's C-STORE SCU job (REST /modalities/{id}/store), run to completion.
    await orthanc.rest('POST', '/modalities/gateway/store', { Resources: ids, Synchronous: true });

    await waitFor('the uploads', async () => {
      const s = await gateway.spool.stats();
      return s.done === instances.length && s.queued === 0 && s.inflight === 0;
    });
    expect((await gateway.spool.stats()).quarantine).toBe(0);
    for (const inst of instances) {
      const got = await getParts(
        `${archive.dicomWebUrl}/studies/${studyInstanceUID}/series/${inst.seriesInstanceUID}/instances/${inst.sopInstanceUID}`,
        'multipart/related; type="application/dicom"; transfer-syntax=*',
      );
      expect(got.status).toBe(200);
      expect(got.parts).toHaveLength(1);
      const body = new Uint8Array(got.parts[0]!.body);
      expect(readFileMeta(body).transferSyntaxUID).toBe(inst.transferSyntaxUID);
      expect(datasetOf(body).equals(datasetOf(inst.bytes))).toBe(true);
    }
  }, 120_000);
});
