import type { PresenceState } from "./contract.js";

/**
 * The embedded presence state, held by the primary for all of the host's workers. Each member
 * remembers the worker that owns its socket so that a dead worker's members can be removed.
 */
export class PresenceTable {
  private readonly channels = new Map<string, Map<string, { state: PresenceState; owner: number }>>();
  private readonly bySocket = new Map<string, Set<string>>();

  add(channel: string, socketId: string, info: Record<string, string>, owner: number): PresenceState {
    let members = this.channels.get(channel);
    if (!members) this.channels.set(channel, (members = new Map()));
    const previous = members.get(socketId)?.state;
    const state = { ...previous, ...info, socketId } as PresenceState;
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
    if (joined?.size === 0) this.bySocket.delete(socketId);
    return true;
  }

  members(channel: string): PresenceState[] {
    return [...(this.channels.get(channel)?.values() ?? [])].map((e) => e.state);
  }

  memberCount(channel: string): number {
    return this.channels.get(channel)?.size ?? 0;
  }

  channelsOf(socketId: string): string[] {
    return [...(this.bySocket.get(socketId) ?? [])];
  }

  removeAll(socketId: string): string[] {
    const left = this.channelsOf(socketId);
    for (const channel of left) this.remove(channel, socketId);
    return left;
  }

  /** A socket moved to another worker (recovery): its memberships follow it. */
  reassign(socketId: string, owner: number): void {
    for (const channel of this.bySocket.get(socketId) ?? []) {
      const entry = this.channels.get(channel)?.get(socketId);
      if (entry) entry.owner = owner;
    }
  }

  /** Removes every member owned by a worker; returns what was removed, for the leave events. */
  removeOwnedBy(owner: number): Array<{ channel: string; socketId: string }> {
    const removed: Array<{ channel: string; socketId: string }> = [];
    for (const [channel, members] of this.channels) {
      for (const [socketId, entry] of members) if (entry.owner === owner) removed.push({ channel, socketId });
    }
    for (const { channel, socketId } of removed) this.remove(channel, socketId);
    return removed;
  }
}
