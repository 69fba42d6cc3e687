import { MessageType, type BroadcastOptions } from "socket.io-adapter";
import { isLoggedBroadcast } from "../../shared/adapter-ipc.js";
import { ErrorCode } from "../../shared/errors.js";
import type { Logger } from "../../shared/logger.js";
import type { LoggedBroadcast } from "./broadcast-log.js";
import { atBound, BroadcastDropped, notJson, pendingReceipt, type BroadcastReceipt, type ReceiptSettler } from "./broadcast-receipt.js";
import { EndOfTickDeliveries, type EventPacket, type OwnDelivery } from "./own-deliveries.js";


/**
 * Where a socket is in the Redis stream, as the offset it last received says. Offsets are
 * `<id>` or `<id>.<origin>.<n>`:
 * - `id` (a stream entry id): the socket has had every entry for it up to `id`;
 * - `origin`/`n`: and also the first `n` broadcasts that the adapter `origin` published, which
 *   it delivers to its own sockets before Redis has given them an id.
 */
export interface StreamPosition {
  id: string;
  origin?: string;
  n?: number;
}

const POSITION = /^([0-9]{1,16}-[0-9]{1,16})(?:\.([0-9a-f]{1,32})\.([1-9][0-9]{0,15}))?$/;

export function formatStreamPosition(p: StreamPosition): string {
  return p.origin === undefined ? p.id : `${p.id}.${p.origin}.${p.n}`;
}

/** The position an offset names, or undefined when it is not one (clients send anything). */
export function parseStreamPosition(offset: string): StreamPosition | undefined {
  const match = POSITION.exec(offset);
  if (!match) return undefined;
  const [, id, origin, count] = match;
  if (origin === undefined) return { id: id! };
  const n = Number(count);
  return Number.isSafeInteger(n) ? { id: id!, origin, n } : undefined;
}

/** Compares two stream ids ("ms-seq"). */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am - bm || as - bs;
}

/** The entry being delivered when it is an own broadcast Redis has not numbered yet. */
export const UNNUMBERED_OWN = "own";


/** What StreamBroadcasts needs from the adapter: its uid, the log, and delivery to its own sockets. */
export interface BroadcastLog {
  readonly uid: string;
  /**
   * Appends a broadcast to the stream and publishes it to its rooms' subscribers; resolves with
   * its entry id. Encodes synchronously (throws when the data is not JSON).
   */
  append(data: LoggedBroadcast["data"]): Promise<string>;
  /** Delivers a broadcast to this worker's sockets only, stamped with `offset` when given. */
  deliverHere(packet: EventPacket, opts: BroadcastOptions, offset: string | undefined): void;
}

/**
 * Clustered mode's broadcasts, delivered to this worker's own sockets at once.
 *
 * Waiting for Redis before delivering a worker's own broadcast to its own sockets (to stamp the
 * entry id on each delivery, for recovery) would cost a Redis round trip on every publish, and a
 * Redis stall would stall even same-worker broadcasts. Here, as in embedded mode, the offset a
 * delivery carries is a `StreamPosition` built from the last entry this worker's subscription
 * delivered plus a count of own broadcasts not yet heard back from it; each own entry carries
 * its count, so a restore can tell which of them a client already has. The adapter tells this
 * worker where its own entries are (`received` with its own uid) through its own channel.
 *
 * An own broadcast waits for Redis instead (delivered when the append answers or the
 * subscription brings it back, whichever comes first) while `mayDeliverAtOnce` says no: before
 * the subscription has delivered anything, while a restore is under way on this worker, or while
 * Redis is not connected; and until the subscription has passed what a restore here replayed,
 * only the subscription delivers it, as it does every later one until it has delivered that one
 * (own broadcasts keep their order).
 */
