/**
 * What the README promises for `npm start`: an archive on loopback with data
 * in DATA_DIR, capabilities at OPTIONS /dicom-web, and a refusal to bind a
 * non-loopback address while there is no authentication.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT, PYDICOM_DIR } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';

const TSX = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');
const MAIN = path.join(PROJECT_ROOT, 'functions', 'adapters', 'http', 'main.ts');

describe('npm start (embedded archive)', () => {
  const tmp = makeTempDir('npm-start-');
  afterAll(() => tmp.cleanup());

  it('serves DICOMweb on 127.0.0.1 with data in DATA_DIR, and stops on SIGTERM', async () => {
    const dataDir = path.join(tmp.dir, 'data');
    const child = spawn(TSX, [MAIN], { env: { ...process.env, PORT: '0', DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start-up line: ${out}`)), 30_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening at (http:\/\/127\.0\.0\.1:\d+\/dicom-web)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    try {
      const stow = await fetch(`${url}/studies`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/dicom', Accept: 'application/dicom+json' },
        body: fs.readFileSync(path.join(PYDICOM_DIR, 'CT_small.dcm')) as unknown as BodyInit,
      });
      expect(stow.status).toBe(200);
      const qido = await fetch(`${url}/studies?PatientID=1CT1`);
      expect((await qido.json()).length).toBe(1);
      const caps = await fetch(url, { method: 'OPTIONS' });
      expect(caps.status).toBe(200);
      expect(caps.headers.get('content-type')).toBe('application/vnd.sun.wadl+xml');
      const wadl = await caps.text();
      for (const id of ['storeInstances', 'searchForStudies', 'retrieveSeriesMetadata', 'retrieveInstanceFrames', 'deleteStudy']) expect(wadl).toContain(`id="${id}"`);
      expect(fs.existsSync(path.join(dataDir, 'index.sqlite'))).toBe(true);
      expect(fs.readdirSync(path.join(dataDir, 'blobs', 'studies'))).toHaveLength(1);
      // the log line of a request carries no patient data
      expect(out).not.toMatch(/CompressedSamples|1CT1/);
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });

  it('refuses to bind a non-loopback address', () => {
    const r = spawnSync(TSX, [MAIN], { env: { ...process.env, PORT: '0', HOST: '0.0.0.0', DATA_DIR: path.join(tmp.dir, 'x') }, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/refusing to bind/);
  });
});
