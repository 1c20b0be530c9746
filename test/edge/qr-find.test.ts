/**
 * C-FIND identifier → QIDO translation and QIDO JSON → response identifiers
 * (edge-gateway/src/query-retrieve/find.ts), and retrieve planning
 * (retrieve.ts), against a real embedded archive filled with synthetic
 * studies: every level in both information models, the matching types
 * (single value, wild card, UID list, date range, universal), keys the archive
 * cannot filter (post-filtered here), exactly the requested keys in request
 * order, non-ASCII names, the DIMSE statuses of bad identifiers and of an
 * unreachable archive (also as the SCP services' final statuses).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DicomJsonDataset } from '../../functions/core/dicom/json-model';
import { DicomWebClient } from '../../edge-gateway/src/cloud/dicomweb-client';
import { findMatches, type InformationModel } from '../../edge-gateway/src/query-retrieve/find';
import { planRetrieve } from '../../edge-gateway/src/query-retrieve/retrieve';
import { createFindService } from '../../edge-gateway/src/scp/find';
import { createMoveService } from '../../edge-gateway/src/scp/move';
import { createGetService } from '../../edge-gateway/src/scp/get';
import { SopClass } from '../../edge-gateway/src/dimse/sop-classes';
import { CHARSET_NAMES, crInstance, ctSeries, mrInstance, patientWithName, syntheticPatient, uid, TS, type SyntheticInstance } from '../fixtures/synthetic';
import { startTestArchive, stow, type TestArchive } from '../helpers/archive';

let archive: TestArchive;
let client: DicomWebClient;
const AE = 'EDGE_QR';

const p1 = syntheticPatient(1);
const p2 = patientWithName(CHARSET_NAMES.latin1, 2);
const p3 = patientWithName(CHARSET_NAMES.japanese, 3);
const p4 = patientWithName(CHARSET_NAMES.greek, 4);

const studyA = uid();
const seriesA = uid();
let ctA: SyntheticInstance[];
let mrB: SyntheticInstance;
let crC: SyntheticInstance;
let mrD: SyntheticInstance;
let crE: SyntheticInstance;

beforeAll(async () => {
  archive = await startTestArchive();
  client = new DicomWebClient({ dicomWebUrl: archive.dicomWebUrl, auth: { kind: 'none' }, requestTimeoutMs: 10_000 }, { pageSize: 2 });
  ctA = ctSeries({ count: 3, rows: 16, columns: 16, studyInstanceUID: studyA, seriesInstanceUID: seriesA, patient: p1, studyDate: '20240105', studyDescription: 'SYNTH CHEST CT' });
  mrB = mrInstance({ patient: p1, studyDate: '20240310', rows: 16, columns: 16, transferSyntaxUID: TS.ImplicitVRLittleEndian });
  crC = crInstance({
    patient: p2,
    studyDate: '20230620',
    rows: 16,
    columns: 16,
    extra: {
      // Procedure Code Sequence (study level): two coded items
      '00081032': {
        vr: 'SQ',
        Value: [
          { '00080100': { vr: 'SH', Value: ['SYN-CHEST'] }, '00080102': { vr: 'SH', Value: ['99SYN'] }, '00080104': { vr: 'LO', Value: ['Synthetic chest'] } },
          { '00080100': { vr: 'SH', Value: ['SYN-PA'] }, '00080102': { vr: 'SH', Value: ['99SYN'] }, '00080104': { vr: 'LO', Value: ['Synthetic PA view'] } },
        ],
      },
    },
  });
  mrD = mrInstance({ patient: p3, studyDate: '20220101', rows: 16, columns: 16 });
  crE = crInstance({ patient: p4, studyDate: '20221231', rows: 16, columns: 16, transferSyntaxUID: TS.ExplicitVRBigEndian });
  const res = await stow(archive.dicomWebUrl, [...ctA, mrB, crC, mrD, crE].map((i) => i.bytes));
  expect(res.status).toBe(200);
}, 60_000);

afterAll(async () => {
  await archive?.stop();
});

/** Build an identifier from [keyword-ish tag, vr, value?] rows, in order. */
function ident(rows: Array<[string, string, ...unknown[]]>): DicomJsonDataset {
  const ds: DicomJsonDataset = {};
  for (const [tag, vr, ...values] of rows) ds[tag] = values.length ? { vr, Value: values as never[] } : { vr };
  return ds;
}

