import { cpus, hostname } from "node:os";
import type { RunData, TimelinePoint } from "./coordinator.js";
import { capacitySummary, type CapacitySummary } from "./capacity.js";
import { logBuckets, mergeEncoded, newHistogram, percentileCurve, summarize, type Histogram, type LatencySummary } from "./hdr.js";
import { LATENCY_KINDS, addCounters, zeroCounters, type Counters, type EncodedWindow, type LatencyKind } from "./metrics.js";
import { redactedOptions, type Scenario } from "./options.js";
import { tallyDeliveries, type DeliveryTally, type ReceivedTally, type SentTally } from "./sequence.js";
import { cpuBetween, type ServerSample } from "./server-stats.js";

export const RESULT_SCHEMA = 1;

/** The latency that judges a scenario (the capacity summary's p99 and the timeline's). */
export function primaryLatencyOf(scenario: Scenario): LatencyKind {
  switch (scenario) {
    case "persistence-throughput":
      return "ack";
    case "connect-storm":
      return "connect";
    case "presence-churn":
      return "presence";
    default:
      return "delivery";
  }
}

export type Latencies = Record<LatencyKind, LatencySummary>;

export interface StageResult {
  index: number;
  /** Per second, in total (publishes, connects or presence operations), or "max". */
  rate: number | "max";
  warmupS: number;
  durationS: number;
  counters: Counters;
  perSecond: { published: number; deliveries: number; acked: number; connects: number; presenceOps: number; presenceEvents: number };
  latencyMs: Latencies;
  /** The scenario's main latency p99 in this stage, ms. */
  p99Ms: number;
  server?: {
    cpuS: number;
    cores: number;
    cpuUsPerDelivery: number | undefined;
    /** Server CPU per unit of the scenario's throughput (delivery, connect, presence op, durable message), µs. */
    cpuUsPerUnit: number | undefined;
    rssBytes: number | undefined;
  };
}

export interface ServerResult {
  rootPid: number;
  processes: Array<{ pid: number; ppid: number; name: string; rssBytes: number; cpuS: number }>;
  idleRssBytes: number | undefined;
  connectedRssBytes: number | undefined;
  /** (RSS with the connections open − RSS before them) ÷ connections, all server processes summed. */
  rssPerConnectionBytes: number | undefined;
  peakRssBytes: number;
  /** Server CPU over every measured stage ÷ deliveries in them, µs. */
  cpuUsPerDelivery: number | undefined;
  /** Share of the server CPU of the measured stages per process. */
  cpuShare: Array<{ pid: number; name: string; share: number }>;
}

export interface LoadtestResult {
  tool: "cerebellum-loadtest";
  schema: number;
  runId: string;
  startedAt: string;
  endedAt: string;
  interrupted: boolean;
  failures: string[];
  options: Record<string, unknown>;
  host: { hostname: string; cpus: number; cpuModel: string; node: string; platform: string };
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
  /** Over the measured windows of every stage. */
  latencyMs: Latencies;
  recovery?: { attempts: number; recovered: number; notRecovered: number; latencyMs: LatencySummary };
  presence?: { ops: number; events: number; setsChecked: number; expectedMembers: number; observedMembers: number; ghosts: number; missing: number };
  errors: Record<string, number>;
  server: ServerResult | null;
  charts: {
    kind: LatencyKind;
    percentiles: Array<{ percentile: number; ms: number }>;
    buckets: Array<{ fromMs: number; toMs: number; count: number }>;
  };
  timeline: TimelinePoint[];
  capacity: CapacitySummary;
}

function mergeWindows(windows: readonly EncodedWindow[]): { counters: Counters; latency: Record<LatencyKind, Histogram> } {
  const counters = zeroCounters();
  const latency = Object.fromEntries(LATENCY_KINDS.map((k) => [k, newHistogram()])) as Record<LatencyKind, Histogram>;
  for (const w of windows) {
    addCounters(counters, w.counters);
    for (const k of LATENCY_KINDS) mergeEncoded(latency[k], w.latency[k]);
  }
  return { counters, latency };
}

const summaries = (latency: Record<LatencyKind, Histogram>): Latencies =>
  Object.fromEntries(LATENCY_KINDS.map((k) => [k, summarize(latency[k])])) as Latencies;

const perSec = (n: number, s: number) => (s > 0 ? Math.round((n / s) * 10) / 10 : 0);

