/**
 * A small metrics registry rendered in the Prometheus text exposition format
 * 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 * Counters and gauges only, no labels in names the caller builds: labels are
 * passed as an object and escaped here, so a value can never break a line.
 */

export type Labels = Record<string, string>;

export interface Counter {
  inc(n?: number, labels?: Labels): void;
  value(labels?: Labels): number;
}

export interface Gauge {
  set(v: number, labels?: Labels): void;
  value(labels?: Labels): number;
}

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, number>;
  collect?: () => number | Array<{ labels: Labels; value: number }>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const keys = Object.keys(labels).sort();
  for (const k of keys) if (!LABEL.test(k)) throw new Error(`invalid metric label name ${k}`);
  return keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',');
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export class Metrics {
  private readonly families = new Map<string, Family>();

  private family(name: string, help: string, type: Family['type']): Family {
    if (!NAME.test(name)) throw new Error(`invalid metric name ${name}`);
    const existing = this.families.get(name);
    if (existing) {
      if (existing.type !== type) throw new Error(`metric ${name} is already a ${existing.type}`);
      return existing;
    }
    const f: Family = { name, help, type, values: new Map() };
    this.families.set(name, f);
    return f;
  }

  /** A monotonically increasing counter; by convention the name ends in `_total`. */
  counter(name: string, help: string): Counter {
    const f = this.family(name, help, 'counter');
    return {
      inc: (n = 1, labels) => {
        if (!(n >= 0)) throw new Error(`counter ${name} can only increase`);
        const k = labelKey(labels);
        f.values.set(k, (f.values.get(k) ?? 0) + n);
      },
      value: (labels) => f.values.get(labelKey(labels)) ?? 0,
    };
  }

  /** A gauge; with `collect`, its value is read at render time (queue depths, ages). */
  gauge(name: string, help: string, collect?: () => number | Array<{ labels: Labels; value: number }>): Gauge {
    const f = this.family(name, help, 'gauge');
    if (collect) f.collect = collect;
    return {
      set: (v, labels) => {
        f.values.set(labelKey(labels), v);
      },
      value: (labels) => f.values.get(labelKey(labels)) ?? 0,
    };
  }

  render(): string {
    const lines: string[] = [];
    for (const f of this.families.values()) {
      lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
      const values = new Map(f.values);
      if (f.collect) {
        try {
          const c = f.collect();
          if (typeof c === 'number') values.set('', c);
          else for (const { labels, value } of c) values.set(labelKey(labels), value);
        } catch {
          // A failing collector must not take /metrics down; the sample is left out.
        }
      }
      for (const [k, v] of values) lines.push(`${f.name}${k ? `{${k}}` : ''} ${formatValue(v)}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

/** Content type of the 0.0.4 text format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