export class StreamBroadcasts {
  /** The last stream entry the subscription delivered (every entry up to it for this worker's rooms went to its sockets). */
  private heard: string | undefined;
  /**
   * The furthest entry a restore here replayed up to. A restored socket has every entry up to
   * it, so no delivery may reach it stamped with a position behind it: own broadcasts are
   * delivered by the subscription alone until it has passed it.
   */
  private floor: string | undefined;
  /** Own counted broadcasts: how many were sent, delivered here, and heard back from the subscription. */
  private counted = 0;
  private delivered = 0;
  private heardOwn = 0;
  /** Own broadcasts waiting for Redis before they are delivered here, by count. */
  private readonly held = new Map<number, { packet: EventPacket; opts: BroadcastOptions }>();
  /** Own broadcasts already sent to Redis, to deliver here at the end of this tick. */
  private readonly soon = new EndOfTickDeliveries((delivery) => this.deliverSoon(delivery));
  /** The entry going out right now: its stream id, or UNNUMBERED_OWN (see `deliveringEntry`). */
  private entry: string | undefined;

  constructor(
    private readonly log: BroadcastLog,
    private readonly mayDeliverAtOnce: () => boolean,
    private readonly logger: Logger,
    /** Own broadcasts held for Redis beyond this are refused rather than queued (BROADCAST_MAX_PENDING). */
    private readonly maxHeld: number,
  ) {}

  /** The stream entry being delivered to local sockets now, or UNNUMBERED_OWN; undefined outside a delivery. */
  get deliveringEntry(): string | undefined {
    return this.entry;
  }

  /** Whether the subscription has delivered anything yet and no own broadcast waits for Redis. */
  private get positioned(): boolean {
    return this.heard !== undefined && this.held.size === 0 && this.caughtUp;
  }

  /** Whether the subscription has delivered every entry a restore here replayed. */
  private get caughtUp(): boolean {
    return this.floor === undefined || (this.heard !== undefined && compareStreamIds(this.heard, this.floor) >= 0);
  }

  /** A restore here replayed the stream up to `lastId` to a socket. */
  restored(lastId: string): void {
    if (this.floor === undefined || compareStreamIds(lastId, this.floor) > 0) this.floor = lastId;
  }

  /**
   * Delivers one entry the subscription brought (in stream order, each once; own ones too,
   * through the adapter's own channel) through `deliver`, stamped with this worker's position.
   */
  received(message: unknown, id: string, deliver: (message: unknown, offset: string) => void): void {
    this.heard = id;
    const own = message as { uid?: string; type?: number; data?: { n?: unknown } };
    if (own.uid === this.log.uid) {
      const n = own.type === MessageType.BROADCAST ? own.data?.n : undefined;
      if (typeof n !== "number") return;
      this.heardOwn = n;
      // Heard back before the append's answer arrived: delivered now, in stream order. Older ones
      // still held went to Redis before it, so their entries were passed unheard (trimmed by the
      // stream's cap while the worker lagged, or appended before its first read): they go out
      // first, late rather than never, and no longer keep later answers waiting behind them.
      for (const [m, held] of this.held) {
        if (m > n) break;
        this.deliverHeld(m, held, id);
      }
      return;
    }
    this.entry = id;
    try {
      deliver(message, this.position());
    } finally {
      this.entry = undefined;
    }
  }

  private position(): string {
    const id = this.heard!;
    return formatStreamPosition(this.delivered > this.heardOwn ? { id, origin: this.log.uid, n: this.delivered } : { id });
  }

  /** Logs and publishes a broadcast (not a local-only one), delivering it here at once or once Redis has it. */
  broadcast(packet: EventPacket, opts: BroadcastOptions): Promise<void> {
    // Socket.IO drops this promise: what a broadcast of its own loses is logged where it is lost.
    this.send(packet, opts, undefined);
    return Promise.resolve();
  }

  /** `broadcast` for a publisher that waits on the outcome (see BroadcastReceipt). */
  broadcastWithReceipt(packet: EventPacket, opts: BroadcastOptions): BroadcastReceipt {
    const { handedOn, settle } = pendingReceipt();
    const refused = this.send(packet, opts, settle);
    return refused ? { refused } : { handedOn };
  }

