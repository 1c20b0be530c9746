/**
 * The benchmark's data set, generated once into a cache directory (synthetic
 * only, test/fixtures/synthetic.ts) and fed to both systems byte for byte:
 *
 *   ct/      one CT series, 512×512×16-bit (600 slices; quick: 60)
 *   mr/      one MR series, 256×256×16-bit
 *   cr/      CR and DX single images (1024×880)
 *   mf/      one multi-frame instance, 512×512×16-bit frames
 *   rle/     CT slices recompressed by dcmtk's dcmcrle (RLE Lossless), new UIDs
 *   jpeg/    CT slices recompressed by dcmcjpeg (JPEG Lossless SV1), new UIDs
 *   large/   one multi-frame instance of ~500 MB (quick: 50 MB), streamed to disk
 *
 * Compressed copies get new Study/Series/SOP Instance UIDs (dcmodify), so
 * they are other instances rather than conflicting re-sends of the originals.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  SYNTH_UID_ROOT,
  crInstance,
  iterateCtSeries,
  largeInstance,
  mrInstance,
  multiFrameInstance,
  uid,
} from '../../test/fixtures/synthetic';

export const DATASET_VERSION = 1;

export interface DatasetSizes {
  ctSlices: number;
  mrImages: number;
  crImages: number;
  multiFrameFrames: number;
  compressedSlices: number;
  largeMb: number;
}

export const FULL_SIZES: DatasetSizes = { ctSlices: 600, mrImages: 60, crImages: 4, multiFrameFrames: 100, compressedSlices: 50, largeMb: 500 };
export const QUICK_SIZES: DatasetSizes = { ctSlices: 60, mrImages: 10, crImages: 2, multiFrameFrames: 20, compressedSlices: 5, largeMb: 50 };

export interface DatasetFile {
  file: string;
  bytes: number;
}

export interface Dataset {
  dir: string;
  sizes: DatasetSizes;
  ct: { studyInstanceUID: string; seriesInstanceUID: string; files: DatasetFile[] };
  mr: DatasetFile[];
  cr: DatasetFile[];
  mf: { studyInstanceUID: string; seriesInstanceUID: string; sopInstanceUID: string; frames: number; file: DatasetFile };
  rle: DatasetFile[];
  jpeg: DatasetFile[];
  large: { studyInstanceUID: string; seriesInstanceUID: string; sopInstanceUID: string; file: DatasetFile };
}

function save(dir: string, group: string, name: string, bytes: Uint8Array): DatasetFile {
  fs.mkdirSync(path.join(dir, group), { recursive: true });
  const file = path.join(dir, group, name);
  fs.writeFileSync(file, bytes);
  return { file, bytes: bytes.length };
}

function listGroup(dir: string, group: string): DatasetFile[] {
  const g = path.join(dir, group);
  return fs
    .readdirSync(g)
    .sort()
    .map((f) => ({ file: path.join(g, f), bytes: fs.statSync(path.join(g, f)).size }));
}

/** Compressed copies of some CT slices with fresh UIDs (dcmtk). */
function compressedCopies(dir: string, group: string, tool: string, toolArgs: string[], sources: DatasetFile[]): DatasetFile[] {
  fs.mkdirSync(path.join(dir, group), { recursive: true });
  for (const [i, src] of sources.entries()) {
    const out = path.join(dir, group, `${String(i + 1).padStart(4, '0')}.dcm`);
    execFileSync(tool, [...toolArgs, src.file, out], { stdio: 'pipe' });
  }
  const files = listGroup(dir, group);
  // One new study and series for the group, a new SOP Instance UID per file (PS3.3 C.12.1.1.1: other content, other UID).
  execFileSync('dcmodify', ['-nb', '-gin', ...files.map((f) => f.file)], { stdio: 'pipe' });
  execFileSync('dcmodify', ['-nb', '-m', `(0020,000D)=${uid(`${SYNTH_UID_ROOT}.8.${group === 'rle' ? 1 : 2}`)}`, '-m', `(0020,000E)=${uid(`${SYNTH_UID_ROOT}.8.${group === 'rle' ? 3 : 4}`)}`, ...files.map((f) => f.file)], { stdio: 'pipe' });
  return listGroup(dir, group);
}

