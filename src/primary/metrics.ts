import type { Worker } from "node:cluster";
import { Counter, Gauge, Registry } from "prom-client";
import { IPC_SOURCE, type WorkerMessage } from "../shared/ipc.js";
import { METRIC_PREFIX, aggregateMetrics, collectProcessMetrics, type MetricSnapshot } from "../shared/metrics.js";
import type { Supervisor } from "./supervisor.js";

/** How long a scrape waits for a worker's snapshot before answering without it, in ms. */
export const WORKER_SNAPSHOT_TIMEOUT_MS = 2000;

export interface HostMetricSources {
  supervisor: Supervisor;
  /** New sessions the balancer refused, by cause, since start. */
  refused: () => { rate: number; full: number };
}

/** One worker's snapshot, as the admin page reads them (not summed). */
export interface WorkerSnapshot {
  workerId: number;
  pid: number | undefined;
  snapshot: MetricSnapshot;
}

/** One round of asking the workers: what came back in time, and who did not answer. */
export interface Gathered {
  workers: WorkerSnapshot[];
  primary: MetricSnapshot;
  missing: number[];
}

interface Collection {
  snapshots: WorkerSnapshot[];
  waiting: Set<number>;
  done: () => void;
}

/**
 * The host's `GET /metrics`. Each scrape asks every worker for its snapshot over the tagged IPC
 * channel (`metrics:collect`, answered by `metrics`), adds the primary's own, and sums them with
 * prom-client's aggregation. Our own IPC rather than prom-client's AggregatorRegistry: that one
 * speaks untagged messages on the cluster channel (the supervisor drops them), bypasses the IPC
 * backlog bounds, and fails the whole scrape when one worker is slow; here a slow worker is left
 * out after WORKER_SNAPSHOT_TIMEOUT_MS and counted in `cerebellum_metrics_workers_missing`.
 * Scrapes that arrive while one is collecting share its answer, so a scrape storm costs the
 * workers one snapshot each.
 */
export class HostMetrics {
  private readonly registry = new Registry();
  private readonly collections = new Map<number, Collection>();
  private nextId = 0;
  private inFlight: Promise<string> | undefined;
  private gathering: Promise<Gathered> | undefined;
  private readonly missing: Gauge;

  constructor(private readonly sources: HostMetricSources) {
    const { supervisor } = sources;
    collectProcessMetrics(this.registry, "primary");
    const registers = [this.registry];
    new Counter({
      name: `${METRIC_PREFIX}worker_restarts_total`,
      help: "Workers forked again: after a crash or kill (cause=\"crash\"), or replaced by a rolling restart (cause=\"rolling\").",
      labelNames: ["cause"] as const,
      registers,
      collect() {
        this.reset();
        this.inc({ cause: "crash" }, supervisor.restartsTotal.crash);
        this.inc({ cause: "rolling" }, supervisor.restartsTotal.rolling);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}connect_refusals_total`,
      help: "New connections refused with 503 by admission: over CONNECT_RATE_LIMIT (cause=\"rate\") or every worker full (cause=\"full\").",
      labelNames: ["cause"] as const,
      registers,
      collect() {
        const refused = sources.refused();
        this.reset();
        this.inc({ cause: "rate" }, refused.rate);
        this.inc({ cause: "full" }, refused.full);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}workers_ready`,
      help: "Workers ready and not draining.",
      registers,
      collect() {
        this.set(supervisor.readyWorkers().length);
      },
    });
    this.missing = new Gauge({
      name: `${METRIC_PREFIX}metrics_workers_missing`,
      help: `Workers whose metrics this scrape lacks (no answer within ${WORKER_SNAPSHOT_TIMEOUT_MS} ms): their counters are not in the sums.`,
      registers,
    });
    supervisor.on("message", (worker: Worker, message: WorkerMessage) => {
      if (message.type === "metrics") this.answered(worker, message.id, message.metrics);
    });
    supervisor.on("exit", (workerId: number) => {
      for (const collection of this.collections.values()) this.drop(collection, workerId);
    });
  }

  /** The host's metrics in Prometheus text format. */
  scrape(): Promise<string> {
    this.inFlight ??= this.gather()
      .then(({ workers, primary }) => aggregateMetrics([...workers.map((w) => w.snapshot), primary]))
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }

  /** The Content-Type of `scrape()`'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Every worker's snapshot apart (the admin page's per-worker view) and the primary's own.
   * Requests that arrive while one round is out share it, scrapes of /metrics included.
   */
  gather(): Promise<Gathered> {
    this.gathering ??= this.collect().finally(() => {
      this.gathering = undefined;
    });
    return this.gathering;
  }

  private async collect(): Promise<Gathered> {
    const workers = this.sources.supervisor.connectedWorkers();
    const id = this.nextId++;
    const snapshots: WorkerSnapshot[] = [];
    const waiting = new Set(workers.map((w) => w.id));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, WORKER_SNAPSHOT_TIMEOUT_MS);
      const collection: Collection = {
        snapshots,
        waiting,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.collections.set(id, collection);
      for (const worker of workers) this.sources.supervisor.send(worker, { source: IPC_SOURCE, type: "metrics:collect", id });
      if (waiting.size === 0) collection.done();
    });
    this.collections.delete(id);
    // Set before the primary's snapshot is read, so that this round's own gauge is in it.
    this.missing.set(waiting.size);
    return { workers: snapshots, primary: await this.registry.getMetricsAsJSON(), missing: [...waiting] };
  }

  private answered(worker: Worker, id: number, snapshot: MetricSnapshot): void {
    const collection = this.collections.get(id);
    // A late answer (its scrape gave up on this worker) is dropped.
    if (!collection?.waiting.has(worker.id)) return;
    collection.snapshots.push({ workerId: worker.id, pid: worker.process.pid, snapshot });
    const workerId = worker.id;
    this.drop(collection, workerId);
  }

  /** This worker has answered or left: the collection waits for it no longer. */
  private drop(collection: Collection, workerId: number): void {
    if (collection.waiting.delete(workerId) && collection.waiting.size === 0) collection.done();
  }
}