async function find(model: InformationModel, identifier: DicomJsonDataset): Promise<DicomJsonDataset[]> {
  const out: DicomJsonDataset[] = [];
  for await (const r of findMatches(client, model, identifier, { retrieveAETitle: AE })) out.push(r);
  return out;
}

async function failure(p: Promise<unknown>): Promise<{ code: string; status: number }> {
  try {
    await p;
  } catch (e) {
    const { code, status } = e as { code: string; status: number };
    return { code, status };
  }
  throw new Error('expected a failure');
}

const v = (ds: DicomJsonDataset, tag: string) => ds[tag]?.Value?.[0];
const studiesOf = (rs: DicomJsonDataset[]) => rs.map((r) => v(r, '0020000D')).sort();

describe('STUDY level (Study Root)', () => {
  test('wild card on PatientName; the response has exactly the requested keys in request order, plus level, character set, retrieve AE', async () => {
    const rs = await find('STUDY', ident([
      ['00080052', 'CS', 'STUDY'],
      ['00100010', 'PN', { Alphabetic: 'SYNTH^PAT*' }],
      ['00080020', 'DA'],
      ['0020000D', 'UI'],
      ['00081030', 'LO'],
      ['00080061', 'CS'],
    ]));
    expect(studiesOf(rs)).toEqual([studyA, mrB.studyInstanceUID].sort());
    const a = rs.find((r) => v(r, '0020000D') === studyA)!;
    expect(Object.keys(a)).toEqual(['00080052', '00100010', '00080020', '0020000D', '00081030', '00080061', '00080005', '00080054']);
    expect(a['00080052']).toEqual({ vr: 'CS', Value: ['STUDY'] });
    expect(a['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'SYNTH^PATIENT0001' }] });
    expect(a['00080020']).toEqual({ vr: 'DA', Value: ['20240105'] });
    expect(a['00081030']).toEqual({ vr: 'LO', Value: ['SYNTH CHEST CT'] });
    expect(a['00080061']).toEqual({ vr: 'CS', Value: ['CT'] });
    expect(a['00080005']).toEqual({ vr: 'CS', Value: ['ISO_IR 192'] });
    expect(a['00080054']).toEqual({ vr: 'AE', Value: [AE] });
  });

  test('date range, open ranges, single date', async () => {
    const q = (date: string) => find('STUDY', ident([['00080052', 'CS', 'STUDY'], ['00080020', 'DA', date], ['0020000D', 'UI']]));
    expect(studiesOf(await q('20240101-20240201'))).toEqual([studyA]);
    expect(studiesOf(await q('-20221231'))).toEqual([mrD.studyInstanceUID, crE.studyInstanceUID].sort());
    expect(studiesOf(await q('20240101-'))).toEqual([studyA, mrB.studyInstanceUID].sort());
    expect(studiesOf(await q('20230620'))).toEqual([crC.studyInstanceUID]);
  });

  test('UID list matching; universal keys come back with their values, absent ones empty', async () => {
    const rs = await find('STUDY', ident([
      ['00080052', 'CS', 'STUDY'],
      ['0020000D', 'UI', studyA, crC.studyInstanceUID],
      ['00100020', 'LO'],
      ['00080050', 'SH'],
      ['00321032', 'PN'], // RequestingPhysician: not stored → empty
    ]));
    expect(studiesOf(rs)).toEqual([studyA, crC.studyInstanceUID].sort());
    const c = rs.find((r) => v(r, '0020000D') === crC.studyInstanceUID)!;
    expect(c['00100020']).toEqual({ vr: 'LO', Value: [p2.id] });
    expect(v(c, '00080050')).toMatch(/^SYNACC\d{6}$/);
    expect(c['00321032']).toEqual({ vr: 'PN' });
  });

  test('sequence keys are return keys: items as stored, limited to the requested item keys; an empty sequence key returns whole items', async () => {
    const rs = await find('STUDY', ident([['00080052', 'CS', 'STUDY'], ['0020000D', 'UI', crC.studyInstanceUID], ['00081032', 'SQ', { '00080100': { vr: 'SH' }, '00080104': { vr: 'LO' } }]]));
    expect(rs).toHaveLength(1);
    expect(rs[0]!['00081032']).toEqual({
      vr: 'SQ',
      Value: [
        { '00080100': { vr: 'SH', Value: ['SYN-CHEST'] }, '00080104': { vr: 'LO', Value: ['Synthetic chest'] } },
        { '00080100': { vr: 'SH', Value: ['SYN-PA'] }, '00080104': { vr: 'LO', Value: ['Synthetic PA view'] } },
      ],
    });
    const whole = await find('STUDY', ident([['00080052', 'CS', 'STUDY'], ['0020000D', 'UI', crC.studyInstanceUID], ['00081032', 'SQ']]));
    expect((whole[0]!['00081032']!.Value as DicomJsonDataset[])[1]).toEqual({ '00080100': { vr: 'SH', Value: ['SYN-PA'] }, '00080102': { vr: 'SH', Value: ['99SYN'] }, '00080104': { vr: 'LO', Value: ['Synthetic PA view'] } });
    // A study without the sequence answers it empty; a value inside the item does not filter (no Sequence Matching).
    const others = await find('STUDY', ident([['00080052', 'CS', 'STUDY'], ['0020000D', 'UI', studyA, crC.studyInstanceUID], ['00081032', 'SQ', { '00080100': { vr: 'SH', Value: ['NOPE'] } }]]));
    expect(others).toHaveLength(2);
    expect(others.find((r) => v(r, '0020000D') === studyA)!['00081032']).toEqual({ vr: 'SQ' });
  });

  test('ModalitiesInStudy matching (any-of list)', async () => {
    const rs = await find('STUDY', ident([['00080052', 'CS', 'STUDY'], ['00080061', 'CS', 'MR'], ['0020000D', 'UI']]));
    expect(studiesOf(rs)).toEqual([mrB.studyInstanceUID, mrD.studyInstanceUID].sort());
    const both = await find('STUDY', ident([['00080052', 'CS', 'STUDY'], ['00080061', 'CS', 'CR', 'CT']]));
    expect(studiesOf(both)).toEqual([studyA, crC.studyInstanceUID, crE.studyInstanceUID].sort());
  });

  test('non-ASCII names: Latin-1 and Greek and Japanese (ideographic group) match and come back as Unicode', async () => {
    const latin = await find('STUDY', ident([['00080052', 'CS', 'STUDY'], ['00100010', 'PN', { Alphabetic: 'Buc^J*r*me' }]]));
    expect(studiesOf(latin)).toEqual([crC.studyInstanceUID]);
    expect(latin[0]!['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Buc^Jérôme' }] });
    const greek = await find('STUDY', ident([['00080052', 'CS', 'STUDY'], ['00100010', 'PN', { Alphabetic: 'Διονυσιος' }]]));
    expect(studiesOf(greek)).toEqual([crE.studyInstanceUID]);
    const japanese = await find('STUDY', ident([['00080052', 'CS', 'STUDY'], ['00100010', 'PN', { Alphabetic: '', Ideographic: '山田*' }]]));
    expect(studiesOf(japanese)).toEqual([mrD.studyInstanceUID]);
    expect(japanese[0]!['00100010']).toEqual({ vr: 'PN', Value: [CHARSET_NAMES.japanese] });
    expect(japanese[0]!['00080005']).toEqual({ vr: 'CS', Value: ['ISO_IR 192'] });
  });

  test('a key below the level with a value is refused (0xA900); as a return key it comes back empty', async () => {
    expect(await failure(find('STUDY', ident([['00080052', 'CS', 'STUDY'], ['00080060', 'CS', 'CT']])))).toEqual({ code: 'INVALID_IDENTIFIER', status: 0xa900 });
    const rs = await find('STUDY', ident([['00080052', 'CS', 'STUDY'], ['0020000D', 'UI', studyA], ['00080060', 'CS'], ['00080018', 'UI']]));
    expect(rs).toHaveLength(1);
    expect(rs[0]!['00080060']).toEqual({ vr: 'CS' });
    expect(rs[0]!['00080018']).toEqual({ vr: 'UI' });
  });

  test('an unparseable value is 0xC000 (unable to process), naming the attribute', async () => {
    let message = '';
    const f = await failure(find('STUDY', ident([['00080052', 'CS', 'STUDY'], ['00080020', 'DA', '2024-13-45']])).catch((e) => { message = e.message; throw e; }));
    expect(f).toEqual({ code: 'UNABLE_TO_PROCESS', status: 0xc000 });
    expect(message).toContain('StudyDate');
    expect(message).not.toContain('2024-13-45');
  });
});

