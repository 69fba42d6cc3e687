import type { PresenceState } from "../shared/contract.js";
import type { PresenceLimits, PresenceRefusal, Reentry, Removal } from "../shared/presence-limits.js";

interface Member {
  state: PresenceState;
  owner: number;
}

/**
 * The embedded presence state, held by the primary for all of the host's workers. Each member
 * remembers the worker that owns its socket. A socket whose connection dropped is *suspended*:
 * it stays listed until its deadline, and `reap` removes it then (the caller sends `leave`);
 * its states are kept as a ghost for the recovery window so that a late recovery re-enters it.
 */
export class PresenceTable {
  private readonly channels = new Map<string, Map<string, Member>>();
  private readonly bySocket = new Map<string, Set<string>>();
  /** Suspended sockets and their leave deadline (ms since epoch). */
  private readonly pending = new Map<string, number>();
  /** Reaped sockets' states, for re-entry on a late recovery; expiry in ms since epoch. */
  private readonly ghosts = new Map<string, { states: Reentry[]; expiresAt: number }>();

  constructor(
    private readonly limits: PresenceLimits,
    private readonly ghostTtlMs: number,
    private readonly maxGhosts: number,
  ) {}

  add(channel: string, socketId: string, info: Record<string, string>, owner: number): PresenceState | PresenceRefusal {
    let members = this.channels.get(channel);
    const previous = members?.get(socketId);
    if (!previous) {
      if ((members?.size ?? 0) >= this.limits.maxMembers) return "members";
      if ((this.bySocket.get(socketId)?.size ?? 0) >= this.limits.maxChannelsPerMember) return "channels";
    }
    if (!members) this.channels.set(channel, (members = new Map()));
    const state = { ...previous?.state, ...info, socketId } as PresenceState;
    members.set(socketId, { state, owner });
    let joined = this.bySocket.get(socketId);
    if (!joined) this.bySocket.set(socketId, (joined = new Set()));
    joined.add(channel);
    return state;
  }

  update(channel: string, socketId: string, info: Record<string, string>): PresenceState | undefined {
    const entry = this.channels.get(channel)?.get(socketId);
    if (!entry) return undefined;
    entry.state = { ...entry.state, ...info, socketId } as PresenceState;
    return entry.state;
  }

  remove(channel: string, socketId: string): boolean {
    const members = this.channels.get(channel);
    if (!members?.delete(socketId)) return false;
    if (members.size === 0) this.channels.delete(channel);
    const joined = this.bySocket.get(socketId);
    joined?.delete(channel);
    if (joined?.size === 0) {
      this.bySocket.delete(socketId);
      this.pending.delete(socketId);
    }
    return true;
  }

  members(channel: string): PresenceState[] {
    return [...(this.channels.get(channel)?.values() ?? [])].map((e) => e.state);
  }

  channelsOf(socketId: string): string[] {
    return [...(this.bySocket.get(socketId) ?? [])];
  }

  /**
   * Removes a member from every channel; returns the channels it left. With `owner`, only when
   * that worker still owns the socket: a worker reporting a connection it lost must not remove
   * the member another worker took over (a recovery that beat the report there).
   */
  removeAll(socketId: string, owner?: number): string[] {
    if (owner !== undefined && this.ownerOf(socketId) !== owner) return [];
    const left = this.channelsOf(socketId);
    for (const channel of left) this.remove(channel, socketId);
    this.pending.delete(socketId);
    return left;
  }

  /** The worker that owns a member's socket (every membership of a socket has the same one). */
  private ownerOf(socketId: string): number | undefined {
    const first = this.bySocket.get(socketId)?.values().next().value;
    return first === undefined ? undefined : this.channels.get(first)?.get(socketId)?.owner;
  }

  /**
   * The socket dropped on worker `owner`: keep it listed until `deadline`, then `reap` removes
   * it. Ignored when another worker owns the socket now: the connection moved there (recovered)
   * before this report arrived, and its member must not leave. Returns whether it was suspended.
   */
  suspend(socketId: string, deadline: number, owner: number): boolean {
    if (this.ownerOf(socketId) !== owner) return false;
    const current = this.pending.get(socketId);
    this.pending.set(socketId, current === undefined ? deadline : Math.min(current, deadline));
    return true;
  }

  /** Every member of a dead worker is suspended until `deadline` (unless it recovers first). */
  suspendOwnedBy(owner: number, deadline: number): number {
    let count = 0;
    for (const socketId of this.bySocket.keys()) if (this.suspend(socketId, deadline, owner)) count++;
    return count;
  }

  /**
   * The socket is back (recovered) on `owner`: cancel its pending leave and move its
   * memberships there; if it had already been reaped, re-enter it from its ghost (the caller
   * sends `join` for what this returns).
   */
  resume(socketId: string, owner: number, now: number): Reentry[] {
    this.pending.delete(socketId);
    for (const channel of this.bySocket.get(socketId) ?? []) {
      const entry = this.channels.get(channel)?.get(socketId);
      if (entry) entry.owner = owner;
    }
    const ghost = this.ghosts.get(socketId);
    if (!ghost) return [];
    this.ghosts.delete(socketId);
    if (ghost.expiresAt < now) return [];
    const back: Reentry[] = [];
    for (const { channel, state } of ghost.states) {
      const { socketId: _id, ...info } = state;
      const added = this.add(channel, socketId, info, owner);
      if (typeof added !== "string") back.push({ channel, state: added });
    }
    return back;
  }

  /** Removes suspended sockets past their deadline; returns what left (for `leave` events). */
  reap(now: number): Removal[] {
    const removed: Removal[] = [];
    for (const [socketId, deadline] of this.pending) {
      if (deadline > now) continue;
      const states: Reentry[] = this.channelsOf(socketId).map((channel) => ({
        channel,
        state: this.channels.get(channel)!.get(socketId)!.state,
      }));
      for (const { channel } of states) removed.push({ channel, socketId });
      this.removeAll(socketId);
      this.ghosts.set(socketId, { states, expiresAt: now + this.ghostTtlMs });
    }
    for (const [socketId, ghost] of this.ghosts) {
      if (ghost.expiresAt >= now && this.ghosts.size <= this.maxGhosts) break;
      this.ghosts.delete(socketId);
    }
    return removed;
  }
}
