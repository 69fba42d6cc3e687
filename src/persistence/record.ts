import { z } from "zod";
import type { ChannelMessage } from "../shared/contract.js";

/**
 * A message as it is stored: the `messages` item, the SQS body and a spill-file line all have
 * this shape (docs/protocol.md, "Storage layout"). `messageId` is the key, so writing it twice is harmless.
 */
export interface StoredMessage {
  channelName: string;
  messageId: string;
  content: unknown;
  createdAt: string;
}

export function toStored(channelName: string, message: ChannelMessage): StoredMessage {
  return { channelName, messageId: message.messageId, content: message.content, createdAt: message.createdAt };
}

/** Bounds on what a stored message from outside (an SQS body, a spill line) may look like. */
const storedMessageSchema = z.object({
  channelName: z.string().min(1).max(2048),
  messageId: z.string().min(1).max(256),
  content: z.unknown(),
  createdAt: z.string().min(1).max(64),
});

/** Parses a stored message from untrusted JSON text; returns an error sentence when it is not one. */
export function parseStored(text: string): StoredMessage | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `not JSON: ${(err as Error).message}` };
  }
  const parsed = storedMessageSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { error: `${issue?.path.join(".") || "body"}: ${issue?.message}` };
  }
  if (!Object.prototype.hasOwnProperty.call(value, "content") || parsed.data.content === undefined) {
    return { error: "content: missing" };
  }
  return parsed.data as StoredMessage;
}

/** The JSON line / SQS body of a message: exactly {channelName, messageId, content, createdAt}. */
export function serializeStored(m: StoredMessage): string {
  return JSON.stringify({ channelName: m.channelName, messageId: m.messageId, content: m.content, createdAt: m.createdAt });
}
