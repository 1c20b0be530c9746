/**
 * Study / series download as a ZIP file (not DICOMweb: the "send it on a USB
 * stick" export; docs/conformance.md), service 'wado' (scope read):
 *
 *   GET {study}/archive[?dicomdir=true]            Accept: application/zip
 *   GET {study}/series/{series}/archive[?dicomdir=true]
 *
 * The ZIP is streamed with constant memory: each instance's stored bytes
 * (preamble zeroed, as WADO serves them) go out as they are read, stored (no
 * compression: DICOM pixel data is mostly compressed already, and deflating
 * costs CPU for little), with a data descriptor after each entry (APPNOTE
 * 4.3.9) so no size or CRC is needed up front; ZIP64 records (APPNOTE 4.3.14,
 * 4.5.3) once an entry or offset passes 4 GiB or there are more than 65,535 entries.
 *
 * With `dicomdir=true` the files are laid out as a DICOM File-set (PS3.10 §8):
 * File IDs DICOM/STnnnnnn/SEnnnnnn/IMnnnnnn (components of at most 8 upper-case
 * characters, PS3.10 §8.2), and a DICOMDIR (Basic Directory IOD, PS3.3 F.3)
 * with PATIENT → STUDY → SERIES → IMAGE records whose offsets link them
 * (PS3.3 F.3.2.1).
 */
import type { ArchiveContext } from './context';
import { acceptOf, defineRoute, type Route, type RouteContext } from './app';
import { ArchiveError } from './errors';
import { allRecords } from './lookup';
import type { InstanceRecord } from './ports';
import { crc32Update, toReadableStream, zeroPreamble } from '../bytes';
import type { DicomJsonDataset, DicomJsonElement } from '../dicom/json-model';
import { writePart10 } from '../dicom/writer';
import { negotiate } from '../dicomweb/accept';

export interface ZipDownloadOptions {
  /** Largest answer one response may carry (Lambda: 6 MB); larger archives get 413 with a hint. */
  maxInlineBytes?: number;
}

// ---------------------------------------------------------------- ZIP writer

export interface ZipEntry {
  /** Path inside the archive ('/' separated, UTF-8). */
  name: string;
  /** Bytes, or a function that opens the stream when the entry's turn comes (so nothing is read early). */
  body: Uint8Array | (() => Promise<AsyncIterable<Uint8Array>>);
  /** Expected size if known: decides ZIP64 for the local header. */
  size?: number;
}

const MAX32 = 0xffffffff;

class Bytes {
  private readonly b: Uint8Array;
  private readonly v: DataView;
  private o = 0;
  constructor(n: number) {
    this.b = new Uint8Array(n);
    this.v = new DataView(this.b.buffer);
  }
  u16(x: number) {
    this.v.setUint16(this.o, x, true);
    this.o += 2;
    return this;
  }
  u32(x: number) {
    this.v.setUint32(this.o, x >>> 0, true);
    this.o += 4;
    return this;
  }
  u64(x: number) {
    this.v.setBigUint64(this.o, BigInt(x), true);
    this.o += 8;
    return this;
  }
  raw(x: Uint8Array) {
    this.b.set(x, this.o);
    this.o += x.length;
    return this;
  }
  done(): Uint8Array {
    return this.b.subarray(0, this.o);
  }
}

/** MS-DOS date and time of `d` (APPNOTE 4.4.6). */
function dosDateTime(d: Date): { date: number; time: number } {
  return {
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
  };
}