describe('SERIES and IMAGE levels', () => {
  test('Study Root SERIES: needs the study UID; returns series keys and keys of the level above', async () => {
    expect(await failure(find('STUDY', ident([['00080052', 'CS', 'SERIES'], ['00080060', 'CS']])))).toEqual({ code: 'INVALID_IDENTIFIER', status: 0xa900 });
    expect(await failure(find('STUDY', ident([['00080052', 'CS', 'SERIES'], ['0020000D', 'UI', studyA, mrB.studyInstanceUID]])))).toMatchObject({ status: 0xa900 });
    expect(await failure(find('STUDY', ident([['00080052', 'CS', 'SERIES'], ['0020000D', 'UI', '1.2.3*']])))).toMatchObject({ status: 0xa900 });
    const rs = await find('STUDY', ident([
      ['00080052', 'CS', 'SERIES'],
      ['0020000D', 'UI', studyA],
      ['0020000E', 'UI'],
      ['00080060', 'CS', 'C?'],
      ['00100010', 'PN'],
      ['00201209', 'IS'],
    ]));
    expect(rs).toHaveLength(1);
    expect(rs[0]).toEqual({
      '00080052': { vr: 'CS', Value: ['SERIES'] },
      '0020000D': { vr: 'UI', Value: [studyA] },
      '0020000E': { vr: 'UI', Value: [seriesA] },
      '00080060': { vr: 'CS', Value: ['CT'] },
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'SYNTH^PATIENT0001' }] },
      '00201209': { vr: 'IS', Value: [3] },
      '00080005': { vr: 'CS', Value: ['ISO_IR 192'] },
      '00080054': { vr: 'AE', Value: [AE] },
    });
    // Modality that does not match
    expect(await find('STUDY', ident([['00080052', 'CS', 'SERIES'], ['0020000D', 'UI', studyA], ['00080060', 'CS', 'MR']]))).toHaveLength(0);
  });

  test('Study Root IMAGE: paging across pages, single value on InstanceNumber, unique keys always returned', async () => {
    const all = await find('STUDY', ident([['00080052', 'CS', 'IMAGE'], ['0020000D', 'UI', studyA], ['0020000E', 'UI', seriesA], ['00200013', 'IS']]));
    expect(all.map((r) => v(r, '00080018')).sort()).toEqual(ctA.map((i) => i.sopInstanceUID).sort());
    expect(Object.keys(all[0]!).sort()).toEqual(['00080005', '00080018', '00080052', '00080054', '0020000D', '0020000E', '00200013'].sort());
    const second = await find('STUDY', ident([['00080052', 'CS', 'IMAGE'], ['0020000D', 'UI', studyA], ['0020000E', 'UI', seriesA], ['00200013', 'IS', 2]]));
    expect(second.map((r) => v(r, '00080018'))).toEqual([ctA[1]!.sopInstanceUID]);
    expect(await failure(find('STUDY', ident([['00080052', 'CS', 'IMAGE'], ['0020000D', 'UI', studyA]])))).toMatchObject({ code: 'INVALID_IDENTIFIER' });
  });

  test('a key the archive cannot filter on (not in its QIDO table) is matched here', async () => {
    // ReconstructionDiameter (0018,1100) DS: 350 in every synthetic CT slice
    const q = (value?: string) =>
      find('STUDY', ident([['00080052', 'CS', 'IMAGE'], ['0020000D', 'UI', studyA], ['0020000E', 'UI', seriesA], ['00181100', 'DS', ...(value ? [value] : [])]]));
    const universal = await q();
    expect(universal).toHaveLength(3);
    expect(Number(v(universal[0]!, '00181100'))).toBe(350);
    expect(await q('350')).toHaveLength(3);
    expect(await q('351')).toHaveLength(0);
  });
});

