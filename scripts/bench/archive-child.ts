/**
 * The embedded archive alone in its own process, so the benchmark can read
 * its memory use from /proc without the harness's own heap in the figure.
 * Bundled by the harness (esbuild) and run with plain `node`, like a
 * deployment would, not through tsx.
 *
 *   node archive-child.js DATA_DIR   → prints one line {"url": "...", "dicomWebUrl": "..."}
 *
 * Stops on SIGTERM or when stdin closes (the harness died).
 */
import { startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';

async function main(): Promise<void> {
  const dataDir = process.argv[2];
  if (!dataDir) throw new Error('usage: archive-child DATA_DIR');
  const archive = await startEmbeddedArchive({ dataDir, port: 0, log: silentLogger });
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    void archive.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ url: archive.url, dicomWebUrl: archive.dicomWebUrl })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
