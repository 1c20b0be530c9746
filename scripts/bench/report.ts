/**
 * Rendering of the results (pure): the benchmark block of
 * docs/benchmarks.md, the measured-counts block of docs/cost-model.md, and
 * the JSON. Each block sits between markers, so the rest of each document
 * (other authors' sections) is kept as it is.
 */
import type { BenchResults, CostResults, Row } from './results';
import { advantage, verdict, type Summary } from './stats';

export const BENCH_MARKERS = { start: '<!-- bench:start -->', end: '<!-- bench:end -->' } as const;
export const COST_MARKERS = { start: '<!-- bench-cost:start -->', end: '<!-- bench-cost:end -->' } as const;

/** Figures measured per index size (`--scales`): a partial run adds or replaces its sizes' rows and keeps the other sizes'. */
const PER_SIZE_FIGURES = new Set([2]);

/**
 * Results of a partial run (figures `measured` only) merged into the last
 * full one: its rows, fills and cost replace those of the same figures, the
 * rest is kept and a note says which figures are newer.
 */
export function mergeResults(previous: BenchResults, partial: BenchResults, measured: number[]): BenchResults {
  const fresh = new Set(measured.filter((f) => !PER_SIZE_FIGURES.has(f)));
  // A figure run may also measure rows of another figure (3 brings 4b, the C-MOVE): those replace their old selves by id.
  const remeasured = new Set(partial.rows.map((r) => r.id));
  const rows = [...previous.rows.filter((r) => !fresh.has(r.figure) && !remeasured.has(r.id)), ...partial.rows].sort((a, b) => a.figure - b.figure);
  const fillKey = (f: BenchResults['fills'][number]): string => `${f.system} ${f.studies} ${f.instances}`;
  const refilled = new Set(partial.fills.map(fillKey));
  const fills = [...previous.fills.filter((f) => !refilled.has(fillKey(f))), ...partial.fills];
  return {
    ...previous,
    rows,
    fills,
    cost: fresh.has(7) ? partial.cost : previous.cost,
    versions: { ...previous.versions, ...partial.versions },
    machine: { ...previous.machine, loadAtEnd: partial.machine.loadAtEnd },
    durationSeconds: previous.durationSeconds + partial.durationSeconds,
    notes: [
      // One note per kind: the latest "under load" statement replaces the earlier one.
      ...previous.notes.filter((n) => !n.startsWith('Figure(s) ') && !(n.startsWith('Measured under load') && partial.notes.some((p) => p.startsWith('Measured under load')))),
      `Figure(s) ${measured.join(', ')} re-measured on ${partial.generatedAt.slice(0, 16).replace('T', ' ')} UTC (${partial.mode} run, ${partial.runs} runs); the others are from ${previous.generatedAt.slice(0, 16).replace('T', ' ')} UTC.`,
      ...partial.notes.filter((n) => !previous.notes.includes(n)),
    ],
  };
}

/** Replace the text between the markers (markers kept), or append the marked block at the end. */
export function replaceBlock(doc: string, markers: { start: string; end: string }, block: string): string {
  const marked = `${markers.start}\n${block.trim()}\n${markers.end}`;
  const start = doc.indexOf(markers.start);
  const end = doc.indexOf(markers.end);
  if (start >= 0 && end > start) return doc.slice(0, start) + marked + doc.slice(end + markers.end.length);
  if (start >= 0 || end >= 0) throw new Error(`unbalanced markers ${markers.start} … ${markers.end}`);
  return `${doc.replace(/\s*$/, '')}\n\n${marked}\n`;
}

/** 3 significant digits, no exponent, thousands separators for big values. */
export function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  const abs = Math.abs(v);
  if (abs >= 1000) return Math.round(v).toLocaleString('en-US');
  if (abs >= 100) return v.toFixed(0);
  if (abs >= 10) return v.toFixed(1);
  if (abs >= 1) return v.toFixed(2);
  if (abs === 0) return '0';
  return v.toPrecision(3);
}

