/**
 * Bulk import of DICOM files (a CD/DVD, a USB disk, an old archive export)
 * into the spool, through the same createIncoming/commit path as C-STORE, so
 * the uploader sends them like any received instance.
 *
 * With a DICOMDIR (PS3.10 §8, PS3.3 F.5) at the root, the files its
 * directory records reference (ReferencedFileID) are imported; a DICOMDIR
 * that cannot be read, or references nothing, falls back to walking the tree.
 * Every file is checked to be Part 10 (preamble, "DICM", file meta) before it
 * is copied; other files are skipped and counted.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { DicomParseError, parsePart10, readFileMeta } from '../../../functions/core/dicom';
import { Tag } from '../../../functions/core/dicom/tags';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import type { IncomingMeta, Spool } from '../spool/spool';

export interface ImportProgress {
  /** Files found so far / in total (total known once the listing is done). */
  done: number;
  total: number;
  bytes: number;
  imported: number;
  skippedNonDicom: number;
  skippedKnown: number;
  failed: number;
}

export interface ImportFailure {
  file: string;
  reason: string;
}

export interface ImportResult extends ImportProgress {
  /** Where the list came from. */
  source: 'DICOMDIR' | 'walk';
  failures: ImportFailure[];
  nonDicom: string[];
  /** Spool ids of the imported instances. */
  ids: string[];
}

export interface ImportOptions {
  spool: Spool;
  /** A directory (walked, or its DICOMDIR followed) or one DICOMDIR file. */
  root: string;
  /** Import instances the spool already holds (queued, inflight or done) again. Default false. */
  again?: boolean;
  /** Files copied in parallel (default 4). */
  concurrency?: number;
  onProgress?: (p: ImportProgress) => void;
  /** Most files considered (default 10 million): a bound on a runaway tree. */
  maxFiles?: number;
}

const HEADER_FIRST_READ = 256 * 1024;
const HEADER_MAX_READ = 16 * 1024 * 1024;
const DICOMDIR_MAX_BYTES = 256 * 1024 * 1024;
/** PS3.10 §8.2: File ID components are 1–8 of upper-case letters, digits and underscore (many media also use lower case). */
const FILE_ID_COMPONENT = /^[A-Za-z0-9_]{1,8}$/;

function str(ds: DicomJsonDataset | undefined, tag: string): string | undefined {
  const v = ds?.[tag]?.Value?.[0];
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
}

/** Files referenced by a DICOMDIR, resolved inside `baseDir`; undefined when it cannot be used. */
export async function filesFromDicomdir(dicomdir: string): Promise<string[] | undefined> {
  try {
    const stat = await fsp.stat(dicomdir);
    if (!stat.isFile() || stat.size > DICOMDIR_MAX_BYTES) return undefined;
    const bytes = new Uint8Array(await fsp.readFile(dicomdir));
    const parsed = parsePart10(bytes, { stopAtPixelData: true });
    const records = parsed.dataset['00041220']?.Value;
    if (!Array.isArray(records)) return undefined;
    const baseDir = path.dirname(path.resolve(dicomdir));
    const out = new Set<string>();
    for (const r of records as DicomJsonDataset[]) {
      const id = r?.['00041500']?.Value;
      if (!Array.isArray(id) || id.length === 0) continue;
      // Directory records of any type may reference a file (IMAGE, SR DOCUMENT, PRESENTATION, …).
      const parts = id.map((c) => (typeof c === 'string' ? c.trim() : ''));
      // Never trust a path from a medium: plain components only, resolved inside the root.
      if (!parts.every((c) => FILE_ID_COMPONENT.test(c))) continue;
      const file = path.resolve(baseDir, ...parts);
      if (!file.startsWith(baseDir + path.sep)) continue;
      out.add(file);
    }
    return out.size > 0 ? [...out] : undefined;
  } catch {
    return undefined;
  }
}

/** Regular files under `root`, depth first, not following symbolic links (no loops, no escaping the tree). */
export async function* walkFiles(root: string): AsyncGenerator<string> {
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? 1 : -1));
    const subdirs: string[] = [];
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) subdirs.push(p);
      else if (e.isFile()) yield p;
    }
    stack.push(...subdirs);
  }
}

