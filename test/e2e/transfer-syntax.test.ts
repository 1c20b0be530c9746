/**
 * WADO-RS Accept negotiation over stored uncompressed syntaxes (PS3.18 §8.7):
 * implicit/explicit LE and explicit BE objects are converted among each other;
 * frames of a big-endian object come back little endian; URLs in responses
 * follow Forwarded / X-Forwarded-* headers.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PYDICOM_DIR } from '../helpers/paths';
import { getJson, getParts, startTestArchive, stow, type TestArchive } from '../helpers/archive';
import { makeTempDir } from '../helpers/tmp';

const read = (name: string) => fs.readFileSync(path.join(PYDICOM_DIR, name));

function dumpOf(bytes: Buffer): string {
  const tmp = makeTempDir();
  try {
    const file = path.join(tmp.dir, 'x.dcm');
    fs.writeFileSync(file, bytes);
    const r = spawnSync('dcmdump', ['+P', '0002,0010', '+P', '0010,0010', '+P', '0028,0010', '+P', '0028,0011', file], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    return r.stdout;
  } finally {
    tmp.cleanup();
  }
}

describe('transfer syntax negotiation and conversion', () => {
  let archive: TestArchive;
  beforeAll(async () => {
    archive = await startTestArchive();
  });
  afterAll(async () => archive.stop());

  async function storeOne(bytes: Buffer): Promise<string> {
    const res = await stow(archive.dicomWebUrl, [bytes]);
    expect(res.status).toBe(200);
    return res.json['00081199'].Value[0]['00081190'].Value[0];
  }
  async function remove(url: string) {
    expect((await fetch(url, { method: 'DELETE' })).status).toBe(204);
  }

  it.each([
    ['MR_small_implicit.dcm', '1.2.840.10008.1.2.1', 'LittleEndianExplicit'],
    ['MR_small_bigendian.dcm', '1.2.840.10008.1.2.1', 'LittleEndianExplicit'],
    ['MR_small.dcm', '1.2.840.10008.1.2', 'LittleEndianImplicit'],
    ['MR_small.dcm', '1.2.840.10008.1.2.2', 'BigEndianExplicit'],
  ])('%s → %s', async (file, ts, dcmtkName) => {
    const url = await storeOne(read(file));
    const r = await getParts(url, `multipart/related; type="application/dicom"; transfer-syntax=${ts}`);
    expect(r.status).toBe(200);
    expect(r.parts[0]!.headers['content-type']).toBe(`application/dicom; transfer-syntax=${ts}`);
    const dump = dumpOf(r.parts[0]!.body);
    expect(dump).toContain(dcmtkName);
    expect(dump).toMatch(/\(0028,0010\) US 64/);
    await remove(url);
  });

  it('a big-endian object with no transfer-syntax asked for comes back as Explicit VR LE (the default)', async () => {
    const url = await storeOne(read('MR_small_bigendian.dcm'));
    const r = await getParts(url, 'multipart/related; type="application/dicom"');
    expect(r.status).toBe(200);
    expect(dumpOf(r.parts[0]!.body)).toContain('LittleEndianExplicit');
    await remove(url);
  });

  it('frames of the big-endian MR equal the little-endian original', async () => {
    const frameOf = async (file: string) => {
      const url = await storeOne(read(file));
      const r = await getParts(`${url}/frames/1`, 'multipart/related; type="application/octet-stream"');
      expect(r.status).toBe(200);
      await remove(url);
      return r.parts[0]!.body;
    };
    const le = await frameOf('MR_small.dcm');
    const be = await frameOf('MR_small_bigendian.dcm');
    expect(le.length).toBe(64 * 64 * 2);
    expect(Buffer.compare(le, be)).toBe(0);
  });

  it('a JPEG object: decoded for Explicit VR LE (the default, PS3.18 §8.7.3.4), served as stored for transfer-syntax=*', async () => {
    const url = await storeOne(read('JPEG-lossy.dcm'));
    const decoded = await getParts(url, 'multipart/related; type="application/dicom"');
    expect(decoded.status).toBe(200);
    expect(decoded.parts[0]!.headers['content-type']).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
    expect((await getParts(url, 'multipart/related; type="application/dicom"; transfer-syntax=*')).status).toBe(200);
    const f = await getParts(`${url}/frames/1`, 'multipart/related; type="image/jpeg"');
    expect(f.status).toBe(200);
    expect(f.parts[0]!.body.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    await remove(url);
  });

  it('RetrieveURL and BulkDataURI follow Forwarded and X-Forwarded-* headers', async () => {
    const url = await storeOne(read('CT_small.dcm'));
    const path = new URL(url).pathname;
    const viaForwarded = await getJson(`${url}/metadata`, { Forwarded: 'for=10.0.0.1;proto=https;host=pacs.example.org' });
    expect(viaForwarded.json[0]['7FE00010'].BulkDataURI).toBe(`https://pacs.example.org${path}/bulkdata/7FE00010`);
    const viaX = await getJson(`${archive.dicomWebUrl}/studies?limit=1`, { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'viewer.example.org:8443' });
    expect(viaX.json[0]['00081190'].Value[0]).toMatch(/^https:\/\/viewer\.example\.org:8443\/dicom-web\/studies\//);
    const forged = await getJson(`${archive.dicomWebUrl}/studies?limit=1`, { 'X-Forwarded-Proto': 'javascript', 'X-Forwarded-Host': 'evil"><script>' });
    expect(forged.json[0]['00081190'].Value[0].startsWith(archive.dicomWebUrl)).toBe(true);
    await remove(url);
  });

  it('/series across studies by Modality, and includefield=all', async () => {
    const ct = await storeOne(read('CT_small.dcm'));
    const mr = await storeOne(read('MR_small.dcm'));
    const series = await getJson(`${archive.dicomWebUrl}/series?Modality=MR`);
    expect(series.json).toHaveLength(1);
    expect(series.json[0]['0020000D']).toBeDefined();
    const all = await getJson(`${archive.dicomWebUrl}/studies?PatientID=1CT1&includefield=all`);
    expect(all.json).toHaveLength(1);
    expect(Object.keys(all.json[0]).length).toBeGreaterThan(15);
    await remove(ct);
    await remove(mr);
  });
});
