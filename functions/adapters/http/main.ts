/**
 * `npm start`: the embedded archive on http://127.0.0.1:8080/dicom-web with
 * data in ./data (PORT, DATA_DIR, HOST to change). Bound to loopback by
 * default: with no authentication yet, it must not be reachable from the network.
 */
import * as path from 'node:path';
import { startEmbeddedArchive } from '../local/embedded';

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8080);
  const host = process.env.HOST ?? '127.0.0.1';
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
    console.error(`refusing to bind ${host}: authentication for non-loopback use is not available yet (see README)`);
    process.exit(2);
  }
  const dataDir = path.resolve(process.env.DATA_DIR ?? 'data');
  const archive = await startEmbeddedArchive({ dataDir, host, port });
  console.log(`DICOMweb archive listening at ${archive.dicomWebUrl} (data in ${dataDir})`);
  const stop = async () => {
    await archive.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error) => {
  console.error('failed to start:', (error as Error).message);
  process.exit(1);
});
