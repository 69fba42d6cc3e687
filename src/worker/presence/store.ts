import type { PresenceState } from "../../shared/contract.js";
import type { PresenceRefusal, Reentry, Removal } from "../../shared/presence-limits.js";

/**
 * The six presence operations (docs/protocol.md, "Presence"; docs/presence.md) plus the lifecycle that keeps
 * lists free of flapping and ghosts, behind one interface with an embedded implementation (held
 * by the primary) and a Redis one. Members are identified by socket id; every write is atomic.
 */
export interface PresenceStore {
  /** Adds (or merges into) a member; returns the merged state, or the bound that refused it. */
  add(channel: string, socketId: string, info: Record<string, string>): Promise<PresenceState | PresenceRefusal>;
  /** Removes a member; false when it was not one. */
  remove(channel: string, socketId: string): Promise<boolean>;
  /** Every member's state. */
  members(channel: string): Promise<PresenceState[]>;
  /** Merges fields into an existing member; undefined when it is not a member (nothing is written). */
  update(channel: string, socketId: string, partial: Record<string, string>): Promise<PresenceState | undefined>;
  /** The channels a member is present in. */
  channelsOf(socketId: string): Promise<string[]>;
  /**
   * Removes a member whose socket this server owns from every channel; returns the channels it
   * left (none when another server owns it now: the connection moved there).
   */
  removeAll(socketId: string): Promise<string[]>;
  /**
   * The socket dropped in a way recovery can handle: keep it listed for `graceMs`. Only when
   * this server still owns it; a late report after the connection recovered on another server
   * changes nothing (false).
   */
  suspend(socketId: string, graceMs: number): Promise<boolean>;
  /** The socket recovered here: cancel its pending leave; returns memberships re-entered after a reap. */
  resume(socketId: string): Promise<Reentry[]>;
  /** Removes what is past its grace or lease; returns what left (the caller sends `leave`). */
  reap(): Promise<Removal[]>;
  close(): Promise<void>;
}

/** Converts info to the contract's State: every value a string (the socket id is added by the store). */
export function stringifyInfo(info: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(info)) out[k] = String(v);
  return out;
}
