/**
 * Contract of the ArchiveIndex port (functions/core/archive/ports.ts), run
 * against every adapter (SQLite, DynamoDB through dynalite). Only what the
 * port promises is tested here.
 *
 * The factory is called once per test (once per `describe` for the read-only
 * findStudies block) and must return an EMPTY index; the suite calls
 * `cleanup` afterwards.
 *
 * All UIDs are synthetic (under 1.2.826.0.1.3680043.10.1234), all names
 * invented: no real patient data.
 */
import { createHash } from 'node:crypto';
import type { DicomJsonDataset } from '../../functions/core/dicom/json-model';
import { Tag } from '../../functions/core/dicom/tags';
import { instanceBlobKey } from '../../functions/core/archive/keys';
import { normalizeForMatch, normalizedFamilyName } from '../../functions/core/dicomweb/person-name';
import {
  studyContentsOf,
  studySortKey,
  type ArchiveIndex,
  type InstanceRecord,
  type PutInstanceResult,
  type StudySearchHints,
  type StudySummary,
} from '../../functions/core/archive/ports';

export type ArchiveIndexFactory = () => Promise<{ index: ArchiveIndex; cleanup: () => Promise<void> }>;

// ---------------------------------------------------------------- record builder

export const TEST_UID_ROOT = '1.2.826.0.1.3680043.10.1234';

/** Distinguishes test runs that share a backend (e.g. one dynalite per CI job). */
const RUN = String(1 + (Date.now() % 1_000_000_000));
let uidCounter = 0;

/** A fresh synthetic UID, unique within (and very likely across) runs. */
export function newUID(): string {
  uidCounter += 1;
  return `${TEST_UID_ROOT}.${RUN}.${uidCounter}`;
}

/** A synthetic UID with chosen trailing components (for ordering tests). */
export function fixedUID(...components: number[]): string {
  return [TEST_UID_ROOT, RUN, ...components].join('.');
}

export interface InstanceRecordOverrides extends Partial<InstanceRecord> {
  /** Shorthands for the study attributes (ignored when `studyAttributes` is given). */
  studyDate?: string;
  /** PN as a string ("Family^Given=Ideographic=Phonetic") or as the JSON model's object. */
  patientName?: string | { Alphabetic?: string; Ideographic?: string; Phonetic?: string };
  patientID?: string;
  accessionNumber?: string;
  studyDescription?: string;
  /** Seeds the content hash (the same seed gives the same hash). */
  contentSeed?: string;
}

function pnValue(name: InstanceRecordOverrides['patientName']): { Alphabetic?: string; Ideographic?: string; Phonetic?: string } {
  if (typeof name !== 'string') return name ?? { Alphabetic: 'Testpatient^Synthetic' };
  const [Alphabetic, Ideographic, Phonetic] = name.split('=');
  const value: { Alphabetic?: string; Ideographic?: string; Phonetic?: string } = {};
  if (Alphabetic) value.Alphabetic = Alphabetic;
  if (Ideographic) value.Ideographic = Ideographic;
  if (Phonetic) value.Phonetic = Phonetic;
  return value;
}

