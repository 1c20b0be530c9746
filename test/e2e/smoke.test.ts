/** The post-deploy smoke test (`npm run smoke`) passes against the embedded archive. */
import { runSmoke } from '../../scripts/smoke';
import { startTestArchive, type TestArchive } from '../helpers/archive';

describe('npm run smoke', () => {
  let archive: TestArchive;
  beforeAll(async () => {
    archive = await startTestArchive();
  });
  afterAll(async () => archive.stop());

  it('runs the end-to-end flow and cleans up', async () => {
    const lines: string[] = [];
    await runSmoke({ url: archive.dicomWebUrl }, (l) => lines.push(l));
    expect(lines.filter((l) => l.startsWith('ok'))).toHaveLength(8);
    const left = await fetch(`${archive.dicomWebUrl}/studies`);
    expect(await left.json()).toEqual([]);
  });
});
