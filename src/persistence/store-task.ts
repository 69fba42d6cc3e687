import { workerData } from "node:worker_threads";
import { StoreOps, type StoreResults, type StoreTask } from "./store-ops.js";

/**
 * Piscina task: one store operation (a batch write, channel bookkeeping, a history page) off the
 * worker's event loop. The AWS SDK costs 43–70 µs of event-loop time per item inline; here the
 * loop pays only the task hand-off (see scripts/persistence-bench.ts).
 */
const ops = new StoreOps(workerData as ConstructorParameters<typeof StoreOps>[0]);

export default function storeTask(task: StoreTask): Promise<StoreResults[StoreTask["op"]]> {
  return ops.run(task);
}
