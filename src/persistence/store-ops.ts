import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { ensureTables } from "./tables.js";
import { createDynamoClient, createSqsClient } from "./aws-clients.js";
import { queryPage, writeChannels, writeMessages } from "./dynamo-ops.js";
import { sendMessages } from "./sqs-ops.js";
import { EmbeddedStoreClient } from "./embedded-client.js";
import type { StoreResults, StoreSettings, StoreTask, StoreTaskOf } from "./store-runner.js";

export type { StoreResults, StoreSettings, StoreTask, StoreTaskOf } from "./store-runner.js";

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
