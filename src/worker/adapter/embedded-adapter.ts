import { randomBytes } from "node:crypto";
import {
  ClusterAdapterWithHeartbeat,
  MessageType,
  type BroadcastOptions,
  type ClusterMessage,
  type ClusterResponse,
  type Room,
  type Session,
} from "socket.io-adapter";
import {
  formatOffset,
  isAdapterBatch,
  isLoggedBroadcast,
  parseOffset,
  type AdapterDownMessage,
  type AdapterUpMessage,
  type Position,
  type SessionRecord,
} from "../../shared/adapter-ipc.js";
import { AdapterOutbox } from "../../shared/adapter-outbox.js";
import { ErrorCode } from "../../shared/errors.js";
import { WELCOME_EVENT } from "../../shared/contract.js";
import { assertNever } from "../../shared/ipc.js";
import type { Logger } from "../../shared/logger.js";
import { ReservedRooms } from "./reserved-rooms.js";
import { sessionRecordOf, type RecoverableSocket } from "./session-record.js";
import { hookBeforeLocalDelivery, PendingRestores, restoreStage, writeEventPacket } from "./pending-restores.js";
import type { Evictions } from "./evictions.js";
import { atBound, BroadcastDropped, notJson, pendingReceipt, type BroadcastReceipt, type ReceiptSettler, type ReportingAdapter } from "./broadcast-receipt.js";
import { countDelivered } from "../metrics.js";
import { deliverHere, EndOfTickDeliveries, type EventPacket, type OwnDelivery } from "./own-deliveries.js";
import { primaryBacklogOver, sendToPrimary } from "../primary-channel.js";

/** Restores and room announcements waiting on the primary beyond this are not waited for. */
const MAX_WAITING = 100_000;


/** A broadcast sent to the primary that waits for its answer (the offset, or "" when not logged). */
interface Waiter {
  /** Its own count (`Position.n`) when it is sequenced. */
  n?: number;
  /** Set for one held until the primary answers (made while a restore is under way): delivers it here. */
  deliver?: (offset: string) => void;
  /** Set when its publisher waits on the outcome (`broadcastWithReceipt`). */
  settle?: ReceiptSettler;
}

export interface EmbeddedAdapterOptions {
  log: Logger;
  evictions: Evictions;
  /** Own broadcasts waiting for the primary's answer beyond this are refused (BROADCAST_MAX_PENDING). */
  maxPending: number;
}

/**
 * Embedded mode's adapter: the primary relays and *sequences* every broadcast, keeps a bounded
 * replay log and every socket's session, so a client recovers on any worker of the host — after a
 * blip, a worker crash or a restart. The stock @socket.io/cluster-adapter cannot recover at all.
 *
 * A worker delivers its own broadcasts to its own sockets at once (at the end of the tick that
 * made them), without waiting for the primary's sequence number: the offset it stamps on every
 * delivery is a `Position` that counts them separately, so the replay log can tell what a
 * recovering client already has. Only while a restore is under way on this worker (or the log's
 * epoch is not known yet) does an own broadcast wait for the primary, so that the restore's
 * answer and the deliveries around it line up.
 */
