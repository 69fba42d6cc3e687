import type { Redis } from "ioredis";
import {
  ClusterAdapterWithHeartbeat,
  MessageType,
  type BroadcastOptions,
  type ClusterMessage,
  type ClusterResponse,
  type Room,
  type Session,
} from "socket.io-adapter";
import type { SessionRecord } from "../../shared/adapter-ipc.js";
import type { Logger } from "../../shared/logger.js";
import type { BroadcastReceipt, ReportingAdapter } from "./broadcast-receipt.js";
import { encodeLoggedBroadcast, LogChannels, PUBLISH_SCRIPT, type LoggedBroadcast } from "./broadcast-log.js";
import { countDelivered } from "../metrics.js";
import type { EventPacket } from "./own-deliveries.js";
import type { RecoveryHost, RedisRecovery } from "./redis-recovery.js";
import { ReservedRooms } from "./reserved-rooms.js";
import { RoomSubscriptions, type OwnEcho } from "./room-subscriptions.js";

type Scripted = Redis & {
  cbPublish(stream: string, maxLen: number, entry: string, ownChannel: string, n: string, ...channels: string[]): Promise<string>;
};

export interface RedisAdapterOptions {
  /** The command connection (appends, stream reads, cluster messages). */
  redis: Redis;
  /** A connection of its own for pub/sub, with `autoResubscribe` off; the adapter closes it. */
  subscriber: Redis;
  keyPrefix: string;
  streamName: string;
  /** The stream's approximate MAXLEN: the recovery log's length. */
  maxLogEntries: number;
  recovery: RedisRecovery;
  /**
   * Whether a room is a socket's own (its id). Broadcasts to another worker's socket go through
   * the all-sockets channel, since nobody subscribes to a socket's room.
   */
  isSocketRoom(room: string): boolean;
  log: Logger;
}

/**
 * Clustered mode's adapter: interest routing over Redis pub/sub, with the stream as the recovery log.
 *
 * A broadcast is appended to the stream and published to one channel per room in one script
 * (broadcast-log.ts); a worker subscribes to a room's channel at the room's first local member
 * and unsubscribes at its last, so it receives only the broadcasts of rooms it has members in.
 * Each delivery carries its entry id as its log position, so recovery reads the stream as
 * before; a worker whose subscriber connection dropped reads what it missed from the stream
 * (RoomSubscriptions). Other cluster messages (heartbeats, fetchSockets, serverSideEmit) go
 * through a node-wide channel and are not logged.
 *
 * Own broadcasts reach own sockets at once (StreamBroadcasts, through RedisRecovery); sessions,
 * restores and evictions are RedisRecovery's.
 */
export class RedisAdapter extends ClusterAdapterWithHeartbeat implements ReportingAdapter {
  private readonly redis: Scripted;
  private readonly channels: LogChannels;
  private readonly subscriptions: RoomSubscriptions;
  private readonly recovery: RedisRecovery;
  /** Rooms kept subscribed for a restored session whose socket has not joined them yet, until when (ms). */
  private readonly reserved = new ReservedRooms((rooms) => rooms.forEach((room) => this.release(room)));
  private closed = false;

  constructor(
    nsp: any, // eslint-disable-line @typescript-eslint/no-explicit-any -- Socket.IO's own adapter signature
    private readonly opts: RedisAdapterOptions,
  ) {
    super(nsp, {});
    this.channels = new LogChannels(opts.keyPrefix, this.nsp.name);
    this.redis = opts.redis as Scripted;
    this.redis.defineCommand("cbPublish", { numberOfKeys: 1, lua: PUBLISH_SCRIPT });
    this.recovery = opts.recovery;
    this.subscriptions = new RoomSubscriptions({
      redis: opts.redis,
      subscriber: opts.subscriber,
      streamName: opts.streamName,
      channels: this.channels,
      uid: this.uid,
      nsp: this.nsp.name,
      log: opts.log,
      onEntry: (id, message) => this.onEntry(id, message),
      onNode: (json) => this.onMessage(JSON.parse(json) as ClusterMessage),
      onResponse: (json) => this.onResponse(JSON.parse(json) as ClusterResponse),
      wanted: (message) => this.wanted(message),
    });
    this.recovery.attach(this.host);
    // Announced once this worker hears the node-wide channel, so the answers reach it.
    void this.subscriptions.started.then(() => {
      if (!this.closed) this.init();
    });
  }

  /** What RedisRecovery and StreamBroadcasts use of this adapter. */
  private readonly host: RecoveryHost = {
    uid: this.uid,
    nsp: this.nsp,
    sids: this.sids,
    append: (data) => this.append(data),
    deliverHere: (packet, opts, offset) => this.deliverHere(packet, opts, offset),
    reserve: (rooms) => this.reserve(rooms),
  };

  override broadcast(packet: EventPacket, opts: BroadcastOptions): Promise<void> {
    if (opts.flags?.local) return super.broadcast(packet, opts);
    return this.recovery.broadcast(packet, opts);
  }

  /** `broadcast` for a publisher that waits on the outcome (see BroadcastReceipt). */
  broadcastWithReceipt(packet: EventPacket, opts: BroadcastOptions): BroadcastReceipt {
    return this.recovery.broadcastWithReceipt(packet, opts);
  }

  /** Appends a broadcast to the log and publishes it to the channels of its rooms (see PUBLISH_SCRIPT). */
  private append(data: LoggedBroadcast["data"]): Promise<string> {
    const message: LoggedBroadcast = { uid: this.uid, nsp: this.nsp.name, type: MessageType.BROADCAST, data };
    const entry = encodeLoggedBroadcast(message);
    const { streamName, maxLogEntries } = this.opts;
    // A counted broadcast is also announced on this worker's own channel: it learns where its
    // own broadcasts are in the log even when it has no member in their rooms.
    const own = data.n === undefined ? "" : this.channels.own(this.uid);
    return this.redis.cbPublish(streamName, maxLogEntries, entry, own, String(data.n ?? ""), ...this.channelsOf(data.opts.rooms));
  }

