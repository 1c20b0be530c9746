/**
 * Index filler: many small synthetic studies, the same ones for both systems.
 *
 * - Ours: written straight into the embedded archive's SQLite index through
 *   the index port (`SqliteIndex.putInstance`), each record built by the
 *   core from the parsed Part 10 bytes exactly as STOW would
 *   (`buildInstanceRecord`), no HTTP. No blobs are written: study searches
 *   never read them.
 * - Orthanc: its index can only be filled through Orthanc itself, so each
 *   instance is uploaded with REST `POST /instances` (raw application/dicom,
 *   `concurrency` requests in flight), staged on tmpfs when it fits (see
 *   `orthancStagingDir`). Orthanc stores the (≈1 KB) files too.
 *
 * Study i is a deterministic function of i: patients (2 studies each on
 * average) with made-up syllable names, study dates spread over 2015–2024,
 * a modality mix (CT 40 %, MR 25 %, CR 15 %, DX 10 %, US 10 %), one series of
 * `instancesPerStudy` image instances without pixel data.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parsePart10 } from '../../functions/core/dicom';
import type { DicomJsonDataset } from '../../functions/core/dicom';
import { writePart10 } from '../../functions/core/dicom/writer';
import { buildInstanceRecord } from '../../functions/core/archive/store';
import { DEFAULT_LIMITS, silentLogger, type ArchiveContext } from '../../functions/core/archive/context';
import { instanceBlobKey } from '../../functions/core/archive/keys';
import { SqliteIndex } from '../../functions/adapters/local/sqlite-index';
import { sha256 } from '../../functions/adapters/node-runtime';
import { SYNTH_UID_ROOT, createRng } from '../../test/fixtures/synthetic';

const SYLLABLES = ['BA', 'KO', 'RI', 'MEN', 'TA', 'LU', 'DOR', 'SI', 'VAN', 'PE', 'NO', 'GAL', 'HU', 'ZE', 'MAR', 'FI', 'TOL', 'QUE', 'WEN', 'JA'];
const GIVEN = ['ALEX', 'SAM', 'KIM', 'ROBIN', 'JO', 'CHRIS', 'PAT', 'LEE', 'DANA', 'NOEL'];
const MODALITIES: [string, number, string][] = [
  ['CT', 0.4, '1.2.840.10008.5.1.4.1.1.2'],
  ['MR', 0.25, '1.2.840.10008.5.1.4.1.1.4'],
  ['CR', 0.15, '1.2.840.10008.5.1.4.1.1.1'],
  ['DX', 0.1, '1.2.840.10008.5.1.4.1.1.1.1'],
  ['US', 0.1, '1.2.840.10008.5.1.4.1.1.6.1'],
];
const DAY_MS = 86_400_000;
const FIRST_DAY = Date.UTC(2015, 0, 1);
const DAYS = 3652;

export interface FillStudy {
  index: number;
  /** patient number (several studies share one) */
  patient: number;
  studyInstanceUID: string;
  seriesInstanceUID: string;
  patientName: string;
  patientID: string;
  studyDate: string;
  modality: string;
  sopClassUID: string;
}

/** Family name of patient p: three syllables (8,000 families), so a two-syllable prefix selects 1/400 of them. */
export function familyName(p: number): string {
  return SYLLABLES[p % 20]! + SYLLABLES[Math.floor(p / 20) % 20]! + SYLLABLES[Math.floor(p / 400) % 20]!;
}

/** The first two syllables of a family name: a PatientName wildcard prefix matching ~1/400 of the families. */
export function familyPrefix(p: number): string {
  return SYLLABLES[p % 20]! + SYLLABLES[Math.floor(p / 20) % 20]!;
}

export function fillStudy(scale: number, i: number): FillStudy {
  const rng = createRng(i * 2654435761 + 17);
  const patient = Math.floor(rng() * Math.max(1, scale / 2));
  const day = new Date(FIRST_DAY + Math.floor(rng() * DAYS) * DAY_MS).toISOString().slice(0, 10).replace(/-/g, '');
  let r = rng();
  let m = MODALITIES[0]!;
  for (const candidate of MODALITIES) {
    m = candidate;
    if ((r -= candidate[1]) < 0) break;
  }
  const root = `${SYNTH_UID_ROOT}.9.${scale}.${i + 1}`;
  return {
    index: i,
    patient,
    studyInstanceUID: root,
    seriesInstanceUID: `${root}.1`,
    patientName: `${familyName(patient)}^${GIVEN[patient % GIVEN.length]}`,
    patientID: `BP${String(patient).padStart(7, '0')}`,
    studyDate: day,
    modality: m[0],
    sopClassUID: m[2],
  };
}

