/**
 * Memory while one large C-STORE streams through the DIMSE layer: our
 * requestor sends a synthetic instance of --mib MiB (default 512) to our
 * acceptor in the same process; the store service's spool only counts bytes.
 * Prints throughput and RSS before/peak — the data set is never held whole.
 *
 *   npx tsx scripts/measure-dimse-memory.ts [--mib 512]
 */
import { parseArgs } from 'node:util';
import { connectDimse, createDimseServer } from '../edge-gateway/src/dimse';
import { createStoreService } from '../edge-gateway/src/scp/store';
import { encodeDataset } from '../functions/core/dicom/writer';

const SC = '1.2.840.10008.5.1.4.1.1.7'; // Secondary Capture Image Storage
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { mib: { type: 'string', default: '512' } } });
  const total = Number(values.mib) * 1024 * 1024;
  let received = 0;
  const spool = {
    async createIncoming() {
      return {
        async write(c: Uint8Array) {
          received += c.length;
          await new Promise((r) => setImmediate(r)); // a disk write is asynchronous too
        },
        async commit() {
          return { id: 'counted', state: 'queued' };
        },
        async abort() {},
      };
    },
  };
  const server = await createDimseServer({
    aeTitle: 'MEASURE',
    host: '127.0.0.1',
    port: 0,
    services: { store: createStoreService({ spool, ackMode: 'spool' }) },
    maxAssociations: 1,
    maxPduLength: 116794,
    idleTimeoutMs: 60_000,
    artimTimeoutMs: 10_000,
  });
  const sopInstanceUID = '1.2.826.0.1.3680043.10.1234.77.1';
  const head = encodeDataset({ '00080016': { vr: 'UI', Value: [SC] }, '00080018': { vr: 'UI', Value: [sopInstanceUID] } }, { transferSyntaxUID: EXPLICIT_LE });
  const pixelHeader = Buffer.alloc(12);
  pixelHeader.writeUInt16LE(0x7fe0, 0);
  pixelHeader.writeUInt16LE(0x0010, 2);
  pixelHeader.write('OB', 4);
  pixelHeader.writeUInt32LE(total, 8);
  async function* dataset(): AsyncIterable<Uint8Array> {
    yield head;
    yield pixelHeader;
    for (let at = 0; at < total; at += 1 << 20) yield Buffer.alloc(Math.min(1 << 20, total - at), 7);
  }
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const association = await connectDimse({
    host: '127.0.0.1',
    port: server.port,
    callingAETitle: 'SCU',
    calledAETitle: 'MEASURE',
    maxPduLength: 116794,
    presentationContexts: [{ abstractSyntax: SC, transferSyntaxes: [EXPLICIT_LE] }],
  });
  const start = process.hrtime.bigint();
  const rsp = await association.store({ sopClassUID: SC, sopInstanceUID, transferSyntaxUID: EXPLICIT_LE, dataset: dataset() });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  clearInterval(timer);
  await association.release();
  await server.close();
  const mib = (n: number) => (n / 2 ** 20).toFixed(0);
  console.log(
    `status 0x${rsp.status.toString(16).padStart(4, '0')}: ${mib(received)} MiB in ${seconds.toFixed(1)} s (${(received / 2 ** 20 / seconds).toFixed(0)} MiB/s, both ends in this process); RSS ${mib(base)} MiB before, ${mib(peak)} MiB peak`,
  );
}

main().catch((e) => {
  console.error((e as Error).message);
  process.exit(1);
});
