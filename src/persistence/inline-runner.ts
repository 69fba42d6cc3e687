import { StoreOps, type StoreResults, type StoreSettings, type StoreTask, type StoreTaskOf } from "./store-ops.js";
import type { StoreRunner } from "./store-runner.js";

/** The same operations on the calling thread's event loop. */
export class InlineStoreRunner implements StoreRunner {
  private readonly ops: StoreOps;
  closing = false;

  constructor(settings: StoreSettings) {
    this.ops = new StoreOps(settings);
  }

  run<K extends StoreTask["op"]>(task: StoreTaskOf<K>): Promise<StoreResults[K]> {
    return this.ops.run(task);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.ops.destroy();
  }
}
