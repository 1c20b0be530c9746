/**
 * WADO-RS metadata as served (functions/core/archive/metadata.ts): the stored
 * text spliced with absolute BulkDataURIs must be exactly what building the
 * data set and serializing it gives, whatever the values contain.
 */
import { instanceMetadata, instanceMetadataText, metadataAsServed, metadataJson } from '../../../functions/core/archive/metadata';
import type { InstanceRecord, StoredMetadata } from '../../../functions/core/archive/ports';
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import { ResourceUrls } from '../../../functions/core/dicomweb/urls';

const ROOT = '1.2.826.0.1.3680043.10.1234.99';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

const stored: DicomJsonDataset = {
  // deliberately out of tag order: the served form is sorted
  '7FE00010': { vr: 'OW', BulkDataURI: '7FE00010' },
  '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Synthetic^"BulkDataURI":"x' }] },
  '00081030': { vr: 'LO', Value: ['says "BulkDataURI":"7FE00010" in a value, $& and $1 too'] },
  '00540016': {
    vr: 'SQ',
    Value: [{ '00181072': { vr: 'TM', Value: ['101010'] }, '00189999': { vr: 'OB', BulkDataURI: '00540016.0.00189999' } }],
  },
};

/** What listMetadata gives for an instance whose index entry holds `metadataJson`. */
function storedText(metadataJson: string): StoredMetadata {
  return { studyInstanceUID: `${ROOT}.1`, seriesInstanceUID: `${ROOT}.2`, sopInstanceUID: `${ROOT}.3`, transferSyntaxUID: EXPLICIT_LE, contentHash: 'h', metadataJson };
}

function record(metadata: { metadata?: DicomJsonDataset }): InstanceRecord {
  return {
    studyInstanceUID: `${ROOT}.1`,
    seriesInstanceUID: `${ROOT}.2`,
    sopInstanceUID: `${ROOT}.3`,
    sopClassUID: '1.2.840.10008.5.1.4.1.1.2',
    transferSyntaxUID: EXPLICIT_LE,
    blobKey: 'k',
    size: 1,
    contentHash: 'h',
    storedAt: '2026-12-03T00:00:00.000Z',
    studyAttributes: {},
    seriesAttributes: {},
    instanceAttributes: {},
    layout: { datasetOffset: 0, deflated: false, bulkData: [] },
    ...metadata,
  };
}

// A base with characters JSON and String.replace treat specially.
const urls = new ResourceUrls('http://127.0.0.1:8042/a$&b/dicom-web');

describe('served metadata', () => {
  const served = metadataAsServed(stored, EXPLICIT_LE);

  it('is in tag order and names the transfer syntax frames come in (0008,3002)', () => {
    expect(Object.keys(served)).toEqual(['00081030', '00083002', '00100010', '00540016', '7FE00010']);
    expect(served['00083002']).toEqual({ vr: 'UI', Value: [EXPLICIT_LE] });
  });

  it('spliced from the stored text equals the data set built and serialized, BulkDataURIs absolute at every depth', () => {
    const fromText = instanceMetadataText(storedText(JSON.stringify(served)), urls);
    const built = instanceMetadata(record({ metadata: served }), urls);
    expect(fromText).toBe(JSON.stringify(built));
    const parsed = JSON.parse(fromText) as DicomJsonDataset;
    const instance = urls.instance(`${ROOT}.1`, `${ROOT}.2`, `${ROOT}.3`);
    expect(parsed['7FE00010']).toEqual({ vr: 'OW', BulkDataURI: `${instance}/bulkdata/7FE00010` });
    expect((parsed['00540016']!.Value![0] as DicomJsonDataset)['00189999']).toEqual({ vr: 'OB', BulkDataURI: `${instance}/bulkdata/00540016.0.00189999` });
    // values that merely look like a BulkDataURI member are left alone
    expect(parsed['00081030']).toEqual(stored['00081030']);
    expect(parsed['00100010']).toEqual(stored['00100010']);
  });

  it('serves a record stored before the served form (no 0008,3002) by rebuilding it', () => {
    const legacy = instanceMetadataText(storedText(JSON.stringify(stored)), urls);
    expect(legacy).toBe(JSON.stringify(instanceMetadata(record({ metadata: served }), urls)));
  });

  it('streams a JSON array of every record, in large chunks', async () => {
    const records = Array.from({ length: 300 }, () => storedText(JSON.stringify(served)));
    const chunks: Uint8Array[] = [];
    for await (const c of metadataJson(records, urls)) chunks.push(c);
    const text = Buffer.concat(chunks).toString('utf8');
    expect(JSON.parse(text)).toHaveLength(300);
    expect(chunks.length).toBeLessThan(10);
    const empty: Uint8Array[] = [];
    for await (const c of metadataJson([], urls)) empty.push(c);
    expect(Buffer.concat(empty).toString('utf8')).toBe('[]');
  });
});