export function fmtSummary(s: Summary | undefined): string {
  if (!s) return '–';
  return s.n > 1 && s.min !== s.max ? `**${fmt(s.median)}** (${fmt(s.min)} – ${fmt(s.max)})` : `**${fmt(s.median)}**`;
}

export function fmtDollars(v: number): string {
  if (v >= 100) return `$${Math.round(v).toLocaleString('en-US')}`;
  if (v >= 1) return `$${v.toFixed(2)}`;
  return `$${v.toPrecision(2)}`;
}

function ratioCell(row: Row): string {
  const adv = advantage(row.ours?.median, row.orthanc?.median, row.better);
  return adv === undefined ? '–' : `${fmt(adv)}×`;
}

export function rowVerdict(row: Row): string {
  if (!row.target) return '';
  return verdict(row.target, row.ours?.median, advantage(row.ours?.median, row.orthanc?.median, row.better));
}

const FIGURE_TITLES: Record<number, string> = {
  1: 'STOW ingest',
  2: 'QIDO (study search)',
  3: 'WADO',
  4: 'DIMSE gateway',
  5: 'Memory',
  6: 'Lambda',
  7: 'Cost',
};

export function renderFigureTable(rows: readonly Row[]): string {
  const lines = [
    '| Figure | Measure | Unit | Ours | Orthanc | Ours better by | Target | Verdict |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const ours = r.reference && !r.ours ? `${fmtSummary(r.reference.value)} (${r.reference.label})` : fmtSummary(r.ours);
    lines.push(
      `| ${r.figure}. ${FIGURE_TITLES[r.figure] ?? ''} | ${r.name}${r.note ? ` — ${r.note}` : ''} | ${r.unit}${r.better === 'lower' ? ' (lower is better)' : ''} | ${ours} | ${fmtSummary(r.orthanc)} | ${r.reference && !r.ours ? '' : ratioCell(r)} | ${r.target?.text ?? ''} | ${rowVerdict(r)} |`,
    );
  }
  return lines.join('\n');
}

export function renderTargets(rows: readonly Row[]): string {
  const lines = ['| Target | Measure | Ours | Orthanc | Ours better by | Verdict |', '|---|---|---|---|---|---|'];
  for (const r of rows.filter((x) => x.target)) {
    lines.push(`| ${r.target!.text} | ${r.name} (${r.unit}) | ${fmt(r.ours?.median)} | ${fmt(r.orthanc?.median)} | ${ratioCell(r)} | **${rowVerdict(r)}** |`);
  }
  return lines.join('\n');
}

export function renderCost(cost: CostResults): string {
  const lines = [
    '| Operation | S3 requests | DynamoDB RRU | DynamoDB WRU (table + GSI est.) | Handler ms (median) | Memory MB | GB-s | $ per operation |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const l of cost.lines) {
    const s3 = Object.entries(l.requests)
      .filter(([k]) => k.startsWith('s3:'))
      .map(([k, v]) => `${fmt(v)} ${k.slice(3)}`)
      .join(', ');
    lines.push(
      `| ${l.operation} | ${s3 || '0'} | ${fmt(l.readUnits)} | ${fmt(l.writeUnits)} + ${fmt(l.gsiWriteUnitsEstimate)} | ${fmt(l.durationMs)} | ${l.memoryMb} | ${fmt(l.gbSeconds)} | ${fmtDollars(l.dollars)} |`,
    );
  }
  const dyn = cost.lines
    .map((l) => `${l.operation}: ${Object.entries(l.requests).filter(([k]) => k.startsWith('dynamodb:')).map(([k, v]) => `${fmt(v)} ${k.slice(9)}`).join(', ') || 'none'}`)
    .join('; ');
  lines.push('', `DynamoDB calls per operation — ${dyn}.`, '');
  lines.push('| Result | Ours (AWS deployment) | AWS HealthImaging | Ratio |', '|---|---|---|---|');
  lines.push(`| $ per 1,000 instances stored (${fmt(cost.instanceBytes / 1e6)} MB each) | ${fmtDollars(cost.perThousandStored)} | – | |`);
  lines.push(
    `| $ per TB-month stored | ${fmtDollars(cost.perTbMonth.ours)} | ${fmtDollars(cost.perTbMonth.healthImaging)} | ${fmt(cost.perTbMonth.healthImaging / cost.perTbMonth.ours)}× cheaper |`,
  );
  lines.push(`| $ per 1M QIDO study searches | ${fmtDollars(cost.perMillionQido)} | – | |`);
  lines.push(`| $ per 1M series-metadata calls | ${fmtDollars(cost.perMillionSeriesMetadata)} | – | |`);
  lines.push('', `TB-month breakdown (ours): ${Object.entries(cost.perTbMonth.oursBreakdown).map(([k, v]) => `${k} ${fmtDollars(v)}`).join(', ')}.`);
  for (const n of cost.notes) lines.push('', n);
  return lines.join('\n');
}

