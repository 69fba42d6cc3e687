import type { ChannelMessage, HistoryPage } from "../shared/contract.js";

export interface HistoryQuery {
  limit: number;
  sortDirection: "ascending" | "descending";
  lastEvaluatedKey: unknown;
}

/**
 * The outcome of queueing a message: refused at the queue's bound, or accepted with a promise
 * that settles once the message is durable (stored, or spilled to disk).
 */
export type Enqueued = { accepted: true; durable: Promise<void> } | { accepted: false };

/** Where published messages go after broadcast. Broadcast never waits for it. */
export interface PersistenceSink {
  /** Messages accepted and not yet durable (the metrics' queue depth). */
  readonly pending: number;
  /** Whether `enqueue` would accept a message now (the bounded queue has room, the sink is open). */
  hasRoom(): boolean;
  /** Queues a message for storage; `accepted: false` when the bounded queue is full. */
  enqueue(channel: string, message: ChannelMessage): Enqueued;
  /** Sends what is queued to the store now, without waiting for its batch to fill or age (drain). */
  flush(): void;
  /** Records that a channel is in use (the `channels` table); asynchronous and deduplicated. */
  noteChannel(channel: string): void;
  /** Stores or spills everything queued; called on shutdown. Idempotent. */
  close(): Promise<void>;
}

/** Reads one page of a channel's stored messages. */
export interface HistoryReader {
  page(channel: string, query: HistoryQuery): Promise<HistoryPage>;
}

/** PERSISTENCE=off: nothing is stored and history is always empty. */
const ALREADY_DURABLE: Enqueued = { accepted: true, durable: Promise.resolve() };

export class OffSink implements PersistenceSink, HistoryReader {
  readonly pending = 0;
  hasRoom(): boolean {
    return true;
  }
  enqueue(): Enqueued {
    return ALREADY_DURABLE;
  }
  noteChannel(): void {
    // Nothing to record when persistence is off.
  }
  flush(): void {
    // Nothing queued.
  }
  async close(): Promise<void> {
    // Nothing queued.
  }
  async page(): Promise<HistoryPage> {
    return { pastMessages: [] };
  }
}
