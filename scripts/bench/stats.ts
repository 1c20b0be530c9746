/**
 * Statistics of the benchmark harness (pure): summaries of repeated runs,
 * percentiles of latency samples, ratios and target verdicts.
 */

/** Median with min–max of the per-run values of one figure (n ≥ 1). */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

function finiteSorted(values: readonly number[]): number[] {
  const xs = values.filter((v) => Number.isFinite(v));
  if (xs.length === 0) throw new Error('no finite values to summarize');
  return xs.sort((a, b) => a - b);
}

/** Median (mean of the two middle values for an even count), min and max. */
export function summarize(values: readonly number[]): Summary {
  const xs = finiteSorted(values);
  const mid = xs.length >> 1;
  const median = xs.length % 2 === 1 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
  return { median, min: xs[0]!, max: xs[xs.length - 1]!, n: xs.length };
}

/**
 * Percentile by the nearest-rank method: the smallest sample such that at
 * least p % of the samples are ≤ it (p95 of 20 samples is the 19th). Never
 * interpolates, so the value is one that was actually observed.
 */
export function percentile(values: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new Error(`percentile must be in (0, 100], got ${p}`);
  const xs = finiteSorted(values);
  const rank = Math.ceil((p / 100) * xs.length);
  return xs[Math.min(xs.length, Math.max(1, rank)) - 1]!;
}

/** Whether a bigger or a smaller value is better (throughput vs latency, memory, cost). */
export type Better = 'higher' | 'lower';

/**
 * How many times better ours is than theirs: > 1 means ours wins whatever
 * the direction (ours/theirs for throughput, theirs/ours for latency).
 * Undefined when either side is missing or zero.
 */
export function advantage(ours: number | undefined, theirs: number | undefined, better: Better): number | undefined {
  if (ours === undefined || theirs === undefined || !Number.isFinite(ours) || !Number.isFinite(theirs)) return undefined;
  if (ours <= 0 || theirs <= 0) return undefined;
  return better === 'higher' ? ours / theirs : theirs / ours;
}

/**
 * A target: ours at least `factor` times better than the reference
 * (`ratio`), or ours below a bound (`below`, in the row's unit).
 */
export type Target = { kind: 'ratio'; factor: number; text: string } | { kind: 'below'; max: number; text: string };

export type Verdict = 'met' | 'not met' | 'not measured';

/** The verdict on the medians: ratio targets use `advantage`, bounds use ours alone. */
export function verdict(target: Target, ours: number | undefined, adv: number | undefined): Verdict {
  if (target.kind === 'ratio') {
    if (adv === undefined) return 'not measured';
    return adv >= target.factor ? 'met' : 'not met';
  }
  if (ours === undefined || !Number.isFinite(ours)) return 'not measured';
  return ours < target.max ? 'met' : 'not met';
}

/** Megabytes (10^6 bytes) per second. */
export function mbPerSecond(bytes: number, seconds: number): number {
  return seconds > 0 ? bytes / 1e6 / seconds : Number.NaN;
}
