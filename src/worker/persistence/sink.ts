import type { ChannelMessage, HistoryPage } from "../../shared/contract.js";

export interface HistoryQuery {
  limit: number;
  sortDirection: "ascending" | "descending";
  lastEvaluatedKey: unknown;
}

/** Where published messages go after broadcast. Broadcast never waits for it. */
export interface PersistenceSink {
  /** Queues a message for storage; "overloaded" when the bounded queue is full. */
  enqueue(channel: string, message: ChannelMessage): "queued" | "overloaded";
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
export class OffSink implements PersistenceSink, HistoryReader {
  enqueue(): "queued" {
    return "queued";
  }
  noteChannel(): void {
    // Nothing to record when persistence is off.
  }
  async close(): Promise<void> {
    // Nothing queued.
  }
  async page(): Promise<HistoryPage> {
    return { pastMessages: [] };
  }
}
