// The Prometheus registry: labels, histograms, reports from worker threads.
import { expect, test } from "bun:test";
import { Registry } from "../../src/lib/prometheus";

test("the registry renders labels escaped, histogram buckets cumulative, and an unused counter as 0", () => {
  const registry = new Registry();
  const counter = registry.counter("things_total", "Things");
  const labelled = registry.counter("labelled_total", "Labelled", ["name"]);
  const histogram = registry.histogram("latency_seconds", "Latency", ["route"], [0.1, 1]);
  labelled.inc({ name: 'a "quoted" \\ back\nslash' }, 2);
  histogram.observe(0.05, { route: "/x" });
  histogram.observe(0.5, { route: "/x" });
  histogram.observe(5, { route: "/x" });
  expect(registry.render()).toBe(
    [
      "# HELP things_total Things",
      "# TYPE things_total counter",
      "things_total 0",
      "# HELP labelled_total Labelled",
      "# TYPE labelled_total counter",
      'labelled_total{name="a \\"quoted\\" \\\\ back\\nslash"} 2',
      "# HELP latency_seconds Latency",
      "# TYPE latency_seconds histogram",
      'latency_seconds_bucket{route="/x",le="0.1"} 1',
      'latency_seconds_bucket{route="/x",le="1"} 2',
      'latency_seconds_bucket{route="/x",le="+Inf"} 3',
      'latency_seconds_sum{route="/x"} 5.55',
      'latency_seconds_count{route="/x"} 3',
      "",
    ].join("\n"),
  );
  counter.inc();
  expect(registry.render()).toContain("\nthings_total 1\n");
});

test("reports from threads add up: counts are summed and kept, gauges are per thread and dropped with it", () => {
  const define = () => {
    const registry = new Registry();
    return {
      registry,
      done: registry.counter("done_total", "Done", ["status"]),
      busy: registry.gauge("busy", "Busy"),
      took: registry.histogram("took_seconds", "Took", [], [1]),
    };
  };
  const main = define();
  const [one, two] = [define(), define()];
  one.done.inc({ status: "OK" }, 3);
  one.busy.set(4);
  one.took.observe(0.5);
  two.done.inc({ status: "OK" });
  two.busy.set(1);
  main.registry.absorb(one.registry.drain(), "one");
  main.registry.absorb(two.registry.drain(), "two");
  let text = main.registry.render();
  expect(text).toContain('done_total{status="OK"} 4\n');
  expect(text).toContain("busy 5\n");
  expect(text).toContain('took_seconds_bucket{le="1"} 1\n');

  // A drained thread starts again from zero: reporting twice does not count twice.
  one.done.inc({ status: "OK" });
  main.registry.absorb(one.registry.drain(), "one");
  main.registry.absorb(two.registry.drain(), "two");
  text = main.registry.render();
  expect(text).toContain('done_total{status="OK"} 5\n');
  expect(text).toContain("busy 5\n");

  main.registry.forget("one");
  text = main.registry.render();
  expect(text).toContain('done_total{status="OK"} 5\n');
  expect(text).toContain("busy 1\n");
});