  /** Sends a broadcast on; returns why when it was refused at once, else settles `settle` once Redis answered. */
  private send(packet: EventPacket, opts: BroadcastOptions, settle: ReceiptSettler | undefined): BroadcastDropped | undefined {
    const counted = isLoggedBroadcast(packet, opts.flags);
    const atOnce = this.positioned && this.mayDeliverAtOnce();
    if (counted && !atOnce && this.held.size >= this.maxHeld) {
      this.logger.error({ held: this.held.size }, "broadcast dropped: too many waiting for Redis");
      return atBound("Redis");
    }
    const n = counted ? this.counted + 1 : undefined;
    let published: Promise<string>;
    try {
      // Encoded (JSON) synchronously here, before any delivery stamps an offset on the packet.
      published = this.log.append({ packet, opts: { rooms: [...opts.rooms], except: [...(opts.except ?? [])], flags: opts.flags }, n });
    } catch (err) {
      this.logger.error({ err }, "broadcast dropped: its data is not JSON");
      return notJson(err);
    }
    if (n !== undefined) this.counted = n;
    if (settle) {
      published.then(
        () => settle.resolve(),
        (err: unknown) =>
          settle.reject(new BroadcastDropped(ErrorCode.STORE_UNAVAILABLE, "Redis refused the broadcast: only subscribers on this server may have it", { cause: err })),
      );
    }
    if (atOnce) {
      published.catch((err: unknown) => this.logger.error({ err }, "broadcast delivered here but not published to Redis"));
      this.soon.push({ packet, opts, n });
      return undefined;
    }
    if (n === undefined) {
      // Not stamped (volatile or with an ack id): delivered here once Redis has it, unstamped
      // (a volatile packet may then overtake a held one; nothing of this server sends volatile).
      published.then(
        () => this.log.deliverHere(packet, opts, undefined),
        (err: unknown) => this.logger.error({ err }, "broadcast dropped: Redis refused it"),
      );
      return undefined;
    }
    this.held.set(n, { packet, opts });
    published.then(
      (id) => {
        const held = this.held.get(n);
        // Behind a restore's replay, the subscription delivers it (its position is then past the
        // replay). So does it when an older one still waits: that one was answered while the
        // subscription was behind and is left to it, which must not find this one delivered first.
        if (held && (this.heard === undefined || this.caughtUp) && this.oldestHeld() === n) this.deliverHeld(n, held, id);
      },
      (err: unknown) => {
        this.held.delete(n);
        this.logger.error({ err }, "broadcast dropped: Redis refused it");
      },
    );
    return undefined;
  }

  /** Delivers the own broadcasts already sent and not yet delivered here (at the end of the tick otherwise). */
  flush(): void {
    this.soon.flush();
  }

  private deliverSoon({ packet, opts, n }: OwnDelivery): void {
    if (n === undefined) return this.log.deliverHere(packet, opts, undefined);
    this.delivered = n;
    this.entry = UNNUMBERED_OWN;
    try {
      this.log.deliverHere(packet, opts, this.position());
    } finally {
      this.entry = undefined;
    }
  }

  /** The count of the oldest own broadcast still waiting for Redis (the map keeps count order). */
  private oldestHeld(): number | undefined {
    for (const n of this.held.keys()) return n;
    return undefined;
  }

  /**
   * Delivers an own broadcast that waited for Redis, by whichever of the append's answer and the
   * subscription comes first. Both come in count order, and an answer delivers only the oldest
   * held one, so held broadcasts go out in order even when the answers and the subscription take turns.
   */
  private deliverHeld(n: number, held: { packet: EventPacket; opts: BroadcastOptions }, id: string): void {
    this.held.delete(n);
    this.delivered = Math.max(this.delivered, n);
    this.entry = id;
    try {
      // Before the subscription delivered anything, the entry's own id is the best position.
      this.log.deliverHere(held.packet, held.opts, this.heard === undefined ? id : this.position());
    } finally {
      this.entry = undefined;
    }
  }
}
