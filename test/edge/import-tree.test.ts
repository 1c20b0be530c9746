/**
 * The importer: a generated directory tree and a DICOMDIR made by dcmtk's
 * dcmmkdir go into the spool through createIncoming/commit (byte-identical,
 * UIDs in the records); non-DICOM files are skipped and reported; paths from a
 * DICOMDIR never leave the medium; and the CLI (`import --wait`, `status`)
 * end to end into the embedded archive.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import { writePart10 } from '../../functions/core/dicom/writer';
import { Spool } from '../../edge-gateway/src/spool/spool';
import { importFiles, filesFromDicomdir } from '../../edge-gateway/src/importer/importer';
import { createProgressReporter } from '../../edge-gateway/src/importer/progress';
import { ctSeries, missingTransferSyntax, notPart10, type SyntheticInstance } from '../fixtures/synthetic';
import { getJson, withZeroPreamble, getParts } from '../helpers/archive';
import { PROJECT_ROOT } from '../helpers/paths';
import { makeTempDir } from '../helpers/tmp';

const CLI = path.join(PROJECT_ROOT, 'edge-gateway', 'src', 'cli.ts');

function writeTree(root: string, layout: Record<string, Uint8Array | string>): void {
  for (const [rel, data] of Object.entries(layout)) {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, data);
  }
}

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: PROJECT_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('importer', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  let spool: Spool;
  beforeEach(async () => {
    tmp = makeTempDir('import-');
    spool = await Spool.open({ dir: path.join(tmp.dir, 'spool'), fsync: false, ackMode: 'spool', doneRetentionMs: 3600_000 });
  });
  afterEach(async () => {
    await spool.close();
    tmp.cleanup();
  });

  test('a directory tree: every Part 10 file queued byte-identical with its UIDs; other files skipped and reported; re-runs skip what is spooled', async () => {
    const series = ctSeries({ count: 5, rows: 32, columns: 32 });
    const root = path.join(tmp.dir, 'media');
    writeTree(root, {
      'a/b/one.dcm': series[0]!.bytes,
      'a/b/two': series[1]!.bytes,
      'a/three.DCM': series[2]!.bytes,
      'c/d/e/four': series[3]!.bytes,
      'five.dcm': series[4]!.bytes,
      'notes.txt': 'not an image',
      'c/README': notPart10(),
      'c/empty': '',
    });
    const progress: number[] = [];
    const result = await importFiles({ spool, root, onProgress: (p) => progress.push(p.done) });
    expect(result).toMatchObject({ source: 'walk', total: 8, done: 8, imported: 5, skippedNonDicom: 3, skippedKnown: 0, failed: 0 });
    expect(result.nonDicom.map((f) => path.relative(root, f)).sort()).toEqual(['c/README', 'c/empty', 'notes.txt']);
    expect(progress).toHaveLength(8);
    const queued = await spool.list('queued');
    expect(queued.map((r) => r.sopInstanceUID).sort()).toEqual(series.map((s) => s.sopInstanceUID).sort());
    for (const r of queued) {
      const src = series.find((s) => s.sopInstanceUID === r.sopInstanceUID)!;
      expect(r).toMatchObject({ sopClassUID: src.sopClassUID, studyInstanceUID: src.studyInstanceUID, seriesInstanceUID: src.seriesInstanceUID, transferSyntaxUID: src.transferSyntaxUID, sizeBytes: src.bytes.length });
      expect(Buffer.compare(fs.readFileSync(spool.filePath(r)), Buffer.from(src.bytes))).toBe(0);
    }
    // Again: the spool already holds them (a re-run after a crash sends nothing twice) …
    const again = await importFiles({ spool, root });
    expect(again).toMatchObject({ imported: 0, skippedKnown: 5 });
    // … unless asked.
    expect((await importFiles({ spool, root, again: true })).imported).toBe(5);
  });

  test('a file that is Part 10 but unusable counts as failed', async () => {
    const root = path.join(tmp.dir, 'media');
    writeTree(root, { 'bad.dcm': missingTransferSyntax(), 'ok.dcm': ctSeries({ count: 1, rows: 16, columns: 16 })[0]!.bytes });
    const result = await importFiles({ spool, root });
    expect(result).toMatchObject({ imported: 1, failed: 1 });
    expect(result.failures).toEqual([{ file: path.join(root, 'bad.dcm'), reason: 'MISSING_TRANSFER_SYNTAX' }]);
  });

  test('a DICOMDIR made by dcmmkdir: exactly the files it references are imported', async () => {
    const series = ctSeries({ count: 3, rows: 32, columns: 32 });
    const [extra] = ctSeries({ count: 1, rows: 16, columns: 16 });
    const root = path.join(tmp.dir, 'cd');
    writeTree(root, { 'SUB1/IM0': series[0]!.bytes, 'SUB1/IM1': series[1]!.bytes, 'SUB1/IM2': series[2]!.bytes });
    execFileSync('dcmmkdir', ['--recurse', 'SUB1'], { cwd: root, stdio: 'pipe' });
    expect(fs.existsSync(path.join(root, 'DICOMDIR'))).toBe(true);
    // A DICOM file on the medium that the DICOMDIR does not list is not part of the import.
    writeTree(root, { 'OTHER/IM9': extra!.bytes });
    const result = await importFiles({ spool, root });
    expect(result).toMatchObject({ source: 'DICOMDIR', total: 3, imported: 3, skippedNonDicom: 0, failed: 0 });
    expect((await spool.list('queued')).map((r) => r.sopInstanceUID).sort()).toEqual(series.map((s) => s.sopInstanceUID).sort());
    // The DICOMDIR file itself can be given too.
    expect((await importFiles({ spool, root: path.join(root, 'DICOMDIR') })).source).toBe('DICOMDIR');
  });

  test('an unreadable DICOMDIR falls back to walking the tree', async () => {
    const series = ctSeries({ count: 2, rows: 16, columns: 16 });
    const root = path.join(tmp.dir, 'cd');
    writeTree(root, { DICOMDIR: 'garbage', 'A/IM0': series[0]!.bytes, 'A/IM1': series[1]!.bytes });
    const result = await importFiles({ spool, root });
    expect(result).toMatchObject({ source: 'walk', total: 2, imported: 2 });
  });

  test('ReferencedFileID components that would leave the medium are ignored', async () => {
    const root = path.join(tmp.dir, 'cd');
    fs.mkdirSync(path.join(root, 'IN'), { recursive: true });
    const [inside] = ctSeries({ count: 1, rows: 16, columns: 16 });
    fs.writeFileSync(path.join(root, 'IN', 'IM0'), inside!.bytes);
    fs.writeFileSync(path.join(tmp.dir, 'OUTSIDE'), inside!.bytes);
    const record = (id: string[]) => ({ '00041430': { vr: 'CS', Value: ['IMAGE'] }, '00041500': { vr: 'CS', Value: id } });
    const dicomdir = writePart10(
      {
        '00041220': { vr: 'SQ', Value: [record(['..', 'OUTSIDE']), record(['IN', 'IM0']), record(['/etc', 'passwd']), record(['IN', 'TOOLONGNAME'])] },
      },
      // Media Storage Directory Storage (PS3.10 §8.6)
      { transferSyntaxUID: '1.2.840.10008.1.2.1', mediaStorageSOPClassUID: '1.2.840.10008.1.3.10', mediaStorageSOPInstanceUID: '1.2.826.0.1.3680043.10.1234.55.1' },
    );
    fs.writeFileSync(path.join(root, 'DICOMDIR'), dicomdir);
    expect(await filesFromDicomdir(path.join(root, 'DICOMDIR'))).toEqual([path.join(root, 'IN', 'IM0')]);
  });
});

describe('progress on stderr', () => {
  const fakeStream = (isTTY: boolean) => {
    const written: string[] = [];
    return { written, stream: { isTTY, columns: 100, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream };
  };
  const p = (done: number) => ({ done, total: 10, bytes: done * 1e6, imported: done, skippedNonDicom: 0, skippedKnown: 0, failed: 0 });

  test('a terminal gets one line redrawn in place, a log gets plain lines at intervals', () => {
    let now = 0;
    const tty = fakeStream(true);
    const r = createProgressReporter(tty.stream, { now: () => now, intervalMs: 100 });
    r.update(p(1));
    r.update(p(2)); // within the interval: not drawn
    now = 150;
    r.update(p(5));
    r.finish(p(10));
    expect(tty.written).toHaveLength(3);
    expect(tty.written.every((l) => l.startsWith('\r['))).toBe(true);
    expect(tty.written[1]).toContain('[############------------] 5/10 files');
    expect(tty.written[2]!.endsWith('\n')).toBe(true);
    const log = fakeStream(false);
    const l = createProgressReporter(log.stream, { now: () => now, intervalMs: 5000 });
    l.update(p(1));
    l.finish(p(10));
    expect(log.written).toEqual(['import: 1/10 files, 1 imported (1.0 MB), 0 already spooled, 0 not DICOM, 0 failed\n', 'import: 10/10 files, 10 imported (10.0 MB), 0 already spooled, 0 not DICOM, 0 failed\n']);
  });
});

describe('CLI: import --wait and status, into the embedded archive', () => {
  const tmp = makeTempDir('import-cli-');
  let archive: Awaited<ReturnType<typeof startEmbeddedArchive>>;
  beforeAll(async () => {
    archive = await startEmbeddedArchive({ dataDir: path.join(tmp.dir, 'archive'), port: 0, log: silentLogger });
  });
  afterAll(async () => {
    await archive.close();
    tmp.cleanup();
  });

  test('imports, uploads (no gateway running: the importer uploads itself), reports; status reads the spool', async () => {
    const series: SyntheticInstance[] = ctSeries({ count: 6, rows: 32, columns: 32 });
    const root = path.join(tmp.dir, 'media');
    writeTree(root, Object.fromEntries([...series.map((s, i) => [`s/${i}.dcm`, s.bytes] as const), ['junk.bin', 'xx']]));
    const configFile = path.join(tmp.dir, 'gateway.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        dimse: { aeTitle: 'EDGE', port: 0 },
        cloud: { dicomWebUrl: archive.dicomWebUrl },
        spool: { dir: 'spool', fsync: false },
        uploader: { retry: { initialDelayMs: 50, maxDelayMs: 500 } },
        http: { port: 0 },
      }),
    );
    const imported = await run(['import', '--config', configFile, '--wait', root]);
    expect(imported.stderr).toContain('import: 7/7 files, 6 imported');
    expect(imported.stderr).toContain('1 not DICOM');
    expect(imported.stderr).toContain(`skipped (not DICOM Part 10) ${path.join(root, 'junk.bin')}`);
    expect(imported.stderr).toContain('import: 6 uploaded, 0 quarantined');
    expect(imported.code).toBe(0);
    const q = await getJson(`${archive.dicomWebUrl}/studies/${series[0]!.studyInstanceUID}/instances`);
    expect(q.json).toHaveLength(6);
    const r = await getParts(`${archive.dicomWebUrl}/studies/${series[2]!.studyInstanceUID}/series/${series[2]!.seriesInstanceUID}/instances/${series[2]!.sopInstanceUID}`, 'multipart/related; type="application/dicom"; transfer-syntax=*');
    expect(Buffer.compare(r.parts[0]!.body, withZeroPreamble(series[2]!.bytes))).toBe(0);

    const status = await run(['status', '--config', configFile, '--json']);
    expect(status.code).toBe(0);
    const report = JSON.parse(status.stdout);
    expect(report).toMatchObject({ owner: null, counts: { incoming: 0, queued: 0, inflight: 0, done: 6, quarantine: 0 }, oldestQueuedAgeSeconds: null, quarantineReasons: [] });
    const text = await run(['status', '--config', configFile]);
    expect(text.stdout).toContain('queued 0  inflight 0  done 6  quarantine 0');

    // A quarantined entry: status lists its reason; requeue sends it back to the queue.
    const spool = await Spool.open({ dir: path.join(tmp.dir, 'spool'), fsync: false, ackMode: 'spool', doneRetentionMs: 3600_000 });
    const w = await spool.createIncoming();
    await w.write(series[0]!.bytes);
    await w.commit({ sopInstanceUID: '1.2.826.0.1.3680043.10.1234.88.1', sopClassUID: series[0]!.sopClassUID, transferSyntaxUID: series[0]!.transferSyntaxUID });
    const quarantined = await spool.quarantine((await spool.claimNext())!, 'STOW FailureReason 0xA900');
    await spool.close();
    const withReason = await run(['status', '--config', configFile]);
    expect(withReason.stdout).toContain('quarantine 1');
    expect(withReason.stdout).toMatch(/ +1 {2}STOW FailureReason 0xA900/);
    const requeued = await run(['requeue', '--config', configFile, quarantined.id]);
    expect(requeued).toMatchObject({ code: 0, stdout: 'requeued 1 quarantined entry\n' });
    expect(JSON.parse((await run(['status', '--config', configFile, '--json'])).stdout).counts).toMatchObject({ queued: 1, quarantine: 0 });

    // A file that fails makes the exit code non-zero.
    writeTree(root, { 'bad.dcm': missingTransferSyntax() });
    const failed = await run(['import', '--config', configFile, root]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('MISSING_TRANSFER_SYNTAX');
  });

  test('beside a running gateway the importer only spools, and --wait watches the gateway upload', async () => {
    const series = ctSeries({ count: 4, rows: 16, columns: 16 });
    const root = path.join(tmp.dir, 'media-2');
    writeTree(root, Object.fromEntries(series.map((s, i) => [`${i}.dcm`, s.bytes] as const)));
    const configFile = path.join(tmp.dir, 'gateway-2.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify({ dimse: { aeTitle: 'EDGE', port: 0 }, cloud: { dicomWebUrl: archive.dicomWebUrl }, spool: { dir: 'spool-2', fsync: false }, http: { port: 0 } }),
    );
    const worker = spawn(process.execPath, ['--import', 'tsx', CLI, 'drain', '--config', configFile], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    worker.stderr.on('data', (d) => (log += d));
    const exited = new Promise((r) => worker.on('exit', r));
    try {
      const until = Date.now() + 60_000;
      while (!log.includes('upload pipeline started')) {
        if (Date.now() > until) throw new Error(`the drain worker did not start: ${log}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const imported = await run(['import', '--config', configFile, '--wait', root]);
      expect(imported.stderr).toContain('waiting for 4 uploads (by the running gateway)');
      expect(imported.stderr).toContain('import: 4 uploaded, 0 quarantined');
      expect(imported.code).toBe(0);
      expect((await getJson(`${archive.dicomWebUrl}/studies/${series[0]!.studyInstanceUID}/instances`)).json).toHaveLength(4);
    } finally {
      worker.kill('SIGTERM');
      await exited;
    }
  });

  test('usage and configuration errors exit with 2 and say why', async () => {
    const noConfig = await run(['status', '--config', path.join(tmp.dir, 'absent.json')]);
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toContain('configuration error: cannot read the configuration file');
    const usage = await run(['import', '--config', path.join(tmp.dir, 'absent.json')]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('import needs exactly one directory or DICOMDIR');
    const requeue = await run(['requeue', '--config', path.join(tmp.dir, 'absent.json')]);
    expect(requeue.code).toBe(2);
    expect(requeue.stderr).toContain('requeue needs --all or entry ids');
    const unknown = await run(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('usage: gateway');
  });
});