export class EmbeddedAdapter extends ClusterAdapterWithHeartbeat implements ReportingAdapter {
  private nextId = 1;
  private readonly offsets = new Map<number, Waiter>();
  /** This worker's tag in offsets: random, so that no later worker reuses one a client may hold. */
  private readonly tag = randomBytes(4).toString("hex");
  /** The replay log's epoch, from the primary's first answer or relay. */
  private epoch: string | undefined;
  /*
   * The counters behind every offset this worker stamps (`position()`), and what holds between them:
   *
   * - `heard`: a sequence number of the primary's log. Every broadcast sequenced up to it that this
   *   worker's sockets should get has been delivered to them: relays arrive in sequence order on
   *   one channel, and an own broadcast was delivered here before it reached the primary (or, when
   *   held, in its place on its answer). It only grows, and only within one `epoch`.
   * - `counted`, `delivered`, `confirmed`: own sequenced broadcasts, by this adapter's count `n`
   *   (the `Position.n` its offsets carry with its `tag`). `counted`: the last one sent to the
   *   primary (sent in `n` order, so the primary logs them in `n` order). `delivered`: the last one
   *   delivered to this worker's sockets; own ones are delivered in `n` order (at the end of the
   *   tick, or held ones in answer order, which is `n` order), so every one up to it was.
   *   `confirmed`: the last one the primary has sequenced as far as this worker knows (an answer
   *   or a `seen`, each of which also raised `heard` to its sequence number). Both are ≤ `counted`.
   * - So when `delivered <= confirmed`, every own broadcast delivered here sits at or below
   *   `heard` in the log and an offset is `{seq: heard}`; otherwise it is
   *   `{seq: heard, origin: tag, n: delivered}`, and the replay log skips this worker's own entries
   *   up to `n` wherever they sit after `heard`.
   * - `held` > 0 only while a restore is under way here (or the epoch is unknown): own broadcasts
   *   then wait for their answer, and while any waits every later one waits too (`mayDeliverAtOnce`),
   *   which keeps own deliveries in `n` order.
   * - `counted - confirmed` is what the primary has not confirmed yet: bounded by
   *   BROADCAST_MAX_PENDING (a publish past it gets OVERLOADED).
   */
  private heard = 0;
  private counted = 0;
  private delivered = 0;
  private confirmed = 0;
  private held = 0;
  /** Own broadcasts already sent to the primary, to deliver here at the end of this tick. */
  private readonly soon = new EndOfTickDeliveries((delivery) => this.deliverSoon(delivery));
  /** The sequence number of the broadcast being delivered (undefined: an own one, not yet sequenced). */
  private deliveringSeq: number | undefined;
  private readonly restores = new Map<number, (session: Session | null) => void>();
  private readonly pendingRestores = new PendingRestores((sid) => restoreStage(this.sids, this.nsp.sockets, sid));
  /** Sockets tracked by the primary's session table. */
  private readonly tracked = new Set<string>();
  /** Sockets whose session was just persisted by a recoverable close (their delAll follows). */
  private readonly persisted = new Set<string>();
  /** Everything for the primary in this event-loop turn, sent as one batch. */
  private readonly outbox = new AdapterOutbox<AdapterUpMessage>(
    (batch) => {
      sendToPrimary(batch);
    },
    (message, err) => this.unsendable(message, err),
  );
  /** `interest` messages waiting for the primary's answer, by id. */
  private readonly interestAnswers = new Map<number, () => void>();
  /** Rooms the primary is being told of, each with the promise that settles once it has taken them. */
  private readonly routing = new Map<string, Promise<void>>();
  /** Rooms the primary routes here for a restored socket that has not joined them yet, until when (ms). */
  private readonly reserved = new ReservedRooms((rooms) => this.release(rooms));
  /** The last restore pin the primary sent (`InterestTable`). */
  private pin = 0;
  private readonly onIpc = (message: unknown) => {
    if (!isAdapterBatch<AdapterDownMessage>(message)) return;
    for (const m of message.m) this.dispatch(m);
  };
  /** The primary is gone: nothing waiting for its answer will get one. */
  private readonly onPrimaryGone = () => this.dropWaiting("the primary stopped before it took the broadcast");
  private readonly log: Logger;
  private readonly evictions: Evictions;
  private readonly maxPending: number;

  constructor(
    nsp: any, // eslint-disable-line @typescript-eslint/no-explicit-any -- Socket.IO's own adapter signature
    options: EmbeddedAdapterOptions,
  ) {
    super(nsp, {});
    this.log = options.log;
    this.evictions = options.evictions;
    this.maxPending = options.maxPending;
    hookBeforeLocalDelivery(this, (packet, opts, offset) => this.pendingRestores.catchUp(packet, opts, offset));
    process.on("message", this.onIpc);
    process.on("disconnect", this.onPrimaryGone);
    this.init();
  }

  /** Queues a message for the primary (sent at the end of this turn); false when there is no primary. */
  private toPrimary(message: AdapterUpMessage): boolean {
    if (!process.connected || !process.send) return false;
    this.outbox.push(message);
    return true;
  }

