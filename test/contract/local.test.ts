/**
 * The port contracts against the embedded-mode adapters (local disk +
 * SQLite), plus what is specific to them: key validation, temporary files,
 * directory pruning, persistence, WAL, and that every hint uses an index.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FsBlobStore } from '../../functions/adapters/local/fs-blob-store';
import { SqliteIndex } from '../../functions/adapters/local/sqlite-index';
import { Tag } from '../../functions/core/dicom/tags';
import type { StudySearchHints } from '../../functions/core/archive/ports';
import { makeTempDir } from '../helpers/tmp';
import { blobStoreContract, patternBytes } from './blob-store.contract';
import { archiveIndexContract, makeInstanceRecord } from './archive-index.contract';

blobStoreContract('FsBlobStore', async () => {
  const tmp = makeTempDir('fs-blob-store-');
  return { store: new FsBlobStore(tmp.dir), cleanup: async () => tmp.cleanup() };
});

archiveIndexContract('SqliteIndex (:memory:, 7 rows per page)', async () => {
  const index = new SqliteIndex(':memory:', { pageSize: 7 });
  return { index, cleanup: async () => index.close() };
});

archiveIndexContract('SqliteIndex (file, WAL)', async () => {
  const tmp = makeTempDir('sqlite-index-');
  const index = new SqliteIndex(path.join(tmp.dir, 'index.db'));
  return {
    index,
    cleanup: async () => {
      index.close();
      tmp.cleanup();
    },
  };
});

async function toArray<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

describe('FsBlobStore specifics', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  let store: FsBlobStore;
  beforeEach(() => {
    tmp = makeTempDir('fs-blob-store-');
    store = new FsBlobStore(tmp.dir);
  });
  afterEach(() => tmp.cleanup());

  it.each(['../escape', 'a/../../b', '/etc/passwd', 'a\\b', 'a//b', 'a/', '', '.', 'a/./b', '.tmp/x', 'a b', 'ü', 'a/b?c'])(
    'rejects the key %j before touching the disk',
    async (key) => {
      await expect(store.put(key, patternBytes(3))).rejects.toMatchObject({ code: 'INVALID_BLOB_KEY' });
      await expect(store.getBytes(key)).rejects.toMatchObject({ code: 'INVALID_BLOB_KEY' });
      await expect(store.head(key)).rejects.toMatchObject({ code: 'INVALID_BLOB_KEY' });
      await expect(store.delete(key)).rejects.toMatchObject({ code: 'INVALID_BLOB_KEY' });
    },
  );

  it('rejects list prefixes that could escape the root', async () => {
    await expect(toArray(store.list('../'))).rejects.toMatchObject({ code: 'INVALID_BLOB_KEY' });
    await expect(toArray(store.list('.tmp/'))).rejects.toMatchObject({ code: 'INVALID_BLOB_KEY' });
  });

  it('stores keys as files under the root, and leaves no temporary file behind', async () => {
    await store.put('a/b/c.dcm', patternBytes(10));
    expect(fs.readFileSync(path.join(tmp.dir, 'a', 'b', 'c.dcm'))).toHaveLength(10);
    expect(fs.readdirSync(path.join(tmp.dir, '.tmp'))).toEqual([]);
  });

  it('removes the temporary file of an aborted put', async () => {
    async function* aborted(): AsyncGenerator<Uint8Array> {
      yield patternBytes(1000);
      throw new Error('aborted');
    }
    await expect(store.put('x/y.bin', aborted())).rejects.toThrow('aborted');
    expect(fs.readdirSync(path.join(tmp.dir, '.tmp'))).toEqual([]);
    expect(fs.existsSync(path.join(tmp.dir, 'x'))).toBe(false);
  });

  it('prunes directories left empty by delete, but not the root or non-empty ones', async () => {
    await store.put('studies/1/series/2/a.dcm', patternBytes(1));
    await store.put('studies/1/series/3/b.dcm', patternBytes(1));
    await store.delete('studies/1/series/2/a.dcm');
    expect(fs.existsSync(path.join(tmp.dir, 'studies', '1', 'series', '2'))).toBe(false);
    expect(fs.existsSync(path.join(tmp.dir, 'studies', '1', 'series', '3'))).toBe(true);
    await store.delete('studies/1/series/3/b.dcm');
    expect(fs.existsSync(path.join(tmp.dir, 'studies'))).toBe(false);
    expect(fs.existsSync(tmp.dir)).toBe(true);
  });

  it('sweeps stale temporary files (crash leftovers) at start-up, keeps fresh ones', async () => {
    const tmpDir = path.join(tmp.dir, '.tmp');
    fs.mkdirSync(tmpDir, { recursive: true });
    fs.writeFileSync(path.join(tmpDir, 'stale'), 'x');
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    fs.utimesSync(path.join(tmpDir, 'stale'), old, old);
    fs.writeFileSync(path.join(tmpDir, 'fresh'), 'x');
    await new FsBlobStore(tmp.dir).put('k.bin', patternBytes(1));
    expect(fs.readdirSync(tmpDir).sort()).toEqual(['fresh']);
  });

  it('rejects ranges that cannot be served', async () => {
    await store.put('r.bin', patternBytes(10));
    await expect(store.getBytes('r.bin', { start: 10 })).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE' });
    await expect(store.getBytes('r.bin', { start: 5, end: 4 })).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE' });
    await expect(store.getBytes('r.bin', { start: -1 })).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE' });
    // an end past the object is clamped, like HTTP
    await expect(store.getBytes('r.bin', { start: 8, end: 100 })).resolves.toHaveLength(2);
  });

  it('a reader that opened an object keeps reading it after a delete', async () => {
    const bytes = patternBytes(300_000, 4);
    await store.put('d.bin', bytes);
    const stream = await store.get('d.bin');
    await store.delete('d.bin');
    let total = 0;
    for await (const chunk of stream) total += chunk.byteLength;
    expect(total).toBe(bytes.byteLength);
  });
});

describe('SqliteIndex specifics', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  beforeEach(() => {
    tmp = makeTempDir('sqlite-index-');
  });
  afterEach(() => tmp.cleanup());

  it('persists across close and reopen, in WAL mode', async () => {
    const file = path.join(tmp.dir, 'index.db');
    const record = makeInstanceRecord();
    const first = new SqliteIndex(file);
    await first.putInstance(record);
    first.close();
    first.close(); // idempotent

    const second = new SqliteIndex(file);
    try {
      await expect(second.getInstance({ studyInstanceUID: record.studyInstanceUID, sopInstanceUID: record.sopInstanceUID }, { withMetadata: true })).resolves.toEqual(record);
      await expect(second.putInstance(record)).resolves.toMatchObject({ status: 'identical' });
    } finally {
      second.close();
    }
    const { DatabaseSync } = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
    const raw = new DatabaseSync(file);
    expect(raw.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    raw.close();
  });

  it('fills the study summaries of a file written before they were kept, once, on open', async () => {
    const file = path.join(tmp.dir, 'index.db');
    const study = makeInstanceRecord().studyInstanceUID;
    const records = [
      makeInstanceRecord({ studyInstanceUID: study }),
      makeInstanceRecord({ studyInstanceUID: study, sopClassUID: '1.2.840.10008.5.1.4.1.1.4', seriesAttributes: { [Tag.Modality]: { vr: 'CS', Value: ['MR'] } } }),
      makeInstanceRecord({ studyInstanceUID: study, seriesAttributes: {} }),
    ];
    const first = new SqliteIndex(file);
    for (const r of records) await first.putInstance(r);
    const expected = await first.summarizeStudy(study);
    expect(expected).toEqual({ series: 3, instances: 3, modalities: ['CT', 'MR'], sopClasses: ['1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.5.1.4.1.1.4'] });
    first.close();
    // What a file of the earlier schema looks like: no series_counts table, user_version 0.
    const { DatabaseSync } = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
    const raw = new DatabaseSync(file);
    raw.exec('DROP TABLE series_counts; PRAGMA user_version = 0');
    raw.close();
    const reopened = new SqliteIndex(file);
    try {
      await expect(reopened.summarizeStudy(study)).resolves.toEqual(expected);
      await reopened.deleteInstances(study, records[1]!.seriesInstanceUID);
      await expect(reopened.summarizeStudy(study)).resolves.toEqual({ series: 2, instances: 2, modalities: ['CT'], sopClasses: ['1.2.840.10008.5.1.4.1.1.2'] });
    } finally {
      reopened.close();
    }
  });

  it('answers a modalitiesInStudy hint exactly, from the study summaries, without reading instance rows', async () => {
    const index = new SqliteIndex(':memory:', { pageSize: 3 });
    try {
      const expected: string[] = [];
      for (let i = 0; i < 40; i++) {
        const r = makeInstanceRecord({ studyDate: `2024${String((i % 12) + 1).padStart(2, '0')}10`, seriesAttributes: { [Tag.Modality]: { vr: 'CS', Value: [i % 5 === 0 ? 'MR' : 'CT'] } } });
        await index.putInstance(r);
        if (i % 5 === 0) expected.push(r.studyInstanceUID);
      }
      const found = await toArray(index.findStudies({ modalitiesInStudy: ['MR'] }));
      expect(found.map((s) => s.studyInstanceUID).sort()).toEqual(expected.sort());
      const plan = index.explainFindStudies({ modalitiesInStudy: ['MR'] }).join(' | ');
      expect(plan).toMatch(/SEARCH c (EXISTS )?USING PRIMARY KEY \(study_uid=\?\)/);
      expect(plan).not.toMatch(/instances/);
    } finally {
      index.close();
    }
  });

  it('two connections to one file see each other’s writes and agree on conflicts', async () => {
    const file = path.join(tmp.dir, 'index.db');
    const a = new SqliteIndex(file);
    const b = new SqliteIndex(file);
    try {
      const record = makeInstanceRecord({ contentSeed: 'one' });
      await expect(a.putInstance(record)).resolves.toEqual({ status: 'created' });
      await expect(b.putInstance(makeInstanceRecord({ ...record, contentHash: undefined, contentSeed: 'two' }))).resolves.toMatchObject({ status: 'conflict' });
      await expect(toArray(b.findStudies({ studyInstanceUIDs: [record.studyInstanceUID] }))).resolves.toHaveLength(1);
    } finally {
      a.close();
      b.close();
    }
  });

  it('answers every hint with an index, never a table scan', () => {
    const index = new SqliteIndex(':memory:');
    try {
      const cases: Record<string, StudySearchHints> = {
        uids: { studyInstanceUIDs: ['1.2.3', '1.2.4'] },
        pid: { patientID: 'SYN-1' },
        acc: { accessionNumber: 'ACC-1' },
        from: { studyDateFrom: '20240101' },
        to: { studyDateTo: '20240101' },
        range: { studyDateFrom: '20240101', studyDateTo: '20241231' },
        name: { patientNamePrefix: 'MULL' },
        combined: { patientID: 'SYN-1', studyDateFrom: '20240101', patientNamePrefix: 'MULL' },
        modality: { patientID: 'SYN-1', modalitiesInStudy: ['MR'] },
      };
      for (const [name, hints] of Object.entries(cases)) {
        for (const after of [undefined, '20240601#1.2.3']) {
          const detail = index.explainFindStudies(hints, after).join(' | ');
          // a bare 'SCAN studies' reads the whole table; every hint must SEARCH an index
          expect({ name, detail }).toEqual({ name, detail: expect.not.stringMatching(/SCAN studies(?! USING)/) });
          expect({ name, detail }).toEqual({ name, detail: expect.stringMatching(/SEARCH studies USING (COVERING )?INDEX/) });
        }
      }
      // no hint: walks the sort-key index in order, never sorts the table
      expect(index.explainFindStudies({}).join(' | ')).toMatch(/SCAN studies USING (COVERING )?INDEX studies_by_sort_key/);
      expect(index.explainFindStudies({}, '2#').join(' | ')).toMatch(/SEARCH studies USING (COVERING )?INDEX studies_by_sort_key/);
    } finally {
      index.close();
    }
  });

  it('pages through 1000 studies lazily, and stops reading when the consumer stops', async () => {
    const index = new SqliteIndex(':memory:', { pageSize: 50 });
    try {
      for (let i = 0; i < 1000; i++) {
        await index.putInstance(makeInstanceRecord({ studyDate: `2000${String((i % 12) + 1).padStart(2, '0')}${String((i % 28) + 1).padStart(2, '0')}` }));
      }
      const all = await toArray(index.findStudies({}));
      expect(all).toHaveLength(1000);
      let seen = 0;
      for await (const _ of index.findStudies({})) if (++seen === 10) break;
      expect(seen).toBe(10);
      const hinted: StudySearchHints = { studyDateFrom: '20000601', studyDateTo: '20000630' };
      const june = await toArray(index.findStudies(hinted));
      expect(june.length).toBeGreaterThan(50);
      for (const s of june) expect(s.studyAttributes['00080020']?.Value?.[0]).toMatch(/^200006/);
    } finally {
      index.close();
    }
  });

  it('does not print the SQLite ExperimentalWarning, and keeps other warnings', () => {
    // The adapter is TypeScript: run it through tsx in a child process so the
    // warning is observed on a fresh process (this one may have loaded node:sqlite already).
    const tsx = path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
    const code = `
      const { SqliteIndex } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'functions', 'adapters', 'local', 'sqlite-index.ts'))});
      new SqliteIndex(':memory:').close();
      process.emitWarning('still here', 'ExperimentalWarning');
    `;
    const result = spawnSync(tsx, ['-e', code], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stderr).not.toMatch(/SQLite/);
    expect(result.stderr).toMatch(/still here/);
  });
});
