/**
 * WADO-RS metadata (PS3.18 §10.4.1.1.2, Annex F.2): how the index keeps it and
 * how it is served. The served form (tag order, 0008,3002 added, relative
 * BulkDataURIs) is built once at store time; a request for a series then
 * splices the stored JSON texts and only makes the BulkDataURIs absolute, since
 * those depend on the URL the request came in on.
 */
import type { InstanceRecord, StoredMetadata } from './ports';
import type { DicomJsonDataset, DicomJsonElement } from '../dicom/json-model';
import type { ResourceUrls } from '../dicomweb/urls';

/** Make stored relative BulkDataURIs ("7FE00010", "00540016.0.00181072") absolute for this request. */
function absolutizeBulkData(ds: DicomJsonDataset, base: string): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  for (const [key, el] of Object.entries(ds)) {
    if (el.BulkDataURI !== undefined) {
      out[key] = { vr: el.vr, BulkDataURI: `${base}/bulkdata/${el.BulkDataURI}` };
    } else if (el.vr === 'SQ' && el.Value) {
      out[key] = { vr: 'SQ', Value: el.Value.map((item) => (item && typeof item === 'object' && !('Alphabetic' in item) ? absolutizeBulkData(item as DicomJsonDataset, base) : item)) } as DicomJsonElement;
    } else {
      out[key] = el;
    }
  }
  return out;
}

/** Attributes in tag order (PS3.5 §7.1 orders a data set by tag; viewers and diffs read it that way). */
function sortedByTag(ds: DicomJsonDataset): DicomJsonDataset {
  return Object.fromEntries(Object.entries(ds).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The metadata of a stored data set in the form it is served (PS3.18 F.2),
 * except that BulkDataURIs are still relative: in tag order, with Available
 * Transfer Syntax UID (0008,3002) telling viewers which syntax frames come in
 * with transfer-syntax=* (OHIF reads it). Built once when the instance is
 * stored, so serving a series splices stored texts instead of rebuilding them.
 */
export function metadataAsServed(dataset: DicomJsonDataset, transferSyntaxUID: string): DicomJsonDataset {
  return sortedByTag({ ...dataset, [AVAILABLE_TRANSFER_SYNTAX]: { vr: 'UI', Value: [transferSyntaxUID] } });
}

const AVAILABLE_TRANSFER_SYNTAX = '00083002';
/** Present in every metadata text stored in served form (see metadataAsServed); older records lack it. */
const SERVED_FORM_MARK = `"${AVAILABLE_TRANSFER_SYNTAX}":{"vr":"UI","Value":[`;
/**
 * A BulkDataURI member as JSON.stringify writes it. This exact text cannot
 * occur inside a JSON string value (a quote there is written \"), so
 * replacing it rewrites BulkDataURIs and nothing else.
 */
const BULK_DATA_URI_MEMBER = '"BulkDataURI":"';

type MetadataOwner = Pick<InstanceRecord, 'studyInstanceUID' | 'seriesInstanceUID' | 'sopInstanceUID' | 'transferSyntaxUID' | 'metadata'>;

/** The metadata of one instance as served (PS3.18 §10.4.1.1.2, F.2). */
export function instanceMetadata(r: MetadataOwner, urls: ResourceUrls): DicomJsonDataset {
  const base = urls.instance(r.studyInstanceUID, r.seriesInstanceUID, r.sopInstanceUID);
  return absolutizeBulkData(metadataAsServed(r.metadata ?? {}, r.transferSyntaxUID), base);
}

/** The metadata of one instance as JSON text: when stored in served form, the stored text with its BulkDataURIs made absolute. */
export function instanceMetadataText(m: InstanceRecord | StoredMetadata, urls: ResourceUrls): string {
  if (!('metadataJson' in m)) return JSON.stringify(instanceMetadata(m, urls));
  const text = m.metadataJson;
  if (!text.includes(SERVED_FORM_MARK)) return JSON.stringify(instanceMetadata({ ...m, metadata: JSON.parse(text) as DicomJsonDataset }, urls));
  const base = urls.instance(m.studyInstanceUID, m.seriesInstanceUID, m.sopInstanceUID);
  // split/join, not replaceAll with a string: '$' in a replacement string is a pattern.
  return text.split(BULK_DATA_URI_MEMBER).join(`${BULK_DATA_URI_MEMBER}${JSON.stringify(`${base}/bulkdata/`).slice(1, -1)}`);
}

/** Chunks of the metadata response are gathered to about this size: a few large writes, not one per instance. */
const METADATA_CHUNK_CHARS = 64 * 1024;

/** JSON array streamed in ~64 KiB chunks, so a 2,000-instance study never becomes one giant string. */
export async function* metadataJson(records: Iterable<InstanceRecord | StoredMetadata> | AsyncIterable<InstanceRecord | StoredMetadata>, urls: ResourceUrls): AsyncGenerator<Uint8Array> {
  const enc = new TextEncoder();
  let pending = '[';
  let first = true;
  for await (const r of records) {
    pending += (first ? '' : ',') + instanceMetadataText(r, urls);
    first = false;
    if (pending.length >= METADATA_CHUNK_CHARS) {
      yield enc.encode(pending);
      pending = '';
    }
  }
  yield enc.encode(`${pending}]`);
}
