import type { Logger } from "../shared/logger.js";
import { errorText } from "../persistence/backoff.js";
import { parseStored, type StoredMessage } from "../persistence/record.js";
import type { StoreRunner } from "../persistence/store-runner.js";

/** An SQS record as both the Lambda event and ReceiveMessage give it. */
export interface QueueRecord {
  /** SQS's id of the delivery (what batchItemFailures names), not our messageId. */
  messageId: string;
  body: string;
}

/**
 * Writes every record's message to the `messages` table and returns the SQS ids of the records
 * that are not stored: malformed bodies, items the table refused, writes that failed. Those
 * stay on the queue (redelivered, then dead-lettered by the queue's redrive policy); the rest
 * may be deleted. The messageId is the key, so a redelivered record is stored once.
 */
export async function storeRecords(runner: StoreRunner, records: QueueRecord[], log: Logger): Promise<string[]> {
  const failed = new Set<string>();
  const bySqsId = new Map<string, StoredMessage>();
  for (const record of records) {
    const parsed = typeof record.body === "string" ? parseStored(record.body) : { error: "body is not a string" };
    if ("error" in parsed) {
      log.warn({ sqsMessageId: record.messageId, error: parsed.error }, "malformed queue message: left for the dead-letter queue");
      failed.add(record.messageId);
    } else bySqsId.set(record.messageId, parsed);
  }
  if (bySqsId.size > 0) {
    try {
      const outcome = await runner.run({ op: "write", records: [...bySqsId.values()] });
      const notStored = new Set([...outcome.failed, ...outcome.rejected.map((r) => r.messageId)]);
      for (const [sqsId, message] of bySqsId) if (notStored.has(message.messageId)) failed.add(sqsId);
      if (outcome.rejected.length > 0) log.error({ rejected: outcome.rejected }, "the table refused messages");
      if (outcome.failed.length > 0) log.warn({ count: outcome.failed.length, error: outcome.error }, "messages not stored, left on the queue");
    } catch (err) {
      log.error({ err: errorText(err) }, "write failed: every record of the batch is left on the queue");
      for (const sqsId of bySqsId.keys()) failed.add(sqsId);
    }
  }
  return records.map((r) => r.messageId).filter((id) => failed.has(id));
}
