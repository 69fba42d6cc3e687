/**
 * How the embedded store lays messages and channels out in LevelDB (bytewise key order):
 *
 *   message: "m" | u32be byteLength(channel) | channel | createdAt | 0x00 | messageId
 *            → {"content":<content JSON>,"createdAt":<createdAt JSON>}
 *   channel: "c" | channel → (empty)
 *   meta:    "M" | name → UTF-8 text
 *
 * A channel's messages are one contiguous range sorted by (createdAt, messageId), the order of
 * the DynamoDB layout's createdAtIndex, so a history page is one range read in either direction.
 * The length prefix keeps one channel's range apart from every other channel's whatever their
 * bytes; the 0x00 after createdAt (which may not contain it) makes a shorter createdAt sort
 * first, as in a string comparison. The value is the history item itself, so a page is the
 * values joined. UTF-8 never holds 0xFF, which closes a channel's range from above.
 */

const MESSAGE = 0x6d; // "m"
const CHANNEL = 0x63; // "c"
const META = 0x4d; // "M"
const RANGE_END = 0xff;

/** The prefix shared by every message key of a channel. */
export function channelPrefix(channel: Buffer): Buffer {
  const key = Buffer.allocUnsafe(5 + channel.length);
  key[0] = MESSAGE;
  key.writeUInt32BE(channel.length, 1);
  key.set(channel, 5);
  return key;
}

export function messageKey(channel: Buffer, createdAt: Buffer, messageId: Buffer): Buffer {
  const key = Buffer.allocUnsafe(5 + channel.length + createdAt.length + 1 + messageId.length);
  key[0] = MESSAGE;
  key.writeUInt32BE(channel.length, 1);
  let off = 5;
  key.set(channel, off);
  off += channel.length;
  key.set(createdAt, off);
  off += createdAt.length;
  key[off++] = 0;
  key.set(messageId, off);
  return key;
}

/** The bounds of a channel's messages: every key k of the channel has gte <= k < lt. */
export function channelRange(channel: Buffer): { gte: Buffer; lt: Buffer } {
  const gte = channelPrefix(channel);
  const lt = Buffer.allocUnsafe(gte.length + 1);
  gte.copy(lt);
  lt[gte.length] = RANGE_END;
  return { gte, lt };
}

/** createdAt and messageId of a message key (views into it). */
export function splitMessageKey(key: Buffer): { createdAt: Buffer; messageId: Buffer } {
  const start = 5 + key.readUInt32BE(1);
  const sep = key.indexOf(0, start);
  return { createdAt: key.subarray(start, sep), messageId: key.subarray(sep + 1) };
}

export function channelKey(channel: Buffer): Buffer {
  const key = Buffer.allocUnsafe(1 + channel.length);
  key[0] = CHANNEL;
  key.set(channel, 1);
  return key;
}

/** The range of every channel key. */
export const CHANNELS_RANGE = { gte: Buffer.from([CHANNEL]), lt: Buffer.from([CHANNEL + 1]) };
/** The range of every message key. */
export const MESSAGES_RANGE = { gte: Buffer.from([MESSAGE]), lt: Buffer.from([MESSAGE + 1]) };

export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.from([META]), Buffer.from(name, "utf8")]);
}

const CONTENT_HEAD = Buffer.from('{"content":');
const CREATED_AT_HEAD = Buffer.from(',"createdAt":');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The stored value of a message: its history item as JSON text (content is JSON text already). */
export function messageValue(contentJson: Buffer, createdAt: Buffer): Buffer {
  const createdAtJson = plainAscii(createdAt) ? undefined : Buffer.from(JSON.stringify(createdAt.toString("utf8")));
  const createdAtLength = createdAtJson ? createdAtJson.length : createdAt.length + 2;
  const value = Buffer.allocUnsafe(CONTENT_HEAD.length + contentJson.length + CREATED_AT_HEAD.length + createdAtLength + 1);
  let off = CONTENT_HEAD.copy(value, 0);
  off += contentJson.copy(value, off);
  off += CREATED_AT_HEAD.copy(value, off);
  if (createdAtJson) off += createdAtJson.copy(value, off);
  else {
    value[off++] = QUOTE;
    off += createdAt.copy(value, off);
    value[off++] = QUOTE;
  }
  value[off] = 0x7d; // "}"
  return value;
}

/** True when the bytes need no escaping inside a JSON string (an ISO-8601 time always does not). */
function plainAscii(bytes: Buffer): boolean {
  for (const b of bytes) if (b < 0x20 || b >= 0x7f || b === QUOTE || b === BACKSLASH) return false;
  return true;
}
