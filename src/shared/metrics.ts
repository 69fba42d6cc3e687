import { AggregatorRegistry, collectDefaultMetrics, type Registry } from "prom-client";

/** Every metric this server exports starts with this. */
export const METRIC_PREFIX = "cerebellum_";

/** One process's metrics as it sends them to the primary (prom-client's JSON form; structured-clone safe). */
export type MetricSnapshot = Awaited<ReturnType<Registry["getMetricsAsJSON"]>>;

/**
 * Node's process metrics (CPU, memory, handles, GC, event-loop lag) into `registry`, labelled
 * with the role so that the primary's own stay apart from the workers' sum in the host's scrape.
 * The event-loop monitor samples every 10 ms (prom-client's default): a timer, not hot-path work.
 */
export function collectProcessMetrics(registry: Registry, role: "primary" | "worker"): void {
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX, labels: { process: role } });
}

/**
 * The host's metrics from each process's snapshot, in Prometheus text format: counters and gauges
 * are summed over the workers; event-loop lag is averaged (its max is the max), as prom-client's
 * own metrics declare.
 */
export function aggregateMetrics(snapshots: MetricSnapshot[]): Promise<string> {
  return AggregatorRegistry.aggregate(snapshots.map(withoutEmptyLagWindow)).metrics();
}

const LAG_WINDOW = /^cerebellum_nodejs_eventloop_lag_(min|max|mean|stddev|p50|p90|p99)_seconds$/;

/**
 * prom-client reads Node's event-loop delay histogram and resets it at every scrape, so a process
 * scraped twice within one sampling interval (10 ms) has an empty window: its mean is NaN, its
 * min 9.2e9 s and its max 0. That says nothing about the process and would poison the average
 * over the workers, so such a window is left out (its mean being NaN is what marks it empty).
 */
function withoutEmptyLagWindow(snapshot: MetricSnapshot): MetricSnapshot {
  const mean = snapshot.find((m) => m.name === `${METRIC_PREFIX}nodejs_eventloop_lag_mean_seconds`);
  if (!mean?.values.some((v) => Number.isNaN(v.value))) return snapshot;
  return snapshot.map((m) => (LAG_WINDOW.test(m.name) ? { ...m, values: [] } : m));
}