/** Read the start of a file, enough for the file meta and the header; undefined when it is not Part 10. */
export async function readInstanceMeta(file: string): Promise<{ meta: IncomingMeta } | { notPart10: true } | { error: string }> {
  const h = await fsp.open(file, 'r');
  try {
    const size = (await h.stat()).size;
    let want = Math.min(size, HEADER_FIRST_READ);
    for (;;) {
      const buf = new Uint8Array(want);
      const { bytesRead } = await h.read(buf, 0, want, 0);
      const bytes = buf.subarray(0, bytesRead);
      const final = bytesRead >= size;
      let fileMeta: DicomJsonDataset;
      let transferSyntaxUID: string;
      try {
        ({ fileMeta, transferSyntaxUID } = readFileMeta(bytes, undefined, final));
      } catch (e) {
        if (e instanceof DicomParseError && e.code === 'NEED_MORE_DATA' && !final && want < HEADER_MAX_READ) {
          want = Math.min(size, want * 4, HEADER_MAX_READ);
          continue;
        }
        if (e instanceof DicomParseError && e.code === 'NOT_PART10') return { notPart10: true };
        return { error: e instanceof DicomParseError ? e.code : 'UNREADABLE' };
      }
      let dataset: DicomJsonDataset | undefined;
      try {
        dataset = parsePart10(bytes, { final, stopAtPixelData: true }).dataset;
      } catch (e) {
        if (e instanceof DicomParseError && e.code === 'NEED_MORE_DATA' && !final && want < HEADER_MAX_READ) {
          want = Math.min(size, want * 4, HEADER_MAX_READ);
          continue;
        }
        // The header is the archive's to judge (it answers with a FailureReason); the file meta is enough to queue it.
        dataset = undefined;
      }
      const sopInstanceUID = str(fileMeta, Tag.MediaStorageSOPInstanceUID) ?? str(dataset, Tag.SOPInstanceUID);
      const sopClassUID = str(fileMeta, Tag.MediaStorageSOPClassUID) ?? str(dataset, Tag.SOPClassUID);
      if (!sopInstanceUID || !sopClassUID) return { error: 'MISSING_SOP_UIDS' };
      const studyInstanceUID = str(dataset, Tag.StudyInstanceUID);
      const seriesInstanceUID = str(dataset, Tag.SeriesInstanceUID);
      return {
        meta: {
          sopInstanceUID,
          sopClassUID,
          transferSyntaxUID,
          ...(studyInstanceUID ? { studyInstanceUID } : {}),
          ...(seriesInstanceUID ? { seriesInstanceUID } : {}),
        },
      };
    }
  } finally {
    await h.close();
  }
}

async function copyIntoSpool(spool: Spool, file: string, meta: IncomingMeta): Promise<string> {
  const writer = await spool.createIncoming();
  try {
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) await writer.write(chunk as Buffer);
    return (await writer.commit(meta)).id;
  } catch (e) {
    await writer.abort().catch(() => undefined);
    throw e;
  }
}

export async function importFiles(options: ImportOptions): Promise<ImportResult> {
  const { spool } = options;
  const maxFiles = options.maxFiles ?? 10_000_000;
  const root = path.resolve(options.root);
  const rootStat = await fsp.stat(root);
  let files: string[] | undefined;
  let source: ImportResult['source'] = 'walk';
  const dicomdir = rootStat.isFile() ? root : path.join(root, 'DICOMDIR');
  if (rootStat.isFile() || fs.existsSync(dicomdir)) {
    files = await filesFromDicomdir(dicomdir);
    if (files) source = 'DICOMDIR';
  }
  if (!files) {
    files = [];
    const walkRoot = rootStat.isFile() ? path.dirname(root) : root;
    for await (const f of walkFiles(walkRoot)) {
      if (path.basename(f) === 'DICOMDIR' || files.length >= maxFiles) continue;
      files.push(f);
    }
  }
  const result: ImportResult = { source, done: 0, total: files.length, bytes: 0, imported: 0, skippedNonDicom: 0, skippedKnown: 0, failed: 0, failures: [], nonDicom: [], ids: [] };
  const seen = new Set<string>();
  let next = 0;
  const worker = async () => {
    while (next < files!.length) {
      const file = files![next++]!;
      try {
        const info = await readInstanceMeta(file);
        if ('notPart10' in info) {
          result.skippedNonDicom++;
          result.nonDicom.push(file);
        } else if ('error' in info) {
          result.failed++;
          result.failures.push({ file, reason: info.error });
        } else {
          const state = spool.stateOf(info.meta.sopInstanceUID);
          // The same instance twice (a re-run after a crash, or two copies on the medium) is sent once.
          if (!options.again && (seen.has(info.meta.sopInstanceUID) || state === 'queued' || state === 'inflight' || state === 'done')) {
            result.skippedKnown++;
          } else {
            seen.add(info.meta.sopInstanceUID);
            result.ids.push(await copyIntoSpool(spool, file, info.meta));
            result.imported++;
            result.bytes += (await fsp.stat(file)).size;
          }
        }
      } catch (e) {
        result.failed++;
        const code = (e as { code?: unknown }).code;
        result.failures.push({ file, reason: typeof code === 'string' ? code : 'COPY_FAILED' });
      }
      result.done++;
      options.onProgress?.({ ...result });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
  return result;
}
