import { z } from "zod";
import { ErrorCode } from "../shared/errors.js";
import type { HistoryPage } from "../shared/contract.js";
import type { HistoryCursor } from "./dynamo-ops.js";
import type { HistoryQuery, HistoryReader } from "./sink.js";
import type { StoreRunner } from "./store-runner.js";

/** History reads waiting for the store per worker; beyond it a read is refused with OVERLOADED. */
export const HISTORY_IN_FLIGHT_MAX = 256;

/** A history request the client can fix or retry: carries the code of its failure ack. */
export class HistoryRequestError extends Error {
  constructor(
    readonly code: typeof ErrorCode.INVALID_ARGUMENT | typeof ErrorCode.OVERLOADED,
    message: string,
  ) {
    super(message);
    this.name = "HistoryRequestError";
  }
}

/** The cursor we hand out is the index's LastEvaluatedKey; it comes back from clients, so it is checked. */
const cursorSchema = z
  .object({
    channelName: z.string().min(1).max(2048),
    messageId: z.string().min(1).max(256),
    createdAt: z.string().min(1).max(64),
  })
  .strict();

export function parseCursor(channel: string, raw: unknown): HistoryCursor | undefined {
  if (raw === undefined || raw === null) return undefined;
  const parsed = cursorSchema.safeParse(raw);
  if (!parsed.success) {
    throw new HistoryRequestError(ErrorCode.INVALID_ARGUMENT, "lastEvaluatedKey is not a cursor this server handed out");
  }
  if (parsed.data.channelName !== channel) {
    throw new HistoryRequestError(ErrorCode.INVALID_ARGUMENT, "lastEvaluatedKey belongs to another channel");
  }
  return parsed.data;
}

/** Reads history pages from the `messages` table through createdAtIndex, on the store runner. */
export class StoreHistoryReader implements HistoryReader {
  private inFlight = 0;

  constructor(private readonly runner: StoreRunner) {}

  async page(channel: string, query: HistoryQuery): Promise<HistoryPage> {
    const startKey = parseCursor(channel, query.lastEvaluatedKey);
    if (this.inFlight >= HISTORY_IN_FLIGHT_MAX) {
      throw new HistoryRequestError(ErrorCode.OVERLOADED, "too many history reads in progress, retry later");
    }
    this.inFlight++;
    try {
      const page = await this.runner.run({
        op: "page",
        channel,
        limit: query.limit,
        ascending: query.sortDirection === "ascending",
        startKey,
      });
      return page.lastEvaluatedKey
        ? { pastMessages: page.items, lastEvaluatedKey: page.lastEvaluatedKey }
        : { pastMessages: page.items };
    } finally {
      this.inFlight--;
    }
  }
}