describe('Patient Root', () => {
  test('PATIENT level: one response per patient, patient counts summed from the studies', async () => {
    const rs = await find('PATIENT', ident([
      ['00080052', 'CS', 'PATIENT'],
      ['00100010', 'PN', { Alphabetic: 'SYNTH*' }],
      ['00100020', 'LO'],
      ['00100030', 'DA'],
      ['00201200', 'IS'],
      ['00201204', 'IS'],
    ]));
    expect(rs).toHaveLength(1);
    expect(rs[0]).toEqual({
      '00080052': { vr: 'CS', Value: ['PATIENT'] },
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'SYNTH^PATIENT0001' }] },
      '00100020': { vr: 'LO', Value: [p1.id] },
      '00100030': { vr: 'DA', Value: [p1.birthDate] },
      '00201200': { vr: 'IS', Value: [2] },
      '00201204': { vr: 'IS', Value: [4] },
      '00080005': { vr: 'CS', Value: ['ISO_IR 192'] },
      '00080054': { vr: 'AE', Value: [AE] },
    });
    const everyone = await find('PATIENT', ident([['00080052', 'CS', 'PATIENT'], ['00100020', 'LO']]));
    expect(everyone.map((r) => v(r, '00100020')).sort()).toEqual([p1.id, p2.id, p3.id, p4.id].sort());
    // a study-level key with a value is below the PATIENT level
    expect(await failure(find('PATIENT', ident([['00080052', 'CS', 'PATIENT'], ['00080020', 'DA', '20240105']])))).toMatchObject({ status: 0xa900 });
  });

  test('STUDY level needs the Patient ID; SERIES the Patient ID and the study', async () => {
    expect(await failure(find('PATIENT', ident([['00080052', 'CS', 'STUDY'], ['0020000D', 'UI']])))).toMatchObject({ code: 'INVALID_IDENTIFIER', status: 0xa900 });
    const rs = await find('PATIENT', ident([['00080052', 'CS', 'STUDY'], ['00100020', 'LO', p1.id], ['0020000D', 'UI']]));
    expect(studiesOf(rs)).toEqual([studyA, mrB.studyInstanceUID].sort());
    expect(Object.keys(rs[0]!)).toEqual(['00080052', '00100020', '0020000D', '00080005', '00080054']);
    expect(await failure(find('PATIENT', ident([['00080052', 'CS', 'SERIES'], ['00100020', 'LO', p1.id]])))).toMatchObject({ status: 0xa900 });
    const series = await find('PATIENT', ident([['00080052', 'CS', 'SERIES'], ['00100020', 'LO', p1.id], ['0020000D', 'UI', mrB.studyInstanceUID], ['0020000E', 'UI']]));
    expect(series.map((r) => v(r, '0020000E'))).toEqual([mrB.seriesInstanceUID]);
  });

  test('Study Root has no PATIENT level; an identifier without a level is refused', async () => {
    expect(await failure(find('STUDY', ident([['00080052', 'CS', 'PATIENT'], ['00100020', 'LO']])))).toEqual({ code: 'UNSUPPORTED_LEVEL', status: 0xa900 });
    expect(await failure(find('STUDY', ident([['00100020', 'LO']])))).toEqual({ code: 'INVALID_IDENTIFIER', status: 0xa900 });
    expect(await failure(find('STUDY', ident([['00080052', 'CS', 'FRAME']])))).toMatchObject({ status: 0xa900 });
  });
});

