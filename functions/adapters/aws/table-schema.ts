/**
 * The DynamoDB table of the archive index: key schema, global secondary
 * indexes, and the spelling of every item key. Shared by the adapter
 * (dynamodb-index.ts), the CDK stateful stack and the tests, so the three can
 * never disagree. docs/storage-layout.md describes each item with an example.
 *
 * Single table, generic key names (PK/SK, GSInPK/GSInSK): the item types are
 * told apart by key prefixes, never by a scan. Only study items carry GSI
 * attributes, so every GSI is sparse (instance, claim and metadata items are
 * never copied into an index).
 *
 * This module is pure (no SDK import at run time) so the CDK app can use it.
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { assertValidUID } from '../../core/dicom/uid';

export const PARTITION_KEY = 'PK';
export const SORT_KEY = 'SK';

export interface GsiDefinition {
  readonly indexName: string;
  readonly partitionKey: string;
  readonly sortKey: string;
  /** ALL: the study item is read straight from the index; KEYS_ONLY: keys, then BatchGetItem. */
  readonly projection: 'ALL' | 'KEYS_ONLY';
}

/** The four GSIs, all sparse (only study items have these attributes). */
export const GSI = {
  /** All studies, newest first: `STUDIES#<shard>` / studySortKey. */
  byStudyDate: { indexName: 'GSI1', partitionKey: 'GSI1PK', sortKey: 'GSI1SK', projection: 'ALL' },
  /** Studies of one Patient ID: `PID#<PatientID>` / studySortKey. */
  byPatientID: { indexName: 'GSI2', partitionKey: 'GSI2PK', sortKey: 'GSI2SK', projection: 'ALL' },
  /** Studies of one Accession Number: `ACC#<AccessionNumber>` / studySortKey. */
  byAccessionNumber: { indexName: 'GSI3', partitionKey: 'GSI3PK', sortKey: 'GSI3SK', projection: 'ALL' },
  /**
   * Studies by normalized family name: `PN#<first character>` /
   * `<family name>#<studySortKey>`; a name prefix is a begins_with on the sort key.
   * KEYS_ONLY: matches come in name order and are re-sorted by date before
   * their study items are fetched, so only keys are read in bulk.
   */
  byFamilyName: { indexName: 'GSI4', partitionKey: 'GSI4PK', sortKey: 'GSI4SK', projection: 'KEYS_ONLY' },
} as const satisfies Record<string, GsiDefinition>;

/**
 * GSI1 partitions: studies are spread over this many partition keys by a hash of
 * the Study Instance UID, so neither writes of new studies nor the unfiltered
 * "newest studies" read concentrate on one key; readers query every shard and
 * merge. Changing it requires re-writing GSI1PK of every study item.
 */
export const STUDY_DATE_SHARDS = 4;

/**
 * Longest key material taken from free-text attributes (Patient ID, Accession
 * Number, family name). Values are truncated to this length both when written
 * and when queried, so a longer value still matches (a superset, re-checked by
 * the core) and a key never exceeds DynamoDB's 1,024-byte sort-key limit.
 */
export const MAX_KEY_TEXT = 128;

