/**
 * Embedded mode start-up recovery (core/archive/ingest.ts `unfinishedUploads`):
 * the in-process ingest queue dies with the process, so uploads whose bytes
 * were complete but whose ingest had not finished are ingested when the
 * archive starts again. The crash states are made with the same core and
 * store the server uses, on the data directory the restarted server opens.
 */
import { createEmbeddedContext, startEmbeddedArchive } from '../../functions/adapters/local/embedded';
import { silentLogger } from '../../functions/core/archive/context';
import { ingestUploadedObject } from '../../functions/core/archive/ingest';
import { uploadStatusKey } from '../../functions/core/archive/keys';
import { directUploadsOf } from '../../functions/core/archive/ports';
import { createUploadService, readUploadRecord } from '../../functions/core/archive/upload';
import { mrInstance, type SyntheticInstance } from '../fixtures/synthetic';
import { getJson } from '../helpers/archive';
import { makeTempDir } from '../helpers/tmp';

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

describe('embedded start-up recovery of uploads the previous process did not ingest', () => {
  const tmp = makeTempDir('upload-recovery-');
  afterAll(() => tmp.cleanup());

  const states: Record<string, { uploadId: string; instance: SyntheticInstance }> = {};
  let ingestedAt: string;

  beforeAll(async () => {
    // The "previous process": uploads in every stage, then it dies (close without ingesting).
    const { ctx, close } = createEmbeddedContext({ dataDir: tmp.dir, log: silentLogger });
    const uploads = directUploadsOf(ctx.blobs)!;
    const service = createUploadService(ctx, { uploads });
    const base = 'http://127.0.0.1:1/dicom-web';
    const begin = async (name: string) => {
      const instance = mrInstance({ rows: 32, columns: 32 });
      const { created } = await service.create({ size: instance.bytes.byteLength }, base);
      const { etag } = await uploads.putPart!(created.key, created.storeUploadId, 1, once(instance.bytes), instance.bytes.byteLength);
      states[name] = { uploadId: created.uploadId, instance };
      return { created, etag };
    };
    // Completed (the `completed` record written), the process died before ingest ran.
    {
      const { created, etag } = await begin('completed');
      await service.complete(created.uploadId, { parts: [{ partNumber: 1, etag }] }, base);
    }
    // Parts assembled into the object, the process died before writing `completed`.
    {
      const { created, etag } = await begin('assembled');
      await uploads.completeUpload(created.key, created.storeUploadId, [{ partNumber: 1, etag }]);
    }
    // Still being sent: all parts there, never completed. Must stay an open upload.
    await begin('uploading');
    // Ingested before the crash: must not be judged again.
    {
      const { created, etag } = await begin('ingested');
      await service.complete(created.uploadId, { parts: [{ partNumber: 1, etag }] }, base);
      expect((await ingestUploadedObject(ctx, created.key)).state).toBe('stored');
      ingestedAt = (await readUploadRecord(ctx, created.uploadId, 'result'))!.at;
    }
    // Died mid-ingest: indexed, the `result` record not yet written.
    {
      const { created, etag } = await begin('midIngest');
      await service.complete(created.uploadId, { parts: [{ partNumber: 1, etag }] }, base);
      expect((await ingestUploadedObject(ctx, created.key)).state).toBe('stored');
      await ctx.blobs.delete(uploadStatusKey(created.uploadId, 'result'));
    }
    close();
  });

  it('ingests completed-but-not-ingested uploads at start-up, leaves the others, and a second start finds nothing to do', async () => {
    const archive = await startEmbeddedArchive({ dataDir: tmp.dir, port: 0, log: silentLogger });
    try {
      expect(await archive.recovery).toBe(3);
      await archive.ingest.idle();
      for (const name of ['completed', 'assembled', 'midIngest']) {
        const { uploadId, instance } = states[name]!;
        const status = await getJson(`${archive.dicomWebUrl}/uploads/${uploadId}`);
        expect({ name, state: status.json.state }).toEqual({ name, state: 'stored' });
        const url = `${archive.dicomWebUrl}/studies/${instance.studyInstanceUID}/series/${instance.seriesInstanceUID}/instances/${instance.sopInstanceUID}`;
        expect(status.json.retrieveURL).toBe(url);
        const meta = await getJson(`${url}/metadata`);
        expect(meta.status).toBe(200);
        expect(meta.json[0]['00080018'].Value).toEqual([instance.sopInstanceUID]);
      }
      // Indexed once, whatever was judged again.
      const mid = states.midIngest!.instance;
      expect((await getJson(`${archive.dicomWebUrl}/studies/${mid.studyInstanceUID}/instances`)).json).toHaveLength(1);
      // The upload still being sent is still open (resumable), not ingested.
      const open = await getJson(`${archive.dicomWebUrl}/uploads/${states.uploading!.uploadId}`);
      expect(open.json.state).toBe('uploading');
      expect((await getJson(`${archive.dicomWebUrl}/studies/${states.uploading!.instance.studyInstanceUID}/instances`)).json).toEqual([]);
      // The one ingested before the crash was not judged again.
      const done = await getJson(`${archive.dicomWebUrl}/uploads/${states.ingested!.uploadId}`);
      expect(done.json.result.at).toBe(ingestedAt);
    } finally {
      await archive.close();
    }
    const again = await startEmbeddedArchive({ dataDir: tmp.dir, port: 0, log: silentLogger });
    try {
      expect(await again.recovery).toBe(0);
    } finally {
      await again.close();
    }
  });
});
