import type { Counters } from "./metrics.js";
import type { LoadtestOptions } from "./options.js";
import type { Phase, StageTimes } from "./runtime.js";
import type { Peer, ServerSample } from "./server-stats.js";
import type { ShardFinal } from "./shard.js";

/** One second of the run, all generator processes together. */
export interface TimelinePoint {
  /** Wall clock, ms. */
  at: number;
  /** Seconds since the first stage started (negative during setup). */
  t: number;
  phase: Phase;
  stage: number | undefined;
  open: number;
  counters: Counters;
  /** The scenario's main latency over the second, ms. */
  p50: number;
  p99: number;
  max: number;
  /** Ack latency p99 over the second, ms (when acks were answered in it and are not the main latency). */
  ackP99?: number;
  /** Server CPU in cores over the second, and its RSS, when the server is local. */
  serverCores?: number;
  serverRssBytes?: number;
  /** CPU of the services the server uses on this host (Redis), cores over the second. */
  peerCores?: number;
  /** The host's available memory (MemAvailable), bytes, when the server is local. */
  hostAvailableBytes?: number;
}

/** Server readings around the run (local servers only). */
export interface ServerReadings {
  rootPid: number;
  /** Services on this host the server is connected to (Redis in clustered mode). */
  peers: Peer[];
  /** Before any connection of this run. */
  idle: ServerSample | undefined;
  /** All connections set up, before the stages (idle connections). */
  connected: ServerSample | undefined;
  /** After the stages, connections still open. */
  ran: ServerSample | undefined;
  /** Readings at each stage's measured start and end. */
  stages: Array<{ start: ServerSample | undefined; end: ServerSample | undefined }>;
  peakRssBytes: number;
}

/** Everything a run produced, before it is shaped into the result file. */
export interface RunData {
  options: LoadtestOptions;
  runId: string;
  startedAt: number;
  endedAt: number;
  interrupted: boolean;
  /** When Ctrl-C (or the caller's signal) stopped the run, wall-clock ms. */
  interruptedAt?: number;
  /** Generator processes that failed, and waits that timed out. */
  failures: string[];
  /** Why the stages were not run at all (no connection could be opened). */
  abandoned?: string;
  /** The ramp stopped after this stage because it reached a limit (connections scenario). */
  stoppedAfter?: { stage: number; reason: string };
  stages: StageTimes[];
  finals: ShardFinal[];
  timeline: TimelinePoint[];
  server: ServerReadings | undefined;
  openAtReady: number;
  openAtRan: number;
}
