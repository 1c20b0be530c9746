/**
 * Every file of the public pydicom corpus goes through STOW-RS: it is either
 * stored, found by QIDO, retrieved byte-identical (preamble zeroed) and
 * deleted again, or rejected with the failure reason we expect — and then
 * nothing of it is left behind (no index entry, no bytes). The server keeps
 * serving throughout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PYDICOM_DIR } from '../helpers/paths';
import { getJson, getParts, startTestArchive, stow, withZeroPreamble, type TestArchive } from '../helpers/archive';

function allFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? allFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** Files we expect to be refused, with the PS3.18 FailureReason (0xC000 cannot understand, 0xA900 does not match). */
const C000 = 0xc000; // cannot understand
const A900 = 0xa900; // data set does not match: here, no Study/Series/SOP Instance UID to file it under
const EXPECTED_REJECTS: Record<string, number> = {
  // not DICOM at all
  'README.md': C000,
  'UPSTREAM-README.txt': C000,
  'charset_files/FileInfo.txt': C000,
  'dicomdirtests/README.txt': C000,
  'dicomdirtests/TINY_ALPHA/README': C000,
  'test1.json': C000,
  'test_PN.json': C000,
  'rtplan.dump': C000,
  'rtstruct.dump': C000,
  'zipMR.gz': C000,
  // not PS3.10 files (no preamble / "DICM" / file meta, or no transfer syntax in it)
  'no_meta.dcm': C000,
  'ExplVR_BigEndNoMeta.dcm': C000,
  'ExplVR_LitEndNoMeta.dcm': C000,
  'meta_missing_tsyntax.dcm': C000,
  'rtstruct.dcm': C000,
  // truncated, or encoded differently from what the file meta says (dcmtk refuses it too)
  'MR_truncated.dcm': C000,
  'rtplan_truncated.dcm': C000,
  'dicomdirtests/DICOMDIR-nooffset': C000,
  'SC_rgb_jpeg.dcm': C000,
  // fragments without Study/Series/SOP Instance UIDs: nothing to file them under
  'UN_sequence.dcm': A900,
  'priv_SQ.dcm': A900,
  'nested_priv_SQ.dcm': A900,
  'empty_charset_LEI.dcm': A900,
  'no_meta_group_length.dcm': A900,
  'charset_files/chrSQEncoding.dcm': A900,
  'charset_files/chrSQEncoding1.dcm': A900,
};

function blobFiles(dataDir: string): string[] {
  const root = path.join(dataDir, 'blobs');
  if (!fs.existsSync(root)) return [];
  return allFiles(root).filter((f) => !f.includes(`${path.sep}.tmp${path.sep}`));
}

describe('pydicom corpus through STOW → QIDO → WADO → DELETE', () => {
  let archive: TestArchive;
  beforeAll(async () => {
    archive = await startTestArchive();
  });
  afterAll(async () => archive.stop());

  const files = allFiles(PYDICOM_DIR).map((f) => path.relative(PYDICOM_DIR, f)).sort();
  const outcomes: Record<string, string> = {};

  it('finds the corpus', () => {
    expect(files.length).toBeGreaterThan(150);
  });

  it.each(files)('%s', async (name) => {
    const bytes = fs.readFileSync(path.join(PYDICOM_DIR, name));
    const base = archive.dicomWebUrl;
    const res = await stow(base, [bytes]);
    const expectedReject = EXPECTED_REJECTS[name] ?? (/DICOMDIR/.test(name) ? A900 : undefined);
    if (res.status === 200) {
      outcomes[name] = 'stored';
      expect(expectedReject).toBeUndefined();
      const ref = res.json['00081199'].Value[0];
      const sop: string = ref['00081155'].Value[0];
      const url: string = ref['00081190'].Value[0];
      const m = /studies\/([^/]+)\/series\/([^/]+)\/instances\//.exec(url)!;
      const [study, series] = [m[1]!, m[2]!];
      // QIDO finds it
      const q = await getJson(`${base}/instances?SOPInstanceUID=${sop}`);
      expect(q.status).toBe(200);
      expect(q.json).toHaveLength(1);
      expect(q.json[0]['0020000D'].Value[0]).toBe(study);
      // WADO returns the original bytes, preamble zeroed
      const w = await getParts(url, 'multipart/related; type="application/dicom"; transfer-syntax=*');
      expect(w.status).toBe(200);
      expect(w.parts).toHaveLength(1);
      expect(Buffer.compare(w.parts[0]!.body, withZeroPreamble(bytes))).toBe(0);
      const meta = await getJson(`${url}/metadata`);
      expect(meta.status).toBe(200);
      expect(meta.json[0]['00080018'].Value[0]).toBe(sop);
      // DELETE removes bytes and index entries
      const del = await fetch(`${base}/studies/${study}/series/${series}/instances/${sop}`, { method: 'DELETE' });
      expect(del.status).toBe(204);
      expect((await fetch(url)).status).toBe(404);
    } else {
      outcomes[name] = `rejected ${res.status}`;
      expect(expectedReject).toBeDefined();
      expect(res.status).toBe(409);
      const failed = res.json['00081198'].Value[0];
      expect(failed['00081197'].Value[0]).toBe(expectedReject);
    }
    // nothing half-written: no bytes left behind, and the server still answers
    expect(blobFiles(archive.dataDir)).toEqual([]);
    expect((await getJson(`${base}/studies`)).json).toEqual([]);
  });
});
