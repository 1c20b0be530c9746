/**
 * Import progress on stderr: on a terminal one line redrawn in place
 * (carriage return), otherwise a plain line every few seconds (log files, CI).
 */
import type { ImportProgress } from './importer';

export interface ProgressReporter {
  update(p: ImportProgress): void;
  finish(p: ImportProgress): void;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function line(p: ImportProgress): string {
  return `${p.done}/${p.total} files, ${p.imported} imported (${mb(p.bytes)}), ${p.skippedKnown} already spooled, ${p.skippedNonDicom} not DICOM, ${p.failed} failed`;
}

export function createProgressReporter(stream: NodeJS.WriteStream = process.stderr, options: { intervalMs?: number; now?: () => number } = {}): ProgressReporter {
  const now = options.now ?? Date.now;
  const tty = Boolean(stream.isTTY);
  const interval = options.intervalMs ?? (tty ? 100 : 5_000);
  let last = Number.NEGATIVE_INFINITY;
  const draw = (p: ImportProgress, final: boolean) => {
    if (tty) {
      const width = 24;
      const filled = p.total > 0 ? Math.round((p.done / p.total) * width) : 0;
      const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
      const text = `${bar} ${line(p)}`;
      const cols = stream.columns ?? 120;
      stream.write(`\r${text.slice(0, cols - 1).padEnd(Math.min(cols - 1, text.length))}\x1b[K${final ? '\n' : ''}`);
    } else {
      stream.write(`import: ${line(p)}\n`);
    }
  };
  return {
    update(p) {
      const t = now();
      if (t - last < interval) return;
      last = t;
      draw(p, false);
    },
    finish(p) {
      draw(p, true);
    },
  };
}