const s = (vr: string, v: string | number): { vr: string; Value: unknown[] } => ({ vr, Value: [v] });

/** Part 10 bytes of instance k (1-based) of a fill study: patient/study/series/instance modules, no pixel data. */
export function fillInstanceBytes(study: FillStudy, k: number): Uint8Array {
  const ds: DicomJsonDataset = {
    '00080005': s('CS', 'ISO_IR 100'),
    '00080016': s('UI', study.sopClassUID),
    '00080018': s('UI', `${study.seriesInstanceUID}.${k}`),
    '00080020': s('DA', study.studyDate),
    '00080030': s('TM', '101500'),
    '00080050': s('SH', `ACC${study.index + 1}`),
    '00080060': s('CS', study.modality),
    '00080090': { vr: 'PN', Value: [{ Alphabetic: 'SYNTH^REFERRER' }] },
    '00081030': s('LO', `SYNTH ${study.modality} STUDY`),
    '0008103E': s('LO', `SYNTH ${study.modality} SERIES`),
    '00100010': { vr: 'PN', Value: [{ Alphabetic: study.patientName }] },
    '00100020': s('LO', study.patientID),
    '00100030': s('DA', '19700101'),
    '00100040': s('CS', 'O'),
    '0020000D': s('UI', study.studyInstanceUID),
    '0020000E': s('UI', study.seriesInstanceUID),
    '00200010': s('SH', String(study.index % 100000)),
    '00200011': s('IS', 1),
    '00200013': s('IS', k),
  } as unknown as DicomJsonDataset;
  return writePart10(ds);
}

export interface FillOptions {
  studies: number;
  instancesPerStudy: number;
  progress?: (done: number) => void;
}

/** Fill a fresh SQLite index file (ours). Returns the seconds it took. */
export async function fillOurIndex(file: string, options: FillOptions): Promise<number> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const index = new SqliteIndex(file);
  const ctx = {
    index,
    createHash: sha256,
    now: () => new Date(),
    limits: DEFAULT_LIMITS,
    log: silentLogger,
  } as unknown as ArchiveContext;
  const started = performance.now();
  try {
    for (let i = 0; i < options.studies; i++) {
      const study = fillStudy(options.studies, i);
      for (let k = 1; k <= options.instancesPerStudy; k++) {
        const bytes = fillInstanceBytes(study, k);
        const parsed = parsePart10(bytes);
        const sop = `${study.seriesInstanceUID}.${k}`;
        const hash = ctx.createHash();
        hash.update(bytes);
        const record = buildInstanceRecord(
          ctx,
          parsed,
          { study: study.studyInstanceUID, series: study.seriesInstanceUID, sop, sopClass: study.sopClassUID },
          { blobKey: instanceBlobKey(study.studyInstanceUID, study.seriesInstanceUID, sop, 'fill0000'), size: bytes.length, contentHash: hash.digest(), pixelData: undefined },
        );
        const r = await index.putInstance(record);
        if (r.status !== 'created') throw new Error(`fill: instance ${sop} not created (${r.status})`);
      }
      if (options.progress && (i + 1) % 10_000 === 0) options.progress(i + 1);
    }
  } finally {
    index.close();
  }
  return (performance.now() - started) / 1000;
}

/** Fill Orthanc through REST POST /instances. Returns the seconds it took. */
export async function fillOrthanc(httpUrl: string, options: FillOptions & { concurrency: number }): Promise<number> {
  const started = performance.now();
  let next = 0;
  const total = options.studies * options.instancesPerStudy;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const n = next++;
      if (n >= total) return;
      const study = fillStudy(options.studies, Math.floor(n / options.instancesPerStudy));
      const bytes = fillInstanceBytes(study, (n % options.instancesPerStudy) + 1);
      const res = await fetch(`${httpUrl}/instances`, { method: 'POST', body: bytes as unknown as BodyInit, headers: { 'Content-Type': 'application/dicom' } });
      const text = await res.text();
      if (!res.ok) throw new Error(`Orthanc POST /instances: ${res.status} ${text.slice(0, 500)}`);
      done += 1;
      if (options.progress && done % (10_000 * options.instancesPerStudy) === 0) options.progress(done / options.instancesPerStudy);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return (performance.now() - started) / 1000;
}

