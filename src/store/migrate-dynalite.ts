import { existsSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { dirname } from "node:path";
import { ListTablesCommand, ScanCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Logger } from "../shared/logger.js";
import { createDynamoClient } from "../persistence/aws-clients.js";
import { decodeContent } from "../persistence/content-codec.js";
import type { MessageDb, MessageRecord } from "./message-db.js";

/** Items per Scan page read from the old store (dynalite also stops a page at 1 MB). */
const SCAN_PAGE = 1_000;

export interface MigrationOptions {
  /** The directory of the dynalite-based store (DynamoDB tables over LevelDB). */
  legacyPath: string;
  /** Where its directory goes once everything is copied: kept, never deleted. */
  keepAs: string;
  db: MessageDb;
  tables: { messages: string; channels: string };
  log: Logger;
  /** Called after each page copied (the store reports progress to the primary). */
  onProgress?: (copied: { messages: number; channels: number }) => void;
}

export interface MigrationResult {
  messages: number;
  channels: number;
  /** Items that were not history (no channelName, messageId or createdAt), or that the new store refused. */
  skipped: number;
  /** Tables of the old store other than the two configured ones (not copied; still in `keptAt`). */
  otherTables: string[];
  keptAt: string;
}

/** True when `path` holds a LevelDB (the dynalite-based store's files). */
export function hasLegacyStore(path: string): boolean {
  return existsSync(`${path}/CURRENT`);
}

/**
 * Copies the dynalite-based store's `messages` and `channels` tables into the MessageDb, then
 * renames the old directory to `keepAs`: that rename is the "done" mark. Safe to run again after
 * a crash at any point before it: every copied message lands on the key a new write of it would
 * use (channel, createdAt, messageId), so a second pass rewrites the same entries.
 * The old store is read with dynalite itself, over its DynamoDB API on a loopback port.
 */
export async function migrateDynalite(options: MigrationOptions): Promise<MigrationResult> {
  const { legacyPath, db, tables, log, onProgress } = options;
  const { default: dynalite } = await import("dynalite");
  const server = dynalite({ path: legacyPath, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const client = createDynamoClient({
    region: "us-east-1",
    dynamodbEndpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sqsEndpoint: undefined,
    requestTimeoutMs: 120_000,
    localCredentials: true,
  });
  const result: MigrationResult = { messages: 0, channels: 0, skipped: 0, otherTables: [], keptAt: options.keepAs };
  try {
    const names = await listTables(client);
    result.otherTables = names.filter((n) => n !== tables.messages && n !== tables.channels);
    if (names.includes(tables.messages)) {
      for await (const items of scan(client, tables.messages)) {
        const records: MessageRecord[] = [];
        for (const item of items) {
          const record = toRecord(item);
          if (record) records.push(record);
          else result.skipped++;
        }
        const refusals = await db.write(records);
        for (const refusal of refusals) {
          log.warn({ messageId: records[refusal.index]!.messageId.toString(), reason: refusal.reason }, "an old message could not be copied");
        }
        result.skipped += refusals.length;
        result.messages += records.length - refusals.length;
        onProgress?.({ messages: result.messages, channels: result.channels });
      }
    }
    if (names.includes(tables.channels)) {
      for await (const items of scan(client, tables.channels)) {
        const channels = items.flatMap((item) => (item.channelName?.S ? [Buffer.from(item.channelName.S, "utf8")] : []));
        await db.noteChannels(channels);
        result.channels += channels.length;
        onProgress?.({ messages: result.messages, channels: result.channels });
      }
    }
  } finally {
    client.destroy();
    // dynalite's close() also closes its LevelDB (and its lock on the directory).
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await rename(legacyPath, options.keepAs);
  await syncDirectory(dirname(options.keepAs));
  return result;
}

async function listTables(client: DynamoDBClient): Promise<string[]> {
  const names: string[] = [];
  let start: string | undefined;
  do {
    const page = await client.send(new ListTablesCommand({ ExclusiveStartTableName: start }));
    names.push(...(page.TableNames ?? []));
    start = page.LastEvaluatedTableName;
  } while (start);
  return names;
}

async function* scan(client: DynamoDBClient, table: string): AsyncGenerator<Array<Record<string, AttributeValue>>> {
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: table, Limit: SCAN_PAGE, ExclusiveStartKey: start }));
    yield page.Items ?? [];
    start = page.LastEvaluatedKey;
  } while (start);
}

/** An old `messages` item as the new store's record; undefined when it was never history (no createdAt: not in the index). */
function toRecord(item: Record<string, AttributeValue>): MessageRecord | undefined {
  const channel = item.channelName?.S;
  const messageId = item.messageId?.S;
  const createdAt = item.createdAt?.S;
  if (!channel || !messageId || !createdAt) return undefined;
  return {
    channel: Buffer.from(channel, "utf8"),
    createdAt: Buffer.from(createdAt, "utf8"),
    messageId: Buffer.from(messageId, "utf8"),
    // decodeContent is what history reads of the old store returned: native attributes, or JSON text, in key order.
    content: Buffer.from(JSON.stringify(decodeContent(item)), "utf8"),
  };
}

async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
