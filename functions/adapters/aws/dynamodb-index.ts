/**
 * ArchiveIndex over one DynamoDB table (schema: table-schema.ts; every item,
 * GSI and query is described in docs/storage-layout.md).
 *
 * Designed for DynamoDB's real limits and for stand-ins without transactions
 * (dynalite has no TransactWriteItems):
 * - Uniqueness of a SOP Instance UID comes from ONE conditional PutItem on its
 *   claim item; the instance's other items are written after it, and every
 *   crash window in between is either rolled back or healed by the next
 *   identical STOW (the client's retry).
 * - No read path scans: each query maps to a key condition on the table or a GSI.
 * - Items stay far below 400 KB: attribute JSON is gzip-compressed above 1 KB,
 *   WADO metadata lives in separate, chunked items so that listing a study
 *   (which QIDO aggregates need) never reads it.
 * - No hot counters: aggregates are derived by the core from the instance
 *   items; a study item is written once (put-if-absent after a read), not per
 *   instance.
 *
 * The client is built once per cold start by the caller; nothing here reads
 * the environment.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import {
  studyContentsOf,
  studySortKey,
  type ArchiveIndex,
  type StudyContents,
  type InstanceLayout,
  type InstanceRecord,
  type InstanceRef,
  type ListOptions,
  type PutInstanceResult,
  type StoredMetadata,
  type StudySearchHints,
  type StudySummary,
} from '../../core/archive/ports';
import { firstString, type DicomJsonDataset } from '../../core/dicom/json-model';
import { Tag } from '../../core/dicom/tags';
import { assertValidUID, isValidUID } from '../../core/dicom/uid';
import { normalizedFamilyName } from '../../core/dicomweb/person-name';
import {
  GSI,
  STUDY_DATE_SHARDS,
  accessionNumberKey,
  familyNamePartitionKey,
  familyNameSortKey,
  itemKeys,
  parseFamilyNameSortKey,
  patientIDKey,
  studyDateShard,
  studyDateShardKey,
  truncateKeyText,
  type GsiDefinition,
  type ItemKey,
  type SideItemKind,
} from './table-schema';

export interface DynamoDbIndexOptions {
  /**
   * How long after a claim its writer may still be writing the other items
   * (ms). A concurrent STOW of the same SOP Instance UID that finds the claim
   * but no instance item polls until then before it heals (same content) or
   * reports a conflict (different content). Default 5 s.
   */
  inFlightWaitMs?: number;
  /**
   * A claim older than this without an instance item belongs to a writer that
   * died (Lambda's hard limit is 15 min), and a STOW with other content may take
   * it over. Default 16 min.
   */
  staleClaimMs?: number;
  /** Clock (ms since epoch), for tests. */
  now?: () => number;
}

// ---------------------------------------------------------------- item shapes

/** Identity fields, stored as plain attributes (readable in the console) on claim and instance items. */
interface IdentityAttributes {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  sopClassUID: string;
  transferSyntaxUID: string;
  blobKey: string;
  size: number;
  contentHash: string;
  storedAt: string;
}

interface ClaimItem extends ItemKey, IdentityAttributes {
  type: 'claim';
  /** ms since epoch: lets a later writer tell an in-flight claim from a dead one */
  claimedAt: number;
}

/** What is packed (JSON, gzip above 1 KB) into an instance item's `body`. */
interface RecordBody {
  studyAttributes: DicomJsonDataset;
  seriesAttributes: DicomJsonDataset;
  instanceAttributes: DicomJsonDataset;
  layout: InstanceLayout;
}

interface InstanceItem extends ItemKey, IdentityAttributes {
  type: 'instance';
  /** packed RecordBody; absent when spilled to `bodyChunks` side items */
  body?: string | Uint8Array;
  bodyChunks?: number;
  /** number of metadata side items (0: the record had no metadata) */
  metadataChunks: number;
}

interface SideItem extends ItemKey {
  type: 'metadata' | 'body';
  /** one slice of the gzip-compressed JSON */
  data: Uint8Array;
  /** the blob key of the writer, so a rollback never deletes another writer's items */
  blobKey: string;
}

interface StudyItem extends ItemKey {
  type: 'study';
  studyInstanceUID: string;
  sortKey: string;
  studyAttributes: string | Uint8Array;
  createdAt: string;
  [gsiAttribute: string]: unknown;
}

type Item = Record<string, unknown>;

// ---------------------------------------------------------------- encoding

/** JSON above this many bytes is stored gzip-compressed (DICOM JSON compresses 3–10×; WCU/RCU are per KB / 4 KB). */
const COMPRESS_ABOVE = 1024;
/** Bytes per side item: below the 400 KB item limit with room for keys and attribute names. */
const CHUNK_BYTES = 350_000;
/** A packed body larger than this is spilled to side items, keeping the instance item < 400 KB. */
const INLINE_BODY_MAX = 300_000;
/** BatchGetItem takes ≤ 100 keys, BatchWriteItem ≤ 25 requests. */
const BATCH_GET_MAX = 100;
const BATCH_WRITE_MAX = 25;

