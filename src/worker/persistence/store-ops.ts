import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { ensureTables } from "../../store/tables.js";
import { createDynamoClient, createSqsClient, type AwsSettings } from "./aws-clients.js";
import { queryPage, writeChannels, writeMessages, type HistoryCursor, type QueryPage } from "./dynamo-ops.js";
import type { StoredMessage } from "./record.js";
import { sendMessages } from "./sqs-ops.js";
import type { EmbeddedStoreEndpoint } from "../../shared/config.js";
import { EmbeddedStoreClient } from "./embedded-client.js";
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
 * Runs store tasks against the embedded store, DynamoDB or SQS. With SQS, histories and channel
 * bookkeeping use DynamoDB (the consumer fills the `messages` table the server reads).
 * Clients are created on first use, so a thread that only reads never builds an SQS client.
 */
export class StoreOps {
  private dynamo: DynamoDBClient | undefined;
  private sqs: SQSClient | undefined;
  private embedded: EmbeddedStoreClient | undefined;

  constructor(private readonly settings: StoreSettings) {}

  run<K extends StoreTask["op"]>(task: StoreTaskOf<K>): Promise<StoreResults[K]>;
  async run(task: StoreTask): Promise<StoreResults[StoreTask["op"]]> {
    const s = this.settings;
    if (s.target === "embedded") return this.embeddedClient().run(task);
    switch (task.op) {
      case "write":
        if (s.target === "sqs") return sendMessages(this.sqsClient(), s.queueUrl!, task.records);
        return writeMessages(this.dynamoClient(), s.messagesTable, task.records, {
          unprocessedRetries: s.unprocessedRetries,
          baseMs: s.retryBaseMs,
          maxMs: s.retryMaxMs,
        });
      case "channels":
        return { failed: await writeChannels(this.dynamoClient(), s.channelsTable, task.names) };
      case "page":
        return queryPage(this.dynamoClient(), s.messagesTable, task);
      case "ensureTables":
        return { created: await ensureTables(this.dynamoClient(), { messages: s.messagesTable, channels: s.channelsTable }) };
      case "warm":
        if (s.target === "sqs") this.sqsClient();
        else this.dynamoClient();
        return {};
      default: {
        const never: never = task;
        throw new Error(`unknown store task ${JSON.stringify(never)}`);
      }
    }
  }

  async destroy(): Promise<void> {
    this.dynamo?.destroy();
    this.sqs?.destroy();
    await this.embedded?.close();
  }

  private embeddedClient(): EmbeddedStoreClient {
    const endpoint = this.settings.embeddedStore;
    if (!endpoint) throw new Error("the embedded store's endpoint is not configured");
    return (this.embedded ??= new EmbeddedStoreClient(endpoint, this.settings.requestTimeoutMs));
  }

  private dynamoClient(): DynamoDBClient {
    return (this.dynamo ??= createDynamoClient(this.settings));
  }

  private sqsClient(): SQSClient {
    return (this.sqs ??= createSqsClient(this.settings));
  }
}
