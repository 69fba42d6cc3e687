import {
  ClusterAdapterWithHeartbeat,
  MessageType,
  type ClusterMessage,
  type ClusterResponse,
  type Room,
  type Session,
} from "socket.io-adapter";
import {
  ADAPTER_SOURCE,
  isAdapterMessage,
  isNewerOffset,
  type AdapterDownMessage,
  type AdapterUpMessage,
  type SessionRecord,
} from "../../shared/adapter-ipc.js";
import { assertNever } from "../../shared/ipc.js";
import type { Logger } from "../../shared/logger.js";
import { sessionRecordOf, type RecoverableSocket } from "./session-record.js";
import { hookBeforeLocalDelivery, PendingRestores, restoreStage, writeEventPacket } from "./pending-restores.js";
import type { Evictions } from "./evictions.js";


/** Offset requests and restores waiting on the primary beyond this are refused rather than queued. */
const MAX_WAITING = 100_000;

/**
 * Embedded mode's adapter: the primary relays and *sequences* every broadcast, keeps a bounded
 * replay log and every socket's session, so a client recovers on any worker of the host — after a
 * blip, a worker crash or a restart. The stock @socket.io/cluster-adapter cannot recover at all.
 */
export class EmbeddedAdapter extends ClusterAdapterWithHeartbeat {
  private nextId = 1;
  private readonly offsets = new Map<number, { resolve: (o: string) => void; reject: (e: Error) => void }>();
  private readonly restores = new Map<number, (session: Session | null) => void>();
  private readonly pendingRestores = new PendingRestores((sid) => restoreStage(this.sids, this.nsp.sockets, sid));
  /** Sockets tracked by the primary's session table. */
  private readonly tracked = new Set<string>();
  /** Sockets whose session was just persisted by a recoverable close (their delAll follows). */
  private readonly persisted = new Set<string>();
  private readonly onIpc = (message: unknown) => {
    if (isAdapterMessage<AdapterDownMessage>(message)) this.dispatch(message);
  };

  constructor(
    nsp: any, // eslint-disable-line @typescript-eslint/no-explicit-any -- Socket.IO's own adapter signature
    private readonly log: Logger,
    private readonly evictions: Evictions,
  ) {
    super(nsp, {});
    hookBeforeLocalDelivery(this, (packet, opts, offset) => this.pendingRestores.catchUp(packet, opts, offset));
    process.on("message", this.onIpc);
    this.init();
  }

  private send(message: AdapterUpMessage): void {
    if (!process.connected || !process.send) return;
    try {
      process.send(message);
    } catch (err) {
      // Uncloneable data (a function in socket.data, say): drop this message, keep the worker.
      this.log.error({ err, t: message.t }, "adapter message could not be sent");
    }
  }

  private dispatch(message: AdapterDownMessage): void {
    switch (message.t) {
      case "offset": {
        const waiter = this.offsets.get(message.id);
        this.offsets.delete(message.id);
        waiter?.resolve(message.offset);
        break;
      }
      case "msg":
        if (message.msg.nsp === this.nsp.name) this.onMessage(message.msg, message.offset);
        break;
      case "res":
        if (message.msg.nsp === this.nsp.name) this.onResponse(message.msg);
        break;
      case "restored": {
        const resolve = this.restores.get(message.id);
        this.restores.delete(message.id);
        if (!resolve) break;
        if (!message.session) {
          resolve(null);
          break;
        }
        // Deliveries from here on that are newer than what the primary put in the answer are
        // caught up until the socket joins (an own broadcast whose offset came earlier is not).
        const upTo = message.upTo;
        this.pendingRestores.add(message.session, (offset) => isNewerOffset(offset, upTo));
        resolve(message.session);
        break;
      }
      case "evict":
        this.evict(message.sid);
        break;
      default:
        assertNever(message);
    }
  }

  private evict(sid: string): void {
    const socket = this.nsp.sockets.get(sid) as RecoverableSocket | undefined;
    this.tracked.delete(sid);
    if (socket) this.evictions.run(sid, () => socket.disconnect(true));
  }

  protected override doPublish(message: ClusterMessage): Promise<string> {
    if (message.type !== MessageType.BROADCAST || message.data.requestId !== undefined) {
      this.send({ source: ADAPTER_SOURCE, t: "pub", msg: message, relay: true });
      return Promise.resolve("");
    }
    const rooms = message.data.opts.rooms;
    // A socket's own room on this worker (every `socket.emit` under recovery): log, don't relay.
    const relay = !(rooms.length === 1 && message.data.opts.except.length === 0 && this.nsp.sockets.has(rooms[0]));
    if (this.offsets.size >= MAX_WAITING) return Promise.reject(new Error("too many broadcasts waiting for the primary"));
    const id = this.nextId++;
    // Measured here, where the packet is plain data; the primary bounds its log by it.
    const bytes = JSON.stringify((message.data.packet as { data?: unknown }).data ?? null).length;
    return new Promise((resolve, reject) => {
      this.offsets.set(id, { resolve, reject });
      this.send({ source: ADAPTER_SOURCE, t: "pub", id, msg: message, relay, bytes });
    });
  }

  protected override doPublishResponse(requesterUid: string, response: ClusterResponse): Promise<void> {
    this.send({ source: ADAPTER_SOURCE, t: "res", to: requesterUid, msg: response });
    return Promise.resolve();
  }

  override addAll(id: string, rooms: Set<Room>): void {
    super.addAll(id, rooms);
    if (this.tracked.has(id)) this.send({ source: ADAPTER_SOURCE, t: "rooms", sid: id, add: [...rooms] });
  }

  override del(id: string, room: Room): void {
    super.del(id, room);
    if (this.tracked.has(id)) this.send({ source: ADAPTER_SOURCE, t: "rooms", sid: id, del: [room] });
  }

  override delAll(id: string): void {
    super.delAll(id);
    if (!this.tracked.delete(id)) return;
    if (this.persisted.delete(id)) return; // a recoverable close already saved it
    this.send({ source: ADAPTER_SOURCE, t: "gone", sid: id });
  }

  /** Starts tracking a connected socket: its session is saved now, not only when it closes. */
  track(socket: RecoverableSocket): void {
    this.tracked.add(socket.id);
    this.pendingRestores.settle(socket.id, (data) => writeEventPacket(socket, data));
    this.send({ source: ADAPTER_SOURCE, t: "open", session: sessionRecordOf(socket) });
  }

  override persistSession(session: SessionRecord): void {
    if (!this.tracked.has(session.sid)) return; // evicted, or never tracked: its session lives elsewhere
    this.persisted.add(session.sid);
    this.send({ source: ADAPTER_SOURCE, t: "closed", session });
  }

  override restoreSession(pid: string, offset: string): Promise<Session> {
    if (this.restores.size >= MAX_WAITING) return Promise.resolve(null as unknown as Session);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.restores.set(id, resolve as (s: Session | null) => void);
      this.send({ source: ADAPTER_SOURCE, t: "restore", id, pid, offset });
    });
  }

  override close(): void {
    super.close();
    process.off("message", this.onIpc);
    for (const waiter of this.offsets.values()) waiter.reject(new Error("adapter closed"));
    this.offsets.clear();
    for (const resolve of this.restores.values()) resolve(null);
    this.restores.clear();
  }
}
