/**
 * Durable file-system steps for the spool. POSIX gives atomic rename within
 * one file system; durability of a rename or a new file needs an fsync of the
 * file *and* of the directory holding its name (otherwise a power loss can
 * forget the rename although rename() returned). With `fsync: false` every
 * step is skipped: faster, and still crash-safe against a killed process
 * (the kernel keeps the page cache), only not against power loss.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

export async function fsyncDir(dir: string, enabled: boolean): Promise<void> {
  if (!enabled) return;
  const h = await fsp.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Group commit for one directory: concurrent writers that each need "an fsync of
 * this directory that began after my change" share one. A call while an fsync
 * runs waits for the next one (the running one may have started before the
 * caller's change), which all such callers share.
 */
export class DirSyncer {
  private running?: Promise<void>;
  private next?: Promise<void>;

  constructor(
    readonly dir: string,
    readonly enabled: boolean,
  ) {}

  sync(): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    if (!this.running) return (this.running = this.run());
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return (this.running = this.run());
      });
    return this.next;
  }

  private async run(): Promise<void> {
    try {
      await fsyncDir(this.dir, true);
    } finally {
      this.running = undefined;
    }
  }
}

/** Write `file` so that a crash leaves either the old content or the new, never a part: tmp + fsync + rename (+ dir fsync). */
export async function writeFileAtomic(file: string, data: string | Uint8Array, durable: boolean): Promise<void> {
  const tmp = `${file}.tmp`;
  const h = await fsp.open(tmp, 'w', 0o600);
  try {
    await h.writeFile(data);
    if (durable) await h.sync();
  } finally {
    await h.close();
  }
  await fsp.rename(tmp, file);
  await fsyncDir(path.dirname(file), durable);
}

/**
 * Rename and make the new name durable (fsync of the destination directory; a
 * rename is one journalled operation, so the old name goes with it).
 */
export async function renameDurable(from: string, to: string, durable: boolean): Promise<void> {
  await fsp.rename(from, to);
  await fsyncDir(path.dirname(to), durable);
}

export function isErrno(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes((e as NodeJS.ErrnoException).code ?? '');
}

/** Is a process with this pid alive (signal 0 probes without sending)? */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, owned by someone else.
    return isErrno(e, 'EPERM');
  }
}
