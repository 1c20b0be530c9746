/**
 * Write synthetic DICOM Part 10 files (no real patient data) for manual use and benchmarks.
 *
 *   tsx scripts/generate-data.ts --out DIR [--ct 300] [--multiframe 50] [--mr 0] [--cr 0]
 *                                [--rle 0] [--large-mb 0] [--charset] [--malformed] [--unique-uids]
 *
 * Layout: DIR/<kind>/<SOPInstanceUID>.dcm, plus DIR/manifest.json listing every
 * file with its study/series/instance UIDs. `--large-mb 500` streams one 500 MB
 * multi-frame instance frame by frame (constant memory).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CHARSET_NAMES,
  crInstance,
  encapsulatedInstance,
  iterateCtSeries,
  largeInstance,
  malformedFiles,
  mrInstance,
  multiFrameInstance,
  patientWithName,
  runUidPrefix,
  uid,
  type SyntheticInstance,
} from '../test/fixtures/synthetic';

interface ManifestEntry {
  file: string;
  kind: string;
  studyInstanceUID?: string;
  seriesInstanceUID?: string;
  sopInstanceUID?: string;
  bytes: number;
  expectedCode?: string;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      ct: { type: 'string', default: '300' },
      multiframe: { type: 'string', default: '50' },
      mr: { type: 'string', default: '0' },
      cr: { type: 'string', default: '0' },
      rle: { type: 'string', default: '0' },
      'large-mb': { type: 'string', default: '0' },
      charset: { type: 'boolean', default: false },
      malformed: { type: 'boolean', default: false },
      'unique-uids': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || !values.out) {
    console.log(
      'usage: tsx scripts/generate-data.ts --out DIR [--ct 300] [--multiframe 50] [--mr N] [--cr N] [--rle N]\n' +
        '                                   [--large-mb MB] [--charset] [--malformed] [--unique-uids]\n' +
        '  --ct N          CT slices (512x512, one series); 0 to skip\n' +
        '  --multiframe N  one multi-frame instance with N frames; 0 to skip\n' +
        '  --large-mb MB   one streamed multi-frame instance of about MB megabytes\n' +
        '  --charset       one MR per non-ASCII patient name (Greek, Japanese, Korean…)\n' +
        '  --malformed     the malformed-input battery (bad/ subfolder)\n' +
        '  --unique-uids   time-based UID prefix (for archives that outlive one run)',
    );
    process.exit(values.help ? 0 : 2);
  }
  const out = path.resolve(values.out);
  const count = (s: string | undefined, name: string): number => {
    const n = Number(s ?? '0');
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
    return n;
  };
  const prefix = values['unique-uids'] ? runUidPrefix() : undefined;
  const newUid = () => uid(prefix);
  const manifest: ManifestEntry[] = [];
  const save = (kind: string, inst: SyntheticInstance): void => {
    const file = path.join(kind, `${inst.sopInstanceUID}.dcm`);
    fs.mkdirSync(path.join(out, kind), { recursive: true });
    fs.writeFileSync(path.join(out, file), inst.bytes);
    manifest.push({
      file,
      kind,
      studyInstanceUID: inst.studyInstanceUID,
      seriesInstanceUID: inst.seriesInstanceUID,
      sopInstanceUID: inst.sopInstanceUID,
      bytes: inst.bytes.length,
    });
  };
  const started = Date.now();

  const ct = count(values.ct, 'ct');
  if (ct > 0) {
    const studyInstanceUID = newUid();
    const seriesInstanceUID = newUid();
    for (const inst of iterateCtSeries({ count: ct, studyInstanceUID, seriesInstanceUID })) save('ct', inst);
  }
  const mf = count(values.multiframe, 'multiframe');
  if (mf > 0) save('multiframe', multiFrameInstance({ frames: mf, rows: 256, columns: 256, sopInstanceUID: newUid() }));
  const studyInstanceUID = newUid();
  for (let i = 1; i <= count(values.mr, 'mr'); i++) save('mr', mrInstance({ studyInstanceUID, instanceNumber: i, sopInstanceUID: newUid() }));
  for (let i = 1; i <= count(values.cr, 'cr'); i++) save('cr', crInstance({ instanceNumber: i, sopInstanceUID: newUid() }));
  for (let i = 1; i <= count(values.rle, 'rle'); i++) save('rle', encapsulatedInstance({ frames: 3, instanceNumber: i, sopInstanceUID: newUid() }));
  if (values.charset) {
    let n = 1;
    for (const name of Object.values(CHARSET_NAMES)) {
      save('charset', mrInstance({ patient: patientWithName(name, n++), rows: 64, columns: 64, sopInstanceUID: newUid() }));
    }
  }

  const largeMb = count(values['large-mb'], 'large-mb');
  if (largeMb > 0) {
    const big = largeInstance({ bytes: largeMb * 1024 * 1024, sopInstanceUID: newUid() });
    const file = path.join('large', `${big.sopInstanceUID}.dcm`);
    fs.mkdirSync(path.join(out, 'large'), { recursive: true });
    const fd = fs.openSync(path.join(out, file), 'w');
    try {
      fs.writeSync(fd, big.header);
      for (let f = 1; f <= big.frames; f++) fs.writeSync(fd, big.frame(f));
    } finally {
      fs.closeSync(fd);
    }
    manifest.push({
      file,
      kind: 'large',
      studyInstanceUID: big.studyInstanceUID,
      seriesInstanceUID: big.seriesInstanceUID,
      sopInstanceUID: big.sopInstanceUID,
      bytes: big.totalLength,
    });
  }

  if (values.malformed) {
    fs.mkdirSync(path.join(out, 'bad'), { recursive: true });
    for (const c of malformedFiles()) {
      const bytes = c.bytes();
      const file = path.join('bad', `${c.name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '')}.dcm`);
      fs.writeFileSync(path.join(out, file), bytes);
      manifest.push({ file, kind: 'malformed', bytes: bytes.length, expectedCode: c.expectedCode });
    }
  }

  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(manifest, null, 2));
  const total = manifest.reduce((n, e) => n + e.bytes, 0);
  console.log(`wrote ${manifest.length} files, ${(total / 1048576).toFixed(1)} MiB, to ${out} in ${Date.now() - started} ms`);
}

main();
