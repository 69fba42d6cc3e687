import { resolve } from "node:path";
import Piscina from "piscina";
import type { EmbeddedStoreEndpoint } from "../shared/config.js";
import type { AwsSettings } from "./aws-clients.js";
import type { HistoryCursor, QueryPage } from "./dynamo-ops.js";
import type { StoredMessage } from "./record.js";
import type { WriteOutcome } from "./write-outcome.js";

/** Everything a store operation needs; plain data, handed to each pool thread as workerData. */
export interface StoreSettings extends AwsSettings {
  /** Where messages go: the embedded store, a DynamoDB table or an SQS queue. */
  target: "embedded" | "dynamodb" | "sqs";
  messagesTable: string;
  channelsTable: string;
  queueUrl: string | undefined;
  /** The embedded store's endpoint (target `embedded`). */
  embeddedStore: EmbeddedStoreEndpoint | undefined;
  /** Retries of throttled UnprocessedItems inside one attempt. */
  unprocessedRetries: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

/** One unit of store work, run on a pool thread (or inline). */
export type StoreTask =
  | { op: "write"; records: StoredMessage[] }
  | { op: "channels"; names: string[] }
  | { op: "page"; channel: string; limit: number; ascending: boolean; startKey: HistoryCursor | undefined }
  | { op: "ensureTables" }
  /** Loads the SDK client this thread will write with (its first task would otherwise pay it). */
  | { op: "warm" };

export interface StoreResults {
  write: WriteOutcome;
  channels: { failed: string[] };
  page: QueryPage;
  ensureTables: { created: string[] };
  warm: Record<string, never>;
}

export type StoreTaskOf<K extends StoreTask["op"]> = Extract<StoreTask, { op: K }>;

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
      filename: resolve(__dirname, "store-task.js"),
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