function packJson(value: unknown): string | Uint8Array {
  const json = JSON.stringify(value);
  if (Buffer.byteLength(json) <= COMPRESS_ABOVE) return json;
  return gzipSync(json);
}

function unpackJson<T>(value: string | Uint8Array): T {
  if (typeof value === 'string') return JSON.parse(value) as T;
  return JSON.parse(gunzipSync(value).toString('utf8')) as T;
}

function packedSize(value: string | Uint8Array): number {
  return typeof value === 'string' ? Buffer.byteLength(value) : value.byteLength;
}

function toChunks(value: unknown): Uint8Array[] {
  const zipped = gzipSync(JSON.stringify(value));
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < zipped.byteLength; at += CHUNK_BYTES) chunks.push(zipped.subarray(at, at + CHUNK_BYTES));
  return chunks;
}

function textFromChunks(chunks: Uint8Array[]): string {
  return gunzipSync(Buffer.concat(chunks)).toString('utf8');
}

function fromChunks<T>(chunks: Uint8Array[]): T {
  return JSON.parse(textFromChunks(chunks)) as T;
}

// ---------------------------------------------------------------- small helpers

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function backoff(attempt: number): number {
  const cap = Math.min(1000, 25 * 2 ** attempt);
  return cap / 2 + Math.random() * (cap / 2);
}