describe('archive unreachable', () => {
  test('CLOUD_UNAVAILABLE with 0xA700 (out of resources)', async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise((r) => server.close(r));
    const dead = new DicomWebClient({ dicomWebUrl: `http://127.0.0.1:${port}/dicom-web`, auth: { kind: 'none' }, requestTimeoutMs: 2000 }, { retries: 0 });
    const run = async () => {
      for await (const _ of findMatches(dead, 'STUDY', ident([['00080052', 'CS', 'STUDY']]))) void _;
    };
    expect(await failure(run())).toEqual({ code: 'CLOUD_UNAVAILABLE', status: 0xa700 });
    expect(await failure(planRetrieve(dead, 'STUDY', ident([['00080052', 'CS', 'STUDY'], ['0020000D', 'UI', studyA]])))).toEqual({ code: 'CLOUD_UNAVAILABLE', status: 0xa700 });
  });
});

describe('retrieve planning', () => {
  const sops = (refs: { sopInstanceUID: string }[]) => refs.map((r) => r.sopInstanceUID).sort();

  test('every level, both models', async () => {
    expect(sops(await planRetrieve(client, 'STUDY', ident([['00080052', 'CS', 'STUDY'], ['0020000D', 'UI', studyA, crC.studyInstanceUID]]))))
      .toEqual([...ctA.map((i) => i.sopInstanceUID), crC.sopInstanceUID].sort());
    expect(sops(await planRetrieve(client, 'STUDY', ident([['00080052', 'CS', 'SERIES'], ['0020000D', 'UI', studyA], ['0020000E', 'UI', seriesA]]))))
      .toEqual(ctA.map((i) => i.sopInstanceUID).sort());
    expect(sops(await planRetrieve(client, 'STUDY', ident([['00080052', 'CS', 'IMAGE'], ['0020000D', 'UI', studyA], ['0020000E', 'UI', seriesA], ['00080018', 'UI', ctA[0]!.sopInstanceUID, ctA[2]!.sopInstanceUID]]))))
      .toEqual([ctA[0]!.sopInstanceUID, ctA[2]!.sopInstanceUID].sort());
    expect(sops(await planRetrieve(client, 'PATIENT', ident([['00080052', 'CS', 'PATIENT'], ['00100020', 'LO', p1.id]]))))
      .toEqual([...ctA.map((i) => i.sopInstanceUID), mrB.sopInstanceUID].sort());
    expect(sops(await planRetrieve(client, 'PATIENT', ident([['00080052', 'CS', 'STUDY'], ['00100020', 'LO', p1.id], ['0020000D', 'UI', mrB.studyInstanceUID]]))))
      .toEqual([mrB.sopInstanceUID]);
    // the study exists, but not under that patient
    expect(await planRetrieve(client, 'PATIENT', ident([['00080052', 'CS', 'STUDY'], ['00100020', 'LO', p2.id], ['0020000D', 'UI', mrB.studyInstanceUID]]))).toEqual([]);
  });

  test('references carry all UIDs and, on request, the stored transfer syntax', async () => {
    const refs = await planRetrieve(client, 'STUDY', ident([['00080052', 'CS', 'STUDY'], ['0020000D', 'UI', mrB.studyInstanceUID, crE.studyInstanceUID]]), { withTransferSyntax: true });
    expect(refs.sort((a, b) => a.sopInstanceUID.localeCompare(b.sopInstanceUID))).toEqual(
      [mrB, crE].map((i) => ({
        studyInstanceUID: i.studyInstanceUID,
        seriesInstanceUID: i.seriesInstanceUID,
        sopInstanceUID: i.sopInstanceUID,
        sopClassUID: i.sopClassUID,
        transferSyntaxUID: i.transferSyntaxUID,
      })).sort((a, b) => a.sopInstanceUID.localeCompare(b.sopInstanceUID)),
    );
  });

  test('a UID list of 500 instances (17 kB: too long for one URL) is asked in slices; C-FIND does the same', async () => {
    // its own archive: a 520-slice series would change the answers of the other tests
    const other = await startTestArchive();
    try {
      const many = ctSeries({ count: 520, rows: 4, columns: 4, patient: p4 });
      expect((await stow(other.dicomWebUrl, many.map((i) => i.bytes))).status).toBe(200);
      const client = new DicomWebClient({ dicomWebUrl: other.dicomWebUrl, auth: { kind: 'none' }, requestTimeoutMs: 10_000 });
      const wanted = many.slice(10, 510).map((i) => i.sopInstanceUID);
      const refs = await planRetrieve(client, 'STUDY', ident([['00080052', 'CS', 'IMAGE'], ['0020000D', 'UI', many[0]!.studyInstanceUID], ['0020000E', 'UI', many[0]!.seriesInstanceUID], ['00080018', 'UI', ...wanted]]));
      expect(sops(refs)).toEqual([...wanted].sort());
      const found: DicomJsonDataset[] = [];
      for await (const r of findMatches(client, 'STUDY', ident([['00080052', 'CS', 'IMAGE'], ['0020000D', 'UI', many[0]!.studyInstanceUID], ['0020000E', 'UI', many[0]!.seriesInstanceUID], ['00080018', 'UI', ...wanted]]))) found.push(r);
      expect(found.map((r) => v(r, '00080018')).sort()).toEqual([...wanted].sort());
    } finally {
      await other.stop();
    }
  });

  test('bad identifiers: missing or wild-carded UIDs, missing keys above the level', async () => {
    expect(await failure(planRetrieve(client, 'STUDY', ident([['00080052', 'CS', 'STUDY']])))).toMatchObject({ status: 0xa900 });
    expect(await failure(planRetrieve(client, 'STUDY', ident([['00080052', 'CS', 'STUDY'], ['0020000D', 'UI', '1.2.*']])))).toMatchObject({ status: 0xa900 });
    expect(await failure(planRetrieve(client, 'STUDY', ident([['00080052', 'CS', 'SERIES'], ['0020000E', 'UI', seriesA]])))).toMatchObject({ status: 0xa900 });
    expect(await failure(planRetrieve(client, 'PATIENT', ident([['00080052', 'CS', 'STUDY'], ['0020000D', 'UI', studyA]])))).toMatchObject({ status: 0xa900 });
    expect(await failure(planRetrieve(client, 'STUDY', ident([['00080052', 'CS', 'PATIENT'], ['00100020', 'LO', p1.id]])))).toMatchObject({ code: 'UNSUPPORTED_LEVEL' });
  });
});

