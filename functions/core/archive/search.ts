/**
 * QIDO-RS (PS3.18 §10.6): searchForStudies / searchForSeries /
 * searchForInstances. The index narrows candidates with its keys (hints);
 * the one pure matcher decides. Study aggregates (ModalitiesInStudy,
 * SOPClassesInStudy, NumberOfStudyRelated…) come from the index's summary of
 * each study (`summarizeStudy`, exact by the port's contract), so a study
 * search reads a few rows per study rather than every instance; series
 * searches still group a study's instance records.
 */
import type { ArchiveContext } from './context';
import type { InstanceRecord, StudySummary } from './ports';
import type { DicomJsonDataset } from '../dicom/json-model';
import { Tag } from '../dicom/tags';
import type { ResourceUrls } from '../dicomweb/urls';
import { matches, selectReturnAttributes } from '../dicomweb/qido-match';
import { studySearchHints, type QidoQuery } from '../dicomweb/qido-query';
import { levelOfAttribute } from '../dicomweb/qido-attributes';

export interface SearchScope {
  studyInstanceUID?: string;
  seriesInstanceUID?: string;
}

export interface SearchResult {
  results: DicomJsonDataset[];
  /** true when more results exist beyond offset+limit (→ Warning header) */
  more: boolean;
}

const AGGREGATE_TAGS = new Set<string>([
  Tag.ModalitiesInStudy,
  Tag.SOPClassesInStudy,
  Tag.NumberOfStudyRelatedSeries,
  Tag.NumberOfStudyRelatedInstances,
  Tag.NumberOfSeriesRelatedInstances,
]);

/** Everything stored here is online (PS3.4 C.4.23.1.1). */
const ONLINE = { vr: 'CS', Value: ['ONLINE'] };

function ui(value: string): { vr: string; Value: string[] } {
  return { vr: 'UI', Value: [value] };
}

/** Study-level aggregates (PS3.4 C.3.4 / PS3.18 Table 10.6.3-3), from the index's summary of the study. */
async function studyAggregates(ctx: ArchiveContext, studyInstanceUID: string): Promise<DicomJsonDataset> {
  const c = await ctx.index.summarizeStudy(studyInstanceUID);
  return {
    [Tag.NumberOfStudyRelatedSeries]: { vr: 'IS', Value: [c.series] },
    [Tag.NumberOfStudyRelatedInstances]: { vr: 'IS', Value: [c.instances] },
    [Tag.ModalitiesInStudy]: c.modalities.length ? { vr: 'CS', Value: c.modalities } : { vr: 'CS' },
    [Tag.SOPClassesInStudy]: c.sopClasses.length ? { vr: 'UI', Value: c.sopClasses } : { vr: 'UI' },
  };
}

function filtersTouch(query: QidoQuery, tags: Set<string>): boolean {
  return query.filters.some((f) => tags.has(f.tag));
}

/** Filters that only concern study-level attributes can be checked before listing a study's instances. */
function studyLevelOnly(query: QidoQuery): QidoQuery {
  return { ...query, filters: query.filters.filter((f) => levelOfAttribute(f.tag) === 'study' && !AGGREGATE_TAGS.has(f.tag)) };
}

async function* candidateStudies(ctx: ArchiveContext, query: QidoQuery, scope: SearchScope): AsyncGenerator<StudySummary> {
  if (scope.studyInstanceUID) {
    for await (const s of ctx.index.findStudies({ studyInstanceUIDs: [scope.studyInstanceUID] })) {
      if (s.studyInstanceUID === scope.studyInstanceUID) yield s;
    }
    return;
  }
  yield* ctx.index.findStudies(studySearchHints(query));
}