function isConditionalCheckFailed(error: unknown): boolean {
  return (error as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException';
}

function keyOf(item: ItemKey): ItemKey {
  return { PK: item.PK, SK: item.SK };
}

function keyString(key: ItemKey): string {
  return `${key.PK}\u0000${key.SK}`;
}

function identityOf(record: InstanceRecord): IdentityAttributes {
  return {
    studyInstanceUID: record.studyInstanceUID,
    seriesInstanceUID: record.seriesInstanceUID,
    sopInstanceUID: record.sopInstanceUID,
    sopClassUID: record.sopClassUID,
    transferSyntaxUID: record.transferSyntaxUID,
    blobKey: record.blobKey,
    size: record.size,
    contentHash: record.contentHash,
    storedAt: record.storedAt,
  };
}

function withoutMetadata(record: InstanceRecord): InstanceRecord {
  const { metadata: _metadata, ...rest } = record;
  return rest;
}

function descending(a: string, b: string): number {
  return a < b ? 1 : a > b ? -1 : 0;
}

/** Bounds on a GSI sort key (studySortKey values): inclusive low, inclusive or exclusive high. */
interface SortKeyBounds {
  low?: string;
  highInclusive?: string;
  highExclusive?: string;
}

function keyCondition(
  gsi: GsiDefinition,
  partition: string,
  bounds: SortKeyBounds,
): { expression: string; names: Record<string, string>; values: Record<string, unknown>; exclude?: string } | undefined {
  const names: Record<string, string> = { '#pk': gsi.partitionKey, '#sk': gsi.sortKey };
  const values: Record<string, unknown> = { ':pk': partition };
  const { low, highInclusive, highExclusive } = bounds;
  let high: { value: string; exclusive: boolean } | undefined;
  if (highExclusive !== undefined && (highInclusive === undefined || highExclusive <= highInclusive)) {
    high = { value: highExclusive, exclusive: true };
  } else if (highInclusive !== undefined) {
    high = { value: highInclusive, exclusive: false };
  }
  if (low !== undefined && high !== undefined) {
    // BETWEEN rejects low > high; an exclusive high equal to low leaves nothing either.
    if (low > high.value || (high.exclusive && low === high.value)) return undefined;
    values[':low'] = low;
    values[':high'] = high.value;
    // BETWEEN is inclusive: an exclusive high bound is dropped from the results by the caller.
    return { expression: '#pk = :pk AND #sk BETWEEN :low AND :high', names, values, exclude: high.exclusive ? high.value : undefined };
  }
  if (low !== undefined) {
    values[':low'] = low;
    return { expression: '#pk = :pk AND #sk >= :low', names, values };
  }
  if (high !== undefined) {
    values[':high'] = high.value;
    return { expression: `#pk = :pk AND #sk ${high.exclusive ? '<' : '<='} :high`, names, values };
  }
  return { expression: '#pk = :pk', names: { '#pk': gsi.partitionKey }, values };
}

// ---------------------------------------------------------------- the adapter

export class DynamoDbIndex implements ArchiveIndex {
  private readonly db: DynamoDBDocumentClient;
  private readonly inFlightWaitMs: number;
  private readonly staleClaimMs: number;
  private readonly now: () => number;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    options: DynamoDbIndexOptions = {},
  ) {
    this.db = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    this.inFlightWaitMs = options.inFlightWaitMs ?? 5_000;
    this.staleClaimMs = options.staleClaimMs ?? 16 * 60_000;
    this.now = options.now ?? Date.now;
  }

  // ---------------------------------------------------------------- putInstance

  async putInstance(record: InstanceRecord): Promise<PutInstanceResult> {
    assertValidUID(record.studyInstanceUID, 'Study Instance UID');
    assertValidUID(record.seriesInstanceUID, 'Series Instance UID');
    assertValidUID(record.sopInstanceUID, 'SOP Instance UID');
    // A few rounds: a claim can vanish (deleted) or change hands between our conditional put and our read.
    for (let attempt = 0; attempt < 5; attempt++) {
      const claim: ClaimItem = { ...itemKeys.claim(record.sopInstanceUID), type: 'claim', ...identityOf(record), claimedAt: this.now() };
      if (await this.tryPut(claim, 'attribute_not_exists(PK)')) {
        await this.commit(record);
        return { status: 'created' };
      }
      const outcome = await this.resolveExistingClaim(record);
      if (outcome) return outcome;
      await sleep(backoff(attempt));
    }
    throw Object.assign(new Error('SOP Instance UID claim kept changing under contention'), { code: 'INDEX_CONTENTION' });
  }

  /** After the claim: side items, then the instance item, then the study item. Undone on failure. */
  private async commit(record: InstanceRecord): Promise<void> {
    try {
      await this.writeRecordItems(record);
      await this.ensureStudy(record);
    } catch (error) {
      await this.rollback(record).catch(() => undefined);
      throw error;
    }
  }

  private async writeRecordItems(record: InstanceRecord, memberCondition?: string): Promise<boolean> {
    const { member, sides } = this.recordItems(record);
    // Side items first: an instance item never points at metadata that is not there yet.
    await this.batchWrite(sides.map((Item) => ({ PutRequest: { Item } })));
    if (memberCondition) return this.tryPut(member, memberCondition);
    await this.db.send(new PutCommand({ TableName: this.tableName, Item: member }));
    return true;
  }

  /** Best effort, conditioned on our blob key so that nothing another writer wrote is removed. */
  private async rollback(record: InstanceRecord): Promise<void> {
    const { member, sides } = this.recordItems(record);
    const mine = { ConditionExpression: 'blobKey = :b', ExpressionAttributeValues: { ':b': record.blobKey } };
    await this.tryDelete(keyOf(member), mine);
    await Promise.all(sides.map((s) => this.tryDelete(keyOf(s), mine)));
    await this.tryDelete(itemKeys.claim(record.sopInstanceUID), {
      ConditionExpression: 'blobKey = :b AND contentHash = :h',
      ExpressionAttributeValues: { ':b': record.blobKey, ':h': record.contentHash },
    });
  }

  /** The claim exists: identical, conflict, heal a crashed writer's half-written record, or take over a dead claim. */
  private async resolveExistingClaim(record: InstanceRecord): Promise<PutInstanceResult | undefined> {
    const claim = await this.getItem<ClaimItem>(itemKeys.claim(record.sopInstanceUID));
    if (!claim) return undefined; // deleted meanwhile: claim again
    const member = await this.awaitMember(claim);
    if (member) {
      const [existing] = await this.recordsFromMembers([member], false);
      if (existing) return { status: existing.contentHash === record.contentHash ? 'identical' : 'conflict', existing };
    }
    if (claim.contentHash === record.contentHash) return this.heal(record, claim);
    if (this.now() - claim.claimedAt > this.staleClaimMs) {
      const takenOver = await this.tryPut(
        { ...itemKeys.claim(record.sopInstanceUID), type: 'claim', ...identityOf(record), claimedAt: this.now() },
        'claimedAt = :c AND contentHash = :h',
        { ':c': claim.claimedAt, ':h': claim.contentHash },
      );
      if (!takenOver) return undefined;
      await this.commit(record);
      return { status: 'created' };
    }
    // Another writer holds the UID but its record is not (yet) there: report what the claim knows.
    return { status: 'conflict', existing: recordFromClaim(claim) };
  }

  /** The claim's instance item; while the claim is young, poll for it (its writer may be mid-commit). */
  private async awaitMember(claim: ClaimItem): Promise<InstanceItem | undefined> {
    const key = itemKeys.member(claim.studyInstanceUID, claim.seriesInstanceUID, claim.sopInstanceUID);
    let delay = 10;
    for (;;) {
      const member = await this.getItem<InstanceItem>(key);
      if (member || this.now() >= claim.claimedAt + this.inFlightWaitMs) return member;
      await sleep(delay);
      delay = Math.min(delay * 2, 250);
    }
  }

  /**
   * Same content, claim present, no instance item after the in-flight window: a
   * writer died between its claim and its instance item. The identical retry
   * completes the record with its own bytes (which it just wrote) and re-points
   * the claim at them.
   */
  private async heal(record: InstanceRecord, claim: ClaimItem): Promise<PutInstanceResult | undefined> {
    if (claim.studyInstanceUID !== record.studyInstanceUID || claim.seriesInstanceUID !== record.seriesInstanceUID) {
      return { status: 'identical', existing: recordFromClaim(claim) };
    }
    const wrote = await this.writeRecordItems(record, 'attribute_not_exists(PK)');
    if (!wrote) {
      // Another retry (or the slow original writer) got there first.
      const member = await this.getItem<InstanceItem>(itemKeys.member(record.studyInstanceUID, record.seriesInstanceUID, record.sopInstanceUID));
      const [existing] = member ? await this.recordsFromMembers([member], false) : [];
      return existing ? { status: 'identical', existing } : undefined;
    }
    const repointed = await this.tryUpdate(
      itemKeys.claim(record.sopInstanceUID),
      'SET blobKey = :b, storedAt = :s, #size = :z',
      'contentHash = :h',
      { ':b': record.blobKey, ':s': record.storedAt, ':z': record.size, ':h': record.contentHash },
      { '#size': 'size' },
    );
    if (!repointed) {
      // The claim was deleted or replaced meanwhile: undo and start over.
      await this.rollback(record).catch(() => undefined);
      return undefined;
    }
    await this.ensureStudy(record);
    return { status: 'identical', existing: withoutMetadata(record) };
  }

  /** Put-if-absent of the study item, after a read: most instances find it and write nothing (no hot key). */
  private async ensureStudy(record: InstanceRecord): Promise<void> {
    const key = itemKeys.study(record.studyInstanceUID);
    const existing = await this.getItem<Item>(key, 'PK');
    if (existing) return;
    await this.tryPut(this.studyItem(record), 'attribute_not_exists(PK)');
  }

  private studyItem(record: InstanceRecord): StudyItem {
    const study = record.studyInstanceUID;
    const attributes = record.studyAttributes;
    const sortKey = studySortKey(firstString(attributes, Tag.StudyDate), study);
    const item: StudyItem = {
      ...itemKeys.study(study),
      type: 'study',
      studyInstanceUID: study,
      sortKey,
      studyAttributes: packJson(attributes),
      createdAt: record.storedAt,
      [GSI.byStudyDate.partitionKey]: studyDateShardKey(studyDateShard(study)),
      [GSI.byStudyDate.sortKey]: sortKey,
    };
    const patientID = firstString(attributes, Tag.PatientID);
    if (patientID) {
      item[GSI.byPatientID.partitionKey] = patientIDKey(patientID);
      item[GSI.byPatientID.sortKey] = sortKey;
    }
    const accessionNumber = firstString(attributes, Tag.AccessionNumber);
    if (accessionNumber) {
      item[GSI.byAccessionNumber.partitionKey] = accessionNumberKey(accessionNumber);
      item[GSI.byAccessionNumber.sortKey] = sortKey;
    }
    const family = normalizedFamilyName(firstString(attributes, Tag.PatientName));
    if (family) {
      item[GSI.byFamilyName.partitionKey] = familyNamePartitionKey(family);
      item[GSI.byFamilyName.sortKey] = familyNameSortKey(family, sortKey);
    }
    return item;
  }

  /** The instance item and its side items (metadata chunks; body chunks when the body is too large to inline). */
  private recordItems(record: InstanceRecord): { member: InstanceItem; sides: SideItem[] } {
    const { studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop } = record;
    const sides: SideItem[] = [];
    const side = (kind: SideItemKind, chunks: Uint8Array[]) =>
      chunks.forEach((data, i) =>
        sides.push({ ...itemKeys.side(study, series, sop, kind, i), type: kind === 'M' ? 'metadata' : 'body', data, blobKey: record.blobKey }),
      );
    const metadataChunks = record.metadata ? toChunks(record.metadata) : [];
    side('M', metadataChunks);
    const bodyValue: RecordBody = {
      studyAttributes: record.studyAttributes,
      seriesAttributes: record.seriesAttributes,
      instanceAttributes: record.instanceAttributes,
      layout: record.layout,
    };
    const member: InstanceItem = {
      ...itemKeys.member(study, series, sop),
      type: 'instance',
      ...identityOf(record),
      metadataChunks: metadataChunks.length,
    };
    const packed = packJson(bodyValue);
    if (packedSize(packed) <= INLINE_BODY_MAX) {
      member.body = packed;
    } else {
      const chunks = toChunks(bodyValue);
      side('B', chunks);
      member.bodyChunks = chunks.length;
    }
    return { member, sides };
  }

  // ---------------------------------------------------------------- reads of instances

  async getInstance(ref: InstanceRef, options: ListOptions = {}): Promise<InstanceRecord | undefined> {
    const { studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop } = ref;
    // Nothing with an invalid UID was ever stored.
    if (!isValidUID(study) || !isValidUID(sop) || (series !== undefined && !isValidUID(series))) return undefined;
    const member = await this.findMember(study, series, sop);
    if (!member) return undefined;
    const [record] = await this.recordsFromMembers([member], options.withMetadata ?? false);
    return record;
  }

  /** By key when the series is known; else the claim tells the series (never a query over the study). */
  private async findMember(study: string, series: string | undefined, sop: string): Promise<InstanceItem | undefined> {
    let seriesUID = series;
    if (seriesUID === undefined) {
      const claim = await this.getItem<ClaimItem>(itemKeys.claim(sop));
      if (!claim || claim.studyInstanceUID !== study) return undefined;
      seriesUID = claim.seriesInstanceUID;
    }
    return this.getItem<InstanceItem>(itemKeys.member(study, seriesUID, sop));
  }

  async *listInstances(studyInstanceUID: string, seriesInstanceUID?: string, options: ListOptions = {}): AsyncIterable<InstanceRecord> {
    if (!isValidUID(studyInstanceUID) || (seriesInstanceUID !== undefined && !isValidUID(seriesInstanceUID))) return;
    // Strongly consistent: a WADO retrieve right after a STOW must see every stored instance.
    for await (const page of this.memberPages(studyInstanceUID, seriesInstanceUID)) {
      for (let i = 0; i < page.length; i += BATCH_GET_MAX) {
        yield* await this.recordsFromMembers(page.slice(i, i + BATCH_GET_MAX), options.withMetadata ?? false);
      }
    }
  }

  /**
   * Derived from the study's instance items (no hot counters, see above): one
   * consistent Query per 1 MB of items, as a study search always did. A
   * counter item per (series, modality, SOP class) written with the instance
   * would need the claim and the counter in one transaction, which dynalite
   * lacks (docs/storage-layout.md).
   */
  async summarizeStudy(studyInstanceUID: string): Promise<StudyContents> {
    const records: InstanceRecord[] = [];
    for await (const r of this.listInstances(studyInstanceUID)) records.push(r);
    return studyContentsOf(records);
  }

  async *listMetadata(studyInstanceUID: string, seriesInstanceUID?: string): AsyncIterable<StoredMetadata> {
    if (!isValidUID(studyInstanceUID) || (seriesInstanceUID !== undefined && !isValidUID(seriesInstanceUID))) return;
    const chunkKeys = (m: InstanceItem) =>
      Array.from({ length: m.metadataChunks }, (_, i) => itemKeys.side(m.studyInstanceUID, m.seriesInstanceUID, m.sopInstanceUID, 'M', i));
    for await (const page of this.memberPages(studyInstanceUID, seriesInstanceUID)) {
      const members = page.filter((m) => m.metadataChunks > 0);
      for (let i = 0; i < members.length; i += BATCH_GET_MAX) {
        const batch = members.slice(i, i + BATCH_GET_MAX);
        // Only the metadata chunks: the record bodies (attributes, layout) are not needed to serve it.
        const sides = await this.batchGet<SideItem>(batch.flatMap(chunkKeys), true);
        for (const m of batch) {
          const parts = chunkKeys(m).map((k) => sides.get(keyString(k))?.data);
          if (!parts.every((p): p is Uint8Array => p !== undefined)) continue; // deleted under us
          yield {
            studyInstanceUID: m.studyInstanceUID,
            seriesInstanceUID: m.seriesInstanceUID,
            sopInstanceUID: m.sopInstanceUID,
            transferSyntaxUID: m.transferSyntaxUID,
            contentHash: m.contentHash,
            metadataJson: textFromChunks(parts),
          };
        }
      }
    }
  }

  private memberPages(study: string, series?: string): AsyncGenerator<InstanceItem[]> {
    return this.queryPages<InstanceItem>({
      TableName: this.tableName,
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
      ExpressionAttributeValues: { ':pk': itemKeys.studyPartition(study), ':prefix': itemKeys.memberPrefix(series) },
      ConsistentRead: true,
    });
  }

  /** Records from instance items, fetching spilled bodies and (when asked) metadata with BatchGetItem. */
  private async recordsFromMembers(members: InstanceItem[], withMetadata: boolean): Promise<InstanceRecord[]> {
    const wanted: ItemKey[] = [];
    const sideKeys = (m: InstanceItem, kind: SideItemKind, n: number) =>
      Array.from({ length: n }, (_, i) => itemKeys.side(m.studyInstanceUID, m.seriesInstanceUID, m.sopInstanceUID, kind, i));
    for (const m of members) {
      if (m.body === undefined) wanted.push(...sideKeys(m, 'B', m.bodyChunks ?? 0));
      if (withMetadata) wanted.push(...sideKeys(m, 'M', m.metadataChunks));
    }
    const sides = wanted.length ? await this.batchGet<SideItem>(wanted, true) : new Map<string, SideItem>();
    const assemble = <T>(keys: ItemKey[]): T | undefined => {
      const parts = keys.map((k) => sides.get(keyString(k))?.data);
      return parts.length && parts.every((p) => p !== undefined) ? fromChunks<T>(parts as Uint8Array[]) : undefined;
    };

    const records: InstanceRecord[] = [];
    for (const m of members) {
      const body = m.body !== undefined ? unpackJson<RecordBody>(m.body) : assemble<RecordBody>(sideKeys(m, 'B', m.bodyChunks ?? 0));
      if (!body) continue; // deleted under us
      const record: InstanceRecord = {
        studyInstanceUID: m.studyInstanceUID,
        seriesInstanceUID: m.seriesInstanceUID,
        sopInstanceUID: m.sopInstanceUID,
        sopClassUID: m.sopClassUID,
        transferSyntaxUID: m.transferSyntaxUID,
        blobKey: m.blobKey,
        size: m.size,
        contentHash: m.contentHash,
        storedAt: m.storedAt,
        studyAttributes: body.studyAttributes,
        seriesAttributes: body.seriesAttributes,
        instanceAttributes: body.instanceAttributes,
        layout: body.layout,
      };
      if (withMetadata && m.metadataChunks > 0) {
        const metadata = assemble<DicomJsonDataset>(sideKeys(m, 'M', m.metadataChunks));
        if (metadata) record.metadata = metadata;
      }
      records.push(record);
    }
    return records;
  }

  // ---------------------------------------------------------------- findStudies

  async *findStudies(hints: StudySearchHints, after?: string): AsyncIterable<StudySummary> {
    // One key answers; the most selective hint a key can answer wins (the core re-checks the rest).
    const hasDate = hints.studyDateFrom !== undefined || hints.studyDateTo !== undefined;
    const namePrefix = hints.patientNamePrefix || undefined;
    let items: AsyncIterable<StudyItem>;
    if (hints.studyInstanceUIDs) {
      items = this.studiesByUID(hints.studyInstanceUIDs, after);
    } else if (hints.sopInstanceUIDs) {
      // Each SOP Instance UID's claim item names its study: keys, never a scan.
      items = this.studiesByUID(await this.studiesOfInstances(hints.sopInstanceUIDs), after);
    } else if (hints.accessionNumber) {
      items = this.gsiItems(GSI.byAccessionNumber, accessionNumberKey(hints.accessionNumber), { highExclusive: after });
    } else if (hints.patientID) {
      items = this.gsiItems(GSI.byPatientID, patientIDKey(hints.patientID), { highExclusive: after });
    } else if (namePrefix && (Array.from(namePrefix).length >= 3 || !hasDate)) {
      items = this.studiesByNamePrefix(namePrefix, after);
    } else {
      items = this.studiesByDate(
        {
          low: hints.studyDateFrom !== undefined ? `${hints.studyDateFrom}#` : undefined,
          // '~' sorts after every UID character: the whole last day is included.
          highInclusive: hints.studyDateTo !== undefined ? `${hints.studyDateTo}#~` : undefined,
          highExclusive: after,
        },
      );
    }
    for await (const item of items) yield { studyInstanceUID: item.studyInstanceUID, studyAttributes: unpackJson(item.studyAttributes) };
  }

  private async studiesOfInstances(sops: string[]): Promise<string[]> {
    const keys = [...new Set(sops.filter((u) => isValidUID(u)))].map((u) => itemKeys.claim(u));
    const claims = await this.batchGet<ClaimItem>(keys, true);
    return [...new Set([...claims.values()].map((c) => c.studyInstanceUID))];
  }

  private async *studiesByUID(uids: string[], after: string | undefined): AsyncGenerator<StudyItem> {
    const keys = [...new Set(uids.filter((u) => isValidUID(u)))].map((u) => itemKeys.study(u));
    const found = [...(await this.batchGet<StudyItem>(keys, true)).values()]
      .filter((s) => after === undefined || s.sortKey < after)
      .sort((a, b) => descending(a.sortKey, b.sortKey));
    yield* found;
  }

  /** GSI1 is sharded: every shard is queried lazily (newest first) and the streams merged. */
  private async *studiesByDate(bounds: SortKeyBounds): AsyncGenerator<StudyItem> {
    const shards = Array.from({ length: STUDY_DATE_SHARDS }, (_, s) =>
      this.gsiItems(GSI.byStudyDate, studyDateShardKey(s), bounds)[Symbol.asyncIterator](),
    );
    try {
      const heads = await Promise.all(shards.map((it) => it.next()));
      for (;;) {
        let best = -1;
        for (let i = 0; i < heads.length; i++) {
          const head = heads[i]!;
          if (head.done) continue;
          if (best < 0 || head.value.sortKey > (heads[best]!.value as StudyItem).sortKey) best = i;
        }
        if (best < 0) return;
        yield heads[best]!.value as StudyItem;
        heads[best] = await shards[best]!.next();
      }
    } finally {
      await Promise.all(shards.map((it) => it.return?.(undefined)));
    }
  }

  /** Newest first on one GSI partition; pages grow (32 → 512 items) so a small QIDO page reads little. */
  private async *gsiItems(gsi: GsiDefinition, partition: string, bounds: SortKeyBounds): AsyncGenerator<StudyItem> {
    const condition = keyCondition(gsi, partition, bounds);
    if (!condition) return;
    let limit = 32;
    for await (const page of this.queryPages<StudyItem>(
      {
        TableName: this.tableName,
        IndexName: gsi.indexName,
        KeyConditionExpression: condition.expression,
        ExpressionAttributeNames: condition.names,
        ExpressionAttributeValues: condition.values,
        ScanIndexForward: false,
      },
      () => {
        const l = limit;
        limit = Math.min(limit * 2, 512);
        return l;
      },
    )) {
      for (const item of page) if (item.sortKey !== condition.exclude) yield item;
    }
  }

  /**
   * GSI4 answers a family-name prefix in name order; the matches' keys (KEYS_ONLY,
   * ~150 bytes each) are sorted by study sort key, then the study items are read
   * in that order with BatchGetItem as the caller consumes them.
   */
  private async *studiesByNamePrefix(prefix: string, after: string | undefined): AsyncGenerator<StudyItem> {
    const p = truncateKeyText(prefix);
    const gsi = GSI.byFamilyName;
    const matches: { key: ItemKey; sortKey: string }[] = [];
    for await (const page of this.queryPages<Item>({
      TableName: this.tableName,
      IndexName: gsi.indexName,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: { '#pk': gsi.partitionKey, '#sk': gsi.sortKey },
      ExpressionAttributeValues: { ':pk': familyNamePartitionKey(p), ':prefix': p },
    })) {
      for (const item of page) {
        const { name, sortKey } = parseFamilyNameSortKey(item[gsi.sortKey] as string);
        // begins_with could also match a prefix that runs into the '#' separator.
        if (!name.startsWith(p) || (after !== undefined && sortKey >= after)) continue;
        matches.push({ key: { PK: item.PK as string, SK: item.SK as string }, sortKey });
      }
    }
    matches.sort((a, b) => descending(a.sortKey, b.sortKey));
    let batch = 16;
    for (let i = 0; i < matches.length; i += batch, batch = Math.min(batch * 2, BATCH_GET_MAX)) {
      const slice = matches.slice(i, i + batch);
      const items = await this.batchGet<StudyItem>(slice.map((m) => m.key), true);
      for (const m of slice) {
        const item = items.get(keyString(m.key));
        if (item) yield item; // absent: deleted since the index was read
      }
    }
  }

  // ---------------------------------------------------------------- deleteInstances

  async deleteInstances(studyInstanceUID: string, seriesInstanceUID?: string, sopInstanceUID?: string): Promise<InstanceRecord[]> {
    const study = studyInstanceUID;
    if (!isValidUID(study) || (seriesInstanceUID !== undefined && !isValidUID(seriesInstanceUID))) return [];
    if (sopInstanceUID !== undefined && !isValidUID(sopInstanceUID)) return [];

    let members: InstanceItem[];
    if (sopInstanceUID !== undefined) {
      const member = await this.findMember(study, seriesInstanceUID, sopInstanceUID);
      members = member ? [member] : [];
    } else {
      members = [];
      for await (const page of this.memberPages(study, seriesInstanceUID)) members.push(...page);
    }
    const records = await this.recordsFromMembers(members, false);

    // Instance items first (they make an instance visible), then what only they point at.
    await this.batchWrite(members.map((m) => ({ DeleteRequest: { Key: keyOf(m) } })));
    const rest: ItemKey[] = [];
    for (const m of members) {
      const { studyInstanceUID: st, seriesInstanceUID: se, sopInstanceUID: sop } = m;
      for (let i = 0; i < m.metadataChunks; i++) rest.push(itemKeys.side(st, se, sop, 'M', i));
      for (let i = 0; i < (m.bodyChunks ?? 0); i++) rest.push(itemKeys.side(st, se, sop, 'B', i));
      rest.push(itemKeys.claim(sop));
    }
    await this.batchWrite(rest.map((Key) => ({ DeleteRequest: { Key } })));

    // Drop the study item when no instance is left (strongly consistent, reads one item at most).
    const left = await this.db.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
        ExpressionAttributeValues: { ':pk': itemKeys.studyPartition(study), ':prefix': itemKeys.memberPrefix() },
        ProjectionExpression: 'PK',
        ConsistentRead: true,
        Limit: 1,
      }),
    );
    if (!left.Items?.length) await this.db.send(new DeleteCommand({ TableName: this.tableName, Key: itemKeys.study(study) }));
    return records;
  }

  // ---------------------------------------------------------------- DynamoDB primitives

  private async getItem<T>(key: ItemKey, projection?: string): Promise<T | undefined> {
    const out = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true, ProjectionExpression: projection }),
    );
    return out.Item as T | undefined;
  }

  private async tryPut(item: object, condition: string, values?: Record<string, unknown>): Promise<boolean> {
    try {
      await this.db.send(
        new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: condition, ExpressionAttributeValues: values }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  private async tryUpdate(
    key: ItemKey,
    update: string,
    condition: string,
    values: Record<string, unknown>,
    names?: Record<string, string>,
  ): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeValues: values,
          ExpressionAttributeNames: names,
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  private async tryDelete(key: ItemKey, condition: { ConditionExpression: string; ExpressionAttributeValues: Record<string, unknown> }): Promise<void> {
    try {
      await this.db.send(new DeleteCommand({ TableName: this.tableName, Key: key, ...condition }));
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }

  /** Query pages (≤ 1 MB each), following LastEvaluatedKey. */
  private async *queryPages<T>(input: QueryCommandInput, limit?: () => number): AsyncGenerator<T[]> {
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(new QueryCommand({ ...input, ExclusiveStartKey: start, Limit: limit?.() }));
      yield (out.Items ?? []) as T[];
      start = out.LastEvaluatedKey;
    } while (start);
  }

  /** BatchGetItem in chunks of 100 keys, retrying UnprocessedKeys with backoff; keyed by keyString. */
  private async batchGet<T extends ItemKey>(keys: ItemKey[], consistent: boolean): Promise<Map<string, T>> {
    const found = new Map<string, T>();
    const unique = [...new Map(keys.map((k) => [keyString(k), k])).values()];
    await this.inParallel(chunk(unique, BATCH_GET_MAX), async (batch) => {
      let pending: ItemKey[] = batch;
      for (let attempt = 0; pending.length; attempt++) {
        if (attempt > 0) await sleep(backoff(attempt));
        if (attempt > 10) throw Object.assign(new Error('BatchGetItem kept returning unprocessed keys'), { code: 'INDEX_THROTTLED' });
        const out = await this.db.send(
          new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: pending, ConsistentRead: consistent } } }),
        );
        for (const item of (out.Responses?.[this.tableName] ?? []) as T[]) found.set(keyString(item), item);
        pending = (out.UnprocessedKeys?.[this.tableName]?.Keys ?? []) as ItemKey[];
      }
    });
    return found;
  }

  /** BatchWriteItem in chunks of 25, retrying UnprocessedItems with backoff. */
  private async batchWrite(requests: Record<string, unknown>[]): Promise<void> {
    await this.inParallel(chunk(requests, BATCH_WRITE_MAX), async (batch) => {
      let pending = batch;
      for (let attempt = 0; pending.length; attempt++) {
        if (attempt > 0) await sleep(backoff(attempt));
        if (attempt > 10) throw Object.assign(new Error('BatchWriteItem kept returning unprocessed items'), { code: 'INDEX_THROTTLED' });
        const out = await this.db.send(new BatchWriteCommand({ RequestItems: { [this.tableName]: pending } }));
        pending = (out.UnprocessedItems?.[this.tableName] ?? []) as Record<string, unknown>[];
      }
    });
  }

  /** Bounded parallelism (a 2,000-instance study delete must not open hundreds of requests at once). */
  private async inParallel<T>(items: T[], work: (item: T) => Promise<void>, width = 8): Promise<void> {
    const queue = [...items];
    await Promise.all(
      Array.from({ length: Math.min(width, queue.length) }, async () => {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) await work(next);
      }),
    );
  }
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * A record from a claim alone, for a conflict with a writer whose instance item
 * is not there (in flight, or dead and not yet stale). The identity fields are
 * real; attributes and layout are unknown, hence empty.
 */
function recordFromClaim(claim: ClaimItem): InstanceRecord {
  return {
    studyInstanceUID: claim.studyInstanceUID,
    seriesInstanceUID: claim.seriesInstanceUID,
    sopInstanceUID: claim.sopInstanceUID,
    sopClassUID: claim.sopClassUID,
    transferSyntaxUID: claim.transferSyntaxUID,
    blobKey: claim.blobKey,
    size: claim.size,
    contentHash: claim.contentHash,
    storedAt: claim.storedAt,
    studyAttributes: {},
    seriesAttributes: {},
    instanceAttributes: {},
    layout: { datasetOffset: 0, deflated: false, bulkData: [] },
  };
}
