import type { AddressInfo } from "node:net";
import { PutItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import dynalite from "dynalite";
import { ensureTables } from "../../src/persistence/tables.js";
import { queryPage, writeChannels, writeMessages, type HistoryCursor, type QueryPage } from "../../src/persistence/dynamo-ops.js";
import type { StoredMessage } from "../../src/persistence/record.js";
import { dynamoClient } from "./aws.js";

/** The store layout of the versions whose embedded store was dynalite: these tables under DATA_DIR/store. */
export const LEGACY_TABLES = { messages: "messages", channels: "channels" };

/**
 * Opens a store as the dynalite-based embedded store kept it (dynalite over LevelDB at `path`,
 * the tables of src/persistence/tables.ts) and hands `use` a client for it; closes it after.
 */
export async function withLegacyStore<T>(path: string, use: (store: LegacyStore) => Promise<T>): Promise<T> {
  const server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const client = dynamoClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    await ensureTables(client, LEGACY_TABLES);
    return await use(new LegacyStore(client));
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Writes and reads as the previous version did: the `messages` items of dynamo-ops.ts. */
export class LegacyStore {
  constructor(readonly client: DynamoDBClient) {}

  async write(records: StoredMessage[]): Promise<void> {
    const outcome = await writeMessages(this.client, LEGACY_TABLES.messages, records, { unprocessedRetries: 3, baseMs: 10, maxMs: 100 });
    if (outcome.failed.length + outcome.rejected.length > 0) throw new Error(`legacy write failed: ${JSON.stringify(outcome)}`);
  }

  async channels(names: string[]): Promise<void> {
    const failed = await writeChannels(this.client, LEGACY_TABLES.channels, names);
    if (failed.length > 0) throw new Error(`legacy channels failed: ${failed.join(", ")}`);
  }

  /** An item that was never history: no createdAt, so the previous version's index never showed it. */
  async putWithoutCreatedAt(channelName: string, messageId: string): Promise<void> {
    await this.client.send(
      new PutItemCommand({ TableName: LEGACY_TABLES.messages, Item: { channelName: { S: channelName }, messageId: { S: messageId }, content: { S: "x" } } }),
    );
  }

  /** A history page as the previous version answered it (its cursor is what clients hold). */
  page(channel: string, limit: number, ascending: boolean, startKey?: HistoryCursor): Promise<QueryPage> {
    return queryPage(this.client, LEGACY_TABLES.messages, { channel, limit, ascending, startKey });
  }
}
