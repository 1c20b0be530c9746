/**
 * C-STORE throughput of the edge gateway vs Orthanc on this machine:
 * one `storescu` association sending a generated 300-instance CT series
 * (64×64, ~10 KB each; `--rows 512` for the benchmark's ~0.5 MB slices) into
 *   - the gateway (spool fsync on, ackMode 'spool'; the uploader points at an
 *     unreachable archive so only DIMSE + spool are measured), and
 *   - Orthanc's C-STORE SCP (Debian package; SyncStorageArea, its default, on).
 * Each target gets the same number of alternating runs; the median counts.
 * dcmtk leaves Nagle on unless TCP_NODELAY=1 (each C-STORE then waits for a
 * delayed ACK, ~40 ms); both settings are measured for storescu. Orthanc's own
 * SCP is dcmtk too: it always runs with TCP_NODELAY=1, as in the benchmark
 * (scripts/bench/orthanc-peer.ts), since the gateway never waits on Nagle for
 * its responses (without it Orthanc measured ~20 instead of 50–130/s).
 *
 *   npx tsx scripts/measure-gateway-store.ts [--runs 3] [--count 300] [--rows 64]
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { embeddedGatewayConfig, startGateway } from '../edge-gateway/src/gateway';
import { silentLogger } from '../edge-gateway/src/ops/logger';
import { ctSeries } from '../test/fixtures/synthetic';
import { orthancAvailable, startOrthanc } from '../test/helpers/orthanc';
import { makeTempDir } from '../test/helpers/tmp';

function storescu(aet: string, port: number, dir: string, nodelay: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    execFile('storescu', ['-aec', aet, '+sd', '127.0.0.1', String(port), dir], { env: { ...process.env, TCP_NODELAY: nodelay ? '1' : '0' }, maxBuffer: 1 << 24 }, (error, _out, stderr) => {
      if (error) return reject(new Error(`storescu failed: ${stderr.slice(0, 2000)}`));
      resolve(Number(process.hrtime.bigint() - start) / 1e9);
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, count: { type: 'string', default: '300' }, rows: { type: 'string', default: '64' } } });
  const runs = Number(values.runs);
  const count = Number(values.count);
  // Square images: rows × rows, 16-bit (512 → ~0.5 MB per instance, the benchmark's figure 4).
  const rows = Number(values.rows);
  if (!orthancAvailable()) throw new Error('Orthanc is not installed (apt-get install -y orthanc)');
  const tmp = makeTempDir('measure-store-');
  const src = path.join(tmp.dir, 'series');
  fs.mkdirSync(src);
  for (const inst of ctSeries({ count, rows, columns: rows })) fs.writeFileSync(path.join(src, `${inst.instanceNumber}.dcm`), inst.bytes);

  const config = embeddedGatewayConfig({ dicomWebUrl: 'http://127.0.0.1:1/dicom-web', dataDir: tmp.dir, port: 0 });
  config.uploader.retry = { initialDelayMs: 600_000, maxDelayMs: 600_000, maxAttempts: 0 };
  config.spool.fsync = true;
  const gateway = await startGateway(config, { logger: silentLogger, closeGraceMs: 1000 });
  // For reference: the same gateway without fsync (what DIMSE + spool cost without the disk's flush latency).
  const noSyncConfig = embeddedGatewayConfig({ dicomWebUrl: 'http://127.0.0.1:1/dicom-web', dataDir: path.join(tmp.dir, 'nosync'), port: 0 });
  noSyncConfig.uploader.retry = config.uploader.retry;
  noSyncConfig.spool.fsync = false;
  const noSync = await startGateway(noSyncConfig, { logger: silentLogger, closeGraceMs: 1000 });
  const orthanc = await startOrthanc({ aet: 'ORTHANC', env: { TCP_NODELAY: '1' } });
  try {
    for (const nodelay of [true, false]) {
      const g: number[] = [];
      const o: number[] = [];
      const n: number[] = [];
      for (let i = 0; i < runs; i++) {
        g.push(await storescu(config.dimse.aeTitle, gateway.dimsePort, src, nodelay));
        o.push(await storescu('ORTHANC', orthanc.dicomPort, src, nodelay));
        n.push(await storescu(config.dimse.aeTitle, noSync.dimsePort, src, nodelay));
      }
      const gRate = count / median(g);
      const oRate = count / median(o);
      console.log(
        `TCP_NODELAY=${nodelay ? 1 : 0}: gateway ${gRate.toFixed(0)} instances/s (median of ${runs}: ${g.map((s) => s.toFixed(2)).join(', ')} s), ` +
          `Orthanc ${oRate.toFixed(0)} instances/s (${o.map((s) => s.toFixed(2)).join(', ')} s), ratio gateway/Orthanc ${(gRate / oRate).toFixed(2)}; ` +
          `gateway without fsync ${(count / median(n)).toFixed(0)} instances/s`,
      );
    }
  } finally {
    await orthanc.stop();
    await gateway.close();
    await noSync.close();
    tmp.cleanup();
  }
}

main().catch((e) => {
  console.error((e as Error).message);
  process.exit(1);
});
