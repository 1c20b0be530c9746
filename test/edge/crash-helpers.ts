/**
 * Shared by the kill -9 crash tests (crash-kill9*.test.ts): waiting on a
 * child process, killing it hard, and looking into the spool's state folders.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Polls `probe` every 10 ms until it gives something other than undefined or false. */
export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The entries of one spool state folder (incoming, queued, inflight, done, quarantine), dot files left out. */
export function entries(spoolDir: string, state: string): string[] {
  try {
    return fs.readdirSync(path.join(spoolDir, state)).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
}

/** SIGKILL (unless it has already ended), then wait for the exit. */
export async function kill9(child: { proc: ChildProcess; exited: Promise<unknown> }): Promise<void> {
  if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
  await child.exited;
}
