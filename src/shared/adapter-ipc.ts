import type { ClusterMessage, ClusterResponse } from "socket.io-adapter";

/**
 * The embedded adapter's IPC between a worker and the primary (embedded mode). The primary
 * sequences every broadcast, keeps the replay log and the host's recovery sessions.
 */
export const ADAPTER_SOURCE = "cerebellum:adapter";

/** What the primary keeps of a socket so it can be recovered on any worker. */
export interface SessionRecord {
  sid: string;
  pid: string;
  rooms: string[];
  data: unknown;
}

export interface RestoredSession extends SessionRecord {
  missedPackets: unknown[][];
}

type Tagged<T> = T & { source: typeof ADAPTER_SOURCE };

/** Worker → primary. */
export type AdapterUpMessage = Tagged<
  /** A cluster message; `id` asks for the offset back; `relay: false` is logged only (a local socket's own room). */
  /** `bytes`: the packet's JSON length, for the replay log's byte bound. */
  | { t: "pub"; id?: number; msg: ClusterMessage; relay: boolean; bytes?: number }
  | { t: "res"; to: string; msg: ClusterResponse }
  /** A socket connected (eager session save, so a crash loses nothing). */
  | { t: "open"; session: SessionRecord }
  | { t: "rooms"; sid: string; add?: string[]; del?: string[] }
  /** A socket dropped for a reason recovery handles: keep its session for the window. */
  | { t: "closed"; session: SessionRecord }
  /** A socket left for good: forget its session. */
  | { t: "gone"; sid: string }
  | { t: "restore"; id: number; pid: string; offset: string }
>;

/** Primary → worker. */
export type AdapterDownMessage = Tagged<
  | { t: "offset"; id: number; offset: string }
  | { t: "msg"; msg: ClusterMessage; offset?: string }
  | { t: "res"; msg: ClusterResponse }
  /** `upTo`: the last offset the missed packets cover; later ones arrive as relays. */
  | { t: "restored"; id: number; session: RestoredSession | null; upTo: string }
  /** Close this (half-open) socket quietly: its session now lives on another connection. */
  | { t: "evict"; sid: string }
>;

export function isAdapterMessage<T extends { source: string }>(value: unknown): value is T {
  return typeof value === "object" && value !== null && (value as { source?: unknown }).source === ADAPTER_SOURCE;
}

/** Embedded offsets are `<epoch>-<seq>` (primary/replay-log.ts): newer means same epoch, larger seq. */
export function isNewerOffset(offset: string, than: string): boolean {
  const dash = offset.lastIndexOf("-");
  const thanDash = than.lastIndexOf("-");
  return offset.slice(0, dash) === than.slice(0, thanDash) && Number(offset.slice(dash + 1)) > Number(than.slice(thanDash + 1));
}
