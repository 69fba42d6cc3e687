import type { PresenceState } from "./contract.js";
import type { MetricSnapshot } from "./metrics.js";
import type { PresenceRefusal, Reentry, Removal } from "./presence-limits.js";

/**
 * Messages between the primary and its workers: a discriminated union tagged with a source,
 * so that the adapters' own IPC traffic (tagged "_sio_adapter") and ours never mix.
 */
export const IPC_SOURCE = "cerebellum";

/** A presence operation run by the primary's table for a worker (embedded mode). */
export type PresenceOp =
  | { op: "add"; channel: string; socketId: string; info: Record<string, string> }
  | { op: "remove"; channel: string; socketId: string }
  | { op: "members"; channel: string }
  | { op: "update"; channel: string; socketId: string; info: Record<string, string> }
  | { op: "channelsOf"; socketId: string }
  | { op: "removeAll"; socketId: string }
  | { op: "suspend"; socketId: string; graceMs: number }
  | { op: "resume"; socketId: string }
  | { op: "reap" };

export type PresenceOpResult =
  | PresenceState
  | PresenceRefusal
  | PresenceState[]
  | string[]
  | Reentry[]
  | Removal[]
  | boolean
  | null;

/** What the admin page asks a worker (src/worker/admin.ts); its actions go through the server API. */
export type AdminRequest =
  /** Its busiest channels (by local subscribers), at most `limit`, with presence counts for the first `presenceOf`. */
  | { op: "channels"; limit: number; presenceOf: number }
  /** Presence members of these channels (presence is shared: one worker's read is the cluster's). */
  | { op: "presence"; channels: string[] };

export interface AdminChannel {
  channel: string;
  subscribers: number;
  /** Presence members (the whole cluster's: presence is shared); absent when not asked or unreadable. */
  presence?: number;
}

export type AdminResult =
  | { op: "channels"; channels: AdminChannel[]; total: number }
  /** A channel's count is absent when its read failed. */
  | { op: "presence"; counts: Record<string, number> };

type Tagged<T> = T & { source: typeof IPC_SOURCE };

/** Primary → worker. */
export type PrimaryMessage = Tagged<
  /** A client connection handed over with the bytes the balancer already read from it. */
  | { type: "connection"; head: Uint8Array }
  /** Drain and exit (shutdown or rolling restart). */
  | { type: "shutdown" }
  | { type: "presence:result"; id: number; result: PresenceOpResult }
  /** Clustered mode: a worker of this host died; end its presence lease after the crash grace. */
  | { type: "presence:owner-died"; owner: string }
  /** A scrape of GET /metrics: answer with a `metrics` message carrying the same id. */
  | { type: "metrics:collect"; id: number }
  /** The admin page asks (src/primary/admin.ts): answer with an `admin:result` carrying the same id. */
  | { type: "admin:request"; id: number; request: AdminRequest }
>;

/** Worker → primary. */
export type WorkerMessage = Tagged<
  /** `presenceOwner`: the worker's id in the Redis presence leases (clustered mode). */
  | { type: "ready"; presenceOwner?: string }
  | { type: "draining" }
  | { type: "presence"; id: number; request: PresenceOp }
  /** How many client connections the worker holds (sent after changes, at most every 100 ms). */
  | { type: "connections"; count: number }
  /** This worker's metrics, for the scrape `id`. */
  | { type: "metrics"; id: number; metrics: MetricSnapshot }
  | { type: "admin:result"; id: number; result: AdminResult }
>;

const PRIMARY_TYPES = new Set(["connection", "shutdown", "presence:result", "presence:owner-died", "metrics:collect", "admin:request"]);
const WORKER_TYPES = new Set(["ready", "draining", "presence", "connections", "metrics", "admin:result"]);

export function isPrimaryMessage(value: unknown): value is PrimaryMessage {
  return isTagged(value) && PRIMARY_TYPES.has(value.type);
}

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  return isTagged(value) && WORKER_TYPES.has(value.type);
}

function isTagged(value: unknown): value is { source: string; type: string } {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { source?: unknown }).source === IPC_SOURCE &&
    typeof (value as { type?: unknown }).type === "string"
  );
}

export function assertNever(value: never): never {
  throw new Error(`unhandled message: ${JSON.stringify(value)}`);
}
