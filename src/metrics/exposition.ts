// The registry /metrics reads, and the Prometheus text format (version 0.0.4) it answers in.
//
// crisp's metrics are families that say what they hold when asked: histograms and counters
// recorded as the daemon works (positional-metrics.ts), and gauges and counters read at scrape
// time from the live state and from the process (crisp-metrics.ts, process-metrics.ts). This was
// prom-client's Registry; loading prom-client also loaded the OpenTelemetry API (for exemplars
// crisp does not use) and a t-digest library: 80 modules and ~1 MiB of the daemon's heap.

/** One line of a family: its own name (a histogram's _bucket, _sum, _count), labels and value. */
export interface Sample {
  /** The family's name when absent. */
  name?: string;
  labels?: Readonly<Record<string, string | number>>;
  value: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  /** The family's lines as of now; called once per scrape. */
  samples(): Iterable<Sample>;
}

const escapeText = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string) => escapeText(s).replace(/"/g, '\\"');

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function formatLabels(labels: Readonly<Record<string, string | number>> | undefined): string {
  if (!labels) return '';
  let out = '';
  for (const key in labels) {
    const value = labels[key]!;
    out += `${out ? ',' : ''}${key}="${typeof value === 'string' ? escapeLabel(value) : value}"`;
  }
  return out ? `{${out}}` : '';
}

export class MetricsRegistry {
  static readonly CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
  readonly contentType = MetricsRegistry.CONTENT_TYPE;
  private readonly families = new Map<string, MetricFamily>();

  register(family: MetricFamily): void {
    const known = this.families.get(family.name);
    if (known && known !== family) throw new Error(`a metric named ${family.name} is registered already`);
    this.families.set(family.name, family);
  }

  /** The family registered under `name`, if any. */
  family(name: string): MetricFamily | undefined {
    return this.families.get(name);
  }

  /** Every family in the text format: HELP, TYPE and its lines, a blank line between families. */
  metrics(): string {
    const blocks: string[] = [];
    for (const family of this.families.values()) {
      const lines = [`# HELP ${family.name} ${escapeText(family.help)}`, `# TYPE ${family.name} ${family.type}`];
      for (const s of family.samples()) lines.push(`${s.name ?? family.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
      blocks.push(lines.join('\n'));
    }
    return `${blocks.join('\n\n')}\n`;
  }
}
