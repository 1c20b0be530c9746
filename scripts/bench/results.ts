/** The benchmark's results, as written to docs/benchmarks.json and rendered into docs/benchmarks.md. */
import type { Better, Summary, Target } from './stats';

export interface Row {
  /** the figure number (1–7) */
  figure: number;
  /** stable id (JSON consumers, tests) */
  id: string;
  name: string;
  unit: string;
  better: Better;
  ours?: Summary;
  orthanc?: Summary;
  /** a third column that is neither system, e.g. the raw-disk copy of the same bytes */
  reference?: { label: string; value: Summary };
  target?: Target;
  note?: string;
}

export interface CostLine {
  operation: string;
  /** per operation (one stored instance, one QIDO, one series-metadata call) */
  requests: Record<string, number>;
  readUnits: number;
  writeUnits: number;
  gsiWriteUnitsEstimate: number;
  /** handler duration measured in-process, ms (median) */
  durationMs: number;
  memoryMb: number;
  gbSeconds: number;
  /** AWS list price of one operation, $ */
  dollars: number;
}

export interface CostResults {
  instanceBytes: number;
  lines: CostLine[];
  perThousandStored: number;
  perTbMonth: { ours: number; healthImaging: number; oursBreakdown: Record<string, number> };
  perMillionQido: number;
  perMillionSeriesMetadata: number;
  notes: string[];
}

export interface BenchResults {
  generatedAt: string;
  mode: 'quick' | 'full';
  runs: number;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; kernel: string; node: string; loadAtStart: number[]; loadAtEnd: number[] };
  versions: Record<string, string>;
  dataset: { description: string; bytes: number };
  fills: { system: string; studies: number; instances: number; seconds: number; cached: boolean; how: string }[];
  rows: Row[];
  cost?: CostResults;
  lambda?: unknown;
  notes: string[];
  durationSeconds: number;
}
