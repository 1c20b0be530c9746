/**
 * Upload of dropped or chosen files and folders: Part 10 files only (the
 * "DICM" prefix after the 128-byte preamble, PS3.10 §7.1), small ones in
 * STOW-RS batches up to the configured request size, large ones through the
 * upload API. One progress figure over all bytes; a failed batch is counted
 * and reported, the rest carries on.
 */
import { ArchiveClient, HttpError, type StowOutcome } from './api';

export interface UploadProgress {
  sentBytes: number;
  totalBytes: number;
  stored: number;
  failed: number;
  skipped: number;
}

export interface UploadSummary extends UploadProgress {
  reasons: string[];
}

/** Every File under the dropped items (folders walked; DataTransferItem.webkitGetAsEntry). */
export async function filesFromDrop(data: DataTransfer): Promise<File[]> {
  const entries = Array.from(data.items).map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  if (entries.length === 0) return Array.from(data.files);
  const out: File[] = [];
  const walk = async (entry: FileSystemEntry): Promise<void> => {
    if (entry.isFile) {
      out.push(await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject)));
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      // readEntries answers in chunks (Chromium: 100) until an empty one.
      for (;;) {
        const chunk = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
        if (chunk.length === 0) break;
        for (const child of chunk) await walk(child);
      }
    }
  };
  for (const e of entries) await walk(e);
  return out;
}

async function isPart10(file: File): Promise<boolean> {
  if (file.size < 132) return false;
  const magic = new Uint8Array(await file.slice(128, 132).arrayBuffer());
  return magic[0] === 0x44 && magic[1] === 0x49 && magic[2] === 0x43 && magic[3] === 0x4d;
}

export async function uploadFiles(
  client: ArchiveClient,
  files: File[],
  limits: { stowMaxBytes: number; uploadApiFromBytes: number },
  onProgress: (p: UploadProgress) => void,
): Promise<UploadSummary> {
  const dicom: File[] = [];
  let skipped = 0;
  for (const f of files) {
    if (await isPart10(f)) dicom.push(f);
    else skipped += 1;
  }
  const progress: UploadSummary = { sentBytes: 0, totalBytes: dicom.reduce((n, f) => n + f.size, 0), stored: 0, failed: 0, skipped, reasons: [] };
  onProgress({ ...progress });
  const add = (o: StowOutcome) => {
    progress.stored += o.stored;
    progress.failed += o.failed;
    progress.reasons.push(...o.reasons);
  };
  const large = dicom.filter((f) => f.size >= limits.uploadApiFromBytes || f.size > limits.stowMaxBytes);
  const small = dicom.filter((f) => !large.includes(f));

  // Batches: as many files as fit stowMaxBytes (less the multipart framing), at most 100.
  const batches: File[][] = [];
  let batch: File[] = [];
  let bytes = 0;
  for (const f of small) {
    if (batch.length > 0 && (bytes + f.size + 200 * (batch.length + 1) > limits.stowMaxBytes || batch.length >= 100)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(f);
    bytes += f.size;
  }
  if (batch.length > 0) batches.push(batch);

  for (const b of batches) {
    const base = progress.sentBytes;
    try {
      const parts = await Promise.all(b.map(async (f) => ({ bytes: await f.arrayBuffer() })));
      add(await client.storeInstances(parts, (sent) => onProgress({ ...progress, sentBytes: base + sent })));
    } catch (error) {
      if (error instanceof HttpError && error.status === 401) throw error;
      add({ stored: 0, failed: b.length, reasons: [error instanceof Error ? error.message : 'failed'] });
    }
    progress.sentBytes = base + b.reduce((n, f) => n + f.size, 0);
    onProgress({ ...progress });
  }
  for (const f of large) {
    const base = progress.sentBytes;
    try {
      add(await client.uploadLargeFile(f, (sent) => onProgress({ ...progress, sentBytes: base + sent })));
    } catch (error) {
      if (error instanceof HttpError && error.status === 401) throw error;
      add({ stored: 0, failed: 1, reasons: [error instanceof Error ? error.message : 'failed'] });
    }
    progress.sentBytes = base + f.size;
    onProgress({ ...progress });
  }
  return progress;
}