describe('SCP statuses when the archive cannot be asked', () => {
  // The services called directly (the DIMSE layer is exercised in qr-scp-dcmtk.test.ts).

  async function deadClient(): Promise<DicomWebClient> {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise((r) => server.close(r));
    return new DicomWebClient({ dicomWebUrl: `http://127.0.0.1:${port}/dicom-web`, auth: { kind: 'none' }, requestTimeoutMs: 2000 }, { retries: 0 });
  }
  const ctx = (abstractSyntax: string, moveDestination?: string) =>
    ({ presentationContext: { id: 1, abstractSyntax, transferSyntax: '1.2.840.10008.1.2.1' }, command: { commandField: 0x21, messageID: 1, commandDataSetType: 0, moveDestination }, association: { peerAETitle: 'SCU' } }) as never;
  const noPending = { pending: async () => undefined };
  const study = () => ident([['00080052', 'CS', 'STUDY'], ['0020000D', 'UI', studyA]]);

  test('C-FIND 0xA700, C-MOVE/C-GET 0xA701 (cannot count the matches); unknown move destination 0xA801 before any lookup', async () => {
    const dead = await deadClient();
    const find = createFindService({ client: dead, aeTitle: AE });
    expect(await find(ctx(SopClass.StudyRootFind), study(), noPending, new AbortController().signal)).toMatchObject({ status: 0xa700 });
    const move = createMoveService({ client: dead, aeTitle: AE, destinations: { DEST: { host: '127.0.0.1', port: 1 } } });
    expect(await move(ctx(SopClass.StudyRootMove, 'DEST'), study(), noPending, new AbortController().signal)).toMatchObject({ status: 0xa701 });
    expect(await move(ctx(SopClass.StudyRootMove, 'constructor'), study(), noPending, new AbortController().signal)).toMatchObject({ status: 0xa801 });
    const get = createGetService({ client: dead });
    expect(await get(ctx(SopClass.PatientRootGet), ident([['00080052', 'CS', 'PATIENT'], ['00100020', 'LO', p1.id]]), noPending, new AbortController().signal)).toMatchObject({ status: 0xa701 });
    // a bad identifier is still 0xA900, whatever the archive's state
    expect(await get(ctx(SopClass.StudyRootGet), ident([['00080052', 'CS', 'PATIENT']]), noPending, new AbortController().signal)).toMatchObject({ status: 0xa900 });
  });
});