/** A complete, plausible InstanceRecord with synthetic content; any field can be overridden. */
export function makeInstanceRecord(overrides: InstanceRecordOverrides = {}): InstanceRecord {
  const {
    studyDate = '20240115',
    patientName,
    patientID = 'SYN-0001',
    accessionNumber = 'ACC-0001',
    studyDescription = 'Synthetic study',
    contentSeed,
    ...fields
  } = overrides;
  const studyInstanceUID = fields.studyInstanceUID ?? newUID();
  const seriesInstanceUID = fields.seriesInstanceUID ?? newUID();
  const sopInstanceUID = fields.sopInstanceUID ?? newUID();
  const sopClassUID = fields.sopClassUID ?? '1.2.840.10008.5.1.4.1.1.2';
  const transferSyntaxUID = fields.transferSyntaxUID ?? '1.2.840.10008.1.2.1';

  const studyAttributes: DicomJsonDataset = fields.studyAttributes ?? {
    [Tag.StudyDate]: { vr: 'DA', Value: [studyDate] },
    [Tag.StudyTime]: { vr: 'TM', Value: ['101500'] },
    [Tag.AccessionNumber]: { vr: 'SH', Value: [accessionNumber] },
    [Tag.PatientName]: { vr: 'PN', Value: [pnValue(patientName)] },
    [Tag.PatientID]: { vr: 'LO', Value: [patientID] },
    [Tag.PatientBirthDate]: { vr: 'DA', Value: ['19700101'] },
    [Tag.PatientSex]: { vr: 'CS', Value: ['O'] },
    [Tag.StudyInstanceUID]: { vr: 'UI', Value: [studyInstanceUID] },
    [Tag.StudyID]: { vr: 'SH', Value: ['1'] },
    [Tag.StudyDescription]: { vr: 'LO', Value: [studyDescription] },
    [Tag.ReferringPhysicianName]: { vr: 'PN' },
  };
  const seriesAttributes: DicomJsonDataset = fields.seriesAttributes ?? {
    [Tag.Modality]: { vr: 'CS', Value: ['CT'] },
    [Tag.SeriesInstanceUID]: { vr: 'UI', Value: [seriesInstanceUID] },
    [Tag.SeriesNumber]: { vr: 'IS', Value: [1] },
    [Tag.SeriesDescription]: { vr: 'LO', Value: ['Synthetic series'] },
  };
  const instanceAttributes: DicomJsonDataset = fields.instanceAttributes ?? {
    [Tag.SOPClassUID]: { vr: 'UI', Value: [sopClassUID] },
    [Tag.SOPInstanceUID]: { vr: 'UI', Value: [sopInstanceUID] },
    [Tag.InstanceNumber]: { vr: 'IS', Value: [1] },
    [Tag.Rows]: { vr: 'US', Value: [2] },
    [Tag.Columns]: { vr: 'US', Value: [2] },
    [Tag.NumberOfFrames]: { vr: 'IS', Value: [2] },
  };
  const metadata: DicomJsonDataset = {
    ...studyAttributes,
    ...seriesAttributes,
    ...instanceAttributes,
    [Tag.PixelData]: { vr: 'OW', BulkDataURI: 'bulkdata/7FE00010' },
  };
  const contentHash = fields.contentHash ?? createHash('sha256').update(contentSeed ?? sopInstanceUID).digest('hex');
  const objectId = contentHash.slice(0, 16);

  const record: InstanceRecord = {
    studyInstanceUID,
    seriesInstanceUID,
    sopInstanceUID,
    sopClassUID,
    transferSyntaxUID,
    blobKey: instanceBlobKey(studyInstanceUID, seriesInstanceUID, sopInstanceUID, objectId),
    size: 1348,
    contentHash,
    storedAt: '2024-01-15T10:15:00.000Z',
    studyAttributes,
    seriesAttributes,
    instanceAttributes,
    metadata,
    layout: {
      datasetOffset: 132 + 200,
      deflated: false,
      pixelData: {
        tag: '7FE00010',
        vr: 'OW',
        valueOffset: 1332,
        valueLength: 16,
        encapsulated: false,
        frames: [[{ offset: 1332, length: 8 }], [{ offset: 1340, length: 8 }]],
      },
      bulkData: [],
    },
  };
  // Explicit fields win (except the ones consumed above).
  return { ...record, ...stripUndefined(fields) };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** What get/list return without `withMetadata`. */
export function withoutMetadata(record: InstanceRecord): InstanceRecord {
  const { metadata: _omit, ...rest } = record;
  return rest;
}

// ---------------------------------------------------------------- helpers

async function toArray<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortKeyOf(record: InstanceRecord): string {
  const date = record.studyAttributes[Tag.StudyDate]?.Value?.[0];
  return studySortKey(typeof date === 'string' ? date : undefined, record.studyInstanceUID);
}

function instanceOrder(a: InstanceRecord, b: InstanceRecord): number {
  return compare(a.seriesInstanceUID, b.seriesInstanceUID) || compare(a.sopInstanceUID, b.sopInstanceUID);
}

/** The key fields that identify a stored record (for `existing` and deleted records, whose metadata is optional). */
function identity(record: InstanceRecord): Partial<InstanceRecord> {
  return {
    studyInstanceUID: record.studyInstanceUID,
    seriesInstanceUID: record.seriesInstanceUID,
    sopInstanceUID: record.sopInstanceUID,
    blobKey: record.blobKey,
    contentHash: record.contentHash,
    storedAt: record.storedAt,
    size: record.size,
  };
}

// ---------------------------------------------------------------- the suite

export function archiveIndexContract(name: string, factory: ArchiveIndexFactory): void {
  describe(`ArchiveIndex contract: ${name}`, () => {
    let index: ArchiveIndex;
    let cleanup: (() => Promise<void>) | undefined;

    async function setUp(): Promise<void> {
      const made = await factory();
      index = made.index;
      cleanup = made.cleanup;
    }
    async function tearDown(): Promise<void> {
      await cleanup?.();
      cleanup = undefined;
    }

    async function putAll(records: InstanceRecord[]): Promise<void> {
      for (const r of records) await expect(index.putInstance(r)).resolves.toEqual({ status: 'created' });
    }

    describe('putInstance / getInstance', () => {
      beforeEach(setUp);
      afterEach(tearDown);

      it('records a new instance (created) and returns it without metadata by default', async () => {
        const record = makeInstanceRecord();
        await expect(index.putInstance(record)).resolves.toEqual({ status: 'created' });
        const got = await index.getInstance({
          studyInstanceUID: record.studyInstanceUID,
          seriesInstanceUID: record.seriesInstanceUID,
          sopInstanceUID: record.sopInstanceUID,
        });
        expect(got).toEqual(withoutMetadata(record));
        expect(got?.metadata).toBeUndefined();
      });

      it('returns metadata only when asked (withMetadata)', async () => {
        const record = makeInstanceRecord();
        await index.putInstance(record);
        const ref = { studyInstanceUID: record.studyInstanceUID, sopInstanceUID: record.sopInstanceUID };
        await expect(index.getInstance(ref, { withMetadata: true })).resolves.toEqual(record);
        expect((await index.getInstance(ref, { withMetadata: false }))?.metadata).toBeUndefined();
      });


      it('finds the instance without a series, and with the right series', async () => {
        const record = makeInstanceRecord();
        await index.putInstance(record);
        await expect(
          index.getInstance({ studyInstanceUID: record.studyInstanceUID, sopInstanceUID: record.sopInstanceUID }),
        ).resolves.toEqual(withoutMetadata(record));
      });

      it('returns undefined for a wrong study, a wrong series, or an unknown SOP Instance UID', async () => {
        const record = makeInstanceRecord();
        await index.putInstance(record);
        const other = newUID();
        await expect(index.getInstance({ studyInstanceUID: other, sopInstanceUID: record.sopInstanceUID })).resolves.toBeUndefined();
        await expect(
          index.getInstance({ studyInstanceUID: record.studyInstanceUID, seriesInstanceUID: other, sopInstanceUID: record.sopInstanceUID }),
        ).resolves.toBeUndefined();
        await expect(
          index.getInstance({ studyInstanceUID: other, seriesInstanceUID: record.seriesInstanceUID, sopInstanceUID: record.sopInstanceUID }),
        ).resolves.toBeUndefined();
        await expect(index.getInstance({ studyInstanceUID: record.studyInstanceUID, sopInstanceUID: other })).resolves.toBeUndefined();
      });

      it('re-put with the same content hash is identical and changes nothing', async () => {
        const record = makeInstanceRecord({ contentSeed: 'v1' });
        await index.putInstance(record);
        // a second write of the same bytes: another object id and time, same hash
        const again = makeInstanceRecord({
          ...record,
          contentSeed: 'v1',
          blobKey: instanceBlobKey(record.studyInstanceUID, record.seriesInstanceUID, record.sopInstanceUID, 'feedfacefeedface'),
          storedAt: '2025-06-01T00:00:00.000Z',
        });
        const result = await index.putInstance(again);
        expect(result.status).toBe('identical');
        expect((result as Extract<PutInstanceResult, { status: 'identical' }>).existing).toMatchObject(identity(record));
        await expect(
          index.getInstance({ studyInstanceUID: record.studyInstanceUID, sopInstanceUID: record.sopInstanceUID }, { withMetadata: true }),
        ).resolves.toEqual(record);
      });

      it('re-put with another content hash is a conflict and changes nothing', async () => {
        const record = makeInstanceRecord({ contentSeed: 'v1' });
        await index.putInstance(record);
        const changed = makeInstanceRecord({
          ...record,
          contentSeed: 'v2',
          contentHash: undefined,
          blobKey: instanceBlobKey(record.studyInstanceUID, record.seriesInstanceUID, record.sopInstanceUID, 'deadbeefdeadbeef'),
          instanceAttributes: { [Tag.InstanceNumber]: { vr: 'IS', Value: [99] } },
        });
        expect(changed.contentHash).not.toBe(record.contentHash);
        const result = await index.putInstance(changed);
        expect(result.status).toBe('conflict');
        expect((result as Extract<PutInstanceResult, { status: 'conflict' }>).existing).toMatchObject(identity(record));
        await expect(
          index.getInstance({ studyInstanceUID: record.studyInstanceUID, sopInstanceUID: record.sopInstanceUID }, { withMetadata: true }),
        ).resolves.toEqual(record);
        await expect(toArray(index.listInstances(record.studyInstanceUID))).resolves.toEqual([withoutMetadata(record)]);
      });

      it('a SOP Instance UID is unique archive-wide: re-put under another study conflicts and creates nothing there', async () => {
        const record = makeInstanceRecord({ contentSeed: 'v1', patientID: 'SYN-FIRST' });
        await index.putInstance(record);
        const otherStudy = newUID();
        const elsewhere = makeInstanceRecord({
          studyInstanceUID: otherStudy,
          seriesInstanceUID: newUID(),
          sopInstanceUID: record.sopInstanceUID,
          contentSeed: 'v2',
          patientID: 'SYN-ELSEWHERE',
        });
        const result = await index.putInstance(elsewhere);
        expect(result.status).toBe('conflict');
        expect((result as Extract<PutInstanceResult, { status: 'conflict' }>).existing).toMatchObject(identity(record));

        await expect(index.getInstance({ studyInstanceUID: otherStudy, sopInstanceUID: record.sopInstanceUID })).resolves.toBeUndefined();
        await expect(toArray(index.listInstances(otherStudy))).resolves.toEqual([]);
        await expect(toArray(index.findStudies({ studyInstanceUIDs: [otherStudy] }))).resolves.toEqual([]);
        await expect(toArray(index.findStudies({ patientID: 'SYN-ELSEWHERE' }))).resolves.toEqual([]);
        const all = await toArray(index.findStudies({}));
        expect(all.map((s) => s.studyInstanceUID)).toEqual([record.studyInstanceUID]);
        // and the original is untouched
        await expect(
          index.getInstance({ studyInstanceUID: record.studyInstanceUID, sopInstanceUID: record.sopInstanceUID }, { withMetadata: true }),
        ).resolves.toEqual(record);
      });

      it('round-trips Unicode (Japanese, Greek) and large numbers exactly', async () => {
        const record = makeInstanceRecord({
          patientName: { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' },
          studyDescription: 'Θώρακας — 胸部 CT ✓',
          size: 5_000_000_123,
        });
        record.seriesAttributes[Tag.SeriesDescription] = { vr: 'LO', Value: ['Ελληνικά ñ ü 日本語 \u{1F600}'] };
        record.layout = { ...record.layout, bulkData: [{ path: '00540016.0.00181072', vr: 'OB', offset: 4_294_967_396, length: 2048 }] };
        record.metadata = { ...record.metadata!, [Tag.InstitutionName]: { vr: 'LO', Value: ['Ἀθῆναι Σ ς'] } };
        await index.putInstance(record);

        const ref = { studyInstanceUID: record.studyInstanceUID, sopInstanceUID: record.sopInstanceUID };
        await expect(index.getInstance(ref, { withMetadata: true })).resolves.toEqual(record);
        await expect(toArray(index.listInstances(record.studyInstanceUID, undefined, { withMetadata: true }))).resolves.toEqual([record]);
        await expect(toArray(index.findStudies({ studyInstanceUIDs: [record.studyInstanceUID] }))).resolves.toEqual([
          { studyInstanceUID: record.studyInstanceUID, studyAttributes: record.studyAttributes },
        ]);
      });

      it('round-trips a record without pixel data and with an empty data set attribute', async () => {
        const record = makeInstanceRecord({ sopClassUID: '1.2.840.10008.5.1.4.1.1.88.11' });
        record.layout = { datasetOffset: 132, deflated: true, bulkData: [] };
        record.instanceAttributes = { [Tag.SOPClassUID]: { vr: 'UI', Value: [record.sopClassUID] }, [Tag.InstanceNumber]: { vr: 'IS' } };
        await index.putInstance(record);
        await expect(
          index.getInstance({ studyInstanceUID: record.studyInstanceUID, sopInstanceUID: record.sopInstanceUID }, { withMetadata: true }),
        ).resolves.toEqual(record);
      });
    });

    describe('listInstances', () => {
      beforeEach(setUp);
      afterEach(tearDown);

      it('orders by SeriesInstanceUID then SOPInstanceUID (string order), and filters by series', async () => {
        const study = newUID();
        // '…1.10' sorts before '…1.2' as strings: catches numeric sorting
        const series = [fixedUID(7, 2), fixedUID(7, 10), fixedUID(7, 1)];
        const records: InstanceRecord[] = [];
        for (const s of series) {
          for (const n of [3, 1, 20, 2]) {
            records.push(makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: s, sopInstanceUID: `${s}.${n}` }));
          }
        }
        // another study, so the filter is tested
        const foreign = makeInstanceRecord();
        await putAll([records[5]!, foreign, ...records.filter((_, i) => i !== 5).reverse()]);

        const expected = [...records].sort(instanceOrder).map(withoutMetadata);
        await expect(toArray(index.listInstances(study))).resolves.toEqual(expected);
        await expect(toArray(index.listInstances(study, fixedUID(7, 10)))).resolves.toEqual(
          expected.filter((r) => r.seriesInstanceUID === fixedUID(7, 10)),
        );
        await expect(toArray(index.listInstances(study, newUID()))).resolves.toEqual([]);
        await expect(toArray(index.listInstances(newUID()))).resolves.toEqual([]);
        await expect(toArray(index.listInstances(foreign.studyInstanceUID))).resolves.toEqual([withoutMetadata(foreign)]);
      });

      it('returns metadata only when asked', async () => {
        const study = newUID();
        const records = [makeInstanceRecord({ studyInstanceUID: study }), makeInstanceRecord({ studyInstanceUID: study })];
        await putAll(records);
        const listed = await toArray(index.listInstances(study, undefined, { withMetadata: true }));
        expect(listed).toEqual([...records].sort(instanceOrder));
        for (const r of await toArray(index.listInstances(study))) expect(r.metadata).toBeUndefined();
      });

      it('lists the stored metadata as JSON text, in listInstances order, per study and per series (listMetadata)', async () => {
        const study = newUID();
        const series = newUID();
        const records = [
          makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: series }),
          makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: series }),
          makeInstanceRecord({ studyInstanceUID: study }),
        ];
        const bare = makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: series });
        delete bare.metadata;
        await putAll([...records, bare]);
        const expected = (rs: InstanceRecord[]) =>
          [...rs].sort(instanceOrder).map((r) => ({
            studyInstanceUID: r.studyInstanceUID,
            seriesInstanceUID: r.seriesInstanceUID,
            sopInstanceUID: r.sopInstanceUID,
            transferSyntaxUID: r.transferSyntaxUID,
            contentHash: r.contentHash,
            metadata: r.metadata,
          }));
        const parsed = async (series?: string) =>
          (await toArray(index.listMetadata(study, series))).map(({ metadataJson, ...rest }) => ({ ...rest, metadata: JSON.parse(metadataJson) as unknown }));
        // the instance stored without metadata is left out
        await expect(parsed()).resolves.toEqual(expected(records));
        await expect(parsed(series)).resolves.toEqual(expected(records.slice(0, 2)));
        await expect(toArray(index.listMetadata(newUID()))).resolves.toEqual([]);
      });

      it('lists a study with many instances completely (paging)', async () => {
        const study = newUID();
        const series = newUID();
        const records = Array.from({ length: 120 }, () => makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: series }));
        await Promise.all(records.map((r) => index.putInstance(r)));
        const listed = await toArray(index.listInstances(study));
        expect(listed.map((r) => r.sopInstanceUID)).toEqual(records.map((r) => r.sopInstanceUID).sort(compare));
      });
    });

    describe('summarizeStudy', () => {
      beforeEach(setUp);
      afterEach(tearDown);

      const withModality = (modality: string | undefined, over: InstanceRecordOverrides): InstanceRecord => {
        const r = makeInstanceRecord(over);
        if (modality === undefined) delete r.seriesAttributes[Tag.Modality];
        else r.seriesAttributes[Tag.Modality] = { vr: 'CS', Value: [modality] };
        return r;
      };

      it('agrees with what the instance records give, after puts, repeated puts and deletes', async () => {
        const study = newUID();
        const [ct, mr, sr] = [newUID(), newUID(), newUID()];
        const records = [
          withModality('CT', { studyInstanceUID: study, seriesInstanceUID: ct }),
          withModality('CT', { studyInstanceUID: study, seriesInstanceUID: ct }),
          withModality('CT', { studyInstanceUID: study, seriesInstanceUID: ct, sopClassUID: '1.2.840.10008.5.1.4.1.1.7' }),
          withModality('MR', { studyInstanceUID: study, seriesInstanceUID: mr, sopClassUID: '1.2.840.10008.5.1.4.1.1.4' }),
          // no Modality at all: counted, but no modality listed for it
          withModality(undefined, { studyInstanceUID: study, seriesInstanceUID: sr, sopClassUID: '1.2.840.10008.5.1.4.1.1.88.22' }),
        ];
        const other = withModality('US', {});
        await putAll([...records, other]);
        // a repeated (identical) and a conflicting put change nothing
        await index.putInstance(records[0]!);
        await index.putInstance(makeInstanceRecord({ ...records[1]!, contentHash: undefined, contentSeed: 'other content' }));
        const derived = async () => studyContentsOf(await toArray(index.listInstances(study)));
        await expect(index.summarizeStudy(study)).resolves.toEqual({
          series: 3,
          instances: 5,
          modalities: ['CT', 'MR'],
          sopClasses: ['1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.5.1.4.1.1.4', '1.2.840.10008.5.1.4.1.1.7', '1.2.840.10008.5.1.4.1.1.88.22'],
        });
        await expect(index.summarizeStudy(study)).resolves.toEqual(await derived());

        // one instance: its SOP class goes when its last instance goes
        await index.deleteInstances(study, ct, records[2]!.sopInstanceUID);
        await expect(index.summarizeStudy(study)).resolves.toEqual(await derived());
        expect((await index.summarizeStudy(study)).sopClasses).not.toContain('1.2.840.10008.5.1.4.1.1.7');
        // one series: its modality goes
        await index.deleteInstances(study, mr);
        await expect(index.summarizeStudy(study)).resolves.toEqual({ series: 2, instances: 3, modalities: ['CT'], sopClasses: ['1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.5.1.4.1.1.88.22'] });
        // the whole study: nothing left; other studies untouched
        await index.deleteInstances(study);
        await expect(index.summarizeStudy(study)).resolves.toEqual({ series: 0, instances: 0, modalities: [], sopClasses: [] });
        await expect(index.summarizeStudy(other.studyInstanceUID)).resolves.toEqual({ series: 1, instances: 1, modalities: ['US'], sopClasses: ['1.2.840.10008.5.1.4.1.1.2'] });
        await expect(index.summarizeStudy(newUID())).resolves.toEqual({ series: 0, instances: 0, modalities: [], sopClasses: [] });
      });

      it('findStudies with a modalitiesInStudy hint returns at least every study holding such a series, newest first', async () => {
        const mr = withModality('MR', { studyDate: '20240101' });
        const mixed = withModality('CT', { studyDate: '20240301' });
        const mixedMr = withModality('MR ', { studyInstanceUID: mixed.studyInstanceUID, studyDate: '20240301' }); // padded, as a careless writer may store it
        const us = withModality('US', { studyDate: '20240201' });
        const deleted = withModality('MR', { studyDate: '20240401' });
        await putAll([mr, mixed, mixedMr, us, deleted]);
        await index.deleteInstances(deleted.studyInstanceUID);
        const found = (await toArray(index.findStudies({ modalitiesInStudy: ['MR', 'DX'] }))).map((s) => s.studyInstanceUID);
        // an adapter may ignore the hint (the core re-checks), but never drop a match or break the order
        expect(found.filter((u) => u === mixed.studyInstanceUID || u === mr.studyInstanceUID)).toEqual([mixed.studyInstanceUID, mr.studyInstanceUID]);
        expect(found).not.toContain(deleted.studyInstanceUID);
      });

      it('counts every one of concurrent puts into one series', async () => {
        const study = newUID();
        const series = newUID();
        await Promise.all(Array.from({ length: 16 }, () => index.putInstance(makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: series }))));
        await expect(index.summarizeStudy(study)).resolves.toEqual({ series: 1, instances: 16, modalities: ['CT'], sopClasses: ['1.2.840.10008.5.1.4.1.1.2'] });
      });
    });

    describe('findStudies', () => {
      // A read-only fixture shared by the tests of this block.
      const studies: InstanceRecord[] = [];
      /** first instance of each study (its attributes are the study's) */
      const first = new Map<string, InstanceRecord>();

      function study(o: InstanceRecordOverrides): InstanceRecord {
        const r = makeInstanceRecord(o);
        studies.push(r);
        return r;
      }

      const seed = [
        study({ studyDate: '20240301', patientName: 'Müller^Anna', patientID: 'SYN-A', accessionNumber: 'ACC-100' }),
        study({ studyDate: '20240301', patientName: 'MULLER^Bernd', patientID: 'SYN-B', accessionNumber: 'ACC-101' }),
        study({ studyDate: '20240302', patientName: 'mullerson^Carl', patientID: 'SYN-A', accessionNumber: 'ACC-102' }),
        study({ studyDate: '20231231', patientName: 'Núñez^Dora', patientID: 'SYN-C', accessionNumber: 'ACC-103' }),
        study({ studyDate: '20240101', patientName: 'Nunes^Eva', patientID: 'SYN-D', accessionNumber: 'ACC-104' }),
        study({ studyDate: '20240115', patientName: 'ヤマダ^タロウ=山田^太郎=やまだ^たろう', patientID: 'SYN-E', accessionNumber: 'ACC-105' }),
        study({ studyDate: '20240116', patientName: 'Παπαδόπουλος^Γιώργος', patientID: 'SYN-F', accessionNumber: 'ACC-106' }),
        study({ studyDate: '19991231', patientName: 'Older^Frank', patientID: 'SYN-G', accessionNumber: 'ACC-107' }),
        study({ studyDate: '20250610', patientName: 'Zeta^Gina', patientID: 'SYN-H', accessionNumber: 'ACC-100' }),
        study({ studyDate: '20240115', patientName: 'Müller-Lüdenscheidt^Hans', patientID: 'SYN-I', accessionNumber: 'ACC-108' }),
        // same date as another: the UID breaks the tie
        study({ studyDate: '20240301', patientName: 'Abel^Ida', patientID: 'SYN-J', accessionNumber: 'ACC-109' }),
      ];
      // A study with two instances whose study attributes disagree: the first writer's win.
      const firstWriter = study({ studyDate: '20240220', patientName: 'First^Writer', patientID: 'SYN-FIRST', accessionNumber: 'ACC-FIRST' });
      const secondWriter = makeInstanceRecord({
        studyInstanceUID: firstWriter.studyInstanceUID,
        studyDate: '20200101',
        patientName: 'Second^Writer',
        patientID: 'SYN-SECOND',
        accessionNumber: 'ACC-SECOND',
      });
      // Extra instances in seeded studies (a study must appear once however many instances it has).
      const extra = [
        makeInstanceRecord({ ...seed[0]!, seriesInstanceUID: newUID(), sopInstanceUID: newUID(), contentHash: undefined, blobKey: undefined }),
        makeInstanceRecord({ ...seed[0]!, sopInstanceUID: newUID(), contentHash: undefined, blobKey: undefined }),
        makeInstanceRecord({ ...seed[5]!, sopInstanceUID: newUID(), contentHash: undefined, blobKey: undefined }),
      ];

      const byKeyDesc = (a: InstanceRecord, b: InstanceRecord) => compare(sortKeyOf(b), sortKeyOf(a));
      const expectedAll = () => [...studies].sort(byKeyDesc).map((r) => r.studyInstanceUID);
      const summaryOf = (r: InstanceRecord): StudySummary => ({ studyInstanceUID: r.studyInstanceUID, studyAttributes: r.studyAttributes });

      const dateOf = (r: InstanceRecord) => r.studyAttributes[Tag.StudyDate]?.Value?.[0] as string;
      const pidOf = (r: InstanceRecord) => r.studyAttributes[Tag.PatientID]?.Value?.[0] as string;
      const accOf = (r: InstanceRecord) => r.studyAttributes[Tag.AccessionNumber]?.Value?.[0] as string;
      const familyOf = (r: InstanceRecord) =>
        normalizedFamilyName((r.studyAttributes[Tag.PatientName]?.Value?.[0] as { Alphabetic?: string }).Alphabetic);

      /** The true matches of a set of hints, as the core's matcher would see them. */
      function matches(h: StudySearchHints): string[] {
        return [...studies]
          .filter((r) => !h.studyInstanceUIDs || h.studyInstanceUIDs.includes(r.studyInstanceUID))
          .filter((r) => h.patientID === undefined || pidOf(r) === h.patientID)
          .filter((r) => h.accessionNumber === undefined || accOf(r) === h.accessionNumber)
          .filter((r) => h.studyDateFrom === undefined || dateOf(r) >= h.studyDateFrom)
          .filter((r) => h.studyDateTo === undefined || dateOf(r) <= h.studyDateTo)
          .filter((r) => h.patientNamePrefix === undefined || familyOf(r).startsWith(h.patientNamePrefix))
          .sort(byKeyDesc)
          .map((r) => r.studyInstanceUID);
      }

      async function find(h: StudySearchHints, after?: string): Promise<StudySummary[]> {
        const found = await toArray(index.findStudies(h, after));
        // ordered by sort key descending, no duplicates
        const keys = found.map((s) => sortKeyOf(first.get(s.studyInstanceUID)!));
        expect(keys).toEqual([...keys].sort(compare).reverse());
        expect(new Set(found.map((s) => s.studyInstanceUID)).size).toBe(found.length);
        // only studies that exist, with the first writer's attributes
        for (const s of found) expect(s).toEqual(summaryOf(first.get(s.studyInstanceUID)!));
        return found;
      }

      /** A single hint a key can answer: exactly the true matches, in order. */
      async function expectExact(h: StudySearchHints): Promise<void> {
        const expected = matches(h);
        expect(expected.length).toBeGreaterThan(0); // the fixture must exercise the hint
        expect(expected.length).toBeLessThan(studies.length);
        const found = await find(h);
        expect(found.map((s) => s.studyInstanceUID)).toEqual(expected);
      }

      beforeAll(async () => {
        await setUp();
        for (const r of studies) {
          first.set(r.studyInstanceUID, r);
          await expect(index.putInstance(r)).resolves.toEqual({ status: 'created' });
        }
        for (const r of [secondWriter, ...extra]) await expect(index.putInstance(r)).resolves.toEqual({ status: 'created' });
      });
      afterAll(tearDown);

      it('without hints returns every study once, newest StudyDate first (studySortKey descending)', async () => {
        const found = await find({});
        expect(found.map((s) => s.studyInstanceUID)).toEqual(expectedAll());
      });

      it('continues after a given sort key (keyset pagination)', async () => {
        const all = expectedAll();
        for (const cut of [0, 3, 7, all.length - 1]) {
          const after = sortKeyOf(first.get(all[cut]!)!);
          const found = await find({}, after);
          expect(found.map((s) => s.studyInstanceUID)).toEqual(all.slice(cut + 1));
        }
        // `after` combines with hints
        const pidA = matches({ patientID: 'SYN-A' });
        expect(pidA.length).toBe(2);
        const rest = await find({ patientID: 'SYN-A' }, sortKeyOf(first.get(pidA[0]!)!));
        expect(rest.map((s) => s.studyInstanceUID)).toEqual(pidA.slice(1));
      });

      it('keeps the first writer’s study attributes', async () => {
        const found = await find({ studyInstanceUIDs: [firstWriter.studyInstanceUID] });
        expect(found).toEqual([summaryOf(firstWriter)]);
        await expect(toArray(index.findStudies({ patientID: 'SYN-SECOND' }))).resolves.toEqual([]);
        await expect(toArray(index.findStudies({ accessionNumber: 'ACC-SECOND' }))).resolves.toEqual([]);
        // the second writer's instance is still recorded, with its own attributes
        const listed = await toArray(index.listInstances(firstWriter.studyInstanceUID));
        expect(listed).toHaveLength(2);
        expect(listed).toContainEqual(withoutMetadata(secondWriter));
      });

      it('hint studyInstanceUIDs: exactly those studies (unknown UIDs ignored)', async () => {
        await expectExact({ studyInstanceUIDs: [seed[3]!.studyInstanceUID, seed[0]!.studyInstanceUID, newUID()] });
        await expectExact({ studyInstanceUIDs: [seed[6]!.studyInstanceUID] });
        await expect(toArray(index.findStudies({ studyInstanceUIDs: [newUID()] }))).resolves.toEqual([]);
      });

      it('hint sopInstanceUIDs: the studies holding those instances (unknown UIDs ignored)', async () => {
        const uidsOf = async (h: StudySearchHints) => (await toArray(index.findStudies(h))).map((s) => s.studyInstanceUID);
        // extra[0] lies in seed[0]'s study (a second series); seed[3] is a study's first instance.
        await expect(uidsOf({ sopInstanceUIDs: [extra[0]!.sopInstanceUID, seed[3]!.sopInstanceUID, newUID()] })).resolves.toEqual(
          matches({ studyInstanceUIDs: [seed[0]!.studyInstanceUID, seed[3]!.studyInstanceUID] }),
        );
        await expect(uidsOf({ sopInstanceUIDs: [newUID()] })).resolves.toEqual([]);
        await expect(uidsOf({ sopInstanceUIDs: [] })).resolves.toEqual([]);
      });

      it('hint patientID: exact match only', async () => {
        await expectExact({ patientID: 'SYN-A' });
        await expectExact({ patientID: 'SYN-FIRST' });
        await expect(toArray(index.findStudies({ patientID: 'SYN-' }))).resolves.toEqual([]);
        await expect(toArray(index.findStudies({ patientID: 'syn-a' }))).resolves.toEqual([]);
      });

      it('hint accessionNumber: exact match only', async () => {
        await expectExact({ accessionNumber: 'ACC-100' });
        await expectExact({ accessionNumber: 'ACC-103' });
        await expect(toArray(index.findStudies({ accessionNumber: 'ACC-10' }))).resolves.toEqual([]);
      });

      it('hint study date range: from, to, both, a single day (inclusive)', async () => {
        await expectExact({ studyDateFrom: '20240301' });
        await expectExact({ studyDateTo: '20240101' });
        await expectExact({ studyDateFrom: '20240101', studyDateTo: '20240301' });
        await expectExact({ studyDateFrom: '20240115', studyDateTo: '20240115' });
        await expectExact({ studyDateFrom: '20231231', studyDateTo: '20231231' });
        await expect(toArray(index.findStudies({ studyDateFrom: '20300101' }))).resolves.toEqual([]);
        await expect(toArray(index.findStudies({ studyDateFrom: '20240303', studyDateTo: '20250609' }))).resolves.toEqual([]);
      });

      it('hint patientNamePrefix: normalized family-name prefix, case and accent insensitive', async () => {
        // Müller, MULLER, mullerson, Müller-Lüdenscheidt
        await expectExact({ patientNamePrefix: normalizeForMatch('mul') });
        expect(matches({ patientNamePrefix: 'MUL' })).toHaveLength(4);
        await expectExact({ patientNamePrefix: normalizeForMatch('Müller') });
        // only Müller-Lüdenscheidt
        await expectExact({ patientNamePrefix: normalizeForMatch('müller-') });
        expect(matches({ patientNamePrefix: 'MULLER-' })).toHaveLength(1);
        // Núñez and Nunes
        await expectExact({ patientNamePrefix: normalizeForMatch('nu') });
        await expectExact({ patientNamePrefix: normalizeForMatch('NÚÑEZ') });
        // the whole family name, and non-Latin scripts
        await expectExact({ patientNamePrefix: normalizeForMatch('Zeta') });
        await expectExact({ patientNamePrefix: normalizeForMatch('ヤマダ') });
        await expectExact({ patientNamePrefix: normalizeForMatch('παπα') });
        // the given name is not the family name
        await expect(toArray(index.findStudies({ patientNamePrefix: 'ANNA' }))).resolves.toEqual([]);
        await expect(toArray(index.findStudies({ patientNamePrefix: 'MULLERX' }))).resolves.toEqual([]);
      });

      it('combined hints: never drop a true match, and narrow to what at least one hint allows', async () => {
        const combos: StudySearchHints[] = [
          { patientID: 'SYN-A', studyDateFrom: '20240302' },
          { patientNamePrefix: 'MULLER', studyDateTo: '20240301' },
          { accessionNumber: 'ACC-100', patientID: 'SYN-H' },
          { studyInstanceUIDs: [seed[0]!.studyInstanceUID, seed[1]!.studyInstanceUID], patientNamePrefix: 'MULLER', studyDateFrom: '20240101' },
          { patientID: 'SYN-A', accessionNumber: 'ACC-999' },
        ];
        for (const h of combos) {
          const found = (await find(h)).map((s) => s.studyInstanceUID);
          for (const uid of matches(h)) expect(found).toContain(uid);
          const singles = Object.entries(h).map(([k, v]) => new Set(matches({ [k]: v } as StudySearchHints)));
          for (const uid of found) expect(singles.some((s) => s.has(uid))).toBe(true);
        }
      });
    });

    describe('deleteInstances', () => {
      beforeEach(setUp);
      afterEach(tearDown);

      async function seedStudy(): Promise<{ study: string; seriesA: string; seriesB: string; records: InstanceRecord[] }> {
        const study = newUID();
        const seriesA = newUID();
        const seriesB = newUID();
        const records = [
          makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: seriesA, patientID: 'SYN-DEL' }),
          makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: seriesA, patientID: 'SYN-DEL' }),
          makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: seriesB, patientID: 'SYN-DEL' }),
        ];
        await putAll(records);
        return { study, seriesA, seriesB, records };
      }

      function uids(records: InstanceRecord[]): string[] {
        return records.map((r) => r.sopInstanceUID).sort(compare);
      }

      it('removes one instance and returns it', async () => {
        const { study, seriesA, records } = await seedStudy();
        const [gone, ...kept] = records;
        const removed = await index.deleteInstances(study, seriesA, gone!.sopInstanceUID);
        expect(removed).toHaveLength(1);
        expect(removed[0]).toMatchObject({ ...identity(gone!), layout: gone!.layout });
        await expect(index.getInstance({ studyInstanceUID: study, sopInstanceUID: gone!.sopInstanceUID })).resolves.toBeUndefined();
        expect(uids(await toArray(index.listInstances(study)))).toEqual(uids(kept));
        // the study remains
        await expect(toArray(index.findStudies({ studyInstanceUIDs: [study] }))).resolves.toHaveLength(1);
      });

      it('removes a series and returns its instances', async () => {
        const { study, seriesA, seriesB, records } = await seedStudy();
        const removed = await index.deleteInstances(study, seriesA);
        expect(uids(removed)).toEqual(uids(records.filter((r) => r.seriesInstanceUID === seriesA)));
        for (const r of removed) expect(r.blobKey).toBe(records.find((x) => x.sopInstanceUID === r.sopInstanceUID)!.blobKey);
        await expect(toArray(index.listInstances(study, seriesA))).resolves.toEqual([]);
        expect(uids(await toArray(index.listInstances(study)))).toEqual(uids(records.filter((r) => r.seriesInstanceUID === seriesB)));
        await expect(toArray(index.findStudies({ patientID: 'SYN-DEL' }))).resolves.toHaveLength(1);
      });

      it('removes a whole study: instances and study entry', async () => {
        const { study, records } = await seedStudy();
        const survivor = makeInstanceRecord({ patientID: 'SYN-DEL' });
        await putAll([survivor]);
        const removed = await index.deleteInstances(study);
        expect(uids(removed)).toEqual(uids(records));
        await expect(toArray(index.listInstances(study))).resolves.toEqual([]);
        for (const r of records) {
          await expect(index.getInstance({ studyInstanceUID: study, sopInstanceUID: r.sopInstanceUID })).resolves.toBeUndefined();
        }
        await expect(toArray(index.findStudies({ studyInstanceUIDs: [study] }))).resolves.toEqual([]);
        expect((await toArray(index.findStudies({ patientID: 'SYN-DEL' }))).map((s) => s.studyInstanceUID)).toEqual([survivor.studyInstanceUID]);
        expect((await toArray(index.findStudies({}))).map((s) => s.studyInstanceUID)).toEqual([survivor.studyInstanceUID]);
      });

      it('drops the study entry when its last instance goes, instance by instance', async () => {
        const { study, records } = await seedStudy();
        for (const r of records) {
          await expect(toArray(index.findStudies({ studyInstanceUIDs: [study] }))).resolves.toHaveLength(1);
          await expect(index.deleteInstances(study, r.seriesInstanceUID, r.sopInstanceUID)).resolves.toHaveLength(1);
        }
        await expect(toArray(index.findStudies({ studyInstanceUIDs: [study] }))).resolves.toEqual([]);
        await expect(toArray(index.findStudies({ patientID: 'SYN-DEL' }))).resolves.toEqual([]);
        await expect(toArray(index.findStudies({}))).resolves.toEqual([]);
      });

      it('drops the study entry when its last series goes', async () => {
        const { study, seriesA, seriesB } = await seedStudy();
        await index.deleteInstances(study, seriesA);
        await index.deleteInstances(study, seriesB);
        await expect(toArray(index.findStudies({}))).resolves.toEqual([]);
      });

      it('removes nothing (and returns []) for unknown or mismatched references', async () => {
        const { study, seriesA, seriesB, records } = await seedStudy();
        const a0 = records[0]!;
        await expect(index.deleteInstances(newUID())).resolves.toEqual([]);
        await expect(index.deleteInstances(study, newUID())).resolves.toEqual([]);
        await expect(index.deleteInstances(study, seriesA, newUID())).resolves.toEqual([]);
        await expect(index.deleteInstances(study, seriesB, a0.sopInstanceUID)).resolves.toEqual([]);
        await expect(index.deleteInstances(newUID(), seriesA, a0.sopInstanceUID)).resolves.toEqual([]);
        expect(uids(await toArray(index.listInstances(study)))).toEqual(uids(records));
      });

      it('frees the SOP Instance UID: it can be stored again, with other content', async () => {
        const { study, seriesA, records } = await seedStudy();
        const r = records[0]!;
        await index.deleteInstances(study, seriesA, r.sopInstanceUID);
        const again = makeInstanceRecord({ ...r, contentHash: undefined, contentSeed: 'after-delete' });
        await expect(index.putInstance(again)).resolves.toEqual({ status: 'created' });
        await expect(
          index.getInstance({ studyInstanceUID: study, sopInstanceUID: r.sopInstanceUID }, { withMetadata: true }),
        ).resolves.toEqual(again);
      });

      it('a study deleted and re-created takes the new first writer’s attributes', async () => {
        const { study, records } = await seedStudy();
        await index.deleteInstances(study);
        const reborn = makeInstanceRecord({ ...records[0]!, studyAttributes: undefined, patientID: 'SYN-REBORN', studyDate: '20220202' });
        await putAll([reborn]);
        await expect(toArray(index.findStudies({ patientID: 'SYN-REBORN' }))).resolves.toEqual([
          { studyInstanceUID: study, studyAttributes: reborn.studyAttributes },
        ]);
        await expect(toArray(index.findStudies({ patientID: 'SYN-DEL' }))).resolves.toEqual([]);
      });
    });

    describe('concurrent writers', () => {
      beforeEach(setUp);
      afterEach(tearDown);

      it('16 concurrent puts into one study (distinct SOPs) all land; one study entry', async () => {
        const study = newUID();
        const series = newUID();
        const records = Array.from({ length: 16 }, () => makeInstanceRecord({ studyInstanceUID: study, seriesInstanceUID: series }));
        const results = await Promise.all(records.map((r) => index.putInstance(r)));
        expect(results).toEqual(records.map(() => ({ status: 'created' })));
        expect((await toArray(index.listInstances(study))).map((r) => r.sopInstanceUID)).toEqual(records.map((r) => r.sopInstanceUID).sort(compare));
        const found = await toArray(index.findStudies({}));
        expect(found.map((s) => s.studyInstanceUID)).toEqual([study]);
      });

      it('16 concurrent puts of the same SOP with the same hash: exactly one created, 15 identical', async () => {
        const base = makeInstanceRecord({ contentSeed: 'same' });
        const records = Array.from({ length: 16 }, (_, i) => ({
          ...base,
          blobKey: instanceBlobKey(base.studyInstanceUID, base.seriesInstanceUID, base.sopInstanceUID, `object${String(i).padStart(4, '0')}`),
        }));
        const results = await Promise.all(records.map((r) => index.putInstance(r)));
        expect(results.filter((r) => r.status === 'created')).toHaveLength(1);
        expect(results.filter((r) => r.status === 'identical')).toHaveLength(15);
        const winner = records[results.findIndex((r) => r.status === 'created')]!;
        for (const r of results) if (r.status === 'identical') expect(r.existing.blobKey).toBe(winner.blobKey);
        await expect(toArray(index.listInstances(base.studyInstanceUID))).resolves.toEqual([withoutMetadata(winner)]);
      });

      it('16 concurrent puts of the same SOP with different hashes: exactly one created, 15 conflicts', async () => {
        const base = makeInstanceRecord();
        const records = Array.from({ length: 16 }, (_, i) => makeInstanceRecord({ ...base, contentHash: undefined, contentSeed: `variant-${i}` }));
        expect(new Set(records.map((r) => r.contentHash)).size).toBe(16);
        const results = await Promise.all(records.map((r) => index.putInstance(r)));
        expect(results.filter((r) => r.status === 'created')).toHaveLength(1);
        expect(results.filter((r) => r.status === 'conflict')).toHaveLength(15);
        const winner = records[results.findIndex((r) => r.status === 'created')]!;
        for (const r of results) if (r.status === 'conflict') expect(r.existing.contentHash).toBe(winner.contentHash);
        await expect(
          index.getInstance({ studyInstanceUID: base.studyInstanceUID, sopInstanceUID: base.sopInstanceUID }, { withMetadata: true }),
        ).resolves.toEqual(winner);
      });

      it('16 concurrent puts of new studies each create their study entry', async () => {
        const records = Array.from({ length: 16 }, (_, i) => makeInstanceRecord({ studyDate: `202401${String(i + 1).padStart(2, '0')}` }));
        await Promise.all(records.map((r) => index.putInstance(r)));
        const found = await toArray(index.findStudies({}));
        expect(found.map((s) => s.studyInstanceUID)).toEqual([...records].sort((a, b) => compare(sortKeyOf(b), sortKeyOf(a))).map((r) => r.studyInstanceUID));
      });
    });
  });
}