/** A stored-entry ZIP stream. Memory: one chunk in flight plus ~100 bytes of central directory per entry. */
export async function* writeZip(entries: AsyncIterable<ZipEntry> | Iterable<ZipEntry>, now: Date): AsyncGenerator<Uint8Array> {
  const enc = new TextEncoder();
  const { date, time } = dosDateTime(now);
  const central: { name: Uint8Array; crc: number; size: number; offset: number; zip64: boolean }[] = [];
  let offset = 0;
  for await (const entry of entries) {
    const name = enc.encode(entry.name);
    const zip64 = (entry.size ?? 0) >= MAX32 || offset >= MAX32;
    // Bit 3: sizes and CRC follow the data; bit 11: the name is UTF-8.
    const flags = 0x0008 | 0x0800;
    const local = new Bytes(30 + name.length + (zip64 ? 20 : 0))
      .u32(0x04034b50)
      .u16(zip64 ? 45 : 20)
      .u16(flags)
      .u16(0)
      .u16(time)
      .u16(date)
      .u32(0)
      .u32(zip64 ? MAX32 : 0)
      .u32(zip64 ? MAX32 : 0)
      .u16(name.length)
      .u16(zip64 ? 20 : 0)
      .raw(name);
    if (zip64) local.u16(0x0001).u16(16).u64(0).u64(0);
    const header = local.done();
    yield header;
    let crc = 0;
    let size = 0;
    const source = entry.body instanceof Uint8Array ? [entry.body] : await entry.body();
    for await (const chunk of source) {
      crc = crc32Update(crc, chunk);
      size += chunk.byteLength;
      yield chunk;
    }
    if (!zip64 && size >= MAX32) throw new Error('entry larger than announced: cannot be described without ZIP64');
    yield zip64 ? new Bytes(24).u32(0x08074b50).u32(crc).u64(size).u64(size).done() : new Bytes(16).u32(0x08074b50).u32(crc).u32(size).u32(size).done();
    central.push({ name, crc, size, offset, zip64 });
    offset += header.length + size + (zip64 ? 24 : 16);
  }
  const cdStart = offset;
  for (const e of central) {
    const zip64 = e.zip64 || e.size >= MAX32 || e.offset >= MAX32;
    const c = new Bytes(46 + e.name.length + (zip64 ? 28 : 0))
      .u32(0x02014b50)
      .u16(45)
      .u16(zip64 ? 45 : 20)
      .u16(0x0808)
      .u16(0)
      .u16(time)
      .u16(date)
      .u32(e.crc)
      .u32(zip64 ? MAX32 : e.size)
      .u32(zip64 ? MAX32 : e.size)
      .u16(e.name.length)
      .u16(zip64 ? 28 : 0)
      .u16(0)
      .u16(0)
      .u16(0)
      .u32(0)
      .u32(zip64 ? MAX32 : e.offset)
      .raw(e.name);
    if (zip64) c.u16(0x0001).u16(24).u64(e.size).u64(e.size).u64(e.offset);
    const bytes = c.done();
    offset += bytes.length;
    yield bytes;
  }
  const cdSize = offset - cdStart;
  const needs64 = central.length > 0xffff || cdStart >= MAX32 || cdSize >= MAX32;
  if (needs64) {
    const eocd64At = offset;
    yield new Bytes(56).u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0).u64(central.length).u64(central.length).u64(cdSize).u64(cdStart).done();
    yield new Bytes(20).u32(0x07064b50).u32(0).u64(eocd64At).u32(1).done();
  }
  yield new Bytes(22)
    .u32(0x06054b50)
    .u16(0)
    .u16(0)
    .u16(Math.min(central.length, 0xffff))
    .u16(Math.min(central.length, 0xffff))
    .u32(Math.min(cdSize, MAX32))
    .u32(Math.min(cdStart, MAX32))
    .u16(0)
    .done();
}

// ---------------------------------------------------------------- DICOMDIR

const DIRECTORY_STORAGE = '1.2.840.10008.1.3.10';

/** File ID components (PS3.10 §8.2: at most 8 characters of A–Z, 0–9, _). */
function component(prefix: string, n: number): string {
  return `${prefix}${String(n).padStart(8 - prefix.length, '0')}`;
}

function pick(ds: DicomJsonDataset, keys: string[]): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  for (const k of keys) if (ds[k] !== undefined && ds[k]!.BulkDataURI === undefined && ds[k]!.InlineBinary === undefined) out[k] = ds[k] as DicomJsonElement;
  return out;
}

const UL = (n: number): DicomJsonElement => ({ vr: 'UL', Value: [n] });

export interface FileSetLayout {
  /** File ID of each instance (by SOP Instance UID), e.g. ["DICOM","ST000001","SE000001","IM000001"]. */
  fileIds: Map<string, string[]>;
  records: { record: InstanceRecord; fileId: string[] }[];
}

/** File IDs in SeriesInstanceUID / SOPInstanceUID order (the index order). */
export function fileSetLayout(records: InstanceRecord[]): FileSetLayout {
  const fileIds = new Map<string, string[]>();
  const studies = new Map<string, number>();
  const series = new Map<string, number>();
  const images = new Map<string, number>();
  const out: FileSetLayout['records'] = [];
  for (const r of records) {
    if (!studies.has(r.studyInstanceUID)) studies.set(r.studyInstanceUID, studies.size + 1);
    const seriesKey = `${r.studyInstanceUID}/${r.seriesInstanceUID}`;
    if (!series.has(seriesKey)) series.set(seriesKey, [...series.keys()].filter((k) => k.startsWith(`${r.studyInstanceUID}/`)).length + 1);
    const n = (images.get(seriesKey) ?? 0) + 1;
    images.set(seriesKey, n);
    const id = ['DICOM', component('ST', studies.get(r.studyInstanceUID)!), component('SE', series.get(seriesKey)!), component('IM', n)];
    fileIds.set(r.sopInstanceUID, id);
    out.push({ record: r, fileId: id });
  }
  return { fileIds, records: out };
}

