import {
  BatchWriteItemCommand,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type DynamoDBClient,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { CREATED_AT_INDEX } from "./tables.js";
import { backoffMs, errorName, errorText, sleep } from "./backoff.js";
import { CONTENT_ENCODING_ATTRIBUTE, CONTENT_KEY_ORDER_ATTRIBUTE, decodeContent, encodeContent } from "./content-codec.js";
import type { StoredMessage } from "./record.js";
import { emptyOutcome, mergeOutcomes, type WriteOutcome } from "./write-outcome.js";

/** The part of a BatchWriteItem answer the writer reads. */
export interface BatchWriteAnswer {
  UnprocessedItems?: Record<string, WriteRequest[]>;
}

/**
 * Sends one BatchWriteItem (through the SDK, or some other way); rejects with an Error named
 * like the DynamoDB error type (`ValidationException`).
 */
export type BatchWrite = (table: string, requests: WriteRequest[]) => Promise<BatchWriteAnswer>;

/** DynamoDB's limit on items per BatchWriteItem. */
export const BATCH_WRITE_MAX = 25;

export interface RetryPolicy {
  /** Retries of UnprocessedItems within one attempt (throttling), with backoff and jitter. */
  unprocessedRetries: number;
  baseMs: number;
  maxMs: number;
}

/** The `messages` item of a stored message. */
export function messageItem(m: StoredMessage): Record<string, AttributeValue> {
  const { content, encoding, keyOrder } = encodeContent(m.content);
  const item: Record<string, AttributeValue> = {
    channelName: { S: m.channelName },
    messageId: { S: m.messageId },
    createdAt: { S: m.createdAt },
    content,
  };
  if (encoding) item[CONTENT_ENCODING_ATTRIBUTE] = { S: encoding };
  if (keyOrder) item[CONTENT_KEY_ORDER_ATTRIBUTE] = { S: keyOrder };
  return item;
}

const keyOf = (channelName: string, messageId: string) => `${channelName}\u0000${messageId}`;

/**
 * Stores messages with BatchWriteItem (≤ 25 per request, requests in parallel), retrying
 * UnprocessedItems with backoff and jitter. A ValidationException fails a whole request, so the
 * request is split into single PutItems to find the item at fault, which is `rejected`.
 * `batchWrite` sends the BatchWriteItems another way than the SDK; the client still does
 * everything else.
 */
export async function writeMessages(
  client: DynamoDBClient,
  table: string,
  records: StoredMessage[],
  policy: RetryPolicy,
  batchWrite: BatchWrite = sdkBatchWrite(client),
): Promise<WriteOutcome> {
  // One request may not name a key twice; a replay can hold the same message twice.
  const unique = new Map<string, StoredMessage>();
  for (const r of records) unique.set(keyOf(r.channelName, r.messageId), r);
  const list = [...unique.values()];
  const chunks: StoredMessage[][] = [];
  for (let i = 0; i < list.length; i += BATCH_WRITE_MAX) chunks.push(list.slice(i, i + BATCH_WRITE_MAX));
  return mergeOutcomes(await Promise.all(chunks.map((chunk) => writeChunk(client, batchWrite, table, chunk, policy))));
}

/** BatchWriteItem through the SDK client. */
export function sdkBatchWrite(client: DynamoDBClient): BatchWrite {
  return (table, requests) => client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
}

async function writeChunk(
  client: DynamoDBClient,
  batchWrite: BatchWrite,
  table: string,
  chunk: StoredMessage[],
  policy: RetryPolicy,
): Promise<WriteOutcome> {
  const outcome = emptyOutcome();
  let requests: WriteRequest[] = chunk.map((m) => ({ PutRequest: { Item: messageItem(m) } }));
  for (let attempt = 0; requests.length > 0; attempt++) {
    try {
      const response = await batchWrite(table, requests);
      requests = response.UnprocessedItems?.[table] ?? [];
    } catch (err) {
      if (errorName(err) === "ValidationException") return isolate(client, table, requests, err);
      outcome.error = errorText(err);
      break;
    }
    if (requests.length === 0 || attempt >= policy.unprocessedRetries) break;
    await sleep(backoffMs(attempt, policy.baseMs, policy.maxMs));
  }
  for (const r of requests) {
    const item = r.PutRequest?.Item;
    if (item) outcome.failed.push(item.messageId?.S ?? "");
  }
  if (requests.length > 0 && !outcome.error) outcome.error = `${requests.length} items still unprocessed (throttled)`;
  return outcome;
}

/** Puts each item alone so that one invalid item does not hold back the others. */
async function isolate(
  client: DynamoDBClient,
  table: string,
  requests: WriteRequest[],
  cause: unknown,
): Promise<WriteOutcome> {
  const outcomes = await Promise.all(
    requests.map(async (r): Promise<WriteOutcome> => {
      const item = r.PutRequest!.Item!;
      const messageId = item.messageId?.S ?? "";
      if (requests.length === 1) {
        // Already alone: the validation error is this item's own.
        return { failed: [], rejected: [{ messageId, reason: errorText(cause) }] };
      }
      try {
        await client.send(new PutItemCommand({ TableName: table, Item: item }));
        return emptyOutcome();
      } catch (err) {
        if (errorName(err) === "ValidationException") return { failed: [], rejected: [{ messageId, reason: errorText(err) }] };
        return { failed: [messageId], rejected: [], error: errorText(err) };
      }
    }),
  );
  return mergeOutcomes(outcomes);
}

/** Records channel names in the `channels` table; returns the names that could not be written. */
export async function writeChannels(client: DynamoDBClient, table: string, names: string[]): Promise<string[]> {
  const failed: string[] = [];
  const unique = [...new Set(names)];
  const chunks: string[][] = [];
  for (let i = 0; i < unique.length; i += BATCH_WRITE_MAX) chunks.push(unique.slice(i, i + BATCH_WRITE_MAX));
  await Promise.all(
    chunks.map(async (chunk) => {
      try {
        const response = await client.send(
          new BatchWriteItemCommand({
            RequestItems: { [table]: chunk.map((name) => ({ PutRequest: { Item: { channelName: { S: name } } } })) },
          }),
        );
        for (const r of response.UnprocessedItems?.[table] ?? []) failed.push(r.PutRequest?.Item?.channelName?.S ?? "");
      } catch {
        // Bookkeeping only: the caller forgets these names so that a later subscribe retries them.
        failed.push(...chunk);
      }
    }),
  );
  return failed;
}

/** The history cursor: the LSI's LastEvaluatedKey as plain strings. */
export interface HistoryCursor {
  channelName: string;
  messageId: string;
  createdAt: string;
}

export interface QueryPage {
  items: Array<{ content: unknown; createdAt: string }>;
  lastEvaluatedKey?: HistoryCursor;
}

/** One page of a channel's messages through createdAtIndex, oldest or newest first. */
export async function queryPage(
  client: DynamoDBClient,
  table: string,
  query: { channel: string; limit: number; ascending: boolean; startKey: HistoryCursor | undefined },
): Promise<QueryPage> {
  const response = await client.send(
    new QueryCommand({
      TableName: table,
      IndexName: CREATED_AT_INDEX,
      KeyConditionExpression: "channelName = :channel",
      ExpressionAttributeValues: { ":channel": { S: query.channel } },
      ScanIndexForward: query.ascending,
      Limit: query.limit,
      ...(query.startKey
        ? {
            ExclusiveStartKey: {
              channelName: { S: query.startKey.channelName },
              messageId: { S: query.startKey.messageId },
              createdAt: { S: query.startKey.createdAt },
            },
          }
        : {}),
    }),
  );
  const items = (response.Items ?? []).map((item) => ({
    content: decodeContent(item),
    createdAt: item.createdAt?.S ?? "",
  }));
  const lek = response.LastEvaluatedKey;
  const cursor =
    lek?.channelName?.S !== undefined && lek.messageId?.S !== undefined && lek.createdAt?.S !== undefined
      ? { channelName: lek.channelName.S, messageId: lek.messageId.S, createdAt: lek.createdAt.S }
      : undefined;
  return cursor ? { items, lastEvaluatedKey: cursor } : { items };
}
