import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, type SQSClient } from "@aws-sdk/client-sqs";
import { errorName, errorText } from "./backoff.js";
import { serializeStored, type StoredMessage } from "./record.js";
import { emptyOutcome, mergeOutcomes, type WriteOutcome } from "./write-outcome.js";

/** SQS's limits on SendMessageBatch: entries per request, and bytes of all bodies together. */
export const SEND_BATCH_MAX_ENTRIES = 10;
export const SEND_BATCH_MAX_BYTES = 262_144;

/** Errors that concern a request's content rather than the queue: retrying the same entries cannot help. */
const CONTENT_ERRORS = new Set(["BatchRequestTooLong", "InvalidMessageContents", "InvalidParameterValue", "MessageTooLong"]);

interface Entry {
  message: StoredMessage;
  body: string;
  bytes: number;
}

/**
 * Sends messages with SendMessageBatch (≤ 10 entries and ≤ 256 KiB per request, requests in
 * parallel). Entries in Failed[] are retried by the caller, except sender faults, which are
 * `rejected`. A FIFO queue (URL ending in .fifo) gets the channel as MessageGroupId and the
 * messageId as MessageDeduplicationId.
 */
export async function sendMessages(client: SQSClient, queueUrl: string, records: StoredMessage[]): Promise<WriteOutcome> {
  const outcome = emptyOutcome();
  const requests: Entry[][] = [];
  let current: Entry[] = [];
  let currentBytes = 0;
  for (const message of records) {
    const body = serializeStored(message);
    const bytes = Buffer.byteLength(body, "utf8");
    if (bytes > SEND_BATCH_MAX_BYTES) {
      outcome.rejected.push({ messageId: message.messageId, reason: `body is ${bytes} bytes, above SQS's ${SEND_BATCH_MAX_BYTES}` });
      continue;
    }
    if (current.length === SEND_BATCH_MAX_ENTRIES || currentBytes + bytes > SEND_BATCH_MAX_BYTES) {
      requests.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push({ message, body, bytes });
    currentBytes += bytes;
  }
  if (current.length > 0) requests.push(current);
  const fifo = queueUrl.endsWith(".fifo");
  const sent = await Promise.all(requests.map((entries) => sendRequest(client, queueUrl, entries, fifo)));
  return mergeOutcomes([outcome, ...sent]);
}

async function sendRequest(client: SQSClient, queueUrl: string, entries: Entry[], fifo: boolean): Promise<WriteOutcome> {
  const request: SendMessageBatchRequestEntry[] = entries.map((e, i) => ({
    Id: String(i),
    MessageBody: e.body,
    ...(fifo ? { MessageGroupId: e.message.channelName, MessageDeduplicationId: e.message.messageId } : {}),
  }));
  try {
    const response = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: request }));
    const outcome = emptyOutcome();
    // Failed[] must be read even when the call succeeds: SQS accepts a batch partly.
    for (const failure of response.Failed ?? []) {
      const entry = entries[Number(failure.Id)];
      if (!entry) continue;
      const reason = `${failure.Code ?? "Failed"}: ${failure.Message ?? ""}`;
      if (failure.SenderFault) outcome.rejected.push({ messageId: entry.message.messageId, reason });
      else {
        outcome.failed.push(entry.message.messageId);
        outcome.error = reason;
      }
    }
    return outcome;
  } catch (err) {
    if (CONTENT_ERRORS.has(errorName(err))) {
      if (entries.length === 1) return { failed: [], rejected: [{ messageId: entries[0]!.message.messageId, reason: errorText(err) }] };
      // Send each alone to find the entry at fault.
      return mergeOutcomes(await Promise.all(entries.map((e) => sendRequest(client, queueUrl, [e], fifo))));
    }
    return { failed: entries.map((e) => e.message.messageId), rejected: [], error: errorText(err) };
  }
}
