/** Bounds on presence, checked atomically by each store (see PRESENCE_* in the configuration). */
export interface PresenceLimits {
  maxMembers: number;
  maxChannelsPerMember: number;
}

/** Why an add was refused at a bound. */
export type PresenceRefusal = "members" | "channels";

/** A socket's memberships taken out by a reap, kept for the recovery window to re-enter it. */
export interface Removal {
  channel: string;
  socketId: string;
}

export interface Reentry {
  channel: string;
  state: Record<string, string>;
}
