/**
 * ArchiveIndex on SQLite (embedded mode), through Node's built-in
 * `node:sqlite` (no native build step). One row per study, one per instance;
 * study and series aggregates are derived by the core from instance rows.
 *
 * DatabaseSync is synchronous: every statement blocks the event loop, so
 * statements are small (one row, or one page of rows) and prepared once.
 * Within one process this also serializes writers for free; `BEGIN
 * IMMEDIATE` and busy_timeout make several processes sharing one file safe.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type {
  ArchiveIndex,
  InstanceRecord,
  InstanceRef,
  ListOptions,
  PutInstanceResult,
  StoredMetadata,
  StudyContents,
  StudySearchHints,
  StudySummary,
} from '../../core/archive/ports';
import { modalityOf, studyContentsFromGroups, studySortKey } from '../../core/archive/ports';
import { firstString } from '../../core/dicom/json-model';
import { Tag } from '../../core/dicom/tags';
import { normalizedFamilyName } from '../../core/dicomweb/person-name';

/**
 * Load node:sqlite, hiding only its "SQLite is an experimental feature"
 * warning (every other warning still goes through). The patch goes on the
 * main context's `process`, which Node's own warning code calls: under jest
 * the global `process` (and getBuiltinModule('process')) is a sandbox copy.
 */
