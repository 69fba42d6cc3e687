import { join } from "node:path";
import type { Config } from "../shared/config.js";
import type { Logger } from "../shared/logger.js";
import { workerMetrics } from "./metrics.js";
import { BatchingSink } from "../persistence/batcher.js";
import { EmbeddedStoreClient } from "../persistence/embedded-client.js";
import { StoreHistoryReader } from "../persistence/history-reader.js";
import { OffSink, type HistoryReader, type PersistenceSink } from "../persistence/sink.js";
import { SpillFile } from "../persistence/spill-file.js";
import { storeSettingsFrom } from "../persistence/store-settings.js";
import { PooledStoreRunner, type StoreRunner } from "../persistence/store-runner.js";

export interface Persistence {
  sink: PersistenceSink;
  history: HistoryReader;
  /** Settles once the store answered (embedded), or the pool's first thread has loaded its SDK client. */
  warmed: Promise<void>;
}

/**
 * Builds the worker's persistence from PERSISTENCE: `off`, or a batching sink over the store
 * with a history reader sharing its runner: a thread pool running the AWS SDK (DynamoDB, SQS),
 * or the embedded store's connection on the event loop. There the pool would save about 2 µs of
 * event-loop time per message at full batches, but costs the worker more CPU in all (its
 * hand-offs: 12.5 against 10.8 µs per message at batches of 100, 25-31 against 20 at 10) and
 * stores fewer messages per second (docs/persistence.md, "Measured").
 * `slot` is the worker's stable index, which names its spill file.
 */
export function createPersistence(config: Config, log: Logger, slot: number): Persistence {
  const p = config.persistence;
  if (p.sink === "off") {
    const off = new OffSink();
    return { sink: off, history: off, warmed: Promise.resolve() };
  }
  let runner: StoreRunner;
  if (p.sink === "embedded") {
    if (!p.embeddedStore) throw new Error("PERSISTENCE=embedded but the primary passed no store endpoint");
    runner = new EmbeddedStoreClient(p.embeddedStore, p.requestTimeoutMs);
  } else runner = new PooledStoreRunner(storeSettingsFrom(p), config.poolThreads);
  const sink = new BatchingSink({
    runner,
    spill: new SpillFile(join(config.dataDir, "spill"), slot, p.spillMaxBytes, log.child({ component: "spill" })),
    tuning: p,
    // Half the shutdown budget for the store; the rest covers closing sockets and spilling.
    flushTimeoutMs: Math.floor(config.shutdownTimeoutMs / 2),
    workerCount: config.workers,
    log,
    counters: workerMetrics,
  });
  // A development DynamoDB endpoint gets its tables here (the embedded store has none to create).
  if (p.createTables && p.sink !== "embedded") {
    runner.run({ op: "ensureTables" }).then(
      ({ created }) => {
        if (created.length > 0) log.info({ tables: created }, "created missing tables");
      },
      (err: unknown) => log.warn({ err }, "could not create the tables (writes are retried and spilled meanwhile)"),
    );
  }
  const target = p.sink === "sqs" ? p.queueUrl : p.sink === "embedded" ? `127.0.0.1:${p.embeddedStore?.port}` : p.messagesTable;
  log.info({ sink: p.sink, target }, "persistence ready");
  // A worker reports ready once this settles: its first message then pays no connect or SDK
  // load, and the process has reached its working size (a thread loading the AWS SDK adds ~20 MiB).
  const warmed = runner.run({ op: "warm" }).then(
    () => undefined,
    (err: unknown) => {
      // A shutdown during start ends the connection or the thread mid-way: expected, not a fault.
      if (runner.closing) log.debug({ err }, "persistence closed while reaching the store");
      else log.warn({ err }, "could not reach the store at start (writes are retried and spilled)");
    },
  );
  return { sink, history: new StoreHistoryReader(runner), warmed };
}
