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
>;

const PRIMARY_TYPES = new Set(["connection", "shutdown", "presence:result", "presence:owner-died", "metrics:collect"]);
const WORKER_TYPES = new Set(["ready", "draining", "presence", "connections", "metrics"]);

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
