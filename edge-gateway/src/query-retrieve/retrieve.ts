/**
 * Retrieve planning for C-MOVE and C-GET (PS3.4 C.4.2.2.1, C.4.3.2.1
 * hierarchical retrieve): the identifier names UIDs at the Query/Retrieve
 * level (a single value or a UID list) under single-valued unique keys of the
 * levels above; the plan is the list of instances to send, found with QIDO.
 *
 * PATIENT (Patient Root) retrieves every instance of the Patient ID; STUDY a
 * list of studies; SERIES a list of series of one study; IMAGE a list of
 * instances of one series. Every UID that comes back is validated before it
 * is used in a URL or a DIMSE message.
 */
import type { DicomJsonDataset } from '../../../functions/core/dicom/json-model';
import { isValidUID } from '../../../functions/core/dicom/uid';
import type { DicomWebClient } from '../cloud/dicomweb-client';
import { fromCloudError } from './errors';
import { splitUidLists } from './find';
import { QR_TAGS, levelsAbove, queryLevelOf, requireSingleUniqueKey, requireUidList, type InformationModel } from './identifier';

export interface InstanceRef {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  sopClassUID: string;
  /** As stored in the archive, when the plan was asked for it. */
  transferSyntaxUID?: string;
}

export interface PlanRetrieveOptions {
  /** Also look up each instance's stored transfer syntax (one series metadata request per series). */
  withTransferSyntax?: boolean;
}

/** The instances a C-MOVE/C-GET identifier asks for (QueryRetrieveError with its DIMSE status when it is not valid). */
export async function planRetrieve(
  client: DicomWebClient,
  model: InformationModel,
  identifier: DicomJsonDataset,
  options: PlanRetrieveOptions = {},
): Promise<InstanceRef[]> {
  const level = queryLevelOf(model, identifier);
  const params = new URLSearchParams();
  const above = levelsAbove(model, level);
  for (const l of above) {
    const value = requireSingleUniqueKey(identifier, l, 'retrieve');
    params.set(l === 'PATIENT' ? 'PatientID' : l === 'STUDY' ? 'StudyInstanceUID' : 'SeriesInstanceUID', value);
  }
  switch (level) {
    case 'PATIENT':
      params.set('PatientID', requireSingleUniqueKey(identifier, 'PATIENT', 'retrieve'));
      break;
    case 'STUDY':
      params.set('StudyInstanceUID', requireUidList(identifier, 'STUDY', 'retrieve').join('\\'));
      break;
    case 'SERIES':
      params.set('SeriesInstanceUID', requireUidList(identifier, 'SERIES', 'retrieve').join('\\'));
      break;
    case 'IMAGE':
      params.set('SOPInstanceUID', requireUidList(identifier, 'IMAGE', 'retrieve').join('\\'));
      break;
  }
  params.set('includefield', [QR_TAGS.SOPClassUID, QR_TAGS.StudyInstanceUID, QR_TAGS.SeriesInstanceUID].join(','));
  const refs: InstanceRef[] = [];
  const seen = new Set<string>();
  try {
    for await (const r of searchSlices(client, params)) {
      const ref = {
        studyInstanceUID: uidOf(r, QR_TAGS.StudyInstanceUID),
        seriesInstanceUID: uidOf(r, QR_TAGS.SeriesInstanceUID),
        sopInstanceUID: uidOf(r, QR_TAGS.SOPInstanceUID),
        sopClassUID: uidOf(r, QR_TAGS.SOPClassUID),
      };
      // An archive answer is input too: a record without valid UIDs is skipped, never sent on.
      if (!isValidUID(ref.studyInstanceUID) || !isValidUID(ref.seriesInstanceUID) || !isValidUID(ref.sopInstanceUID) || !isValidUID(ref.sopClassUID)) continue;
      if (seen.has(ref.sopInstanceUID)) continue;
      seen.add(ref.sopInstanceUID);
      refs.push(ref);
    }
    if (options.withTransferSyntax) {
      const series = new Map<string, InstanceRef[]>();
      for (const ref of refs) {
        const key = `${ref.studyInstanceUID}/${ref.seriesInstanceUID}`;
        series.set(key, [...(series.get(key) ?? []), ref]);
      }
      for (const group of series.values()) {
        const syntaxes = await client.seriesTransferSyntaxes(group[0]!.studyInstanceUID, group[0]!.seriesInstanceUID);
        for (const ref of group) {
          const ts = syntaxes.get(ref.sopInstanceUID);
          if (ts && isValidUID(ts)) ref.transferSyntaxUID = ts;
        }
      }
    }
  } catch (error) {
    throw fromCloudError(error);
  }
  return refs;
}

/** Long UID lists (a C-MOVE of hundreds of instances) go out in slices: a URL cannot carry them all. */
async function* searchSlices(client: DicomWebClient, params: URLSearchParams): AsyncIterable<DicomJsonDataset> {
  for (const p of splitUidLists(params)) yield* client.search('/instances', p);
}

function uidOf(ds: DicomJsonDataset, tag: string): string {
  const v = ds[tag]?.Value?.[0];
  return typeof v === 'string' ? v.trim() : '';
}
