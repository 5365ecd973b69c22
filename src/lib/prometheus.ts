/**
 * Prometheus metrics without a dependency: counters, gauges and histograms with labels, rendered
 * in the text exposition format (version 0.0.4). Each process and each Bun Worker thread has its
 * own registry (src/metrics.ts is instantiated once per thread); the worker role's supervisor
 * absorbs what its threads report (see `drain` and `absorb`), so one scrape shows the whole process.
 */

type Labels = Record<string, string>;
type HistogramValue = { counts: number[]; sum: number; count: number };
type Series<V> = { labels: string[]; value: V };

/** What a thread reports: counts since its last report, and its gauges' current values. */
export type MetricsReport = Record<string, [labels: string[], value: number | HistogramValue][]>;

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

const formatNumber = (n: number) =>
  Number.isNaN(n) ? "NaN" : n === Number.POSITIVE_INFINITY ? "+Inf" : n === Number.NEGATIVE_INFINITY ? "-Inf" : `${n}`;

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const pairs = names.map((name, i) => `${name}="${escapeLabel(values[i] ?? "")}"`);
  if (extra) pairs.push(`${extra[0]}="${extra[1]}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

abstract class Metric<V> {
  protected series = new Map<string, Series<V>>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  abstract readonly type: "counter" | "gauge" | "histogram";
  protected abstract zero(): V;
  abstract drain(): [string[], number | HistogramValue][];
  abstract absorb(entries: [string[], number | HistogramValue][], source: unknown): void;
  abstract render(): string;

  /** The series for these labels, created on first use. */
  protected at(labels: Labels | undefined): Series<V> {
    return this.withValues(this.labelNames.map((name) => labels?.[name] ?? ""));
  }

  /** The series for these label values, in `labelNames` order. */
  protected withValues(values: string[]): Series<V> {
    const key = values.join("\u0000");
    let series = this.series.get(key);
    if (!series) {
      series = { labels: values, value: this.zero() };
      this.series.set(key, series);
    }
    return series;
  }

  protected header(): string {
    return `# HELP ${this.name} ${this.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n# TYPE ${this.name} ${this.type}\n`;
  }
}

class Counter extends Metric<number> {
  readonly type = "counter";
  protected zero() {
    return 0;
  }

  inc(labels?: Labels, by = 1): void {
    this.at(labels).value += by;
  }

  /** The counts since the last drain, which start again from zero. */
  drain() {
    const out = [...this.series.values()].map((s): [string[], number] => [s.labels, s.value]);
    this.series = new Map();
    return out;
  }

  absorb(entries: [string[], number | HistogramValue][]) {
    for (const [labels, value] of entries) this.withValues(labels).value += value as number;
  }

  render(): string {
    let out = this.header();
    if (this.series.size === 0 && this.labelNames.length === 0) out += `${this.name} 0\n`;
    for (const s of this.series.values()) {
      out += `${this.name}${labelText(this.labelNames, s.labels)} ${formatNumber(s.value)}\n`;
    }
    return out;
  }
}

/**
 * A value that goes up and down. Values absorbed from other threads are kept per source and added
 * to this thread's own; `forget` drops a source that is gone (a thread that exited holds nothing).
 */
class Gauge extends Metric<number> {
  readonly type = "gauge";
  protected zero() {
    return 0;
  }
  private sources = new Map<unknown, [string[], number][]>();

  inc(labels?: Labels, by = 1): void {
    this.at(labels).value += by;
  }

  dec(labels?: Labels, by = 1): void {
    this.at(labels).value -= by;
  }

  set(value: number, labels?: Labels): void {
    this.at(labels).value = value;
  }

  /** The current values; a gauge is not reset by reporting it. */
  drain() {
    return [...this.series.values()].map((s): [string[], number] => [s.labels, s.value]);
  }

  absorb(entries: [string[], number | HistogramValue][], source: unknown) {
    this.sources.set(source, entries as [string[], number][]);
  }

  forget(source: unknown): void {
    this.sources.delete(source);
  }

  render(): string {
    const totals = new Map<string, Series<number>>();
    const add = (labels: string[], value: number) => {
      const key = labels.join("\u0000");
      const total = totals.get(key);
      if (total) total.value += value;
      else totals.set(key, { labels, value });
    };
    for (const s of this.series.values()) add(s.labels, s.value);
    for (const entries of this.sources.values()) for (const [labels, value] of entries) add(labels, value);
    if (totals.size === 0 && this.labelNames.length === 0) add([], 0);
    let out = this.header();
    for (const s of totals.values())
      out += `${this.name}${labelText(this.labelNames, s.labels)} ${formatNumber(s.value)}\n`;
    return out;
  }
}

class Histogram extends Metric<HistogramValue> {
  readonly type = "histogram";

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    /** Upper bounds, ascending; +Inf is implied. */
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames);
  }

  protected zero(): HistogramValue {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  observe(value: number, labels?: Labels): void {
    const h = this.at(labels).value;
    // Counts per bucket, not cumulative: one increment per observation; render() accumulates.
    const i = this.buckets.findIndex((bound) => value <= bound);
    if (i !== -1) h.counts[i] = (h.counts[i] ?? 0) + 1;
    h.sum += value;
    h.count += 1;
  }

  drain() {
    const out = [...this.series.values()].map((s): [string[], HistogramValue] => [s.labels, s.value]);
    this.series = new Map();
    return out;
  }

  absorb(entries: [string[], number | HistogramValue][]) {
    for (const [labels, value] of entries) {
      const h = this.withValues(labels).value;
      const from = value as HistogramValue;
      from.counts.forEach((n, i) => {
        h.counts[i] = (h.counts[i] ?? 0) + n;
      });
      h.sum += from.sum;
      h.count += from.count;
    }
  }

  render(): string {
    let out = this.header();
    for (const { labels, value } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += value.counts[i] ?? 0;
        out += `${this.name}_bucket${labelText(this.labelNames, labels, ["le", formatNumber(bound)])} ${cumulative}\n`;
      });
      out += `${this.name}_bucket${labelText(this.labelNames, labels, ["le", "+Inf"])} ${value.count}\n`;
      out += `${this.name}_sum${labelText(this.labelNames, labels)} ${value.sum}\n`;
      out += `${this.name}_count${labelText(this.labelNames, labels)} ${value.count}\n`;
    }
    return out;
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric<unknown>>();

  private add<M extends Metric<unknown>>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} is registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  /** Counts since the last drain (then reset) and gauges' current values, for `absorb`. */
  drain(): MetricsReport {
    const report: MetricsReport = {};
    for (const metric of this.metrics.values()) report[metric.name] = metric.drain();
    return report;
  }

  /** Adds another thread's report: counts are summed, gauges are kept as that source's values. */
  absorb(report: MetricsReport, source: unknown): void {
    for (const [name, entries] of Object.entries(report)) this.metrics.get(name)?.absorb(entries, source);
  }

  /** Drops the gauges of a source that is gone; its counts stay, so counters never go down. */
  forget(source: unknown): void {
    for (const metric of this.metrics.values()) if (metric instanceof Gauge) metric.forget(source);
  }

  render(): string {
    return [...this.metrics.values()].map((m) => m.render()).join("");
  }
}