  /** A message the primary could not be sent (uncloneable data, a function in socket.data, say): dropped, the worker goes on. */
  private unsendable(message: AdapterUpMessage, err: unknown): void {
    this.log.error({ err, t: message.t }, "adapter message could not be sent");
    if ((message.t === "pub" || message.t === "bc") && message.id !== undefined) {
      this.offsets.get(message.id)?.settle?.reject(new BroadcastDropped(ErrorCode.INTERNAL, "broadcast could not be sent to the primary", { cause: err }));
    }
    // A broadcast waiting for its answer would wait for ever (and hold every later one): not sequenced.
    if (message.t === "pub" && message.id !== undefined) this.dispatch({ t: "offset", id: message.id, offset: "" });
  }

  private dispatch(message: AdapterDownMessage): void {
    switch (message.t) {
      case "offset": {
        const waiter = this.offsets.get(message.id);
        this.offsets.delete(message.id);
        const at = message.offset ? this.hear(message.offset) : undefined;
        if (waiter?.n !== undefined && waiter.n > this.confirmed) this.confirmed = waiter.n;
        // Delivered right here, in the order the primary sequenced it among its relays.
        if (waiter?.deliver) this.deliverHeld(waiter, at);
        // Relayed and logged (a no-op when `unsendable` already refused it).
        waiter?.settle?.resolve();
        break;
      }
      case "seen":
        this.hear(message.offset);
        if (message.n > this.confirmed) this.confirmed = message.n;
        break;
      case "msg": {
        if (message.msg.nsp !== this.nsp.name) break;
        if (message.msg.type === MessageType.BROADCAST && this.log.isLevelEnabled("trace")) {
          this.log.trace({ rooms: message.msg.data.opts.rooms }, "relayed broadcast");
        }
        const at = message.offset ? this.hear(message.offset) : undefined;
        this.deliveringSeq = at?.seq;
        try {
          this.onMessage(message.msg, at ? this.position() : message.offset);
        } finally {
          this.deliveringSeq = undefined;
        }
        break;
      }
      case "bc": {
        if (message.nsp !== this.nsp.name) break;
        if (this.log.isLevelEnabled("trace")) this.log.trace({ rooms: message.rooms }, "relayed broadcast");
        const at = this.hear(message.offset);
        const data = JSON.parse(message.d) as unknown[];
        const msg = {
          uid: message.uid,
          nsp: message.nsp,
          type: MessageType.BROADCAST,
          data: { packet: { type: 2, data }, opts: { rooms: message.rooms, except: message.except, flags: message.flags ?? {} } },
        } as ClusterMessage;
        countDelivered(this.rooms, data[0], message.rooms);
        this.deliveringSeq = at?.seq;
        try {
          this.onMessage(msg, at ? this.position() : message.offset);
        } finally {
          this.deliveringSeq = undefined;
        }
        break;
      }
      case "res":
        if (message.msg.nsp === this.nsp.name) this.onResponse(message.msg);
        break;
      case "restored": {
        const resolve = this.restores.get(message.id);
        this.restores.delete(message.id);
        if (message.pin !== undefined && message.session) this.reserve(message.pin, message.session);
        if (!resolve) break;
        if (!message.session) {
          resolve(null);
          break;
        }
        // Deliveries from here on that are newer than what the primary put in the answer are
        // caught up until the socket joins. None is an unsequenced own one: while a restore is
        // under way, own broadcasts wait for the primary (deliveringSeq is set).
        const upTo = this.hear(message.upTo)?.seq ?? Number.POSITIVE_INFINITY;
        this.pendingRestores.add(message.session, () => this.deliveringSeq === undefined || this.deliveringSeq > upTo);
        resolve(message.session);
        break;
      }
      case "evict":
        this.evict(message.sid);
        break;
      case "interested": {
        const answered = this.interestAnswers.get(message.id);
        this.interestAnswers.delete(message.id);
        answered?.();
        break;
      }
      default:
        assertNever(message);
    }
  }

  private evict(sid: string): void {
    const socket = this.nsp.sockets.get(sid) as RecoverableSocket | undefined;
    this.tracked.delete(sid);
    if (socket) this.evictions.run(sid, () => socket.disconnect(true));
  }

  /**
   * Takes a sequence number the primary sent: every broadcast up to it that this worker's sockets
   * should get has been delivered (relays arrive in order, own ones went out before they were sent).
   */
  private hear(offset: string): Position | undefined {
    const at = parseOffset(offset);
    if (!at) return undefined;
    this.epoch ??= at.epoch;
    if (at.epoch === this.epoch && at.seq > this.heard) this.heard = at.seq;
    return at;
  }