export async function searchForStudies(ctx: ArchiveContext, query: QidoQuery, urls: ResourceUrls): Promise<SearchResult> {
  const needAggregatesToMatch = filtersTouch(query, AGGREGATE_TAGS);
  const page: { summary: StudySummary; aggregates?: DicomJsonDataset }[] = [];
  let skipped = 0;
  let more = false;
  for await (const summary of ctx.index.findStudies(studySearchHints(query))) {
    let ds: DicomJsonDataset = { ...summary.studyAttributes, [Tag.InstanceAvailability]: ONLINE };
    let aggregates: DicomJsonDataset | undefined;
    if (needAggregatesToMatch) {
      if (!matches(studyLevelOnly(query).filters, ds, { fuzzy: query.fuzzy })) continue;
      aggregates = await studyAggregates(ctx, summary.studyInstanceUID);
      ds = { ...ds, ...aggregates };
    }
    if (!matches(query.filters, ds, { fuzzy: query.fuzzy })) continue;
    if (skipped < query.offset) {
      skipped++;
      continue;
    }
    if (page.length === query.limit) {
      more = true;
      break;
    }
    page.push({ summary, aggregates });
  }
  const results = await Promise.all(
    page.map(async ({ summary, aggregates }) => {
      const agg = aggregates ?? (await studyAggregates(ctx, summary.studyInstanceUID));
      const ds: DicomJsonDataset = {
        ...summary.studyAttributes,
        ...agg,
        [Tag.StudyInstanceUID]: ui(summary.studyInstanceUID),
        [Tag.InstanceAvailability]: ONLINE,
        [Tag.RetrieveURL]: { vr: 'UR', Value: [urls.study(summary.studyInstanceUID)] },
      };
      return selectReturnAttributes('study', ds, query);
    }),
  );
  return { results, more };
}

interface Pager {
  skipped: number;
  results: DicomJsonDataset[];
  more: boolean;
}

function offer(pager: Pager, query: QidoQuery, make: () => DicomJsonDataset): 'continue' | 'full' {
  if (pager.skipped < query.offset) {
    pager.skipped++;
    return 'continue';
  }
  if (pager.results.length === query.limit) {
    pager.more = true;
    return 'full';
  }
  pager.results.push(make());
  return 'continue';
}

export async function searchForSeries(ctx: ArchiveContext, query: QidoQuery, scope: SearchScope, urls: ResourceUrls): Promise<SearchResult> {
  const pager: Pager = { skipped: 0, results: [], more: false };
  const studyFilters = studyLevelOnly(query).filters;
  studies: for await (const summary of candidateStudies(ctx, query, scope)) {
    if (!matches(studyFilters, summary.studyAttributes, { fuzzy: query.fuzzy })) continue;
    const bySeries = new Map<string, InstanceRecord[]>();
    for await (const r of ctx.index.listInstances(summary.studyInstanceUID)) {
      let list = bySeries.get(r.seriesInstanceUID);
      if (!list) bySeries.set(r.seriesInstanceUID, (list = []));
      list.push(r);
    }
    for (const [seriesUID, records] of bySeries) {
      const first = records[0]!;
      const ds: DicomJsonDataset = {
        ...summary.studyAttributes,
        ...first.seriesAttributes,
        [Tag.StudyInstanceUID]: ui(summary.studyInstanceUID),
        [Tag.SeriesInstanceUID]: ui(seriesUID),
        [Tag.NumberOfSeriesRelatedInstances]: { vr: 'IS', Value: [records.length] },
        [Tag.RetrieveURL]: { vr: 'UR', Value: [urls.series(summary.studyInstanceUID, seriesUID)] },
      };
      if (!matches(query.filters, ds, { fuzzy: query.fuzzy })) continue;
      if (offer(pager, query, () => selectReturnAttributes('series', ds, query)) === 'full') break studies;
    }
  }
  return { results: pager.results, more: pager.more };
}

export async function searchForInstances(ctx: ArchiveContext, query: QidoQuery, scope: SearchScope, urls: ResourceUrls): Promise<SearchResult> {
  const pager: Pager = { skipped: 0, results: [], more: false };
  const studyFilters = studyLevelOnly(query).filters;
  studies: for await (const summary of candidateStudies(ctx, query, scope)) {
    if (!matches(studyFilters, summary.studyAttributes, { fuzzy: query.fuzzy })) continue;
    for await (const r of ctx.index.listInstances(summary.studyInstanceUID, scope.seriesInstanceUID)) {
      const ds: DicomJsonDataset = {
        ...summary.studyAttributes,
        ...r.seriesAttributes,
        ...r.instanceAttributes,
        [Tag.StudyInstanceUID]: ui(r.studyInstanceUID),
        [Tag.SeriesInstanceUID]: ui(r.seriesInstanceUID),
        [Tag.SOPInstanceUID]: ui(r.sopInstanceUID),
        [Tag.SOPClassUID]: ui(r.sopClassUID),
        [Tag.InstanceAvailability]: ONLINE,
        [Tag.RetrieveURL]: { vr: 'UR', Value: [urls.instance(r.studyInstanceUID, r.seriesInstanceUID, r.sopInstanceUID)] },
      };
      if (!matches(query.filters, ds, { fuzzy: query.fuzzy })) continue;
      if (offer(pager, query, () => selectReturnAttributes('instance', ds, query)) === 'full') break studies;
    }
  }
  return { results: pager.results, more: pager.more };
}