/**
 * The DICOMDIR of a file-set (PS3.3 F.3, F.5): written with zero offsets first,
 * then the records are found in the encoded sequence and their offsets patched
 * (every offset is a fixed 4-byte UL, so patching changes no length).
 */
export function buildDicomdir(layout: FileSetLayout, fileSetUID: string): Uint8Array {
  type Node = { item: DicomJsonDataset; children: Node[] };
  const patients = new Map<string, Node>();
  const studies = new Map<string, Node>();
  const seriesNodes = new Map<string, Node>();
  const base = (type: string, rest: DicomJsonDataset): DicomJsonDataset => ({
    '00041400': UL(0),
    '00041410': { vr: 'US', Value: [0xffff] },
    '00041420': UL(0),
    '00041430': { vr: 'CS', Value: [type] },
    ...rest,
  });
  for (const { record: r, fileId } of layout.records) {
    const s = r.studyAttributes;
    const patientKey = JSON.stringify([s['00100020']?.Value ?? [], s['00100010']?.Value ?? []]);
    let patient = patients.get(patientKey);
    if (!patient) {
      // PATIENT record: Patient's Name and Patient ID are type 2 / 1 (PS3.3 F.5.1).
      patient = { item: base('PATIENT', { '00100010': { vr: 'PN' }, '00100020': { vr: 'LO', Value: [''] }, ...pick(s, ['00100010', '00100020', '00100030', '00100040']) }), children: [] };
      patients.set(patientKey, patient);
    }
    let study = studies.get(r.studyInstanceUID);
    if (!study) {
      study = {
        item: base('STUDY', {
          '00080020': { vr: 'DA' },
          '00080030': { vr: 'TM' },
          '00081030': { vr: 'LO' },
          '00200010': { vr: 'SH' },
          '00080050': { vr: 'SH' },
          ...pick(s, ['00080020', '00080030', '00081030', '00200010', '00080050']),
          '0020000D': { vr: 'UI', Value: [r.studyInstanceUID] },
        }),
        children: [],
      };
      studies.set(r.studyInstanceUID, study);
      patient.children.push(study);
    }
    let series = seriesNodes.get(r.seriesInstanceUID);
    if (!series) {
      const se = r.seriesAttributes;
      series = { item: base('SERIES', { '00080060': { vr: 'CS', Value: ['OT'] }, '00200011': { vr: 'IS' }, ...pick(se, ['00080060', '00200011', '0008103E']), '0020000E': { vr: 'UI', Value: [r.seriesInstanceUID] } }), children: [] };
      seriesNodes.set(r.seriesInstanceUID, series);
      study.children.push(series);
    }
    series.children.push({
      item: base('IMAGE', {
        '00041500': { vr: 'CS', Value: fileId },
        '00041510': { vr: 'UI', Value: [r.sopClassUID] },
        '00041511': { vr: 'UI', Value: [r.sopInstanceUID] },
        '00041512': { vr: 'UI', Value: [r.transferSyntaxUID] },
        '00200013': { vr: 'IS' },
        ...pick(r.instanceAttributes, ['00200013']),
      }),
      children: [],
    });
  }
  // Depth-first order: each record is followed by its lower-level records.
  const order: Node[] = [];
  const visit = (n: Node) => {
    order.push(n);
    n.children.forEach(visit);
  };
  const roots = [...patients.values()];
  roots.forEach(visit);
  const dataset: DicomJsonDataset = {
    '00041130': { vr: 'CS', Value: ['DICOMWEB'] },
    '00041200': UL(0),
    '00041202': UL(0),
    '00041212': { vr: 'US', Value: [0] },
    '00041220': { vr: 'SQ', Value: order.map((n) => n.item) },
  };
  const bytes = writePart10(dataset, { transferSyntaxUID: '1.2.840.10008.1.2.1', mediaStorageSOPClassUID: DIRECTORY_STORAGE, mediaStorageSOPInstanceUID: fileSetUID });
  // Locate the record items (explicit VR little endian, defined lengths, no nested sequences in records).
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = new Map<Node, { start: number; next: number; lower: number }>();
  let p = 132;
  const longVR = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
  const elementAt = (q: number) => {
    const group = view.getUint16(q, true);
    const element = view.getUint16(q + 2, true);
    const vr = String.fromCharCode(bytes[q + 4]!, bytes[q + 5]!);
    const long = longVR.has(vr);
    const length = long ? view.getUint32(q + 8, true) : view.getUint16(q + 6, true);
    const header = long ? 12 : 8;
    return { tag: ((group << 16) | element) >>> 0, header, length };
  };
  let rootFirst = -1;
  let rootLast = -1;
  while (p < bytes.length) {
    const e = elementAt(p);
    if (e.tag === 0x00041200) rootFirst = p + e.header;
    if (e.tag === 0x00041202) rootLast = p + e.header;
    if (e.tag !== 0x00041220) {
      p += e.header + e.length;
      continue;
    }
    let q = p + e.header;
    for (const node of order) {
      if (view.getUint32(q, true) !== 0xe000fffe) throw new Error('DICOMDIR: item expected');
      const itemLength = view.getUint32(q + 4, true);
      const start = q;
      let r = q + 8;
      const slots = { start, next: -1, lower: -1 };
      while (r < start + 8 + itemLength) {
        const x = elementAt(r);
        if (x.tag === 0x00041400) slots.next = r + x.header;
        if (x.tag === 0x00041420) slots.lower = r + x.header;
        r += x.header + x.length;
      }
      at.set(node, slots);
      q = start + 8 + itemLength;
    }
    break;
  }
  const offsetOf = (n: Node) => at.get(n)!.start;
  const link = (siblings: Node[]) => {
    siblings.forEach((n, i) => {
      const slots = at.get(n)!;
      view.setUint32(slots.next, i + 1 < siblings.length ? offsetOf(siblings[i + 1]!) : 0, true);
      view.setUint32(slots.lower, n.children.length > 0 ? offsetOf(n.children[0]!) : 0, true);
      link(n.children);
    });
  };
  link(roots);
  if (roots.length > 0) {
    view.setUint32(rootFirst, offsetOf(roots[0]!), true);
    view.setUint32(rootLast, offsetOf(roots[roots.length - 1]!), true);
  }
  return bytes;
}

