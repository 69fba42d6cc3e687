import { resolve } from "node:path";
import Piscina from "piscina";
import type { StoreResults, StoreSettings, StoreTask, StoreTaskOf } from "./store-ops.js";

/**
 * Runs store tasks somewhere: on a piscina pool (the AWS sinks), on the calling thread
 * (inline-runner.ts: benchmarks, the consumer), or over the embedded store's connection
 * (embedded-client.ts).
 */
export interface StoreRunner {
  run<K extends StoreTask["op"]>(task: StoreTaskOf<K>): Promise<StoreResults[K]>;
  close(): Promise<void>;
  /** True once close() was called: a task failing after it failed because of the shutdown. */
  readonly closing: boolean;
}

/** Tasks that may run at once on one pool thread: they wait on the network, not the CPU. */
const TASKS_PER_THREAD = 16;

/**
 * The worker's persistence pool. Separate from the JWT pool (jwt-verifier.ts), which is only
 * created for RS256/ES256 tokens: this one holds AWS clients, that one keys, and each thread's
 * workerData stays one concern.
 */
export class PooledStoreRunner implements StoreRunner {
  private readonly pool: Piscina;
  closing = false;

  constructor(settings: StoreSettings, threads: number) {
    this.pool = new Piscina({
      filename: resolve(__dirname, "../tasks/store-task.js"),
      minThreads: 1,
      maxThreads: threads,
      concurrentTasksPerWorker: TASKS_PER_THREAD,
      workerData: settings,
    });
  }

  run<K extends StoreTask["op"]>(task: StoreTaskOf<K>): Promise<StoreResults[K]> {
    return this.pool.run(task) as Promise<StoreResults[K]>;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.pool.destroy();
  }
}