  /** What a socket has had once it received the delivery going out now (`Position`). */
  private position(): string {
    const epoch = this.epoch!;
    return formatOffset(this.delivered > this.confirmed ? { epoch, seq: this.heard, origin: this.tag, n: this.delivered } : { epoch, seq: this.heard });
  }

  /** Whether an own broadcast may go out to this worker's sockets before the primary answers. */
  private mayDeliverAtOnce(): boolean {
    return this.epoch !== undefined && this.held === 0 && this.restores.size === 0 && !this.pendingRestores.unsettled(Date.now());
  }

  override broadcast(packet: EventPacket, opts: BroadcastOptions): Promise<void> {
    if (opts.flags?.local) return super.broadcast(packet, opts);
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

  /** Sends a broadcast on; returns why when it was refused at once, else settles `settle` on the primary's answer. */
  private send(packet: EventPacket, opts: BroadcastOptions, settle: ReceiptSettler | undefined): BroadcastDropped | undefined {
    const rooms = [...opts.rooms];
    const except = [...(opts.except ?? [])];
    // A socket's own room on this worker (every `socket.emit` under recovery): log, don't relay.
    const relay = !(rooms.length === 1 && except.length === 0 && this.nsp.sockets.has(rooms[0]!));
    const atOnce = this.mayDeliverAtOnce();
    if (!isLoggedBroadcast(packet, opts.flags)) return this.broadcastUnsequenced(packet, opts, rooms, except, relay, atOnce, settle);
    // Own broadcasts the primary has not confirmed yet (answered or `seen`), and what the IPC
    // channel holds for it: both bounded.
    if (this.counted - this.confirmed >= this.maxPending || this.offsets.size >= this.maxPending || primaryBacklogOver()) {
      this.log.error({ unconfirmed: this.counted - this.confirmed, waiting: this.offsets.size }, "broadcast dropped: too many waiting for the primary");
      return atBound("the primary");
    }
    const n = this.counted + 1;
    // Delivered here at once and waited on by nobody: no answer (the primary tells of its
    // sequencing in a `seen`). Held ones, and those a publisher waits on, get one.
    const message: SequencedUp = { t: "bc", relay, uid: this.uid, nsp: this.nsp.name, rooms, except, origin: this.tag, n };
    if (!atOnce || settle) message.id = this.nextId++;
    if (!isEmpty(opts.flags)) message.flags = opts.flags;
    // A connection's welcome is sequenced (it gives the connection an offset) but never replayed:
    // nothing to log. Anything else is encoded here, before the local delivery stamps its offset
    // on `packet.data`; the primary bounds its log by the length.
    if (relay || packet.data[0] !== WELCOME_EVENT) {
      try {
        message.d = JSON.stringify(packet.data);
      } catch (err) {
        this.log.error({ err }, "broadcast dropped: its data is not JSON");
        return notJson(err);
      }
    }
    if (!this.toPrimary(message)) return noPrimary(); // dropped whole, here too
    this.counted = n;
    if (message.id !== undefined) {
      const waiter: Waiter = { n, settle };
      if (!atOnce) {
        this.held++;
        waiter.deliver = (offset) => this.deliverLocally(packet, opts, offset);
      }
      this.offsets.set(message.id, waiter);
    }
    // The primary then wakes once per burst, not per packet.
    if (atOnce) this.soon.push({ packet, opts, n });
    return undefined;
  }

  /** A broadcast that is neither logged nor stamped (volatile): relayed as a plain cluster message. */
  private broadcastUnsequenced(
    packet: EventPacket,
    opts: BroadcastOptions,
    rooms: string[],
    except: string[],
    relay: boolean,
    atOnce: boolean,
    settle: ReceiptSettler | undefined,
  ): BroadcastDropped | undefined {
    const msg = {
      uid: this.uid,
      nsp: this.nsp.name,
      type: MessageType.BROADCAST,
      data: { packet, opts: { rooms, except, flags: opts.flags } },
    } as ClusterMessage;
    if (atOnce) {
      // Nothing to wait for. A broadcast the primary cannot take is dropped whole, here too.
      if (relay && !this.toPrimary({ t: "pub", msg })) return noPrimary();
      this.soon.push({ packet, opts, n: undefined });
      settle?.resolve();
      return undefined;
    }
    if (this.offsets.size >= this.maxPending) {
      this.log.error({ waiting: this.offsets.size }, "broadcast dropped: too many waiting for the primary");
      return atBound("the primary");
    }
    // Delivered here in its place among the primary's answers and relays.
    const id = this.nextId++;
    if (!this.toPrimary({ t: "pub", id, msg })) return noPrimary();
    this.held++;
    this.offsets.set(id, { deliver: (offset) => this.deliverLocally(packet, opts, offset), settle });
    return undefined;
  }

  private deliverSoon({ packet, opts, n }: OwnDelivery): void {
    if (n === undefined) return this.deliverLocally(packet, opts, undefined);
    this.delivered = n;
    this.deliverLocally(packet, opts, this.position());
  }

  private deliverHeld(waiter: Waiter, at: Position | undefined): void {
    this.held--;
    if (waiter.n !== undefined) this.delivered = waiter.n;
    this.deliveringSeq = at?.seq;
    try {
      waiter.deliver!(at ? this.position() : "");
    } finally {
      this.deliveringSeq = undefined;
    }
  }

  private deliverLocally(packet: EventPacket, opts: BroadcastOptions, offset: string | undefined): void {
    // An own broadcast to rooms with no member here (routed elsewhere) is not encoded for nobody,
    // unless a restore being caught up may still want it.
    if (this.pendingRestores.idle && !hasLocalMember(this.rooms, opts.rooms)) return;
    countDelivered(this.rooms, packet.data[0], opts.rooms);
    deliverHere(this, this.broadcastHere, packet, opts, offset);
  }

  /** The in-memory delivery to this worker's sockets (made once, not per broadcast). */
  private readonly broadcastHere = (packet: EventPacket, opts: BroadcastOptions) => super.broadcast(packet, opts);

  /** Cluster messages other than plain broadcasts (joins, fetches, broadcasts with acks): relayed only. */
  protected override doPublish(message: ClusterMessage): Promise<string> {
    this.toPrimary({ t: "pub", msg: message });
    return Promise.resolve("");
  }

  protected override doPublishResponse(requesterUid: string, response: ClusterResponse): Promise<void> {
    this.toPrimary({ t: "res", to: requesterUid, msg: response });
    return Promise.resolve();
  }

  /**
   * A socket joins rooms. A room new to this worker is routed here by the primary from its next
   * broadcast on: the returned promise settles once the primary has taken it, so a subscribe
   * acknowledged after it gets every broadcast sequenced after the acknowledgement.
   */
  override addAll(id: string, rooms: Set<Room>): Promise<void> | void {
    const had = this.sids.get(id);
    let joined = false;
    let fresh: string[] | undefined;
    for (const room of rooms) {
      if (!had?.has(room)) joined = true;
      if (room !== id && !this.rooms.has(room)) (fresh ??= []).push(room);
    }
    super.addAll(id, rooms);
    if (joined && this.tracked.has(id)) this.toPrimary({ t: "rooms", sid: id, add: [...rooms] });
    if (fresh) return this.declare(fresh);
    // Rooms another socket here joined a moment ago may still be on their way to the primary.
    if (this.routing.size > 0) return this.whenRouted(rooms);
  }

  override del(id: string, room: Room): void {
    super.del(id, room);
    if (this.tracked.has(id)) this.toPrimary({ t: "rooms", sid: id, del: [room] });
    if (room !== id) this.release([room]);
  }

  override delAll(id: string): void {
    const rooms = this.sids.get(id);
    const left = rooms ? [...rooms].filter((room) => room !== id) : [];
    super.delAll(id);
    this.release(left);
    if (!this.tracked.delete(id)) return;
    if (this.persisted.delete(id)) return; // a recoverable close already saved it
    this.toPrimary({ t: "gone", sid: id });
  }

  /** Tells the primary of rooms that now have a local member; settles once it has taken them. */
  private declare(add: string[]): Promise<void> {
    if (this.interestAnswers.size >= MAX_WAITING) {
      // Far too many in flight: the primary still learns of them, the join does not wait.
      this.toPrimary({ t: "interest", add });
      return Promise.resolve();
    }
    const id = this.nextId++;
    // No primary (it is gone, and so are relays): nothing to wait for.
    if (!this.toPrimary({ t: "interest", id, add })) return Promise.resolve();
    const routed = new Promise<void>((resolve) =>
      this.interestAnswers.set(id, () => {
        for (const room of add) if (this.routing.get(room) === routed) this.routing.delete(room);
        resolve();
      }),
    );
    for (const room of add) this.routing.set(room, routed);
    return routed;
  }

  /** Settles once the primary has taken every room of `rooms` that it is still being told of. */
  private whenRouted(rooms: Set<Room>): Promise<void> | void {
    let waits: Promise<void>[] | undefined;
    for (const room of rooms) {
      const routed = this.routing.get(room);
      if (routed) (waits ??= []).push(routed);
    }
    if (waits) return Promise.all(waits).then(() => undefined);
  }

  /** Tells the primary of rooms that have no local member left (unless a restore reserved them). */
  private release(rooms: readonly string[]): void {
    let gone: string[] | undefined;
    for (const room of rooms) if (!this.rooms.has(room) && !this.reserved.has(room)) (gone ??= []).push(room);
    if (gone) this.toPrimary({ t: "interest", del: gone, pin: this.pin });
  }

  /**
   * The primary routes a restored session's rooms here already (`pin`): keep them until the
   * socket has joined them, or for RESERVED_MS, then let go of those that have no member.
   */
  private reserve(pin: number, session: SessionRecord): void {
    this.pin = Math.max(this.pin, pin);
    this.reserved.add(session.rooms.filter((room) => room !== session.sid));
  }

  /** Starts tracking a connected socket: its session is saved now, not only when it closes. */
  track(socket: RecoverableSocket): void {
    this.tracked.add(socket.id);
    this.pendingRestores.settle(socket.id, (data) => writeEventPacket(socket, data));
    this.toPrimary({ t: "open", session: sessionRecordOf(socket) });
  }

  override persistSession(session: SessionRecord): void {
    if (!this.tracked.has(session.sid)) return; // evicted, or never tracked: its session lives elsewhere
    this.persisted.add(session.sid);
    this.toPrimary({ t: "closed", session });
  }

  override restoreSession(pid: string, offset: string): Promise<Session> {
    if (this.restores.size >= MAX_WAITING) return Promise.resolve(null as unknown as Session);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.restores.set(id, resolve as (s: Session | null) => void);
      this.toPrimary({ t: "restore", id, pid, offset });
    });
  }

  /** Tells every publisher still waiting for the primary's answer that it will not come. */
  private dropWaiting(why: string): void {
    for (const waiter of this.offsets.values()) waiter.settle?.reject(new BroadcastDropped(ErrorCode.STORE_UNAVAILABLE, why));
  }

  override close(): void {
    super.close();
    this.outbox.flush();
    process.off("message", this.onIpc);
    process.off("disconnect", this.onPrimaryGone);
    this.reserved.close();
    for (const answered of [...this.interestAnswers.values()]) answered();
    this.interestAnswers.clear();
    this.routing.clear();
    // Broadcasts still waiting for the primary are dropped with the worker.
    this.dropWaiting("the worker stopped before the primary took the broadcast");
    this.offsets.clear();
    for (const resolve of this.restores.values()) resolve(null);
    this.restores.clear();
  }
}

type SequencedUp = Extract<AdapterUpMessage, { t: "bc" }>;

/** No primary to send it to (it is gone, and this worker is on its way out). */
const noPrimary = () => new BroadcastDropped(ErrorCode.STORE_UNAVAILABLE, "the primary is gone: the broadcast was not sent");

/** Whether a broadcast to `to` (none: every socket) may reach a socket of this worker. */
function hasLocalMember(rooms: Map<Room, Set<string>>, to: Set<Room>): boolean {
  if (to.size === 0) return true;
  for (const room of to) if (rooms.has(room)) return true;
  return false;
}

/** Whether a broadcast's flags say nothing (they usually do not): then they need not cross IPC. */
function isEmpty(flags: object | undefined): boolean {
  for (const _ in flags) return false;
  return true;
}