describe('logs', () => {
  test('the services log outcomes and codes, never names, IDs or UIDs of patients and studies', async () => {
    const lines: string[] = [];
    const logger = {
      info: (m: string, f?: object) => void lines.push(JSON.stringify([m, f])),
      warn: (m: string, f?: object) => void lines.push(JSON.stringify([m, f])),
      error: (m: string, f?: object) => void lines.push(JSON.stringify([m, f])),
      debug: (m: string, f?: object) => void lines.push(JSON.stringify([m, f])),
    };
    const ctx = (abstractSyntax: string, moveDestination?: string) =>
      ({ presentationContext: { id: 1, abstractSyntax, transferSyntax: '1.2.840.10008.1.2.1' }, command: { commandField: 0x21, messageID: 1, commandDataSetType: 0, moveDestination }, association: { peerAETitle: 'SCU' } }) as never;
    const signal = new AbortController().signal;
    const find = createFindService({ client, aeTitle: AE, logger });
    const pending = { pending: async () => undefined };
    await find(ctx(SopClass.PatientRootFind), ident([['00080052', 'CS', 'STUDY'], ['00100020', 'LO', p2.id], ['00100010', 'PN', { Alphabetic: 'Buc^J*' }], ['0020000D', 'UI']]), pending, signal);
    await find(ctx(SopClass.StudyRootFind), ident([['00080052', 'CS', 'STUDY'], ['00100010', 'PN', { Alphabetic: 'Buc^Jérôme' }], ['00080020', 'DA', '2024-13-99']]), pending, signal);
    const move = createMoveService({ client, aeTitle: AE, destinations: {}, logger });
    await move(ctx(SopClass.StudyRootMove, 'NOWHERE'), ident([['00080052', 'CS', 'STUDY'], ['0020000D', 'UI', crC.studyInstanceUID]]), pending, signal);
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const text = lines.join('\n');
    for (const secret of [p2.id, 'Buc', 'Jérôme', crC.studyInstanceUID, crC.sopInstanceUID, '2024-13-99']) expect(text).not.toContain(secret);
  });
});