const usPer = (cpuS: number, n: number) => (n > 0 ? Math.round((cpuS * 1e6 * 100) / n) / 100 : undefined);

/** How many units of the scenario's throughput a window's counters hold. */
export function unitsOf(scenario: Scenario, c: Counters): number {
  switch (scenario) {
    case "connect-storm":
      return c.connects;
    case "presence-churn":
      return c.presenceOps;
    case "persistence-throughput":
      return c.acked;
    default:
      return c.deliveries;
  }
}

function stageServer(start: ServerSample | undefined, end: ServerSample | undefined, seconds: number, deliveries: number, units: number) {
  if (!start || !end) return undefined;
  const { totalS } = cpuBetween(start, end);
  return {
    cpuS: Math.round(totalS * 1000) / 1000,
    cores: seconds > 0 ? Math.round((totalS / seconds) * 1000) / 1000 : 0,
    cpuUsPerDelivery: usPer(totalS, deliveries),
    cpuUsPerUnit: usPer(totalS, units),
    rssBytes: end.rssBytes,
  };
}

/** Shapes a run's data into the result file's JSON. */
export function buildResult(run: RunData): LoadtestResult {
  const { options, finals } = run;
  const primary = primaryLatencyOf(options.scenario);

  const stages: StageResult[] = run.stages.map((stage) => {
    const merged = mergeWindows(finals.flatMap((f) => (f.stages[stage.index] ? [f.stages[stage.index]!] : [])));
    // An interrupted run measured each stage only up to the interruption.
    const seconds = Math.max(0, (Math.min(stage.endAt, run.interruptedAt ?? Infinity) - stage.measureAt) / 1000);
    const c = merged.counters;
    const latencyMs = summaries(merged.latency);
    const readings = run.server?.stages[stage.index];
    const server = stageServer(readings?.start, readings?.end, seconds, c.deliveries, unitsOf(options.scenario, c));
    return {
      index: stage.index,
      rate: stage.rate,
      warmupS: (stage.measureAt - stage.warmupAt) / 1000,
      durationS: seconds,
      counters: c,
      perSecond: {
        published: perSec(c.published, seconds),
        deliveries: perSec(c.deliveries, seconds),
        acked: perSec(c.acked, seconds),
        connects: perSec(c.connects, seconds),
        presenceOps: perSec(c.presenceOps, seconds),
        presenceEvents: perSec(c.presenceEvents, seconds),
      },
      latencyMs,
      p99Ms: latencyMs[primary].p99,
      ...(server ? { server } : {}),
    };
  });

  const measured = mergeWindows(finals.flatMap((f) => f.stages));
  const total = mergeWindows(finals.map((f) => f.total));
  const setup = mergeWindows(finals.map((f) => f.setup));
  const connectLatency = newHistogram();
  connectLatency.add(setup.latency.connect);
  connectLatency.add(measured.latency.connect);

  const sent = new Map<number, SentTally>();
  for (const f of finals) for (const [p, s] of f.sent) sent.set(p, s);
  const received: Array<Map<number, ReceivedTally>> = finals.map((f) => new Map(f.received));
  const delivery = tallyDeliveries(sent, received);

  const errors: Record<string, number> = {};
  for (const f of finals) for (const [kind, n] of f.errors) errors[kind] = (errors[kind] ?? 0) + n;

  // Connect storms: connects ÷ the span from the first connect started to the last finished,
  // per stage and overall (a stage's fixed duration would dilute a storm that ended early).
  const spanOf = (stage: number | undefined) => {
    const spans = finals.flatMap((f) => (f.connectSpans ?? []).filter((s, i) => s && (stage === undefined || i === stage)) as Array<{ first: number; last: number }>);
    return spans.length > 0 ? (Math.max(...spans.map((s) => s.last)) - Math.min(...spans.map((s) => s.first))) / 1000 : undefined;
  };
  const totalSpan = spanOf(undefined);
  const connectsPerSec = totalSpan ? perSec(total.counters.connects, totalSpan) : undefined;
  if (options.scenario === "connect-storm") {
    for (const stage of stages) {
      const span = spanOf(stage.index);
      stage.perSecond.connects = span ? perSec(stage.counters.connects, span) : 0;
    }
  }

  const result: LoadtestResult = {
    tool: "cerebellum-loadtest",
    schema: RESULT_SCHEMA,
    runId: run.runId,
    startedAt: new Date(run.startedAt).toISOString(),
    endedAt: new Date(run.endedAt).toISOString(),
    interrupted: run.interrupted,
    failures: run.failures,
    options: redactedOptions(options),
    host: {
      hostname: hostname(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "unknown",
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
    },
    connections: {
      planned: options.connections + (options.scenario === "fan-out" || options.scenario === "recovery-storm" || options.scenario === "persistence-throughput" ? options.publishers : 0),
      openAtReady: run.openAtReady,
      openAtEnd: run.openAtRan,
      connects: total.counters.connects,
      errors: total.counters.connectErrors,
      hung: total.counters.hung,
      disconnects: total.counters.disconnects,
      latencyMs: summarize(connectLatency),
      ...(connectsPerSec !== undefined ? { connectsPerSec } : {}),
    },
    stages,
    totals: total.counters,
    delivery,
    latencyMs: summaries(measured.latency),
    errors,
    server: serverResult(run, stages, measured.counters.deliveries),
    charts: {
      kind: primary,
      percentiles: percentileCurve(measured.latency[primary]),
      buckets: logBuckets(measured.latency[primary]),
    },
    timeline: run.timeline,
    capacity: undefined as unknown as CapacitySummary,
  };
  if (options.scenario === "recovery-storm") {
    result.recovery = {
      attempts: total.counters.recoveries,
      recovered: total.counters.recovered,
      notRecovered: total.counters.notRecovered,
      latencyMs: summarize(total.latency.recovery),
    };
  }
  if (options.scenario === "presence-churn") result.presence = presenceResult(run, total.counters);
  result.capacity = capacitySummary(result);
  return result;
}

function presenceResult(run: RunData, counters: Counters): NonNullable<LoadtestResult["presence"]> {
  const local: number[] = [];
  let observed: number[] | undefined;
  for (const f of run.finals) {
    f.presence?.local.forEach((n, i) => (local[i] = (local[i] ?? 0) + n));
    if (f.presence?.observed) observed = f.presence.observed;
  }
  let ghosts = 0;
  let missing = 0;
  let observedMembers = 0;
  if (observed) {
    observed.forEach((n, i) => {
      const expected = local[i] ?? 0;
      if (n < 0) return; // the list could not be read (counted as an error)
      observedMembers += n;
      ghosts += Math.max(0, n - expected);
      missing += Math.max(0, expected - n);
    });
  }
  return {
    ops: counters.presenceOps,
    events: counters.presenceEvents,
    setsChecked: observed?.length ?? 0,
    expectedMembers: local.reduce((a, b) => a + b, 0),
    observedMembers,
    ghosts,
    missing,
  };
}

function serverResult(run: RunData, stages: StageResult[], measuredDeliveries: number): ServerResult | null {
  const s = run.server;
  if (!s) return null;
  const last = s.ran ?? s.connected ?? s.idle;
  const steady = run.options.scenario !== "connect-storm";
  const held = steady ? s.connected : s.ran;
  const connections = steady ? run.openAtReady : run.openAtRan;
  const rssPerConnectionBytes =
    s.idle && held && connections > 0 ? Math.round((held.rssBytes - s.idle.rssBytes) / connections) : undefined;
  let cpuS = 0;
  const byPid = new Map<number, number>();
  for (const reading of s.stages) {
    if (!reading.start || !reading.end) continue;
    const used = cpuBetween(reading.start, reading.end);
    cpuS += used.totalS;
    for (const [pid, v] of used.byPid) byPid.set(pid, (byPid.get(pid) ?? 0) + v);
  }
  const names = new Map((last?.processes ?? []).map((p) => [p.pid, p.name]));
  return {
    rootPid: s.rootPid,
    processes: (last?.processes ?? []).map((p) => ({ pid: p.pid, ppid: p.ppid, name: p.name, rssBytes: p.rssBytes, cpuS: p.cpuS })),
    idleRssBytes: s.idle?.rssBytes,
    connectedRssBytes: held?.rssBytes,
    rssPerConnectionBytes,
    peakRssBytes: Math.max(s.peakRssBytes, held?.rssBytes ?? 0),
    cpuUsPerDelivery: measuredDeliveries > 0 && stages.some((st) => st.server) ? Math.round((cpuS * 1e6 * 100) / measuredDeliveries) / 100 : undefined,
    cpuShare: [...byPid].map(([pid, v]) => ({ pid, name: names.get(pid) ?? "?", share: cpuS > 0 ? Math.round((v / cpuS) * 1000) / 1000 : 0 })),
  };
}
