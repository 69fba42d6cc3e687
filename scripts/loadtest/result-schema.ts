import type { LatencySummary } from "./hdr.js";
import type { Limit } from "./limits.js";
import type { Counters, LatencyKind } from "./metrics.js";
import type { TimelinePoint } from "./run-data.js";
import type { DeliveryTally } from "./sequence.js";
import type { Peer } from "./server-stats.js";
import type { Latencies, StageResult } from "./stage-result.js";

/**
 * The result file's shape (`<name>.json`), apart from what builds it (result.ts), so that what
 * reads it (capacity.ts, outcome.ts, report-html.ts) and what builds it do not import each other.
 */

/** 2: stage verdicts and times, refusals and ack timeouts apart from errors, per-stage charts, the server's mode and Redis, the outcome. */
export const RESULT_SCHEMA = 2;

export interface ServerResult {
  rootPid: number;
  /** clustered: connected to Redis; embedded: a Cerebellum primary without Redis; unknown: anything else. */
  mode: "embedded" | "clustered" | "unknown";
  /** Services the server was connected to (Redis in clustered mode); a pid when on this host. */
  peers: Peer[];
  processes: Array<{ pid: number; ppid: number; name: string; rssBytes: number; cpuS: number }>;
  idleRssBytes: number | undefined;
  connectedRssBytes: number | undefined;
  /** (RSS with the connections open − RSS before them) ÷ connections, all server processes summed. */
  rssPerConnectionBytes: number | undefined;
  peakRssBytes: number;
  /** Share of the server CPU of the measured stages per process. */
  cpuShare: Array<{ pid: number; name: string; share: number }>;
}

/** Whether a run measured what it was asked to; if not, why (the exit code follows it). */
export type RunOutcome = { ok: true } | { ok: false; cause: string };

/** A number for the report's headline, with what it means. */
export interface Headline {
  label: string;
  value: string;
  note: string;
  /** good: held, bad: a limit or a loss, plain: neither. */
  tone: "good" | "bad" | "plain";
}

/** The plain-language verdict of a run. */
export interface CapacitySummary {
  sloP99Ms: number;
  /** Index of the busiest stage that held every objective, or null. */
  sustainedStage: number | null;
  /** Its throughput in the scenario's unit per second (connections: connections held). */
  sustainedPerSec: number | null;
  unit: string;
  /** Server CPU cores used in that stage (local servers only). */
  serverCores: number | null;
  /** Throughput per core of server CPU in that stage. */
  perCore: number | null;
  /** The first limit reached: in the first stage that missed, the one nearest the cause. */
  firstLimit: { stage: number; limit: Limit; detail: string } | null;
  /** RSS per connection: from the connections scenario's ramp (a fit), else from idle readings of large runs. */
  rssPerConnectionBytes: number | null;
  connectionsPerGiB: number | null;
  /** connections scenario: connections one core of server CPU carries at this activity (a fit over the held stages). */
  connectionsPerCore: number | null;
  headline: Headline[];
  lines: string[];
}

export interface LoadtestResult {
  tool: "cerebellum-loadtest";
  schema: number;
  runId: string;
  startedAt: string;
  endedAt: string;
  interrupted: boolean;
  failures: string[];
  /** Why no stage ran (no connection could be opened). */
  abandoned?: string;
  /** The ramp stopped after this stage (index) because it reached a limit. */
  stoppedAfter?: { stage: number; reason: string };
  /** Whether the run measured anything, and if not why: the exit code follows it. */
  outcome: RunOutcome;
  options: Record<string, unknown>;
  host: { hostname: string; cpus: number; cpuModel: string; node: string; platform: string; memoryBytes?: number };
  connections: {
    planned: number;
    openAtReady: number;
    openAtEnd: number;
    connects: number;
    errors: number;
    hung: number;
    disconnects: number;
    latencyMs: LatencySummary;
    /** connect-storm: connects ÷ seconds from the first connect started to the last finished. */
    connectsPerSec?: number;
  };
  stages: StageResult[];
  /** Every event of the run, warm-up and drain included. */
  totals: Counters;
  delivery: DeliveryTally;
  /** Over the measured windows of every stage, held and missed together (the stages have their own). */
  latencyMs: Latencies;
  recovery?: { attempts: number; recovered: number; notRecovered: number; latencyMs: LatencySummary };
  presence?: { ops: number; events: number; setsChecked: number; expectedMembers: number; observedMembers: number; ghosts: number; missing: number };
  /** Errors, refusals, timeouts and failed connects by kind, over the whole run. */
  errors: Record<string, number>;
  server: ServerResult | null;
  charts: {
    kind: LatencyKind;
    /** Per stage: the main latency's percentile curve and log-spaced histogram buckets. */
    stages: Array<{
      index: number;
      percentiles: Array<{ percentile: number; ms: number }>;
      buckets: Array<{ fromMs: number; toMs: number; count: number }>;
    }>;
  };
  timeline: TimelinePoint[];
  capacity: CapacitySummary;
}