function loadSqlite(): typeof import('node:sqlite') {
  const vm = process.getBuiltinModule('node:vm') as typeof import('node:vm');
  const realProcess = vm.runInThisContext('process') as NodeJS.Process;
  const emitWarning = realProcess.emitWarning;
  realProcess.emitWarning = function (warning: string | Error, ...rest: unknown[]) {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    const message = typeof warning === 'string' ? warning : warning.message;
    const name = typeof warning === 'string' ? type : warning.name;
    if (name === 'ExperimentalWarning' && /SQLite/i.test(message)) return;
    return (emitWarning as (...args: unknown[]) => void).call(realProcess, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return realProcess.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
  } finally {
    realProcess.emitWarning = emitWarning;
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS studies (
  study_uid         TEXT PRIMARY KEY,
  sort_key          TEXT NOT NULL,
  patient_id        TEXT,
  accession_number  TEXT,
  study_date        TEXT,
  patient_name_norm TEXT,
  study_attributes  TEXT NOT NULL
);
-- sort_key starts with the 8-digit StudyDate, so this one index serves the
-- unhinted listing, keyset pagination and the study date range hint.
CREATE INDEX IF NOT EXISTS studies_by_sort_key ON studies (sort_key);
CREATE INDEX IF NOT EXISTS studies_by_patient_id ON studies (patient_id, sort_key);
CREATE INDEX IF NOT EXISTS studies_by_accession ON studies (accession_number, sort_key);
CREATE INDEX IF NOT EXISTS studies_by_name ON studies (patient_name_norm, sort_key);

-- sop_uid is the primary key: a SOP Instance UID is unique across the whole
-- archive, whatever study it claims. metadata is the last column (it is large
-- and read only on request; SQLite stops decoding a row at the last column asked for).
CREATE TABLE IF NOT EXISTS instances (
  sop_uid             TEXT PRIMARY KEY,
  study_uid           TEXT NOT NULL,
  series_uid          TEXT NOT NULL,
  sop_class_uid       TEXT NOT NULL,
  transfer_syntax     TEXT NOT NULL,
  blob_key            TEXT NOT NULL,
  size                INTEGER NOT NULL,
  content_hash        TEXT NOT NULL,
  stored_at           TEXT NOT NULL,
  study_attributes    TEXT NOT NULL,
  series_attributes   TEXT NOT NULL,
  instance_attributes TEXT NOT NULL,
  layout              TEXT NOT NULL,
  metadata            TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS instances_by_study ON instances (study_uid, series_uid, sop_uid);

-- How many instances each (series, modality, SOP class) of a study holds, kept
-- in the same transactions as the instance rows: a study search reads these
-- few rows per study for its aggregates (PS3.18 Table 10.6.3-3) instead of
-- every instance row. Filled from the instances when an older file is opened.
CREATE TABLE IF NOT EXISTS series_counts (
  study_uid     TEXT NOT NULL,
  series_uid    TEXT NOT NULL,
  modality      TEXT NOT NULL,
  sop_class_uid TEXT NOT NULL,
  instances     INTEGER NOT NULL,
  PRIMARY KEY (study_uid, series_uid, modality, sop_class_uid)
) WITHOUT ROWID;
`;

/** PRAGMA user_version once series_counts has been filled from the instance rows. */
const SCHEMA_VERSION = 1;

const RECORD_COLUMNS =
  'sop_uid, study_uid, series_uid, sop_class_uid, transfer_syntax, blob_key, size, content_hash, stored_at, study_attributes, series_attributes, instance_attributes, layout';
const METADATA_COLUMNS = 'study_uid, series_uid, sop_uid, transfer_syntax, content_hash, metadata';

type Row = Record<string, unknown>;

/** Most (rowid, sort_key) pairs findStudies holds at once (~60 bytes each). */
const MAX_KEY_CHUNK = 10_000;

export interface SqliteIndexOptions {
  /** Rows per query when iterating studies or instances (bounded memory, short statements). */
  pageSize?: number;
  /** How long a writer waits for another process's lock, in ms. */
  busyTimeoutMs?: number;
}

export class SqliteIndex implements ArchiveIndex {
  private readonly db: DatabaseSync;
  private readonly pageSize: number;
  private readonly findCache = new Map<string, { firstKeys: StatementSync; nextKeys: StatementSync }>();
  private readonly s: ReturnType<SqliteIndex['prepareAll']>;

  constructor(filePath: string, options: SqliteIndexOptions = {}) {
    const { DatabaseSync } = loadSqlite();
    this.pageSize = options.pageSize ?? 200;
    this.db = new DatabaseSync(filePath);
    this.db.exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
    // WAL: readers never block the writer and a commit is one sequential append.
    this.db.exec('PRAGMA journal_mode = WAL');
    // synchronous=NORMAL is safe against corruption in WAL mode and durable
    // against a crash of the process; only an OS crash or power loss can roll
    // back the last commits (never corrupt them), and it saves an fsync per
    // commit, which dominates STOW latency with FULL.
    this.db.exec('PRAGMA synchronous = NORMAL');
    this.db.exec(SCHEMA);
    this.s = this.prepareAll();
    this.upgrade();
  }

  /** Fill series_counts of a file written before it existed (once; another process may be doing the same). */
  private upgrade(): void {
    const version = () => (this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
    if (version() >= SCHEMA_VERSION) return;
    this.transaction(() => {
      if (version() >= SCHEMA_VERSION) return;
      this.db.exec('DELETE FROM series_counts');
      // The modality as modalityOf (ports.ts) takes it: the first Modality value, '' when absent.
      this.db.exec(
        `INSERT INTO series_counts (study_uid, series_uid, modality, sop_class_uid, instances)
         SELECT study_uid, series_uid, COALESCE(json_extract(series_attributes, '$."00080060".Value[0]'), ''), sop_class_uid, COUNT(*)
         FROM instances GROUP BY 1, 2, 3, 4`,
      );
      this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    });
  }

  private prepareAll() {
    const db = this.db;
    return {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      selectBySop: db.prepare(`SELECT ${RECORD_COLUMNS} FROM instances WHERE sop_uid = ?`),
      selectBySopWithMetadata: db.prepare(`SELECT ${RECORD_COLUMNS}, metadata FROM instances WHERE sop_uid = ?`),
      insertInstance: db.prepare(
        `INSERT INTO instances (${RECORD_COLUMNS}, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertStudy: db.prepare(
        `INSERT OR IGNORE INTO studies (study_uid, sort_key, patient_id, accession_number, study_date, patient_name_norm, study_attributes)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      // listInstances pages: keyset on (series_uid, sop_uid), served by instances_by_study
      listPage: db.prepare(
        `SELECT ${RECORD_COLUMNS} FROM instances WHERE study_uid = ? AND (series_uid, sop_uid) > (?, ?)
         ORDER BY series_uid, sop_uid LIMIT ?`,
      ),
      listPageWithMetadata: db.prepare(
        `SELECT ${RECORD_COLUMNS}, metadata FROM instances WHERE study_uid = ? AND (series_uid, sop_uid) > (?, ?)
         ORDER BY series_uid, sop_uid LIMIT ?`,
      ),
      listSeriesPage: db.prepare(
        `SELECT ${RECORD_COLUMNS} FROM instances WHERE study_uid = ? AND series_uid = ? AND sop_uid > ?
         ORDER BY sop_uid LIMIT ?`,
      ),
      listSeriesPageWithMetadata: db.prepare(
        `SELECT ${RECORD_COLUMNS}, metadata FROM instances WHERE study_uid = ? AND series_uid = ? AND sop_uid > ?
         ORDER BY sop_uid LIMIT ?`,
      ),
      // listMetadata pages: only what serving metadata needs (the record's other JSON columns are as large as the metadata)
      listMetadataPage: db.prepare(
        `SELECT ${METADATA_COLUMNS} FROM instances WHERE study_uid = ? AND (series_uid, sop_uid) > (?, ?) AND metadata IS NOT NULL
         ORDER BY series_uid, sop_uid LIMIT ?`,
      ),
      listSeriesMetadataPage: db.prepare(
        `SELECT ${METADATA_COLUMNS} FROM instances WHERE study_uid = ? AND series_uid = ? AND sop_uid > ? AND metadata IS NOT NULL
         ORDER BY sop_uid LIMIT ?`,
      ),
      selectStudyForDelete: db.prepare(`SELECT ${RECORD_COLUMNS} FROM instances WHERE study_uid = ? ORDER BY series_uid, sop_uid`),
      selectSeriesForDelete: db.prepare(
        `SELECT ${RECORD_COLUMNS} FROM instances WHERE study_uid = ? AND series_uid = ? ORDER BY sop_uid`,
      ),
      deleteStudyInstances: db.prepare('DELETE FROM instances WHERE study_uid = ?'),
      deleteSeriesInstances: db.prepare('DELETE FROM instances WHERE study_uid = ? AND series_uid = ?'),
      deleteInstance: db.prepare('DELETE FROM instances WHERE sop_uid = ?'),
      countInstance: db.prepare(
        `INSERT INTO series_counts (study_uid, series_uid, modality, sop_class_uid, instances) VALUES (?, ?, ?, ?, 1)
         ON CONFLICT DO UPDATE SET instances = instances + 1`,
      ),
      uncountInstance: db.prepare(
        'UPDATE series_counts SET instances = instances - 1 WHERE study_uid = ? AND series_uid = ? AND modality = ? AND sop_class_uid = ?',
      ),
      dropEmptyCounts: db.prepare('DELETE FROM series_counts WHERE study_uid = ? AND instances <= 0'),
      studyCounts: db.prepare('SELECT series_uid, modality, sop_class_uid, instances FROM series_counts WHERE study_uid = ?'),
      studyHasInstances: db.prepare('SELECT 1 AS x FROM instances WHERE study_uid = ? LIMIT 1'),
      deleteStudy: db.prepare('DELETE FROM studies WHERE study_uid = ?'),
      studiesByRowids: db.prepare(
        'SELECT rowid AS id, study_uid, sort_key, study_attributes FROM studies WHERE rowid IN (SELECT value FROM json_each(?)) ORDER BY sort_key DESC',
      ),
    };
  }

  async putInstance(record: InstanceRecord): Promise<PutInstanceResult> {
    const s = this.s;
    return this.transaction(() => {
      const row = s.selectBySop.get(record.sopInstanceUID) as Row | undefined;
      if (row) {
        const existing = toRecord(row);
        return existing.contentHash === record.contentHash ? { status: 'identical', existing } : { status: 'conflict', existing };
      }
      const study = record.studyAttributes;
      const studyDate = firstString(study, Tag.StudyDate);
      // First writer's study attributes win: INSERT OR IGNORE.
      s.insertStudy.run(
        record.studyInstanceUID,
        studySortKey(studyDate, record.studyInstanceUID),
        firstString(study, Tag.PatientID) ?? null,
        firstString(study, Tag.AccessionNumber) ?? null,
        studyDate ?? null,
        normalizedFamilyName(firstString(study, Tag.PatientName)),
        JSON.stringify(study),
      );
      s.insertInstance.run(
        record.sopInstanceUID,
        record.studyInstanceUID,
        record.seriesInstanceUID,
        record.sopClassUID,
        record.transferSyntaxUID,
        record.blobKey,
        record.size,
        record.contentHash,
        record.storedAt,
        JSON.stringify(record.studyAttributes),
        JSON.stringify(record.seriesAttributes),
        JSON.stringify(record.instanceAttributes),
        JSON.stringify(record.layout),
        record.metadata === undefined ? null : JSON.stringify(record.metadata),
      );
      s.countInstance.run(record.studyInstanceUID, record.seriesInstanceUID, modalityOf(record), record.sopClassUID);
      return { status: 'created' };
    });
  }

  async getInstance(ref: InstanceRef, options?: ListOptions): Promise<InstanceRecord | undefined> {
    const stmt = options?.withMetadata ? this.s.selectBySopWithMetadata : this.s.selectBySop;
    const row = stmt.get(ref.sopInstanceUID) as Row | undefined;
    if (!row || row.study_uid !== ref.studyInstanceUID) return undefined;
    if (ref.seriesInstanceUID !== undefined && row.series_uid !== ref.seriesInstanceUID) return undefined;
    return toRecord(row);
  }

  async *listInstances(studyInstanceUID: string, seriesInstanceUID?: string, options?: ListOptions): AsyncIterable<InstanceRecord> {
    const s = this.s;
    const [byStudy, bySeries] = options?.withMetadata ? [s.listPageWithMetadata, s.listSeriesPageWithMetadata] : [s.listPage, s.listSeriesPage];
    for (const rows of this.pages(studyInstanceUID, seriesInstanceUID, byStudy, bySeries)) for (const row of rows) yield toRecord(row);
  }

  async summarizeStudy(studyInstanceUID: string): Promise<StudyContents> {
    const rows = this.s.studyCounts.all(studyInstanceUID) as Row[];
    return studyContentsFromGroups(
      rows.map((r) => ({ seriesInstanceUID: r.series_uid as string, modality: r.modality as string, sopClassUID: r.sop_class_uid as string, instances: r.instances as number })),
    );
  }

  async *listMetadata(studyInstanceUID: string, seriesInstanceUID?: string): AsyncIterable<StoredMetadata> {
    for (const rows of this.pages(studyInstanceUID, seriesInstanceUID, this.s.listMetadataPage, this.s.listSeriesMetadataPage)) {
      for (const row of rows) {
        yield {
          ...uidsOf(row),
          transferSyntaxUID: row.transfer_syntax as string,
          contentHash: row.content_hash as string,
          metadataJson: row.metadata as string,
        };
      }
    }
  }

  /** Keyset pages of a study's (or one series') rows in (series, SOP) order; the statements take (study, lastSeries, lastSop, limit) and (study, series, lastSop, limit). */
  private *pages(studyInstanceUID: string, seriesInstanceUID: string | undefined, byStudy: StatementSync, bySeries: StatementSync): Generator<Row[]> {
    const limit = this.pageSize;
    let lastSeries = '';
    let lastSop = '';
    for (;;) {
      const rows = (
        seriesInstanceUID === undefined ? byStudy.all(studyInstanceUID, lastSeries, lastSop, limit) : bySeries.all(studyInstanceUID, seriesInstanceUID, lastSop, limit)
      ) as Row[];
      yield rows;
      if (rows.length < limit) return;
      const last = rows[rows.length - 1]!;
      lastSeries = last.series_uid as string;
      lastSop = last.sop_uid as string;
    }
  }

  async *findStudies(hints: StudySearchHints, after?: string): AsyncIterable<StudySummary> {
    const query = studyConditions(hints);
    if (!query) return;
    const { where, params } = query;
    const stmt = this.findStatement(where);
    // Two steps: (1) the matching (rowid, sort_key) pairs, in order, from an
    // index alone (each index also holds sort_key and the rowid); (2) the
    // rows, one page at a time. Step 1 reads growing chunks (pageSize, ×4 …,
    // up to MAX_KEY_CHUNK small pairs): a plan that must sort (a name prefix, a
    // UID list) sorts its index entries once per chunk instead of once per
    // page, and the first page costs no more than a plain LIMIT query.
    let cursor = after;
    let chunk = this.pageSize;
    for (;;) {
      const keys = (
        cursor === undefined ? stmt.firstKeys.all(...params, chunk) : stmt.nextKeys.all(...params, cursor, chunk)
      ) as { id: number; sort_key: string }[];
      for (let at = 0; at < keys.length; at += this.pageSize) {
        const page = keys.slice(at, at + this.pageSize);
        const expected = new Map(page.map((k) => [k.id, k.sort_key]));
        const rows = this.s.studiesByRowids.all(JSON.stringify(page.map((k) => k.id))) as Row[];
        for (const row of rows) {
          // a study deleted since step 1 is absent; one whose rowid was reused since is skipped
          if (expected.get(row.id as number) !== row.sort_key) continue;
          yield { studyInstanceUID: row.study_uid as string, studyAttributes: JSON.parse(row.study_attributes as string) };
        }
      }
      if (keys.length < chunk) return;
      cursor = keys[keys.length - 1]!.sort_key;
      chunk = Math.min(chunk * 4, Math.max(MAX_KEY_CHUNK, this.pageSize));
    }
  }

  async deleteInstances(studyInstanceUID: string, seriesInstanceUID?: string, sopInstanceUID?: string): Promise<InstanceRecord[]> {
    const s = this.s;
    return this.transaction(() => {
      let rows: Row[];
      if (sopInstanceUID !== undefined) {
        const row = s.selectBySop.get(sopInstanceUID) as Row | undefined;
        const inScope =
          row !== undefined &&
          row.study_uid === studyInstanceUID &&
          (seriesInstanceUID === undefined || row.series_uid === seriesInstanceUID);
        rows = inScope ? [row] : [];
        if (inScope) s.deleteInstance.run(sopInstanceUID);
      } else if (seriesInstanceUID !== undefined) {
        rows = s.selectSeriesForDelete.all(studyInstanceUID, seriesInstanceUID) as Row[];
        if (rows.length > 0) s.deleteSeriesInstances.run(studyInstanceUID, seriesInstanceUID);
      } else {
        rows = s.selectStudyForDelete.all(studyInstanceUID) as Row[];
        if (rows.length > 0) s.deleteStudyInstances.run(studyInstanceUID);
      }
      const removed = rows.map((row) => toRecord(row));
      for (const r of removed) s.uncountInstance.run(r.studyInstanceUID, r.seriesInstanceUID, modalityOf(r), r.sopClassUID);
      if (removed.length > 0) s.dropEmptyCounts.run(studyInstanceUID);
      if (rows.length > 0 && s.studyHasInstances.get(studyInstanceUID) === undefined) s.deleteStudy.run(studyInstanceUID);
      return removed;
    });
  }

  /** EXPLAIN QUERY PLAN of the key query findStudies runs for these hints (tests check no hint scans a table). */
  explainFindStudies(hints: StudySearchHints, after?: string): string[] {
    const query = studyConditions(hints);
    if (!query) return [];
    const stmt = this.findStatement(query.where);
    const sql = (after === undefined ? stmt.firstKeys : stmt.nextKeys).sourceSQL;
    const params = after === undefined ? [...query.params, this.pageSize] : [...query.params, after, this.pageSize];
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
  }

  /** Close the database (checkpoints the WAL). */
  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  private transaction<T>(work: () => T): T {
    this.s.begin.run();
    try {
      const result = work();
      this.s.commit.run();
      return result;
    } catch (error) {
      try {
        this.s.rollback.run();
      } catch {
        // the transaction may already be gone (e.g. SQLITE_FULL rolls back itself)
      }
      throw error;
    }
  }

  /** One pair of cached statements per combination of hints (at most 2^6). */
  private findStatement(where: string[]): { firstKeys: StatementSync; nextKeys: StatementSync } {
    const key = where.join(' AND ');
    const cached = this.findCache.get(key);
    if (cached) return cached;
    const keys = (conditions: string[]) =>
      this.db.prepare(
        `SELECT rowid AS id, sort_key FROM studies${conditions.length ? ` WHERE ${conditions.join(' AND ')}` : ''}
         ORDER BY sort_key DESC LIMIT ?`,
      );
    const pair = { firstKeys: keys(where), nextKeys: keys([...where, 'sort_key < ?']) };
    this.findCache.set(key, pair);
    return pair;
  }
}

/** WHERE conditions and parameters for the hints; undefined when nothing can match. */
function studyConditions(hints: StudySearchHints): { where: string[]; params: string[] } | undefined {
  const where: string[] = [];
  const params: string[] = [];
  const uids = hints.studyInstanceUIDs;
  if (uids !== undefined) {
    if (uids.length === 0) return undefined;
    where.push('study_uid IN (SELECT value FROM json_each(?))');
    params.push(JSON.stringify(uids));
  }
  const sops = hints.sopInstanceUIDs;
  if (sops !== undefined) {
    if (sops.length === 0) return undefined;
    // instances.sop_uid is the primary key: one lookup per UID.
    where.push('study_uid IN (SELECT study_uid FROM instances WHERE sop_uid IN (SELECT value FROM json_each(?)))');
    params.push(JSON.stringify(sops));
  }
  if (hints.patientID !== undefined) {
    where.push('patient_id = ?');
    params.push(hints.patientID);
  }
  if (hints.accessionNumber !== undefined) {
    where.push('accession_number = ?');
    params.push(hints.accessionNumber);
  }
  // The date range is a range of sort keys ("YYYYMMDD#uid"): '#' < '$'.
  if (hints.studyDateFrom !== undefined) {
    where.push('sort_key >= ?');
    params.push(`${hints.studyDateFrom}#`);
  }
  if (hints.studyDateTo !== undefined) {
    where.push('sort_key < ?');
    params.push(`${hints.studyDateTo}$`);
  }
  if (hints.patientNamePrefix) {
    // Prefix as a range (BINARY collation, so the index is used): every
    // string starting with the prefix sorts below prefix + U+10FFFF.
    where.push('patient_name_norm >= ? AND patient_name_norm < ?');
    params.push(hints.patientNamePrefix, `${hints.patientNamePrefix}\u{10FFFF}`);
  }
  const modalities = hints.modalitiesInStudy;
  if (modalities !== undefined) {
    if (modalities.length === 0) return undefined;
    // series_counts' primary key starts with study_uid: one short range per candidate study, no instance rows.
    // Trimmed as the matcher trims the stored value (spaces, NUL pads).
    where.push(
      `EXISTS (SELECT 1 FROM series_counts c WHERE c.study_uid = studies.study_uid AND trim(c.modality, ' ' || char(0)) IN (SELECT value FROM json_each(?)))`,
    );
    params.push(JSON.stringify(modalities));
  }
  return { where, params };
}

/**
 * Define `key` on `target` as the parse of `text`, parsed on first read. A
 * series' metadata request lists hundreds of records and reads none of their
 * attribute sets; parsing them all would cost more than the query itself.
 */
function lazyJson(target: object, key: string, text: string): void {
  const settle = (self: object, value: unknown) => Object.defineProperty(self, key, { value, enumerable: true, configurable: true, writable: true });
  Object.defineProperty(target, key, {
    enumerable: true,
    configurable: true,
    get(this: object) {
      const value: unknown = JSON.parse(text);
      settle(this, value);
      return value;
    },
    set(this: object, value: unknown) {
      settle(this, value);
    },
  });
}

/** The three UIDs of an instance row. */
function uidsOf(row: Row): { studyInstanceUID: string; seriesInstanceUID: string; sopInstanceUID: string } {
  return { studyInstanceUID: row.study_uid as string, seriesInstanceUID: row.series_uid as string, sopInstanceUID: row.sop_uid as string };
}

function toRecord(row: Row): InstanceRecord {
  const record = {
    ...uidsOf(row),
    sopClassUID: row.sop_class_uid as string,
    transferSyntaxUID: row.transfer_syntax as string,
    blobKey: row.blob_key as string,
    size: Number(row.size),
    contentHash: row.content_hash as string,
    storedAt: row.stored_at as string,
  } as InstanceRecord;
  lazyJson(record, 'studyAttributes', row.study_attributes as string);
  lazyJson(record, 'seriesAttributes', row.series_attributes as string);
  lazyJson(record, 'instanceAttributes', row.instance_attributes as string);
  lazyJson(record, 'layout', row.layout as string);
  if (typeof row.metadata === 'string') record.metadata = JSON.parse(row.metadata);
  return record;
}
