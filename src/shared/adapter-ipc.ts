import type { BroadcastFlags, ClusterMessage, ClusterResponse } from "socket.io-adapter";

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

/** A sequenced broadcast as it crosses IPC: its data array as JSON (`d`), not as objects. */
export interface Broadcast {
  uid: string;
  nsp: string;
  rooms: string[];
  except: string[];
  /** Only when set (a broadcast usually has none). */
  flags?: BroadcastFlags;
  d?: string;
}

/** Worker → primary. */
export type AdapterUpMessage =
  /**
   * A cluster message the primary relays without sequencing it (anything but a logged broadcast);
   * `id` asks for an answer (an empty offset) before it is delivered locally.
   */
  | { t: "pub"; id?: number; msg: ClusterMessage }
  /**
   * A broadcast the primary sequences and logs (`isLoggedBroadcast`), in a cheaper form than a
   * cluster message: its data array as the JSON the worker measured it with (`d`; absent for a
   * marker, a connection's welcome), so the primary logs and relays a string instead of an object
   * graph; `id` asks for its offset back (a broadcast held until the primary answers; one already
   * delivered here is told of later, in a `seen`). `origin`/`n`: the publishing adapter's tag and
   * its own count of sequenced broadcasts, which it may already have delivered locally (see
   * `Position`).
   * `relay: false`: logged only (a local socket's own room).
   */
  | (Broadcast & { t: "bc"; id?: number; relay: boolean; origin: string; n: number })
  | { t: "res"; to: string; msg: ClusterResponse }
  /** A socket connected (eager session save, so a crash loses nothing). */
  | { t: "open"; session: SessionRecord }
  | { t: "rooms"; sid: string; add?: string[]; del?: string[] }
  /** A socket dropped for a reason recovery handles: keep its session for the window. */
  | { t: "closed"; session: SessionRecord }
  /** A socket left for good: forget its session. */
  | { t: "gone"; sid: string }
  | { t: "restore"; id: number; pid: string; offset: string }
  /**
   * The rooms this worker has local members in changed (`Interest`): `add` at a room's first
   * local join (answered with `interested` when `id` is set), `del` at its last local leave.
   * `pin`: the last restore pin this worker had seen when it decided the `del`.
   */
  | { t: "interest"; id?: number; add?: string[]; del?: string[]; pin?: number };

/** Primary → worker. */
export type AdapterDownMessage =
  | { t: "offset"; id: number; offset: string }
  /**
   * The worker's own broadcasts sent without an `id` have been sequenced up to its count `n`, the
   * last of them at `offset`: sent once for many (with the next message for the worker, or after
   * `SEEN_DELAY_MS`), not once per broadcast.
   */
  | { t: "seen"; n: number; offset: string }
  | { t: "msg"; msg: ClusterMessage; offset?: string }
  /** A sequenced broadcast from another worker (`bc` above), with its offset. */
  | (Broadcast & { t: "bc"; d: string; offset: string })
  | { t: "res"; msg: ClusterResponse }
  /**
   * `upTo`: the last offset the missed packets cover; later ones arrive as relays. `pin`: the
   * primary routes the session's rooms to this worker from now on, under this pin (`Interest`).
   */
  | { t: "restored"; id: number; session: RestoredSession | null; upTo: string; pin?: number }
  /** Close this (half-open) socket quietly: its session now lives on another connection. */
  | { t: "evict"; sid: string }
  /** The `interest` message `id` has been taken: broadcasts to its rooms are routed here now. */
  | { t: "interested"; id: number };

/**
 * What crosses the IPC channel: every message one side has for the other in one event-loop
 * turn, in order, as one write (one structured clone and one syscall instead of one each).
 */
export interface AdapterBatch<T> {
  source: typeof ADAPTER_SOURCE;
  m: T[];
}

export function isAdapterBatch<T>(value: unknown): value is AdapterBatch<T> {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { source?: unknown }).source === ADAPTER_SOURCE &&
    Array.isArray((value as { m?: unknown }).m)
  );
}

/**
 * Whether the primary logs (and the worker counts and stamps) a broadcast: an event without an
 * ack, not volatile, as Socket.IO stamps offsets. Both sides must agree on it.
 */
export function isLoggedBroadcast(packet: { type?: number; id?: number; data?: unknown }, flags: { volatile?: boolean } | undefined): boolean {
  return packet.type === 2 && packet.id === undefined && Array.isArray(packet.data) && !flags?.volatile;
}

/**
 * Where a socket is in the embedded replay log, as the offset it last received says. Offsets are
 * `<epoch>-<seq>` or `<epoch>-<seq>.<origin>.<n>`:
 * - `seq`: the socket has had every broadcast for it that the primary sequenced up to `seq`;
 * - `origin`/`n`: and also the first `n` broadcasts that the worker tagged `origin` published,
 *   which that worker delivers to its own sockets before the primary has sequenced them.
 * The epoch (hex) names one replay log, so an offset from another log is never misread.
 */
export interface Position {
  epoch: string;
  seq: number;
  origin?: string;
  n?: number;
}

const SAFE_PART = /^[0-9a-f]{1,32}$/;

export function formatOffset(p: Position): string {
  return p.origin === undefined ? `${p.epoch}-${p.seq}` : `${p.epoch}-${p.seq}.${p.origin}.${p.n}`;
}

/** The position an offset names, or undefined when it is not one of ours (clients send anything). */
export function parseOffset(offset: string): Position | undefined {
  const dash = offset.indexOf("-");
  if (dash === -1) return undefined;
  const epoch = offset.slice(0, dash);
  const parts = offset.slice(dash + 1).split(".");
  if (!SAFE_PART.test(epoch) || (parts.length !== 1 && parts.length !== 3)) return undefined;
  const seq = counter(parts[0]!);
  if (seq === undefined) return undefined;
  if (parts.length === 1) return { epoch, seq };
  const n = counter(parts[2]!);
  if (!SAFE_PART.test(parts[1]!) || n === undefined || n === 0) return undefined;
  return { epoch, seq, origin: parts[1]!, n };
}

function counter(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}
