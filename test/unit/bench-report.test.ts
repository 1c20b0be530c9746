import { BENCH_MARKERS, fmt, fmtSummary, mergeResults, renderBenchBlock, renderFigureTable, replaceBlock } from '../../scripts/bench/report';
import type { BenchResults, Row } from '../../scripts/bench/results';

const rows: Row[] = [
  {
    figure: 1,
    id: 'stow-1-rate',
    name: 'STOW, 1 client',
    unit: 'instances/s',
    better: 'higher',
    ours: { median: 600, min: 550, max: 640, n: 5 },
    orthanc: { median: 100, min: 90, max: 120, n: 5 },
    target: { kind: 'ratio', factor: 5, text: 'ingest ≥ 5× Orthanc' },
  },
  {
    figure: 2,
    id: 'qido-p95',
    name: 'PatientID, p95',
    unit: 'ms',
    better: 'lower',
    ours: { median: 4, min: 3, max: 5, n: 5 },
    orthanc: { median: 20, min: 18, max: 30, n: 5 },
    target: { kind: 'ratio', factor: 10, text: 'QIDO p95 ≤ 1/10' },
  },
  {
    figure: 5,
    id: 'rss',
    name: 'peak RSS',
    unit: 'MiB',
    better: 'lower',
    ours: { median: 300, min: 290, max: 310, n: 5 },
    target: { kind: 'below', max: 256, text: '< 256 MB' },
  },
  { figure: 1, id: 'raw', name: 'raw disk', unit: 'MB/s', better: 'higher', reference: { label: 'disk', value: { median: 900, min: 900, max: 900, n: 1 } } },
];

function results(): BenchResults {
  return {
    generatedAt: '2026-12-03T18:00:00.000Z',
    mode: 'full',
    runs: 5,
    machine: { cpus: 2, cpuModel: 'test cpu', memoryGiB: 24, kernel: '6.1', node: '22.23.3', loadAtStart: [0.5, 0.4, 0.3], loadAtEnd: [1, 1, 1] },
    versions: { Orthanc: '1.10.1' },
    dataset: { description: 'synthetic', bytes: 1 },
    fills: [],
    rows,
    notes: ['Measured under load.'],
    durationSeconds: 600,
  };
}

describe('bench report', () => {
  test('replaceBlock appends a marked block once, then replaces only its inside', () => {
    const doc = '# Benchmarks\n\n## Lambda bundles\n\ntable owned by someone else\n';
    const once = replaceBlock(doc, BENCH_MARKERS, 'first');
    expect(once).toBe(`${doc.trimEnd()}\n\n${BENCH_MARKERS.start}\nfirst\n${BENCH_MARKERS.end}\n`);
    const twice = replaceBlock(`${once}\n## Later section\n`, BENCH_MARKERS, 'second');
    expect(twice).toContain('table owned by someone else');
    expect(twice).toContain('## Later section');
    expect(twice).toContain(`${BENCH_MARKERS.start}\nsecond\n${BENCH_MARKERS.end}`);
    expect(twice).not.toContain('first');
    expect(() => replaceBlock(`${BENCH_MARKERS.start}\nno end`, BENCH_MARKERS, 'x')).toThrow(/unbalanced/);
  });

  test('numbers: 3 significant digits, thousands separated, missing as a dash', () => {
    expect(fmt(1234.6)).toBe('1,235');
    expect(fmt(123.4)).toBe('123');
    expect(fmt(12.34)).toBe('12.3');
    expect(fmt(1.234)).toBe('1.23');
    expect(fmt(0.01234)).toBe('0.0123');
    expect(fmt(undefined)).toBe('–');
    expect(fmtSummary({ median: 2, min: 1, max: 3, n: 5 })).toBe('**2.00** (1.00 – 3.00)');
    expect(fmtSummary({ median: 2, min: 2, max: 2, n: 1 })).toBe('**2.00**');
  });

  test('figure table: ratios in the better direction and verdicts per target', () => {
    const table = renderFigureTable(rows);
    const line = (id: string) => table.split('\n')[2 + rows.findIndex((r) => r.id === id)]!;
    expect(line('stow-1-rate')).toContain('| 6.00× | ingest ≥ 5× Orthanc | met |');
    expect(line('qido-p95')).toContain('| 5.00× | QIDO p95 ≤ 1/10 | not met |');
    expect(line('rss')).toContain('| < 256 MB | not met |');
    expect(line('raw')).toContain('**900** (disk)');
  });

  test('the block names the machine, the runs, the notes and lists every target', () => {
    const block = renderBenchBlock(results());
    expect(block).toContain('median of 5 runs');
    expect(block).toContain('2 vCPU (test cpu)');
    expect(block).toContain('> Measured under load.');
    const targets = block.slice(block.indexOf('### Targets'), block.indexOf('### Figures'));
    expect(targets.match(/\*\*(met|not met)\*\*/g)).toEqual(['**met**', '**not met**', '**not met**']);
    expect(block).not.toContain('Quick run');
  });
});