/** Attribute definitions, key schema and GSIs, in CreateTable shape (used by tests; the CDK stack mirrors it). */
export function createTableInput(tableName: string): CreateTableCommandInput {
  const gsis = Object.values(GSI) as GsiDefinition[];
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [PARTITION_KEY, SORT_KEY, ...gsis.flatMap((g) => [g.partitionKey, g.sortKey])].map((name) => ({
      AttributeName: name,
      AttributeType: 'S',
    })),
    KeySchema: [
      { AttributeName: PARTITION_KEY, KeyType: 'HASH' },
      { AttributeName: SORT_KEY, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: gsis.map((g) => ({
      IndexName: g.indexName,
      KeySchema: [
        { AttributeName: g.partitionKey, KeyType: 'HASH' },
        { AttributeName: g.sortKey, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: g.projection },
    })),
  };
}

// ---------------------------------------------------------------- item keys

export interface ItemKey {
  PK: string;
  SK: string;
}

/** Sort key of the study item inside its partition (sorts after every `INST#…`). */
export const STUDY_ITEM_SK = 'STUDY';
/** Sort-key prefix of instance member items in a study partition. */
export const INSTANCE_SK_PREFIX = 'INST#';

/** Kinds of side items in a series' META partition. */
export type SideItemKind = 'M' /* WADO metadata */ | 'B' /* spilled record body */;

/**
 * Every item key is built here, from validated UIDs only (a UID from the wire
 * such as "1#2" must never reach a key, where it could alias another item).
 */
export const itemKeys = {
  /** Claim of a SOP Instance UID, archive-wide: `SOP#<sop>` / `CLAIM`. */
  claim(sopInstanceUID: string): ItemKey {
    assertValidUID(sopInstanceUID);
    return { PK: `SOP#${sopInstanceUID}`, SK: 'CLAIM' };
  },
  /** The study's partition: its study item and its instance member items. */
  studyPartition(studyInstanceUID: string): string {
    assertValidUID(studyInstanceUID);
    return `STUDY#${studyInstanceUID}`;
  },
  study(studyInstanceUID: string): ItemKey {
    return { PK: itemKeys.studyPartition(studyInstanceUID), SK: STUDY_ITEM_SK };
  },
  /** Sort-key prefix of the members of a study (no series) or of one series. */
  memberPrefix(seriesInstanceUID?: string): string {
    if (seriesInstanceUID === undefined) return INSTANCE_SK_PREFIX;
    assertValidUID(seriesInstanceUID);
    return `${INSTANCE_SK_PREFIX}${seriesInstanceUID}#`;
  },
  member(studyInstanceUID: string, seriesInstanceUID: string, sopInstanceUID: string): ItemKey {
    assertValidUID(sopInstanceUID);
    return { PK: itemKeys.studyPartition(studyInstanceUID), SK: `${itemKeys.memberPrefix(seriesInstanceUID)}${sopInstanceUID}` };
  },
  /** Metadata / spilled-body chunks of a series' instances: `META#<study>#<series>` / `<sop>#<kind>#<nnnn>`. */
  side(studyInstanceUID: string, seriesInstanceUID: string, sopInstanceUID: string, kind: SideItemKind, chunk: number): ItemKey {
    assertValidUID(studyInstanceUID);
    assertValidUID(seriesInstanceUID);
    assertValidUID(sopInstanceUID);
    return { PK: `META#${studyInstanceUID}#${seriesInstanceUID}`, SK: `${sopInstanceUID}#${kind}#${String(chunk).padStart(4, '0')}` };
  },
};

// ---------------------------------------------------------------- GSI key values

/** FNV-1a over the UID: stable across runtimes and releases (never change it: it places existing items). */
export function studyDateShard(studyInstanceUID: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < studyInstanceUID.length; i++) {
    h ^= studyInstanceUID.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % STUDY_DATE_SHARDS;
}

export function studyDateShardKey(shard: number): string {
  return `STUDIES#${shard}`;
}

export function truncateKeyText(text: string): string {
  return Array.from(text).slice(0, MAX_KEY_TEXT).join('');
}

export function patientIDKey(patientID: string): string {
  return `PID#${truncateKeyText(patientID)}`;
}

export function accessionNumberKey(accessionNumber: string): string {
  return `ACC#${truncateKeyText(accessionNumber)}`;
}

/** GSI4 partition of a (normalized) family name or name prefix: its first character. */
export function familyNamePartitionKey(normalizedNameOrPrefix: string): string {
  return `PN#${Array.from(normalizedNameOrPrefix)[0] ?? ''}`;
}

export function familyNameSortKey(normalizedFamilyName: string, sortKey: string): string {
  return `${truncateKeyText(normalizedFamilyName)}#${sortKey}`;
}

/**
 * Splits a GSI4 sort key back into name and study sort key. The study sort key
 * (`YYYYMMDD#<uid>`) contains exactly one '#', so the name is everything before
 * the second-to-last '#' (a name may itself contain '#').
 */
export function parseFamilyNameSortKey(value: string): { name: string; sortKey: string } {
  const last = value.lastIndexOf('#');
  const cut = value.lastIndexOf('#', last - 1);
  return { name: value.slice(0, cut), sortKey: value.slice(cut + 1) };
}
