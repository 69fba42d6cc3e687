import { ClassicLevel } from "classic-level";
import { CHANNELS_RANGE, channelKey, channelRange, messageKey, messageValue, metaKey, splitMessageKey } from "./keys.js";

/** A message as the store takes it: every field as UTF-8 bytes, `content` as JSON text. */
export interface MessageRecord {
  channel: Buffer;
  createdAt: Buffer;
  messageId: Buffer;
  content: Buffer;
}

/** A record the store refuses for good, by its index in the write. */
export interface Refusal {
  index: number;
  reason: string;
}

export interface PageQuery {
  channel: Buffer;
  limit: number;
  ascending: boolean;
  /** The last item of the previous page: the page starts after it. */
  after?: { createdAt: Buffer; messageId: Buffer } | undefined;
}

export interface PageResult {
  /** The page's items as one JSON array of {content, createdAt}. */
  itemsJson: Buffer;
  /** The last item's key when more items follow. */
  next?: { createdAt: Buffer; messageId: Buffer };
}

/** Bounds on a stored message's fields, in bytes (the same as a spill line's, in UTF-8). */
export const RECORD_LIMITS = { channel: 8192, createdAt: 64, messageId: 1024 } as const;
/** A page stops growing past this many bytes of items (at least one item is returned), like a DynamoDB Query's 1 MB. */
export const PAGE_MAX_BYTES = 1024 * 1024;
/** Largest page limit the store serves. */
export const PAGE_LIMIT_MAX = 1000;

/**
 * LevelDB's memtable, 16 MiB instead of its 4: compaction (a background thread) took a third of
 * the store's CPU per message at the default, and about a fifth less in all with this (at most
 * two memtables are held in memory).
 */
const WRITE_BUFFER_BYTES = 16 * 1024 * 1024;

/** The layout version this code writes; a store written with another one is not opened. */
const FORMAT = "1";
const FORMAT_KEY = metaKey("format");

const OPEN = Buffer.from("[");
const COMMA = Buffer.from(",");
const CLOSE = Buffer.from("]");

type Batch = ReturnType<ClassicLevel<Buffer, Buffer>["batch"]>;

/**
 * The embedded store's data: messages and channel names in one LevelDB (keys.ts has the layout).
 * Writes are committed one LevelDB batch at a time: the writes that arrive while one commits
 * are gathered into the next, which commits as a whole (atomic, and with `sync` on, on disk:
 * one fsync of LevelDB's log) before any of them resolves. LevelDB would group concurrent
 * writers itself, but each waiting writer holds one of libuv's four pool threads, and history
 * reads need those threads too: under load they queued behind the writers.
 */
export class MessageDb {
  /** The batch gathering writes while another commits, and its writers' settlement. */
  private gathering: { batch: Batch; done: Promise<void>; resolve: () => void; reject: (err: Error) => void } | undefined;
  private committing = false;

  private constructor(
    private readonly db: ClassicLevel<Buffer, Buffer>,
    private readonly sync: boolean,
  ) {}

  /** Opens (creating) the store at `path`; refuses one written in another layout version. */
  static async open(path: string, options: { sync: boolean }): Promise<MessageDb> {
    const db = new ClassicLevel<Buffer, Buffer>(path, { keyEncoding: "buffer", valueEncoding: "buffer", writeBufferSize: WRITE_BUFFER_BYTES });
    await db.open();
    try {
      const format = (await db.get(FORMAT_KEY))?.toString("utf8");
      if (format === undefined) await db.put(FORMAT_KEY, Buffer.from(FORMAT), { sync: true });
      else if (format !== FORMAT) throw new Error(`${path} holds store format ${format}; this version reads format ${FORMAT}`);
    } catch (err) {
      await db.close();
      throw err;
    }
    return new MessageDb(db, options.sync);
  }

