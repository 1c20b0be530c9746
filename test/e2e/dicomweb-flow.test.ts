/**
 * The main DICOMweb flows over real HTTP against the embedded archive: a
 * generated 300-instance CT series, a 50-frame multi-frame instance, an RLE
 * (encapsulated) instance and dcmtk-made files go through STOW → QIDO → WADO
 * (instances, metadata, frames, bulk data, transfer-syntax conversion) →
 * DELETE; 16 concurrent clients keep the study aggregates exact.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ctSeries, encapsulatedInstance, frameNumberOf, multiFrameInstance, mrInstance, uid } from '../fixtures/synthetic';
import { getJson, getParts, startTestArchive, stow, withZeroPreamble, type TestArchive } from '../helpers/archive';
import { makeTempDir } from '../helpers/tmp';

const ANY_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*';

describe('STOW → QIDO → WADO → DELETE', () => {
  let archive: TestArchive;
  let base: string;
  beforeAll(async () => {
    archive = await startTestArchive();
    base = archive.dicomWebUrl;
  });
  afterAll(async () => archive.stop());

  describe('a 300-instance CT series', () => {
    const study = uid();
    const series = ctSeries({ count: 300, studyInstanceUID: study });
    const seriesUID = series[0]!.seriesInstanceUID;

    beforeAll(async () => {
      for (let i = 0; i < series.length; i += 50) {
        const res = await stow(base, series.slice(i, i + 50).map((s) => s.bytes), study);
        expect(res.status).toBe(200);
        expect(res.json['00081199'].Value).toHaveLength(50);
        expect(res.json['00081190'].Value[0]).toBe(`${base}/studies/${study}`);
      }
    });

    it('QIDO study level has exact aggregates and the required attributes', async () => {
      const q = await getJson(`${base}/studies?StudyInstanceUID=${study}`);
      expect(q.status).toBe(200);
      expect(q.json).toHaveLength(1);
      const s = q.json[0];
      expect(s['00201208'].Value[0]).toBe(300);
      expect(s['00201206'].Value[0]).toBe(1);
      expect(s['00080061'].Value).toEqual(['CT']);
      expect(s['00080062'].Value).toEqual(['1.2.840.10008.5.1.4.1.1.2']);
      expect(s['00081190'].Value[0]).toBe(`${base}/studies/${study}`);
      expect(s['00080056'].Value[0]).toBe('ONLINE');
      for (const tag of ['00080020', '00080050', '00100010', '00100020', '0020000D']) expect(s[tag]).toBeDefined();
    });

    it('QIDO series and instance levels, with paging and the Warning header', async () => {
      const se = await getJson(`${base}/studies/${study}/series`);
      expect(se.json).toHaveLength(1);
      expect(se.json[0]['00201209'].Value[0]).toBe(300);
      expect(se.json[0]['00080060'].Value[0]).toBe('CT');
      const page = await getJson(`${base}/studies/${study}/series/${seriesUID}/instances?limit=10&offset=295`);
      expect(page.json).toHaveLength(5);
      expect(page.headers.get('warning')).toBeNull();
      const cut = await getJson(`${base}/studies/${study}/series/${seriesUID}/instances?limit=10`);
      expect(cut.json).toHaveLength(10);
      expect(cut.headers.get('warning')).toMatch(/^299 /);
      const byNumber = await getJson(`${base}/studies/${study}/instances?InstanceNumber=42`);
      expect(byNumber.json).toHaveLength(1);
      expect(byNumber.json[0]['00080018'].Value[0]).toBe(series[41]!.sopInstanceUID);
    });

    it('series metadata lists all 300 instances with fetchable BulkDataURIs', async () => {
      const m = await getJson(`${base}/studies/${study}/series/${seriesUID}/metadata`);
      expect(m.status).toBe(200);
      expect(m.json).toHaveLength(300);
      const first = m.json.find((x: any) => x['00080018'].Value[0] === series[0]!.sopInstanceUID);
      const uri: string = first['7FE00010'].BulkDataURI;
      expect(uri.startsWith(`${base}/studies/${study}/series/${seriesUID}/instances/`)).toBe(true);
      const bulk = await getParts(uri, 'multipart/related; type="application/octet-stream"');
      expect(bulk.status).toBe(200);
      expect(bulk.parts[0]!.body.length).toBe(512 * 512 * 2);
    });

    it('WADO returns the stored bytes, preamble zeroed, and converts to implicit VR LE on request', async () => {
      const s = series[7]!;
      const url = `${base}/studies/${study}/series/${seriesUID}/instances/${s.sopInstanceUID}`;
      const asStored = await getParts(url, ANY_DICOM);
      expect(Buffer.compare(asStored.parts[0]!.body, withZeroPreamble(s.bytes))).toBe(0);
      // no transfer-syntax parameter = Explicit VR Little Endian (PS3.18 §8.7.3.5.2), which is how it is stored
      const byDefault = await getParts(url, 'multipart/related; type="application/dicom"');
      expect(Buffer.compare(byDefault.parts[0]!.body, withZeroPreamble(s.bytes))).toBe(0);
      const implicit = await getParts(url, 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2');
      expect(implicit.status).toBe(200);
      expect(implicit.parts[0]!.headers['content-type']).toContain('transfer-syntax=1.2.840.10008.1.2');
      const tmp = makeTempDir();
      try {
        const file = path.join(tmp.dir, 'implicit.dcm');
        fs.writeFileSync(file, implicit.parts[0]!.body);
        const dump = spawnSync('dcmdump', [file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
        expect(dump.status).toBe(0);
        expect(dump.stdout).toContain('=LittleEndianImplicit');
        expect(dump.stdout).toContain(s.sopInstanceUID);
      } finally {
        tmp.cleanup();
      }
    });

    it('retrieves the whole series', async () => {
      const all = await getParts(`${base}/studies/${study}/series/${seriesUID}`, ANY_DICOM);
      expect(all.status).toBe(200);
      expect(all.parts).toHaveLength(300);
    });

    it('DELETE of the series removes it', async () => {
      expect((await fetch(`${base}/studies/${study}/series/${seriesUID}`, { method: 'DELETE' })).status).toBe(204);
      expect((await getJson(`${base}/studies?StudyInstanceUID=${study}`)).json).toEqual([]);
      expect((await fetch(`${base}/studies/${study}/series/${seriesUID}/metadata`)).status).toBe(404);
      expect((await fetch(`${base}/studies/${study}/series/${seriesUID}`, { method: 'DELETE' })).status).toBe(404);
    });
  });

  it('a 50-frame multi-frame instance serves frames 1,3,5 by byte range', async () => {
    const mf = multiFrameInstance({ frames: 50 });
    expect((await stow(base, [mf.bytes])).status).toBe(200);
    const url = `${base}/studies/${mf.studyInstanceUID}/series/${mf.seriesInstanceUID}/instances/${mf.sopInstanceUID}`;
    const f = await getParts(`${url}/frames/1,3,50`, 'multipart/related; type="application/octet-stream"; transfer-syntax=*');
    expect(f.status).toBe(200);
    expect(f.parts.map((p) => frameNumberOf(p.body))).toEqual([1, 3, 50]);
    for (const p of f.parts) expect(p.body.length).toBe(mf.frameLength);
    expect((await fetch(`${url}/frames/51`, { headers: { Accept: 'multipart/related; type="application/octet-stream"' } })).status).toBe(404);
    expect((await fetch(`${url}/frames/0`)).status).toBe(400);
    const q = await getJson(`${base}/studies/${mf.studyInstanceUID}/instances`);
    expect(q.json[0]['00280008'].Value[0]).toBe(50);
  });

  it('an RLE instance: frames in their own syntax or decoded, the instance decoded for the default syntax', async () => {
    const rle = encapsulatedInstance({ frames: 3 });
    expect((await stow(base, [rle.bytes])).status).toBe(200);
    const url = `${base}/studies/${rle.studyInstanceUID}/series/${rle.seriesInstanceUID}/instances/${rle.sopInstanceUID}`;
    const f = await getParts(`${url}/frames/2`, 'multipart/related; type="application/octet-stream"; transfer-syntax=*');
    expect(f.status).toBe(200);
    expect(Buffer.compare(f.parts[0]!.body, Buffer.from(rle.fragments[1]!))).toBe(0);
    expect(f.parts[0]!.headers['content-type']).toContain('transfer-syntax=1.2.840.10008.1.2.5');
    const rleType = await getParts(`${url}/frames/1`, 'multipart/related; type="image/dicom-rle"');
    expect(rleType.status).toBe(200);
    // Uncompressed frames are decoded through the codec (the default syntax of application/octet-stream).
    const decodedFrame = await getParts(`${url}/frames/1`, 'multipart/related; type="application/octet-stream"');
    expect(decodedFrame.parts[0]!.headers['content-type']).toBe('application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1');
    const decoded = await getParts(url, 'multipart/related; type="application/dicom"');
    expect(decoded.parts[0]!.headers['content-type']).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
    const asStored = await getParts(url, ANY_DICOM);
    expect(Buffer.compare(asStored.parts[0]!.body, withZeroPreamble(rle.bytes))).toBe(0);
  });

  describe('dcmtk-made files', () => {
    const tmp = makeTempDir('dcmtk-');
    afterAll(() => tmp.cleanup());

    it('dump2dcm and img2dcm outputs round-trip', async () => {
      const study = uid();
      const dump = [
        '(0008,0016) UI =SecondaryCaptureImageStorage',
        `(0008,0018) UI [${uid()}]`,
        '(0008,0020) DA [20240102]',
        '(0008,0060) CS [OT]',
        '(0010,0010) PN [DCMTK^MADE]',
        '(0010,0020) LO [SYN-DCMTK-1]',
        `(0020,000d) UI [${study}]`,
        `(0020,000e) UI [${uid()}]`,
      ].join('\n');
      fs.writeFileSync(path.join(tmp.dir, 'in.dump'), dump);
      const d = spawnSync('dump2dcm', ['+te', path.join(tmp.dir, 'in.dump'), path.join(tmp.dir, 'dump.dcm')], { encoding: 'utf8' });
      expect(d.status).toBe(0);
      // a 4x4 24-bit BMP made here, then img2dcm → Secondary Capture
      const bmp = Buffer.alloc(54 + 4 * 4 * 3);
      bmp.write('BM', 0);
      bmp.writeUInt32LE(bmp.length, 2);
      bmp.writeUInt32LE(54, 10);
      bmp.writeUInt32LE(40, 14);
      bmp.writeInt32LE(4, 18);
      bmp.writeInt32LE(4, 22);
      bmp.writeUInt16LE(1, 26);
      bmp.writeUInt16LE(24, 28);
      bmp.writeUInt32LE(4 * 4 * 3, 34);
      for (let i = 54; i < bmp.length; i++) bmp[i] = (i * 7) & 0xff;
      fs.writeFileSync(path.join(tmp.dir, 'in.bmp'), bmp);
      const i = spawnSync('img2dcm', ['-i', 'BMP', '-k', `StudyInstanceUID=${study}`, '-k', 'PatientName=DCMTK^IMAGE', path.join(tmp.dir, 'in.bmp'), path.join(tmp.dir, 'img.dcm')], { encoding: 'utf8' });
      expect(i.status).toBe(0);
      const files = ['dump.dcm', 'img.dcm'].map((f) => fs.readFileSync(path.join(tmp.dir, f)));
      const res = await stow(base, files, study);
      expect(res.status).toBe(200);
      const q = await getJson(`${base}/studies/${study}/instances`);
      expect(q.json).toHaveLength(2);
      for (const [n, ref] of res.json['00081199'].Value.entries()) {
        const w = await getParts(ref['00081190'].Value[0], ANY_DICOM);
        expect(Buffer.compare(w.parts[0]!.body, withZeroPreamble(files[n]!))).toBe(0);
      }
    });
  });

  describe('16 concurrent clients on one study', () => {
    it('keep the aggregates exact, and identical re-sends change nothing', async () => {
      const study = uid();
      const clients = Array.from({ length: 16 }, (_, c) =>
        Array.from({ length: 5 }, (_, k) => mrInstance({ studyInstanceUID: study, rows: 16, columns: 16, seriesNumber: (c % 4) + 1, seriesInstanceUID: `${study}.${(c % 4) + 1}`, instanceNumber: k + 1 })),
      );
      const results = await Promise.all(clients.map((instances) => stow(base, instances.map((i) => i.bytes), study)));
      expect(results.map((r) => r.status)).toEqual(Array(16).fill(200));
      const again = clients[3]![0]!;
      const resend = await Promise.all(Array.from({ length: 16 }, () => stow(base, [again.bytes])));
      expect(resend.map((r) => r.status)).toEqual(Array(16).fill(200));
      const q = await getJson(`${base}/studies?StudyInstanceUID=${study}`);
      expect(q.json[0]['00201208'].Value[0]).toBe(80);
      expect(q.json[0]['00201206'].Value[0]).toBe(4);
      const series = await getJson(`${base}/studies/${study}/series`);
      expect(series.json.map((s: any) => s['00201209'].Value[0])).toEqual([20, 20, 20, 20]);
    });
  });
});
