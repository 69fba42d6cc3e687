import type { BroadcastOptions, Session } from "socket.io-adapter";

interface Pending {
  session: Session;
  /** Only packets this returns true for are caught up (those past what the restore already read). */
  isNewer: (offset: string) => boolean;
  /** Packets for a socket that exists but is not yet registered: written when it connects. */
  deferred: unknown[][];
  /** When the entry is dropped even if delivery never caught up (ms since epoch). */
  expiresAt: number;
  /** When the restore was answered: one whose socket never connects is given up after a while. */
  addedAt: number;
}

/** A restored socket that has not connected this long after the answer never will (its client left). */
const ABANDONED_AFTER_MS = 10_000;

/** How long a restored socket is watched after it connected, at most. */
const WATCH_AFTER_CONNECT_MS = 60_000;

type Collected = { data: unknown[]; opts: BroadcastOptions; offset: string };

/** Where a restored socket is in Socket.IO's construction, seen from the adapter. */
export type RestoreStage = "awaiting" | "constructed" | "registered";

/**
 * Between a restore's answer and the moment Socket.IO's new socket can receive local deliveries
 * (it joins its rooms in its constructor, but delivery also needs it in `nsp.sockets`, a few
 * microtasks later), broadcasts for it would be lost. Every local delivery passes here first:
 * before construction a matching packet joins the session's missed list; between construction
 * and registration it is held and written when the socket connects (`settle`).
 */
export class PendingRestores {
  private readonly pending = new Set<Pending>();
  private readonly collectors = new Set<Collected[]>();

  /**
   * `lateDeliveries`: whether local delivery may still bring packets the restore already read
   * after the socket connected (Redis: the worker's subscription can lag behind the stream's end,
   * which the restore read). Such packets are then kept from the socket (it has them), until a
   * packet past the read arrives through `isCaughtUp`.
   */
  constructor(
    private readonly stage: (sid: string) => RestoreStage,
    private readonly lateDeliveries?: { isCaughtUp: (offset: string, isNewer: (o: string) => boolean) => boolean },
  ) {}

  /**
   * Starts recording every packet delivered locally, for a restore whose read of the log is
   * still under way (its end is not known yet). `finish` keeps those past the read.
   */
  collect(): { finish(session: Session, isNewer: (offset: string) => boolean): void; abort(): void } {
    const seen: Collected[] = [];
    this.collectors.add(seen);
    return {
      finish: (session, isNewer) => {
        this.collectors.delete(seen);
        for (const { data, opts, offset } of seen) {
          if (isNewer(offset) && matches(session.rooms, opts)) session.missedPackets.push(data);
        }
        this.add(session, isNewer);
      },
      abort: () => this.collectors.delete(seen),
    };
  }

  add(session: Session, isNewer: (offset: string) => boolean = () => true): void {
    this.pending.add({ session, isNewer, deferred: [], expiresAt: Number.POSITIVE_INFINITY, addedAt: Date.now() });
  }

  /**
   * Whether a restored socket has not connected yet (its deliveries are still being caught up).
   * Entries whose socket never connected (the client left during the restore) are dropped here.
   */
  unsettled(now: number): boolean {
    for (const p of this.pending) {
      if (p.expiresAt !== Number.POSITIVE_INFINITY || this.stage(p.session.sid) === "registered") continue;
      if (now - p.addedAt < ABANDONED_AFTER_MS) return true;
      this.pending.delete(p);
    }
    return false;
  }

  /**
   * The socket connected (its `connection` fired): write what was held for it. Without late
   * deliveries nothing more can arrive for it; otherwise it stays watched until caught up.
   */
  settle(sid: string, write: (data: unknown[]) => void): void {
    for (const p of this.pending) {
      if (p.session.sid !== sid) continue;
      for (const data of p.deferred) write(data);
      p.deferred = [];
      if (this.lateDeliveries) p.expiresAt = Date.now() + WATCH_AFTER_CONNECT_MS;
      else this.pending.delete(p);
    }
  }

  /** Whether no restore is being caught up: local deliveries need not pass `catchUp`. */
  get idle(): boolean {
    return this.pending.size === 0 && this.collectors.size === 0;
  }

  catchUp(packet: { type: number; id?: number; data: unknown[] }, opts: BroadcastOptions, offset: string | undefined): void {
    if (this.idle) return;
    if (packet.type !== 2 || packet.id !== undefined || opts.flags?.volatile || !offset) return;
    for (const seen of this.collectors) seen.push({ data: [...packet.data], opts, offset });
    const now = Date.now();
    for (const p of this.pending) {
      const stage = this.stage(p.session.sid);
      if (stage === "registered") {
        if (!this.lateDeliveries || p.expiresAt < now || this.lateDeliveries.isCaughtUp(offset, p.isNewer)) {
          this.pending.delete(p);
        } else if (!p.isNewer(offset) && matches(p.session.rooms, opts)) {
          // Already replayed to it by the restore: keep this late copy from the socket. A new set,
          // because the caller's may be shared with other broadcasts.
          opts.except = new Set([...(opts.except ?? []), p.session.sid]);
        }
        continue;
      }
      if (!p.isNewer(offset) || !matches(p.session.rooms, opts)) continue;
      if (stage === "awaiting") p.session.missedPackets.push([...packet.data]);
      else p.deferred.push([...packet.data]);
    }
  }
}

/** Whether a socket in `rooms` receives a broadcast with these options. */
function matches(rooms: readonly string[], opts: BroadcastOptions): boolean {
  const included = opts.rooms.size === 0 || rooms.some((r) => opts.rooms.has(r));
  return included && !rooms.some((r) => opts.except?.has(r));
}

/** The stage of a restored socket, from the adapter's room index and the namespace's socket map. */
export function restoreStage(sids: Map<string, unknown>, sockets: Map<string, unknown>, sid: string): RestoreStage {
  if (sockets.has(sid)) return "registered";
  return sids.has(sid) ? "constructed" : "awaiting";
}

/**
 * Writes an event packet to a socket the way Socket.IO writes a restored session's missed
 * packets (its `packet()` method is not part of the typed API).
 */
export function writeEventPacket(socket: unknown, data: unknown[]): void {
  (socket as { packet(p: { type: number; data: unknown[] }): void }).packet({ type: 2, data });
}

/**
 * Wraps ClusterAdapter's private offset stamp, which runs right before every local delivery
 * (own broadcast or relayed one): the one place every packet passes with its offset.
 */
export function hookBeforeLocalDelivery(
  adapter: object,
  hook: (packet: { type: number; id?: number; data: unknown[] }, opts: BroadcastOptions, offset: string | undefined) => void,
): void {
  const target = adapter as {
    addOffsetIfNecessary: (packet: { type: number; id?: number; data: unknown[] }, opts: BroadcastOptions, offset?: string) => void;
  };
  const stamp = target.addOffsetIfNecessary;
  if (typeof stamp !== "function") throw new Error("socket.io-adapter changed: addOffsetIfNecessary is missing");
  target.addOffsetIfNecessary = function (packet, opts, offset) {
    stamp.call(this, packet, opts, offset);
    hook(packet, opts, offset);
  };
}
