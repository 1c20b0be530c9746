/**
 * Character sets end to end: names stored in Latin-1, Greek, Cyrillic,
 * Arabic, Hebrew, ISO 2022 Japanese/Korean, UTF-8 and GB18030 are returned
 * as UTF-8 DICOM JSON and found by their Unicode text (PS3.18 §8.3.4 matching
 * works on decoded text).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CHARSET_DIR } from '../helpers/paths';
import { getJson, startTestArchive, stow, type TestArchive } from '../helpers/archive';

const EXPECTED: Record<string, { Alphabetic?: string; Ideographic?: string; Phonetic?: string }> = {
  'chrArab.dcm': { Alphabetic: 'قباني^لنزار' },
  'chrFren.dcm': { Alphabetic: 'Buc^Jérôme' },
  'chrGerm.dcm': { Alphabetic: 'Äneas^Rüdiger' },
  'chrGreek.dcm': { Alphabetic: 'Διονυσιος' },
  'chrH31.dcm': { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' },
  'chrH32.dcm': { Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' },
  'chrHbrw.dcm': { Alphabetic: 'שרון^דבורה' },
  'chrI2.dcm': { Alphabetic: 'Hong^Gildong', Ideographic: '洪^吉洞', Phonetic: '홍^길동' },
  'chrRuss.dcm': { Alphabetic: 'Люкceмбypг' },
  'chrX1.dcm': { Alphabetic: 'Wang^XiaoDong', Ideographic: '王^小東' },
  'chrX2.dcm': { Alphabetic: 'Wang^XiaoDong', Ideographic: '王^小东' },
};

describe('character sets through STOW and QIDO', () => {
  let archive: TestArchive;
  const stored = new Map<string, string>(); // file → SOP Instance UID

  beforeAll(async () => {
    archive = await startTestArchive();
    for (const name of Object.keys(EXPECTED)) {
      const res = await stow(archive.dicomWebUrl, [fs.readFileSync(path.join(CHARSET_DIR, name))]);
      const ref = res.json?.['00081199']?.Value?.[0];
      if (ref) stored.set(name, ref['00081155'].Value[0]);
    }
  });
  afterAll(async () => archive.stop());

  it('stores every charset file', () => {
    expect([...stored.keys()].sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED))('%s: metadata PatientName is decoded to UTF-8', async (name, expected) => {
    const sop = stored.get(name)!;
    const q = await getJson(`${archive.dicomWebUrl}/instances?SOPInstanceUID=${sop}&includefield=00100010`);
    expect(q.status).toBe(200);
    const pn = q.json[0]['00100010'].Value[0];
    for (const [group, text] of Object.entries(expected)) expect(pn[group].normalize('NFC')).toBe(text.normalize('NFC'));
  });

  const searches: [string, string[]][] = [
    ['PatientName=Διονυσιος', ['chrGreek.dcm']],
    ['PatientName=Люк*', ['chrRuss.dcm']],
    ['PatientName=山田*', ['chrH31.dcm', 'chrH32.dcm']],
    ['PatientName=홍^길동', ['chrI2.dcm']],
    ['PatientName=王*', ['chrX1.dcm', 'chrX2.dcm']],
    ['PatientName=שרון*', ['chrHbrw.dcm']],
    ['PatientName=buc^jerome&fuzzymatching=true', ['chrFren.dcm']],
    ['PatientName=rüdiger&fuzzymatching=true', ['chrGerm.dcm']],
    ['PatientName=*XiaoDong', ['chrX1.dcm', 'chrX2.dcm']],
  ];
  it.each(searches)('/instances?%s', async (query, files) => {
    const q = await getJson(`${archive.dicomWebUrl}/instances?${query.split('&').map((kv) => kv.split('=').map(encodeURIComponent).join('=')).join('&')}`);
    expect(q.status).toBe(200);
    const found = (q.json as any[]).map((r) => r['00080018'].Value[0]).sort();
    expect(found).toEqual(expect.arrayContaining(files.map((f) => stored.get(f))));
    const unexpected = [...stored.entries()].filter(([f, sop]) => !files.includes(f) && found.includes(sop)).map(([f]) => f);
    expect(unexpected).toEqual([]);
  });
});
