// Histograms and counters for the metrics crisp records on every event and every RPC, with
// their label values passed in a fixed order. prom-client's own Histogram.observe hashes a
// labels object (sorting its keys), converts each bucket bound to a string to index its counts
// and copies the labels per series; in the daemon, where this code runs a few times per pod
// step and so stays in V8's baseline tier, that made a tenth of crisp's own share of a pod
// start's CPU. These keep one count per bucket in an array, found by one Map lookup on the
// joined label values, and make their lines only when /metrics is read. The unit test checks
// their exposition against prom-client's for the same observations.
import type { MetricFamily, MetricsRegistry, Sample } from './exposition.js';

/** One value per label name, in the same order: a wrong count does not compile. */
type ValuesOf<N extends readonly string[]> = { readonly [I in keyof N]: string };

interface Series<N extends readonly string[]> {
  labels: Record<N[number], string>;
  /** Observations per bucket, not cumulative; the last slot counts those above every bound. */
  counts: number[];
  sum: number;
}

interface Options<N extends readonly string[]> {
  name: string;
  help: string;
  labelNames: N;
  registry: MetricsRegistry;
}

abstract class PositionalMetric<N extends readonly string[]> implements MetricFamily {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'histogram' | 'counter';
  protected readonly labelNames: N;

  constructor(o: Options<N>) {
    this.name = o.name;
    this.help = o.help;
    this.labelNames = o.labelNames;
    o.registry.register(this);
  }

  protected labelsOf(values: readonly string[]): Record<N[number], string> {
    const labels = {} as Record<N[number], string>;
    this.labelNames.forEach((name: N[number], i) => (labels[name] = values[i]!));
    return labels;
  }

  abstract samples(): Iterable<Sample>;
}

export class PositionalHistogram<const N extends readonly string[] = readonly []> extends PositionalMetric<N> {
  readonly type = 'histogram' as const;
  private readonly series = new Map<string, Series<N>>();
  private readonly bounds: readonly number[];

  constructor(o: Options<N> & { buckets: readonly number[] }) {
    super(o);
    this.bounds = [...o.buckets].sort((a, b) => a - b);
    // An unlabelled metric is exposed from the start, at zero.
    if (o.labelNames.length === 0) this.seriesOf([]);
  }

  private seriesOf(labelValues: readonly string[]): Series<N> {
    const key = labelValues.join('\n');
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels: this.labelsOf(labelValues), counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0 }));
    return s;
  }

  /** Records `value` in the series of `labelValues`, given in labelNames' order. */
  observe(value: number, ...labelValues: ValuesOf<N>): void {
    const s = this.seriesOf(labelValues);
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
  }

  samples(): Sample[] {
    const out: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        out.push({ name: bucket, labels: { ...s.labels, le }, value: cumulative });
      });
      cumulative += s.counts[this.bounds.length]!;
      out.push({ name: bucket, labels: { ...s.labels, le: '+Inf' }, value: cumulative });
      out.push({ name: `${this.name}_sum`, labels: s.labels, value: s.sum });
      out.push({ name: `${this.name}_count`, labels: s.labels, value: cumulative });
    }
    return out;
  }
}

export class PositionalCounter<const N extends readonly string[] = readonly []> extends PositionalMetric<N> {
  readonly type = 'counter' as const;
  private readonly series = new Map<string, { labels: Record<N[number], string>; value: number }>();

  constructor(o: Options<N>) {
    super(o);
    if (o.labelNames.length === 0) this.add(0, []);
  }

  /** Adds `by` to the series of `labelValues`, given in labelNames' order. */
  inc(by: number, ...labelValues: ValuesOf<N>): void {
    this.add(by, labelValues);
  }

  private add(by: number, labelValues: readonly string[]): void {
    const key = labelValues.join('\n');
    const s = this.series.get(key);
    if (s) s.value += by;
    else this.series.set(key, { labels: this.labelsOf(labelValues), value: by });
  }

  samples(): Sample[] {
    return [...this.series.values()].map((s) => ({ labels: s.labels, value: s.value }));
  }
}
