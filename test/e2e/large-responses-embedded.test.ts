/**
 * The embedded server's side of large answers: text (JSON) answers are
 * gzipped when the client accepts it, the same JSON either way.
 */
import * as http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { ctSeries, uid } from '../fixtures/synthetic';
import { startTestArchive, stow, type TestArchive } from '../helpers/archive';

function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

describe('embedded archive: large answers', () => {
  let archive: TestArchive;
  const study = uid();
  const series = ctSeries({ count: 40, studyInstanceUID: study, rows: 16, columns: 16 });
  beforeAll(async () => {
    archive = await startTestArchive();
    expect((await stow(archive.dicomWebUrl, series.map((s) => s.bytes), study)).status).toBe(200);
  });
  afterAll(async () => archive.stop());

  it('series metadata is gzipped when accepted (Content-Encoding, Vary), identical JSON; plain otherwise', async () => {
    const url = `${archive.dicomWebUrl}/studies/${study}/series/${series[0]!.seriesInstanceUID}/metadata`;
    const gz = await rawGet(url, { Accept: 'application/dicom+json', 'Accept-Encoding': 'gzip' });
    expect(gz.status).toBe(200);
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers.vary).toMatch(/Accept-Encoding/);
    const plain = await rawGet(url, { Accept: 'application/dicom+json', 'Accept-Encoding': 'identity' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    const unzipped = gunzipSync(gz.body);
    expect(unzipped.equals(plain.body)).toBe(true);
    expect(JSON.parse(plain.body.toString())).toHaveLength(40);
    expect(gz.body.length).toBeLessThan(plain.body.length / 3);
  });

  it('DICOM bytes are never gzipped', async () => {
    const s = series[0]!;
    const res = await rawGet(`${archive.dicomWebUrl}/studies/${study}/series/${s.seriesInstanceUID}/instances/${s.sopInstanceUID}`, {
      Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*',
      'Accept-Encoding': 'gzip',
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBeUndefined();
  });
});