export function renderBenchBlock(r: BenchResults): string {
  const m = r.machine;
  const out: string[] = [];
  out.push('## Side by side with Orthanc (`npm run bench`)', '');
  out.push(
    `Written by \`npm run bench${r.mode === 'quick' ? ' -- --quick' : ''}\` (scripts/bench/) on ${r.generatedAt.slice(0, 16).replace('T', ' ')} UTC in ${(r.durationSeconds / 60).toFixed(1)} min; ` +
      `the same numbers are in docs/benchmarks.json. Machine: ${m.cpus} vCPU (${m.cpuModel}), ${fmt(m.memoryGiB)} GiB RAM, Linux ${m.kernel}, Node ${m.node}; ` +
      `load average at start ${m.loadAtStart.map((x) => x.toFixed(1)).join(' / ')}, at end ${m.loadAtEnd.map((x) => x.toFixed(1)).join(' / ')}. ` +
      `Versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
  );
  out.push('');
  out.push(
    `Each figure is the **median of ${r.runs} runs** with the min – max of the runs in brackets; "ours better by" is ours ÷ Orthanc for throughput and Orthanc ÷ ours for latency and memory (> 1: ours is better). ` +
      'Both systems get the same generated bytes, on the same disk, over loopback HTTP/DIMSE, one after the other (never at the same time).',
  );
  if (r.mode === 'quick') out.push('', '> **Quick run** (smoke test of the harness, small data, 2 runs): not the figures to quote.');
  for (const n of r.notes) out.push('', `> ${n}`);
  out.push('', '### Targets', '', renderTargets(r.rows));
  out.push('', '### Figures', '', renderFigureTable(r.rows));
  out.push('', '### Data', '', r.dataset.description);
  if (r.fills.length) {
    out.push('', '| Index fill | Studies | Instances | Time | How |', '|---|---|---|---|---|');
    for (const f of r.fills) out.push(`| ${f.system} | ${fmt(f.studies)} | ${fmt(f.instances)} | ${fmt(f.seconds)} s${f.cached ? ' (cached from an earlier run)' : ''} | ${f.how} |`);
  }
  out.push('', '### 6. Lambda', '', 'Bundle sizes and module-init times per function are in "Lambda bundles" above (measured by scripts/measure-lambda.ts); Orthanc has no equivalent.');
  if (r.cost) out.push('', '### 7. Cost model (counted against s3rver/dynalite)', '', renderCost(r.cost));
  return out.join('\n');
}

export function renderCostBlock(r: BenchResults): string {
  if (!r.cost) return '## Measured per-operation counts\n\nNot measured in the last run.';
  return [
    '## Measured per-operation counts',
    '',
    `Counted by \`npm run bench\` (${r.generatedAt.slice(0, 10)}, ${r.mode} run): the archive's own S3BlobStore and DynamoDbIndex, running the Lambda routes in-process ` +
      'against s3rver and dynalite, with a counting middleware on both SDK clients (functions/adapters/aws/usage-counter.ts: requests by command, ' +
      'DynamoDB capacity as reported with ReturnConsumedCapacity TOTAL). Lambda GB-s = measured handler duration × the function\'s memory in infra/lib/config.ts. ' +
      'Prices: the table at the top of this document (not re-checked). These counts replace the estimates above where they differ.',
    '',
    renderCost(r.cost),
  ].join('\n');
}
