import type { Redis } from "ioredis";
import { MessageType } from "socket.io-adapter";
import type { Logger } from "../../shared/logger.js";
import { entryJson, ownPrefix, parseLoggedBroadcast, type LogChannels, type LoggedBroadcast } from "./broadcast-log.js";
import { compareStreamIds } from "./stream-broadcasts.js";

/** Stream entries read per XRANGE call while catching up. */
const CATCH_UP_PAGE = 500;
/**
 * Live messages kept while a catch-up reads the stream. Past this they are dropped and the
 * catch-up reads the stream once more instead (it holds them all, in order).
 */
export const MAX_BUFFERED = 50_000;
/** Channels per SUBSCRIBE command when a connection comes back. */
const SUBSCRIBE_CHUNK = 1_000;

/** An own logged broadcast heard back through the adapter's own channel: its count only. */
export interface OwnEcho {
  uid: string;
  type: MessageType.BROADCAST;
  data: { n: number };
}

export interface RoomSubscriptionsOptions {
  /** The command connection (stream reads). */
  redis: Redis;
  /** A connection of its own for pub/sub, with ioredis' `autoResubscribe` off (done here, then caught up). */
  subscriber: Redis;
  streamName: string;
  channels: LogChannels;
  uid: string;
  nsp: string;
  log: Logger;
  /** A logged broadcast for this worker: in stream order, each entry once. */
  onEntry(id: string, message: LoggedBroadcast | OwnEcho): void;
  /** A cluster message on the node-wide channel (JSON). */
  onNode(json: string): void;
  /** An answer to one of this adapter's requests (JSON). */
  onResponse(json: string): void;
  /** Whether a logged broadcast of another worker would have reached this one (the catch-up's filter). */
  wanted(message: LoggedBroadcast): boolean;
}

/**
 * The worker's subscriber connection: one channel per room it has members in, plus the
 * node-wide, all-sockets, own and response channels. It hands on every logged broadcast once,
 * in stream order: a second copy (a broadcast to two of its rooms) is dropped by its entry id.
 *
 * When the connection comes back after a drop, everything published meanwhile is read from the
 * stream (the recovery log): the channels are subscribed again first, then the stream is read
 * from the last entry handed on to its end, while live messages wait in a buffer; the buffer
 * then goes out with what the read already handed on left out. A gap the stream no longer holds
 * is logged as an error.
 */
export class RoomSubscriptions {
  /** Rooms subscribed (true once Redis confirmed) or being subscribed (the pending SUBSCRIBE). */
  private readonly rooms = new Map<string, Promise<void> | true>();
  /** The last entry handed on (or the stream's end when first connected): where a catch-up starts. */
  private cursor: string | undefined;
  /** Live messages held while a catch-up reads the stream. */
  private buffer: Array<[channel: string, message: string]> | undefined;
  private overflowed = false;
  private catchingUp = false;
  private again = false;
  private closed = false;
  private readonly fixed: string[];
  private readonly ownChannel: string;
  private readonly responseChannel: string;
  private readonly ownPrefix: string;
  private startedResolve!: () => void;
  /** Settles once the fixed channels are subscribed for the first time. */
  readonly started = new Promise<void>((resolve) => (this.startedResolve = resolve));

  constructor(private readonly opts: RoomSubscriptionsOptions) {
    const { channels, uid, subscriber } = opts;
    this.ownChannel = channels.own(uid);
    this.responseChannel = channels.response(uid);
    this.ownPrefix = ownPrefix(uid);
    this.fixed = [channels.node, channels.all, this.ownChannel, this.responseChannel];
    if (subscriber.options.autoResubscribe) throw new Error("RoomSubscriptions needs a subscriber with autoResubscribe off");
    subscriber.on("message", (channel: string, message: string) => this.onMessage(channel, message));
    subscriber.on("ready", () => void this.connected());
    if (subscriber.status === "ready") void this.connected();
  }

  /** Whether the room's channel is subscribed or being subscribed. */
  has(room: string): boolean {
    return this.rooms.has(room);
  }

  /** Subscribes a room's channel; the promise settles once Redis confirmed it (undefined: already). */
  subscribe(room: string): Promise<void> | undefined {
    const state = this.rooms.get(room);
    if (state === true) return undefined;
    if (state) return state;
    const confirmed: Promise<void> = this.opts.subscriber.subscribe(this.opts.channels.room(room)).then(
      () => {
        if (this.rooms.get(room) === confirmed) this.rooms.set(room, true);
      },
      (err: unknown) => {
        // Only when the connection is closed for good (shutdown): the join goes on without it.
        this.opts.log.warn({ err, room }, "room subscription failed");
        if (this.rooms.get(room) === confirmed) this.rooms.delete(room);
      },
    );
    this.rooms.set(room, confirmed);
    return confirmed;
  }

  unsubscribe(room: string): void {
    if (!this.rooms.delete(room)) return;
    this.opts.subscriber
      .unsubscribe(this.opts.channels.room(room))
      .catch((err: unknown) => this.opts.log.warn({ err, room }, "room unsubscribe failed"));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.opts.subscriber.disconnect();
  }