  /** The channels a broadcast to `rooms` goes to. */
  private channelsOf(rooms: string[]): string[] {
    if (rooms.length === 0) return [this.channels.all];
    const channels = new Set<string>();
    for (const room of rooms) {
      // A socket of this worker's own room (every `socket.emit` under recovery): logged, delivered here only.
      if (this.nsp.sockets.has(room)) continue;
      channels.add(this.opts.isSocketRoom(room) ? this.channels.all : this.channels.room(room));
    }
    return [...channels];
  }

  /** Whether another worker's logged broadcast would have reached this one (for the catch-up). */
  private wanted(message: LoggedBroadcast): boolean {
    const { rooms } = message.data.opts;
    if (rooms.length === 0) return true;
    return rooms.some((room) => (this.opts.isSocketRoom(room) ? this.nsp.sockets.has(room) : this.subscriptions.has(room)));
  }

  /** A logged broadcast from the subscription (or its catch-up), in stream order, once. */
  private onEntry(id: string, message: LoggedBroadcast | OwnEcho): void {
    if (message.uid !== this.uid && this.opts.log.isLevelEnabled("trace")) {
      this.opts.log.trace({ rooms: (message as LoggedBroadcast).data.opts.rooms }, "relayed broadcast");
    }
    this.recovery.received(message, id, this.deliverRemote);
  }

  private readonly deliverRemote = (message: unknown, offset: string): void => {
    const { packet, opts } = (message as LoggedBroadcast).data;
    this.deliverHere(packet, { rooms: new Set(opts.rooms), except: new Set(opts.except), flags: opts.flags }, offset);
  };

  /**
   * Delivers to this worker's sockets only. The offset is stamped as Socket.IO's cluster adapter
   * stamps it (event packets without ack, not volatile; this server always runs with recovery).
   */
  private deliverHere(packet: EventPacket, opts: BroadcastOptions, offset: string | undefined): void {
    countDelivered(this.rooms, packet.data[0], opts.rooms);
    const local: BroadcastOptions = { ...opts, flags: { ...opts.flags, local: true } };
    if (offset) {
      if (packet.type === 2 && packet.id === undefined && !opts.flags?.volatile) packet.data.push(offset);
      this.recovery.beforeLocalDelivery(packet, local);
    }
    void this.broadcastHere(packet, local);
  }

  /** The in-memory delivery to this worker's sockets (made once, not per broadcast). */
  private readonly broadcastHere = (packet: EventPacket, opts: BroadcastOptions) => super.broadcast(packet, opts);

  /** Cluster messages other than logged broadcasts (heartbeats, fetches, server-side emits, broadcasts with acks). */
  protected override doPublish(message: ClusterMessage): Promise<string> {
    return this.redis.publish(this.channels.node, JSON.stringify(message)).then(() => "");
  }

  protected override doPublishResponse(requesterUid: string, response: ClusterResponse): Promise<void> {
    return this.redis.publish(this.channels.response(requesterUid), JSON.stringify(response)).then(() => undefined);
  }

  /**
   * A socket joins rooms. A room new to this worker is subscribed: the returned promise settles
   * once Redis confirmed it, so a subscribe acknowledged after it gets every broadcast logged
   * after the acknowledgement (and so does one joining while another socket's subscribe is on its way).
   */
  override addAll(id: string, rooms: Set<Room>): Promise<void> | void {
    let waits: Promise<void>[] | undefined;
    for (const room of rooms) {
      if (this.opts.isSocketRoom(room)) continue;
      const subscribed = this.subscriptions.subscribe(room);
      if (subscribed) (waits ??= []).push(subscribed);
    }
    super.addAll(id, rooms);
    this.recovery.roomsChanged(id);
    if (waits) return Promise.all(waits).then(() => undefined);
  }

  override del(id: string, room: Room): void {
    super.del(id, room);
    this.recovery.roomsChanged(id);
    this.release(room);
  }

  override delAll(id: string): void {
    const rooms = this.sids.get(id);
    const left = rooms ? [...rooms] : [];
    super.delAll(id);
    for (const room of left) this.release(room);
    this.recovery.released(id);
  }

  /** Unsubscribes a room that has no local member left (unless a restore reserved it). */
  private release(room: string): void {
    if (this.opts.isSocketRoom(room) || this.rooms.has(room) || this.reserved.has(room)) return;
    this.subscriptions.unsubscribe(room);
  }

  /** Subscribes a restored session's rooms and keeps them for RESERVED_MS (see RecoveryHost.reserve). */
  private reserve(rooms: string[]): Promise<void> {
    const kept = rooms.filter((room) => !this.opts.isSocketRoom(room));
    this.reserved.add(kept);
    const waits: Promise<void>[] = [];
    for (const room of kept) {
      const subscribed = this.subscriptions.subscribe(room);
      if (subscribed) waits.push(subscribed);
    }
    return Promise.all(waits).then(() => undefined);
  }

  override persistSession(session: SessionRecord): void {
    this.recovery.closed(session);
  }

  override restoreSession(pid: string, offset: string): Promise<Session> {
    // Socket.IO takes null (a promise of Session is what the base class declares) for "not recovered".
    return this.recovery.restore(pid, offset) as Promise<Session>;
  }

  override close(): void {
    if (this.closed) return;
    this.closed = true;
    super.close();
    this.recovery.close();
    this.reserved.close();
    this.subscriptions.close();
  }
}
