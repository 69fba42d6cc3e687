import type { SessionRecord } from "../shared/adapter-ipc.js";

interface Entry {
  /** Kept lean: one entry per connected socket of the host. `rooms` leaves out the socket's own room. */
  record: SessionRecord;
  /** The worker whose socket holds this session; undefined once disconnected. */
  owner: number | undefined;
  disconnectedAt: number | undefined;
}

/** As kept: without the socket's own room (every socket is in it). */
function stored(record: SessionRecord): SessionRecord {
  return { sid: record.sid, pid: record.pid, rooms: record.rooms.filter((r) => r !== record.sid), data: record.data };
}

/** As handed back: the own room first, as Socket.IO lists it. */
function complete(record: SessionRecord): SessionRecord {
  return { sid: record.sid, pid: record.pid, rooms: [record.sid, ...record.rooms], data: record.data };
}

export interface SessionLimits {
  /** A disconnected session is kept this long, in ms (the recovery window). */
  maxDisconnectionMs: number;
  /** At most this many disconnected sessions are kept; the oldest go first. */
  maxDisconnected: number;
}

/**
 * The host's recovery sessions (embedded mode), saved eagerly: on connect and on every room
 * change, so a worker that crashes loses none. Only the owning worker may change a session, so a
 * stale report from a connection that was replaced (a half-open one) cannot undo a recovery.
 */
export class SessionTable {
  private readonly bySid = new Map<string, Entry>();
  private readonly byPid = new Map<string, string>();
  /** Disconnected sessions in the order they disconnected (for trimming). */
  private readonly disconnected = new Map<string, number>();

  constructor(
    private readonly limits: SessionLimits,
    /** Told of each disconnected session dropped before its client came back. */
    private readonly onDrop: (sid: string, reason: "expired" | "over-bound") => void = () => undefined,
  ) {}

  get disconnectedCount(): number {
    return this.disconnected.size;
  }

  open(owner: number, record: SessionRecord): void {
    const previous = this.bySid.get(record.sid);
    if (previous && previous.record.pid !== record.pid) this.byPid.delete(previous.record.pid);
    this.bySid.set(record.sid, { record: stored(record), owner, disconnectedAt: undefined });
    this.byPid.set(record.pid, record.sid);
    this.disconnected.delete(record.sid);
  }

  rooms(owner: number, sid: string, add: readonly string[] = [], del: readonly string[] = []): void {
    const entry = this.bySid.get(sid);
    if (!entry || entry.owner !== owner) return;
    const rooms = entry.record.rooms;
    for (const room of add) if (room !== sid && !rooms.includes(room)) rooms.push(room);
    for (const room of del) {
      const at = rooms.indexOf(room);
      if (at !== -1) rooms.splice(at, 1);
    }
  }

  /** The worker whose socket holds session `sid` live, if any (routes a broadcast to a socket's own room). */
  ownerOf(sid: string): number | undefined {
    return this.bySid.get(sid)?.owner;
  }

  /** A recoverable close: keep the session (with its final rooms and data) for the window. */
  closed(owner: number, record: SessionRecord, now: number): void {
    const entry = this.bySid.get(record.sid);
    if (!entry || entry.owner !== owner) return;
    entry.record = stored(record);
    this.markDisconnected(record.sid, entry, now);
  }

  /** A final close: forget the session. */
  gone(owner: number, sid: string): void {
    const entry = this.bySid.get(sid);
    if (!entry || entry.owner !== owner) return;
    this.delete(sid);
  }

  /** A worker died: every session it held becomes recoverable from now. */
  ownerDied(owner: number, now: number): number {
    let count = 0;
    for (const [sid, entry] of this.bySid) {
      if (entry.owner === owner) {
        this.markDisconnected(sid, entry, now);
        count++;
      }
    }
    return count;
  }

  /**
   * Hands a session to a new connection on `newOwner`. Returns the session and the worker that
   * still holds it live (a half-open connection to close), or undefined when it cannot be recovered.
   */
  take(
    pid: string,
    newOwner: number,
    now: number,
  ): { record: SessionRecord; previousOwner: number | undefined } | undefined {
    this.trim(now);
    const sid = this.byPid.get(pid);
    const entry = sid === undefined ? undefined : this.bySid.get(sid);
    if (!entry || sid === undefined) return undefined;
    const previousOwner = entry.owner;
    entry.owner = newOwner;
    entry.disconnectedAt = undefined;
    this.disconnected.delete(sid);
    return { record: complete(entry.record), previousOwner };
  }

  /** Forgets a session (recovery of it failed: the client starts afresh). */
  delete(sid: string): void {
    const entry = this.bySid.get(sid);
    if (!entry) return;
    this.bySid.delete(sid);
    this.byPid.delete(entry.record.pid);
    this.disconnected.delete(sid);
  }

  /** Drops disconnected sessions past the window or the count bound. */
  trim(now: number): void {
    for (const [sid, at] of this.disconnected) {
      const expired = now - at > this.limits.maxDisconnectionMs;
      if (!expired && this.disconnected.size <= this.limits.maxDisconnected) break;
      this.delete(sid);
      this.onDrop(sid, expired ? "expired" : "over-bound");
    }
  }

  /** Every session, as disconnected at `now`, to survive a graceful restart. */
  snapshot(now: number): Array<{ record: SessionRecord; disconnectedAt: number }> {
    return [...this.bySid.values()].map((e) => ({
      record: complete(e.record),
      disconnectedAt: e.disconnectedAt ?? now,
    }));
  }

  restore(saved: Array<{ record: SessionRecord; disconnectedAt: number }>, now: number): void {
    for (const { record, disconnectedAt } of saved.sort((a, b) => a.disconnectedAt - b.disconnectedAt)) {
      const entry: Entry = { record: stored(record), owner: undefined, disconnectedAt: undefined };
      this.bySid.set(record.sid, entry);
      this.byPid.set(record.pid, record.sid);
      this.markDisconnected(record.sid, entry, disconnectedAt);
    }
    this.trim(now);
  }

  private markDisconnected(sid: string, entry: Entry, at: number): void {
    entry.owner = undefined;
    entry.disconnectedAt = at;
    this.disconnected.delete(sid);
    this.disconnected.set(sid, at);
    this.trim(at);
  }
}
