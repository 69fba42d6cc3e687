import type { PresenceState } from "../../shared/contract.js";
import type { PresenceInfo } from "../../shared/schemas.js";

/**
 * The six presence operations (PROTOCOL.md, "Presence semantics"), behind one interface with an
 * embedded implementation (held by the primary) and a Redis one. Members are identified by socket id.
 */
export interface PresenceStore {
  /** Adds (or merges into) a member; returns the merged state. */
  add(channel: string, socketId: string, info: PresenceInfo): Promise<PresenceState>;
  /** Removes a member; false when it was not one. */
  remove(channel: string, socketId: string): Promise<boolean>;
  /** Every member's state. */
  members(channel: string): Promise<PresenceState[]>;
  /** Merges fields into an existing member; undefined when it is not a member (nothing is written). */
  update(channel: string, socketId: string, partial: PresenceInfo): Promise<PresenceState | undefined>;
  /** The channels a member is present in. */
  channelsOf(socketId: string): Promise<string[]>;
  /** Removes a member from every channel; returns the channels it left. */
  removeAll(socketId: string): Promise<string[]>;
  close(): Promise<void>;
}

/** Converts info to the contract's State: every value a string, plus the socket id. */
export function toState(info: Record<string, unknown>, socketId: string): PresenceState {
  const state: Record<string, string> = {};
  for (const [k, v] of Object.entries(info)) state[k] = String(v);
  state.socketId = socketId;
  return state as PresenceState;
}