/** Bump when fillStudy/fillInstanceBytes change: cached fills of an older version are rebuilt. */
export const FILL_VERSION = 1;

export interface FilledIndex {
  dir: string;
  /** seconds the fill took when it was made (it may come from an earlier run's cache) */
  fillSeconds: number;
  cached: boolean;
  /** Orthanc's fill ran on tmpfs and was copied to disk afterwards */
  staged?: boolean;
}

function cachedFill(dir: string): FilledIndex | undefined {
  const marker = path.join(dir, 'complete.json');
  if (!fs.existsSync(marker)) return undefined;
  const made = JSON.parse(fs.readFileSync(marker, 'utf8')) as { fillSeconds: number; staged?: boolean };
  return { dir, fillSeconds: made.fillSeconds, cached: true, ...(made.staged ? { staged: true } : {}) };
}

function markComplete(dir: string, fillSeconds: number, staged = false): FilledIndex {
  fs.writeFileSync(path.join(dir, 'complete.json'), JSON.stringify({ fillSeconds, version: FILL_VERSION, at: new Date().toISOString(), ...(staged ? { staged } : {}) }));
  return { dir, fillSeconds, cached: false, ...(staged ? { staged } : {}) };
}

export function fillDirName(system: 'ours' | 'orthanc', options: FillOptions): string {
  return `${system}-${options.studies}x${options.instancesPerStudy}-v${FILL_VERSION}`;
}

/** Our filled index under cacheDir (dir holds index.sqlite; copy it into an archive data dir to use it). */
export async function ensureOurFill(cacheDir: string, options: FillOptions): Promise<FilledIndex> {
  const dir = path.resolve(cacheDir, fillDirName('ours', options));
  const hit = cachedFill(dir);
  if (hit) {
    // Opening brings a fill made by an older schema up to date, once, here rather than in every archive start-up it is copied to.
    new SqliteIndex(path.join(dir, 'index.sqlite')).close();
    return hit;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const seconds = await fillOurIndex(path.join(dir, 'index.sqlite'), options);
  return markComplete(dir, seconds);
}

/**
 * Where Orthanc's fill is staged: tmpfs when it has room, so its per-instance
 * SQLite commits and SyncStorageArea fsyncs cost nothing during the fill. The
 * filled directories are then copied to the cache on disk, where the
 * benchmark reads them. How the index was filled does not change what is
 * measured (search latency on a filled index); on disk the 100k-instance
 * fill took 25 min here (67 instances/s), on tmpfs ~600 instances/s.
 */
export function orthancStagingDir(neededBytes: number): string | undefined {
  const shm = '/dev/shm';
  try {
    const st = fs.statfsSync(shm);
    return st.bavail * st.bsize > neededBytes ? shm : undefined;
  } catch {
    return undefined;
  }
}

/** Orthanc's filled storage + index under cacheDir (dir/storage, dir/index), filled by a temporary Orthanc. */
export async function ensureOrthancFill(
  cacheDir: string,
  options: FillOptions & { concurrency: number; stagingDir?: string },
  start: (storageDirectory: string, indexDirectory: string) => Promise<{ httpUrl: string; stop(): Promise<void> }>,
): Promise<FilledIndex> {
  const name = fillDirName('orthanc', options);
  const dir = path.resolve(cacheDir, name);
  const hit = cachedFill(dir);
  if (hit) return hit;
  fs.rmSync(dir, { recursive: true, force: true });
  const work = options.stagingDir ? path.join(options.stagingDir, `bench-${name}`) : dir;
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  try {
    const orthanc = await start(path.join(work, 'storage'), path.join(work, 'index'));
    let seconds: number;
    try {
      seconds = await fillOrthanc(orthanc.httpUrl, options);
    } finally {
      await orthanc.stop();
    }
    if (work !== dir) {
      // Across file systems rename fails (EXDEV); cp keeps going on a million small files.
      fs.mkdirSync(path.dirname(dir), { recursive: true });
      const r = spawnSync('cp', ['-a', work, dir], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`copying Orthanc's fill to ${dir} failed: ${r.stderr}`);
    }
    return markComplete(dir, seconds, work !== dir);
  } finally {
    if (work !== dir) fs.rmSync(work, { recursive: true, force: true });
  }
}
