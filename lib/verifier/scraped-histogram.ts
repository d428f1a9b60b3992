import type { Histogram, Registry } from 'prom-client';

/** One line of a histogram's exposition, in the shape prom-client's registry formats. */
interface HistogramValue {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

/**
 * A histogram without labels that the pull loop observes every round, kept as plain counts and
 * turned into values only when the registry is read (a `/metrics` scrape). prom-client's own
 * `observe` builds a closure, validates and hashes the (empty) labels and looks the series up on each
 * call; this one finds the bucket and adds. The registry formats what `get()` returns exactly as it
 * formats a prom-client histogram's: the same `_bucket` lines (cumulative, `le` the bound, then
 * `+Inf`), `_sum` (the values added in the order observed, as prom-client adds them) and `_count`.
 */
export class ScrapedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending. */
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    this.counts = bounds.map(() => 0);
    // The registry reads a metric through `get()` (and `reset()` on `resetMetrics`) only.
    registry.registerMetric(this as unknown as Histogram);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) {
      // What prom-client's `observe` throws.
      throw new TypeError(`Value is not a valid number: ${String(value)}`);
    }
    const { bounds } = this;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i += 1;
    // Above the last bound: counted only in `+Inf` (the count).
    if (i < bounds.length) this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count += 1;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: HistogramValue[] }> {
    const bucket = `${this.name}_bucket`;
    const values: HistogramValue[] = [];
    let cumulative = 0;
    this.bounds.forEach((le, i) => {
      cumulative += this.counts[i] as number;
      values.push({ metricName: bucket, labels: { le }, value: cumulative });
    });
    values.push(
      { metricName: bucket, labels: { le: '+Inf' }, value: this.count },
      { metricName: `${this.name}_sum`, labels: {}, value: this.sum },
      { metricName: `${this.name}_count`, labels: {}, value: this.count },
    );
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}