describe('bench partial runs', () => {
  test('mergeResults replaces the measured figures only and says so', () => {
    const previous = results();
    const partial: BenchResults = {
      ...results(),
      generatedAt: '2026-12-04T09:30:00.000Z',
      notes: [],
      rows: [{ figure: 1, id: 'stow-new', name: 'new STOW row', unit: 'instances/s', better: 'higher', ours: { median: 1, min: 1, max: 1, n: 1 } }],
    };
    const merged = mergeResults(previous, partial, [1]);
    expect(merged.rows.map((r) => r.id)).toEqual(['stow-new', 'qido-p95', 'rss']);
    expect(merged.generatedAt).toBe(previous.generatedAt);
    expect(merged.notes.at(-1)).toMatch(/^Figure\(s\) 1 re-measured on 2026-12-04 09:30 UTC .* others are from 2026-12-03 18:00 UTC/);
  });

  test('a partial figure-2 run adds its index size and keeps the other sizes', () => {
    const fill = (studies: number, instances: number, seconds: number): BenchResults['fills'][number] => ({ system: 'ours', studies, instances, seconds, cached: false, how: 'x' });
    const previous: BenchResults = { ...results(), fills: [fill(10, 10, 1), fill(100, 100, 2)] };
    const partial: BenchResults = {
      ...results(),
      generatedAt: '2026-12-04T09:30:00.000Z',
      notes: [],
      fills: [fill(100, 1000, 9), fill(10, 10, 3)],
      rows: [{ figure: 2, id: 'qido-new', name: 'new QIDO row', unit: 'ms', better: 'lower', ours: { median: 1, min: 1, max: 1, n: 1 } }],
    };
    const merged = mergeResults(previous, partial, [2]);
    expect(merged.rows.map((r) => r.id)).toEqual(['stow-1-rate', 'raw', 'qido-p95', 'qido-new', 'rss']);
    // Fills are kept per (system, studies, instances); a fill made again replaces the old one.
    expect(merged.fills.map((f) => [f.studies, f.instances, f.seconds])).toEqual([[100, 100, 2], [100, 1000, 9], [10, 10, 3]]);
    expect(merged.generatedAt).toBe(previous.generatedAt);
    expect(merged.notes.at(-1)).toMatch(/^Figure\(s\) 2 re-measured on 2026-12-04 09:30 UTC .* others are from 2026-12-03 18:00 UTC/);
    // A row of another figure measured on the way replaces its old self (by id), nothing doubles.
    const alsoRss: BenchResults = { ...partial, rows: [...partial.rows, { figure: 5, id: 'rss', name: 'rss again', unit: 'MiB', better: 'lower', ours: { median: 2, min: 2, max: 2, n: 1 } }] };
    const merged2 = mergeResults(previous, alsoRss, [2]);
    expect(merged2.rows.map((r) => r.id)).toEqual(['stow-1-rate', 'raw', 'qido-p95', 'qido-new', 'rss']);
    expect(merged2.rows.find((r) => r.id === 'rss')?.name).toBe('rss again');
    // Merging again replaces the note instead of piling them up.
    expect(mergeResults(merged, partial, [2]).notes.filter((n) => n.startsWith('Figure(s)'))).toHaveLength(1);
  });
});
