import { join } from "node:path";
import type { Config } from "../../shared/config.js";
import type { Logger } from "../../shared/logger.js";
import { BatchingSink } from "./batcher.js";
import { StoreHistoryReader } from "./history-reader.js";
import { OffSink, type HistoryReader, type PersistenceSink } from "./sink.js";
import { SpillFile } from "./spill-file.js";
import { storeSettingsFrom } from "./store-settings.js";
import { PooledStoreRunner } from "./store-runner.js";

export interface Persistence {
  sink: PersistenceSink;
  history: HistoryReader;
  /** Settles once the pool's first thread has loaded the store code and its SDK client. */
  warmed: Promise<void>;
}

/**
 * Builds the worker's persistence from PERSISTENCE: `off`, or a batching sink over the store
 * (embedded store, DynamoDB or SQS) with a history reader sharing its thread pool.
 * `slot` is the worker's stable index, which names its spill file.
 */
export function createPersistence(config: Config, log: Logger, slot: number): Persistence {
  const p = config.persistence;
  if (p.sink === "off") {
    const off = new OffSink();
    return { sink: off, history: off, warmed: Promise.resolve() };
  }
  if (p.sink === "embedded" && !p.dynamodbEndpoint) {
    throw new Error("PERSISTENCE=embedded but the primary passed no store endpoint");
  }
  const runner = new PooledStoreRunner(storeSettingsFrom(p), config.poolThreads);
  const sink = new BatchingSink({
    runner,
    spill: new SpillFile(join(config.dataDir, "spill"), slot, p.spillMaxBytes, log.child({ component: "spill" })),
    tuning: p,
    // Half the shutdown budget for the store; the rest covers closing sockets and spilling.
    flushTimeoutMs: Math.floor(config.shutdownTimeoutMs / 2),
    workerCount: config.workers,
    log,
  });
  // The embedded store creates its tables itself; a development endpoint gets them here.
  if (p.createTables && p.sink !== "embedded") {
    runner.run({ op: "ensureTables" }).then(
      ({ created }) => {
        if (created.length > 0) log.info({ tables: created }, "created missing tables");
      },
      (err: unknown) => log.warn({ err }, "could not create the tables (writes are retried and spilled meanwhile)"),
    );
  }
  log.info({ sink: p.sink, target: p.sink === "sqs" ? p.queueUrl : p.messagesTable }, "persistence ready");
  // A worker reports ready once this settles: its first message then pays no SDK load, and the
  // process has reached its working size (a thread loading the AWS SDK adds ~20 MiB).
  const warmed = runner.run({ op: "warm" }).then(
    () => undefined,
    (err: unknown) => {
      // A shutdown during start terminates the thread mid-load: expected, not a fault.
      if (runner.closing) log.debug({ err }, "the persistence pool closed while loading the store client");
      else log.warn({ err }, "the persistence pool could not load the store client (writes are retried and spilled)");
    },
  );
  return { sink, history: new StoreHistoryReader(runner), warmed };
}