/** Generate (or reuse from cacheDir) the data set of the given sizes. */
export function ensureDataset(cacheDir: string, sizes: DatasetSizes, log: (line: string) => void): Dataset {
  const key = `dataset-ct${sizes.ctSlices}-mf${sizes.multiFrameFrames}-large${sizes.largeMb}-v${DATASET_VERSION}`;
  const dir = path.resolve(cacheDir, key);
  const manifest = path.join(dir, 'manifest.json');
  if (fs.existsSync(manifest)) return JSON.parse(fs.readFileSync(manifest, 'utf8')) as Dataset;
  fs.rmSync(dir, { recursive: true, force: true });
  log(`generating the data set in ${dir}…`);
  const prefix = `${SYNTH_UID_ROOT}.7.${DATASET_VERSION}`;
  const newUid = () => uid(prefix);

  const ctStudy = newUid();
  const ctSeries = newUid();
  const ctFiles: DatasetFile[] = [];
  for (const inst of iterateCtSeries({ count: sizes.ctSlices, studyInstanceUID: ctStudy, seriesInstanceUID: ctSeries, studyDate: '20240312' })) {
    ctFiles.push(save(dir, 'ct', `${String(inst.instanceNumber).padStart(4, '0')}.dcm`, inst.bytes));
  }
  const mrStudy = newUid();
  const mrSeries = newUid();
  const mr = Array.from({ length: sizes.mrImages }, (_, i) =>
    save(dir, 'mr', `${String(i + 1).padStart(4, '0')}.dcm`, mrInstance({ studyInstanceUID: mrStudy, seriesInstanceUID: mrSeries, instanceNumber: i + 1, sopInstanceUID: newUid() }).bytes),
  );
  const cr = Array.from({ length: sizes.crImages }, (_, i) => {
    const dx = i % 2 === 1;
    const inst = crInstance({ instanceNumber: 1, sopInstanceUID: newUid(), studyInstanceUID: newUid(), seriesInstanceUID: newUid(), ...(dx ? { extra: { '00080060': { vr: 'CS', Value: ['DX'] }, '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.1.1'] } } } : {}) });
    return save(dir, 'cr', `${String(i + 1).padStart(4, '0')}.dcm`, inst.bytes);
  });
  const mfInst = multiFrameInstance({ frames: sizes.multiFrameFrames, rows: 512, columns: 512, sopInstanceUID: newUid(), studyInstanceUID: newUid(), seriesInstanceUID: newUid() });
  const mf = {
    studyInstanceUID: mfInst.studyInstanceUID,
    seriesInstanceUID: mfInst.seriesInstanceUID,
    sopInstanceUID: mfInst.sopInstanceUID,
    frames: mfInst.frames,
    file: save(dir, 'mf', 'multiframe.dcm', mfInst.bytes),
  };
  const sources = ctFiles.slice(0, sizes.compressedSlices);
  const rle = compressedCopies(dir, 'rle', 'dcmcrle', [], sources);
  const jpeg = compressedCopies(dir, 'jpeg', 'dcmcjpeg', ['--encode-lossless-sv1'], sources);

  const big = largeInstance({ bytes: sizes.largeMb * 1024 * 1024, sopInstanceUID: newUid(), studyInstanceUID: newUid(), seriesInstanceUID: newUid() });
  fs.mkdirSync(path.join(dir, 'large'), { recursive: true });
  const largeFile = path.join(dir, 'large', 'large.dcm');
  const fd = fs.openSync(largeFile, 'w');
  try {
    fs.writeSync(fd, big.header);
    for (let f = 1; f <= big.frames; f++) fs.writeSync(fd, big.frame(f));
  } finally {
    fs.closeSync(fd);
  }
  const dataset: Dataset = {
    dir,
    sizes,
    ct: { studyInstanceUID: ctStudy, seriesInstanceUID: ctSeries, files: ctFiles },
    mr,
    cr,
    mf,
    rle,
    jpeg,
    large: { studyInstanceUID: big.studyInstanceUID, seriesInstanceUID: big.seriesInstanceUID, sopInstanceUID: big.sopInstanceUID, file: { file: largeFile, bytes: big.totalLength } },
  };
  fs.writeFileSync(manifest, JSON.stringify(dataset, null, 1));
  return dataset;
}

/** What figure 1 stores: the CT series' first half (at least 300 slices in a full run) and every other group but the 500 MB one. */
export function ingestSet(d: Dataset): DatasetFile[] {
  const ct = d.ct.files.slice(0, Math.max(1, Math.ceil(d.ct.files.length / 2)));
  return [...ct, ...d.mr, ...d.cr, ...d.rle, ...d.jpeg, d.mf.file];
}
