/**
 * The whole gateway: storescu → DIMSE → spool → uploader → the embedded
 * archive, and the instances come back from WADO-RS with their original data
 * set bytes. Also ackMode 'cloud', C-ECHO and the DIMSE metrics.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connectDimse, SopClass, STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE, type NEventReportRequest } from '../../edge-gateway/src/dimse';
import type { GatewayConfig } from '../../edge-gateway/src/config-types';
import { startGateway, type RunningGateway } from '../../edge-gateway/src/gateway';
import { silentLogger } from '../../edge-gateway/src/ops/logger';
import { ctSeries } from '../fixtures/synthetic';
import { getJson, getParts, startTestArchive, type TestArchive } from '../helpers/archive';
import { PYDICOM_DIR } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';
import { datasetBytes, freePort, run } from './dimse-helpers';
import { testGatewayConfig } from './gateway-config';

const AE = 'EDGE_E2E';

function gatewayConfig(dicomWebUrl: string, spoolDir: string, overrides: { ackMode?: 'spool' | 'cloud'; httpPort?: number } = {}): GatewayConfig {
  return testGatewayConfig(dicomWebUrl, spoolDir, { aeTitle: AE, ...overrides });
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('edge gateway end to end', () => {
  const tmp = makeTempDir('gateway-e2e-');
  let archive: TestArchive;
  beforeAll(async () => {
    archive = await startTestArchive();
  });
  afterAll(async () => {
    await archive.stop();
    tmp.cleanup();
  });

  it('300 instances from storescu reach the archive through the spool, retrievable with their original bytes', async () => {
    const src = path.join(tmp.dir, 'series');
    fs.mkdirSync(src);
    const instances = ctSeries({ count: 300, rows: 64, columns: 64 });
    for (const inst of instances) fs.writeFileSync(path.join(src, `${inst.instanceNumber}.dcm`), inst.bytes);
    // Plus compressed originals: JPEG 2000 and RLE, proposed in their own syntaxes.
    const compressed = ['JPEG2000.dcm', 'SC_rgb_rle.dcm'].map((f) => path.join(PYDICOM_DIR, f));

    const gateway: RunningGateway = await startGateway(gatewayConfig(archive.dicomWebUrl, path.join(tmp.dir, 'spool')), { logger: silentLogger });
    try {
      expect((await run('echoscu', ['-aec', AE, '127.0.0.1', String(gateway.dimsePort)])).code).toBe(0);
      const r = await run('storescu', ['-aet', 'CT_ROOM_1', '-aec', AE, '+sd', '127.0.0.1', String(gateway.dimsePort), src]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect((await run('storescu', ['-xw', '-R', '-aec', AE, '127.0.0.1', String(gateway.dimsePort), compressed[0]!])).code).toBe(0);
      expect((await run('storescu', ['-xr', '-R', '-aec', AE, '127.0.0.1', String(gateway.dimsePort), compressed[1]!])).code).toBe(0);

      await waitFor(async () => {
        const s = await gateway.spool.stats();
        return s.done === 302 && s.queued === 0 && s.inflight === 0;
      });
      expect((await gateway.spool.stats()).quarantine).toBe(0);

      const first = instances[0]!;
      const series = await getJson(`${archive.dicomWebUrl}/studies/${first.studyInstanceUID}/series/${first.seriesInstanceUID}/instances?limit=1000`);
      expect(series.status).toBe(200);
      expect(series.json).toHaveLength(300);
      for (const inst of [instances[0]!, instances[149]!, instances[299]!]) {
        const got = await getParts(
          `${archive.dicomWebUrl}/studies/${inst.studyInstanceUID}/series/${inst.seriesInstanceUID}/instances/${inst.sopInstanceUID}`,
          'multipart/related; type="application/dicom"; transfer-syntax=*',
        );
        expect(got.status).toBe(200);
        expect(datasetBytes(got.parts[0]!.body).equals(datasetBytes(inst.bytes))).toBe(true);
      }
      const metrics = gateway.metrics.render();
      expect(metrics).toMatch(/gateway_dimse_c_store_total\{status="0x0000"\} 302/);
      expect(metrics).toMatch(/gateway_dimse_associations_total\{outcome="accepted"\} 4/);
    } finally {
      await gateway.close();
    }
  });

  it("ackMode 'cloud': when storescu returns, the archive already has every instance; /healthz and /metrics are served", async () => {
    const instances = ctSeries({ count: 5, rows: 32, columns: 32 });
    const src = path.join(tmp.dir, 'cloud-series');
    fs.mkdirSync(src);
    for (const inst of instances) fs.writeFileSync(path.join(src, `${inst.instanceNumber}.dcm`), inst.bytes);
    const config = gatewayConfig(archive.dicomWebUrl, path.join(tmp.dir, 'spool-cloud'), { ackMode: 'cloud' });
    config.http.port = await freePort();
    const gateway = await startGateway(config, { logger: silentLogger });
    try {
      const r = await run('storescu', ['-aec', AE, '+sd', '127.0.0.1', String(gateway.dimsePort), src]);
      expect(r.code).toBe(0);
      const found = await getJson(`${archive.dicomWebUrl}/studies/${instances[0]!.studyInstanceUID}/instances`);
      expect(found.json).toHaveLength(5);
      const health = await fetch(`http://127.0.0.1:${gateway.httpPort}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ healthy: true, dimseListening: true });
      const metrics = await (await fetch(`http://127.0.0.1:${gateway.httpPort}/metrics`)).text();
      expect(metrics).toMatch(/gateway_dimse_c_store_total\{status="0x0000"\} 5/);
      expect(metrics).toMatch(/gateway_dimse_associations_active 0/);
    } finally {
      await gateway.close();
    }
  });

  it('storage commitment: N-ACTION after C-STORE on one association, N-EVENT-REPORT success once the archive has the instances', async () => {
    const instances = ctSeries({ count: 3, rows: 32, columns: 32 });
    const gateway = await startGateway(gatewayConfig(archive.dicomWebUrl, path.join(tmp.dir, 'spool-commit')), { logger: silentLogger });
    try {
      let reported!: (r: NEventReportRequest) => void;
      const report = new Promise<NEventReportRequest>((r) => (reported = r));
      const association = await connectDimse({
        host: '127.0.0.1',
        port: gateway.dimsePort,
        callingAETitle: 'MODALITY_SC',
        calledAETitle: AE,
        presentationContexts: [
          { abstractSyntax: instances[0]!.sopClassUID, transferSyntaxes: [instances[0]!.transferSyntaxUID] },
          { abstractSyntax: SopClass.StorageCommitmentPushModel, transferSyntaxes: ['1.2.840.10008.1.2.1'] },
        ],
        services: {
          nEventReport: async (_ctx, request) => {
            reported(request);
            return { status: 0 };
          },
        },
      });
      for (const inst of instances) {
        const rsp = await association.store({ sopClassUID: inst.sopClassUID, sopInstanceUID: inst.sopInstanceUID, transferSyntaxUID: inst.transferSyntaxUID, dataset: datasetBytes(inst.bytes) });
        expect(rsp.status).toBe(0);
      }
      const transactionUID = '1.2.826.0.1.3680043.10.1234.99.' + Date.now();
      const action = await association.nAction({
        sopClassUID: SopClass.StorageCommitmentPushModel,
        sopInstanceUID: STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE,
        actionTypeID: 1,
        actionInformation: {
          '00081195': { vr: 'UI', Value: [transactionUID] },
          '00081199': {
            vr: 'SQ',
            Value: instances.map((i) => ({ '00081150': { vr: 'UI', Value: [i.sopClassUID] }, '00081155': { vr: 'UI', Value: [i.sopInstanceUID] } })),
          },
        },
      });
      expect(action.status).toBe(0);
      const r = await report;
      expect(r.eventTypeID).toBe(1); // all committed (PS3.4 J.3.3)
      expect(r.eventInformation?.['00081195']?.Value).toEqual([transactionUID]);
      expect(r.eventInformation?.['00081199']?.Value).toHaveLength(3);
      await association.release();
    } finally {
      await gateway.close();
    }
  });

  it('C-FIND and C-GET through the composed gateway answer from the archive (findscu, getscu)', async () => {
    const instances = ctSeries({ count: 3, rows: 32, columns: 32 });
    const src = path.join(tmp.dir, 'qr-series');
    fs.mkdirSync(src);
    for (const inst of instances) fs.writeFileSync(path.join(src, `${inst.instanceNumber}.dcm`), inst.bytes);
    const gateway = await startGateway(gatewayConfig(archive.dicomWebUrl, path.join(tmp.dir, 'spool-qr'), { ackMode: 'cloud' }), { logger: silentLogger });
    try {
      expect((await run('storescu', ['-aec', AE, '+sd', '127.0.0.1', String(gateway.dimsePort), src])).code).toBe(0);
      const study = instances[0]!.studyInstanceUID;
      const findOut = path.join(tmp.dir, 'find-out');
      fs.mkdirSync(findOut);
      const find = await run('findscu', ['-S', '-X', '-od', findOut, '-k', 'QueryRetrieveLevel=SERIES', '-k', `StudyInstanceUID=${study}`, '-k', 'SeriesInstanceUID', '-k', 'NumberOfSeriesRelatedInstances', '-aec', AE, '127.0.0.1', String(gateway.dimsePort)]);
      expect(find.code).toBe(0);
      const responses = fs.readdirSync(findOut);
      expect(responses).toHaveLength(1);
      const dump = await run('dcmdump', [path.join(findOut, responses[0]!)]);
      expect(dump.stdout).toContain(instances[0]!.seriesInstanceUID);
      expect(dump.stdout).toMatch(/IS \[3\]\s+#\s*\d+, 1 NumberOfSeriesRelatedInstances/);

      const getOut = path.join(tmp.dir, 'get-out');
      fs.mkdirSync(getOut);
      const get = await run('getscu', ['-S', '-od', getOut, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, '-aec', AE, '127.0.0.1', String(gateway.dimsePort)]);
      expect(get.code).toBe(0);
      const files = fs.readdirSync(getOut);
      expect(files).toHaveLength(3);
      for (const inst of instances) {
        const file = files.find((f) => f.includes(inst.sopInstanceUID));
        expect(file).toBeDefined();
        expect(datasetBytes(fs.readFileSync(path.join(getOut, file!))).equals(datasetBytes(inst.bytes))).toBe(true);
      }
    } finally {
      await gateway.close();
    }
  });
});