// ---------------------------------------------------------------- routes

export function createZipDownloadRoutes(ctx: ArchiveContext, options: ZipDownloadOptions = {}): Route[] {
  const archive = async (rc: RouteContext): Promise<Response> => {
    const accept = acceptOf(rc);
    const chosen = negotiate(accept.header, accept.query, [{ mediaType: 'application/zip' }]);
    if (!chosen) throw new ArchiveError('NOT_ACCEPTABLE', 'the archive is application/zip');
    const flag = rc.url.searchParams.get('dicomdir');
    if (flag !== null && !['true', 'false'].includes(flag)) throw new ArchiveError('INVALID_QUERY', 'dicomdir must be true or false');
    const dicomdir = flag === 'true';
    const records = await allRecords(ctx, rc.params.study!, rc.params.series);
    const total = records.reduce((n, r) => n + r.size, 0);
    if (options.maxInlineBytes !== undefined && total > options.maxInlineBytes) {
      const base = rc.params.series ? rc.urls.series(rc.params.study!, rc.params.series) : rc.urls.study(rc.params.study!);
      throw new ArchiveError('RESPONSE_TOO_LARGE', `the archive (${total} bytes of instances) exceeds the ${options.maxInlineBytes}-byte response limit: GET ${base}/download lists a direct URL per instance`);
    }
    const layout = dicomdir ? fileSetLayout(records) : undefined;
    const entries = async function* (): AsyncGenerator<ZipEntry> {
      if (layout) {
        const h = ctx.createHash();
        h.update(new TextEncoder().encode(`dicomdir;${records.map((r) => `${r.sopInstanceUID}:${r.contentHash}`).join(';')}`));
        // A UID derived from the content (2.25 form, PS3.5 B.2): the same file-set gets the same UID.
        const fileSetUID = `2.25.${BigInt(`0x${h.digest().slice(0, 30)}`).toString()}`;
        yield { name: 'DICOMDIR', body: buildDicomdir(layout, fileSetUID) };
      }
      for (const r of records) {
        const name = layout ? layout.fileIds.get(r.sopInstanceUID)!.join('/') : `${r.studyInstanceUID}/${r.seriesInstanceUID}/${r.sopInstanceUID}.dcm`;
        yield { name, size: r.size, body: async () => zeroPreamble(await ctx.blobs.get(r.blobKey)) };
      }
    };
    const name = `${rc.params.series ? 'series' : 'study'}-${(rc.params.series ?? rc.params.study!).slice(-24)}.zip`;
    ctx.log.info('zip.start', { instances: records.length, bytes: total, dicomdir });
    return new Response(toReadableStream(writeZip(entries(), ctx.now())), {
      status: 200,
      headers: { 'Content-Type': 'application/zip', 'Content-Disposition': `attachment; filename="${name}"`, 'Cache-Control': 'private, no-store' },
    });
  };
  return [
    defineRoute('GET', '/studies/{study}/archive', 'wado', 'retrieveStudyArchive', archive),
    defineRoute('GET', '/studies/{study}/series/{series}/archive', 'wado', 'retrieveSeriesArchive', archive),
  ];
}