  /**
   * Stores messages in one batch; a message written again (same channel, createdAt and
   * messageId) is the same key, so replays never duplicate. Resolves with the refusals.
   */
  async write(records: readonly MessageRecord[]): Promise<Refusal[]> {
    const refusals: Refusal[] = [];
    const valid: MessageRecord[] = [];
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      const reason = invalid(r);
      if (reason) refusals.push({ index: i, reason });
      else valid.push(r);
    }
    if (valid.length > 0) {
      await this.commit((batch) => {
        for (const r of valid) batch.put(messageKey(r.channel, r.createdAt, r.messageId), messageValue(r.content, r.createdAt));
      });
    }
    return refusals;
  }

  /** Records channel names (the `channels` table's equivalent). */
  async noteChannels(names: readonly Buffer[]): Promise<void> {
    const valid = names.filter((name) => name.length > 0 && name.length <= RECORD_LIMITS.channel);
    if (valid.length === 0) return;
    const empty = Buffer.alloc(0);
    await this.commit((batch) => {
      for (const name of valid) batch.put(channelKey(name), empty);
    });
  }

  /** Adds puts to the gathering batch; resolves once that batch is committed. */
  private commit(put: (batch: Batch) => void): Promise<void> {
    if (!this.gathering) {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.gathering = { batch: this.db.batch(), done, resolve, reject };
    }
    put(this.gathering.batch);
    const { done } = this.gathering;
    if (!this.committing) void this.commitGathered();
    return done;
  }

  private async commitGathered(): Promise<void> {
    this.committing = true;
    while (this.gathering) {
      const { batch, resolve, reject } = this.gathering;
      this.gathering = undefined;
      try {
        await batch.write({ sync: this.sync });
        resolve();
      } catch (err) {
        reject(err as Error);
      }
    }
    this.committing = false;
  }

  /** One page of a channel's messages by (createdAt, messageId), oldest or newest first. */
  async page(q: PageQuery): Promise<PageResult> {
    const limit = Math.max(1, Math.min(PAGE_LIMIT_MAX, Math.floor(q.limit)));
    const range = channelRange(q.channel);
    const after = q.after ? messageKey(q.channel, q.after.createdAt, q.after.messageId) : undefined;
    // One more than the limit: whether it exists tells if another page follows.
    const options = q.ascending
      ? { gte: after ? undefined : range.gte, gt: after, lt: range.lt, limit: limit + 1 }
      : { gte: range.gte, lt: after ?? range.lt, reverse: true, limit: limit + 1 };
    const entries = await this.db.iterator(withoutUndefined(options)).all();
    const parts: Buffer[] = [OPEN];
    let bytes = 0;
    let taken = 0;
    while (taken < entries.length && taken < limit && (taken === 0 || bytes < PAGE_MAX_BYTES)) {
      const value = entries[taken]![1];
      if (taken > 0) parts.push(COMMA);
      parts.push(value);
      bytes += value.length;
      taken++;
    }
    parts.push(CLOSE);
    const itemsJson = Buffer.concat(parts);
    if (taken === entries.length) return { itemsJson };
    return { itemsJson, next: splitMessageKey(entries[taken - 1]![0]) };
  }

  /** Every channel name recorded, in byte order (for tools and tests; not on a hot path). */
  async channels(): Promise<string[]> {
    const names: string[] = [];
    for await (const key of this.db.keys(CHANNELS_RANGE)) {
      names.push(key.subarray(1).toString("utf8"));
    }
    return names;
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

/** Why a record cannot be stored, or undefined. */
function invalid(r: MessageRecord): string | undefined {
  if (r.channel.length === 0 || r.channel.length > RECORD_LIMITS.channel) return `channelName must be 1 to ${RECORD_LIMITS.channel} bytes`;
  if (r.createdAt.length === 0 || r.createdAt.length > RECORD_LIMITS.createdAt) return `createdAt must be 1 to ${RECORD_LIMITS.createdAt} bytes`;
  if (r.createdAt.includes(0)) return "createdAt must not contain NUL";
  if (r.messageId.length === 0 || r.messageId.length > RECORD_LIMITS.messageId) return `messageId must be 1 to ${RECORD_LIMITS.messageId} bytes`;
  if (r.content.length === 0) return "content is empty";
  return undefined;
}

function withoutUndefined<T extends object>(options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as T;
}
