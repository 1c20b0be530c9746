/**
 * `npm start` also runs the DIMSE edge gateway beside the embedded archive:
 * C-STORE to 127.0.0.1:$DICOM_PORT (AE DICOMWEB_EDGE) ends up in the archive;
 * DICOM_PORT=off disables it; with API keys the gateway uses the first one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { PROJECT_ROOT, PYDICOM_DIR } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';
import { freePort, run } from './dimse-helpers';

const TSX = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');
const MAIN = path.join(PROJECT_ROOT, 'functions', 'adapters', 'http', 'main.ts');

async function startMain(env: Record<string, string>, until: RegExp): Promise<{ child: ChildProcess; out: () => string; match: RegExpExecArray }> {
  const child = spawn(TSX, [MAIN], { env: { ...process.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start-up line: ${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = until.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  return { child, out: () => out, match };
}

async function stopMain(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  child.kill('SIGTERM');
  return exited;
}

describe('npm start with the DIMSE gateway', () => {
  const tmp = makeTempDir('npm-start-gw-');
  afterAll(() => tmp.cleanup());

  it('accepts C-ECHO and C-STORE on DICOM_PORT and uploads into the archive (with an API key when keys are required)', async () => {
    const dicomPort = await freePort();
    const secret = 'a'.repeat(40);
    const { child, out, match } = await startMain(
      { DATA_DIR: path.join(tmp.dir, 'data'), DICOM_PORT: String(dicomPort), API_KEYS: `gateway:${secret}:read+write` },
      /listening at (http:\/\/127\.0\.0\.1:\d+\/dicom-web)[\s\S]*DIMSE edge gateway listening on 127\.0\.0\.1:(\d+) \(AE title DICOMWEB_EDGE/,
    );
    try {
      expect(Number(match[2])).toBe(dicomPort);
      expect((await run('echoscu', ['-aec', 'DICOMWEB_EDGE', '127.0.0.1', String(dicomPort)])).code).toBe(0);
      const store = await run('storescu', ['-aec', 'DICOMWEB_EDGE', '127.0.0.1', String(dicomPort), path.join(PYDICOM_DIR, 'CT_small.dcm')]);
      expect(store.code).toBe(0);
      let found: unknown[] = [];
      for (let i = 0; i < 300 && found.length === 0; i++) {
        const res = await fetch(`${match[1]}/studies?PatientID=1CT1`, { headers: { Authorization: `Bearer ${secret}` } });
        expect(res.status).toBe(200);
        found = (await res.json()) as unknown[];
        if (found.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(found).toHaveLength(1);
      expect(out()).not.toMatch(/1CT1|CompressedSamples/);
      expect(out()).not.toContain(secret);
    } finally {
      expect(await stopMain(child)).toBe(0);
    }
  });

  it('DICOM_PORT=off: no gateway; a busy port: the archive still serves', async () => {
    const off = await startMain({ DATA_DIR: path.join(tmp.dir, 'data-off'), DICOM_PORT: 'off' }, /listening at (http:\/\/127\.0\.0\.1:\d+\/dicom-web)/);
    await new Promise((r) => setTimeout(r, 300));
    expect(off.out()).not.toMatch(/DIMSE/);
    expect(await stopMain(off.child)).toBe(0);

    const blocker = await startMain({ DATA_DIR: path.join(tmp.dir, 'data-a'), DICOM_PORT: String(await freePort()) }, /DIMSE edge gateway listening on 127\.0\.0\.1:(\d+)/);
    try {
      const busy = await startMain({ DATA_DIR: path.join(tmp.dir, 'data-b'), DICOM_PORT: blocker.match[1]! }, /DIMSE gateway not started: port \d+ is in use[\s\S]*|listening at (http:\/\/127\.0\.0\.1:\d+\/dicom-web)[\s\S]*DIMSE gateway not started/);
      expect(busy.out()).toMatch(/listening at http:\/\/127\.0\.0\.1:\d+\/dicom-web/);
      expect(await stopMain(busy.child)).toBe(0);
    } finally {
      expect(await stopMain(blocker.child)).toBe(0);
    }
  });
});
