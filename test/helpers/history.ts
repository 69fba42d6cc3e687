import type { Socket } from "socket.io-client";
import { request } from "./client.js";

type Page = { success: boolean; error?: string; pastMessages: Array<{ content: unknown }>; lastEvaluatedKey?: unknown };

/** Every message content of a channel, paging through history oldest first; throws if a page fails. */
export async function readAll(s: Socket, channel: string): Promise<unknown[]> {
  const seen: unknown[] = [];
  let key: unknown = null;
  do {
    const page = await request<Page>(s, "channel:history", channel, 100, "ascending", key);
    if (!page.success) throw new Error(`history failed: ${page.error}`);
    seen.push(...page.pastMessages.map((m) => m.content));
    key = page.lastEvaluatedKey;
  } while (key !== undefined);
  return seen;
}