  private onMessage(channel: string, message: string): void {
    try {
      if (channel === this.opts.channels.node) return this.opts.onNode(message);
      if (channel === this.responseChannel) return this.opts.onResponse(message);
      if (this.buffer) {
        if (this.buffer.length < MAX_BUFFERED) this.buffer.push([channel, message]);
        else {
          this.buffer = [];
          this.overflowed = true;
        }
        return;
      }
      this.take(channel, message);
    } catch (err) {
      // One bad message (not JSON, say) must not stop the ones after it.
      this.opts.log.error({ err, channel }, "adapter message dropped");
    }
  }

  /** Hands on one logged broadcast unless an earlier copy (or a later entry) already went. */
  private take(channel: string, message: string): void {
    const space = message.indexOf(" ");
    const id = message.slice(0, space);
    if (space <= 0 || (this.cursor !== undefined && compareStreamIds(id, this.cursor) <= 0)) return;
    const rest = message.slice(space + 1);
    if (channel === this.ownChannel) {
      this.cursor = id;
      const echo: OwnEcho = { uid: this.opts.uid, type: MessageType.BROADCAST, data: { n: Number(rest) } };
      return this.opts.onEntry(id, echo);
    }
    // This worker's own broadcast back from one of its rooms: not parsed, its count comes next
    // on the own channel, from the same script (an uncounted one is of no use here).
    if (rest.startsWith(this.ownPrefix)) return;
    this.cursor = id;
    const parsed = parseLoggedBroadcast(rest);
    if (!parsed) return this.opts.log.error({ channel, id }, "adapter message dropped: not a logged broadcast");
    this.opts.onEntry(id, parsed);
  }

  /**
   * The connection is (back) up: subscribe every channel again, then, after a drop, read what
   * was published meanwhile from the stream. A drop during the read makes it go round again.
   */
  private async connected(): Promise<void> {
    if (this.closed) return;
    if (this.catchingUp) {
      this.again = true;
      return;
    }
    this.catchingUp = true;
    try {
      do {
        this.again = false;
        this.overflowed = false;
        // Live messages from the SUBSCRIBE on wait until the stream up to them has gone out.
        if (this.cursor !== undefined) this.buffer ??= [];
        await this.subscribeAll();
        if (this.cursor === undefined) {
          const [last] = await this.opts.redis.xrevrange(this.opts.streamName, "+", "-", "COUNT", 1);
          // Nothing published before this worker subscribed is owed to it; a message heard meanwhile set it already.
          this.cursor ??= last?.[0] ?? "0-0";
        } else {
          await this.readMissed();
        }
      } while ((this.again || this.overflowed) && !this.closed);
    } catch (err) {
      this.opts.log.error({ err }, "subscription catch-up failed: broadcasts published while it was down may be missing here");
    } finally {
      this.startedResolve();
      this.catchingUp = false;
      const buffered = this.buffer ?? [];
      this.buffer = undefined;
      for (const [channel, message] of buffered) this.onMessage(channel, message);
    }
  }

  private async subscribeAll(): Promise<void> {
    const channels = [...this.fixed, ...[...this.rooms.keys()].map((room) => this.opts.channels.room(room))];
    const subscribed: Promise<unknown>[] = [];
    for (let i = 0; i < channels.length; i += SUBSCRIBE_CHUNK) {
      subscribed.push(this.opts.subscriber.subscribe(...channels.slice(i, i + SUBSCRIBE_CHUNK)));
    }
    await Promise.all(subscribed);
    for (const room of this.rooms.keys()) this.rooms.set(room, true);
  }

  /** Reads the stream after the cursor to its end, handing on what this worker would have received. */
  private async readMissed(): Promise<void> {
    const { redis, streamName, log, uid, nsp } = this.opts;
    const from = this.cursor!;
    // The cursor's own entry gone means the stream was trimmed past it: some entries may be lost.
    const kept = from === "0-0" || (await redis.xrange(streamName, from, from)).length > 0;
    let first: string | undefined;
    let delivered = 0;
    for (;;) {
      const page = await redis.xrange(streamName, `(${this.cursor!}`, "+", "COUNT", CATCH_UP_PAGE);
      for (const [id, fields] of page) {
        if (compareStreamIds(id, this.cursor!) <= 0) continue;
        first ??= id;
        this.cursor = id;
        const json = entryJson(fields);
        let message: LoggedBroadcast | undefined;
        try {
          message = json === undefined ? undefined : parseLoggedBroadcast(json);
        } catch (err) {
          log.error({ err, id }, "stream entry skipped: not JSON");
          continue;
        }
        if (!message || message.nsp !== nsp) continue;
        // Own entries would all have come through the own channel; others only for this worker's rooms.
        if (message.uid !== uid && !this.opts.wanted(message)) continue;
        if (message.uid !== uid) delivered++;
        this.opts.onEntry(id, message);
      }
      if (page.length < CATCH_UP_PAGE) break;
    }
    if (!kept) {
      // The stream is trimmed to RECOVERY_LOG_MAX_ENTRIES: the drop outlasted that many broadcasts.
      log.error({ from, firstKept: first }, "subscription catch-up incomplete: broadcasts after `from` and before `firstKept` are lost to this worker's sockets");
    }
    log.info({ from, to: this.cursor, delivered }, "subscription caught up from the stream");
  }
}
