/**
 * Operations: the Prometheus text exposition, the PHI-free logger (allow-list,
 * no person names, errors reduced to codes), and the /healthz + /metrics server.
 */
import { Metrics } from '../../edge-gateway/src/ops/metrics';
import { createLogger } from '../../edge-gateway/src/ops/logger';
import { startOpsServer } from '../../edge-gateway/src/ops/ops-server';

describe('metrics', () => {
  test('counters, gauges, labels and collectors render as Prometheus text 0.0.4', () => {
    const m = new Metrics();
    const c = m.counter('gateway_uploads_total', 'Uploads.\nSecond line');
    c.inc();
    c.inc(2, { route: 'stow' });
    c.inc(1, { route: 'say "hi"\\' });
    m.gauge('gateway_uploader_paused', 'Paused.').set(1);
    m.gauge('gateway_queue', 'Depth.', () => [{ labels: { state: 'queued' }, value: 3 }]);
    m.gauge('gateway_broken', 'Collector throws.', () => {
      throw new Error('boom');
    });
    const text = m.render();
    expect(text).toBe(
      [
        '# HELP gateway_uploads_total Uploads.\\nSecond line',
        '# TYPE gateway_uploads_total counter',
        'gateway_uploads_total 1',
        'gateway_uploads_total{route="stow"} 2',
        'gateway_uploads_total{route="say \\"hi\\"\\\\"} 1',
        '# HELP gateway_uploader_paused Paused.',
        '# TYPE gateway_uploader_paused gauge',
        'gateway_uploader_paused 1',
        '# HELP gateway_queue Depth.',
        '# TYPE gateway_queue gauge',
        'gateway_queue{state="queued"} 3',
        '# HELP gateway_broken Collector throws.',
        '# TYPE gateway_broken gauge',
        '',
      ].join('\n'),
    );
    expect(() => c.inc(-1)).toThrow();
    expect(() => m.counter('bad name', 'x')).toThrow();
    expect(() => m.gauge('gateway_uploads_total', 'x')).toThrow(/already a counter/);
  });
});

describe('logger', () => {
  test('only allow-listed fields of safe values are written; names and error messages never', () => {
    const lines: string[] = [];
    const log = createLogger('test', { write: (l) => lines.push(l), level: 'debug' });
    log.info('stored', {
      sopInstanceUID: '1.2.3.4',
      sizeBytes: 10,
      patientName: 'DOE^JOHN',
      PatientID: 'MRN123',
      reason: 'DOE^JOHN',
      callingAETitle: 'CT01',
      dataset: { '00100010': { vr: 'PN', Value: [{ Alphabetic: 'DOE^JOHN' }] } },
      err: Object.assign(new Error('patient DOE^JOHN not found'), { code: 'E_NOTFOUND' }),
    });
    log.debug('dbg');
    expect(lines).toHaveLength(2);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ level: 'info', logger: 'test', msg: 'stored', sopInstanceUID: '1.2.3.4', sizeBytes: 10, callingAETitle: 'CT01', errCode: 'E_NOTFOUND', droppedFields: 4 });
    expect(lines.join('')).not.toMatch(/DOE|JOHN|MRN123/);
  });

  test('levels below the minimum are skipped', () => {
    const lines: string[] = [];
    const log = createLogger('t', { write: (l) => lines.push(l), level: 'warn' });
    log.info('x');
    log.debug('x');
    log.warn('w');
    log.error('e');
    expect(lines.map((l) => JSON.parse(l).level)).toEqual(['warn', 'error']);
  });
});

describe('ops server', () => {
  test('/healthz answers 200 or 503 with a JSON body, /metrics the exposition; nothing else', async () => {
    const metrics = new Metrics();
    metrics.gauge('gateway_uploader_paused', 'Paused.').set(0);
    let healthy = true;
    const ops = await startOpsServer({ host: '127.0.0.1', port: 0, metrics, health: () => ({ healthy, spoolWritable: true }) });
    try {
      let res = await fetch(`${ops.url}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ healthy: true, spoolWritable: true });
      healthy = false;
      res = await fetch(`${ops.url}/healthz`);
      expect(res.status).toBe(503);
      expect((await res.json()).healthy).toBe(false);
      res = await fetch(`${ops.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('version=0.0.4');
      expect(await res.text()).toContain('gateway_uploader_paused 0');
      expect((await fetch(`${ops.url}/other`)).status).toBe(404);
      expect((await fetch(`${ops.url}/metrics`, { method: 'POST', body: 'x' })).status).toBe(405);
    } finally {
      await ops.close();
    }
  });

  test('a health check that throws is a 503', async () => {
    const ops = await startOpsServer({
      host: '127.0.0.1',
      port: 0,
      metrics: new Metrics(),
      health: () => {
        throw new Error('disk gone');
      },
    });
    try {
      const res = await fetch(`${ops.url}/healthz`);
      expect(res.status).toBe(503);
    } finally {
      await ops.close();
    }
  });
});
