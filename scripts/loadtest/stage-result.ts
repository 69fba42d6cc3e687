import { mergeEncoded, newHistogram, summarize, type Histogram, type LatencySummary } from "./hdr.js";
import { judgeStage, objectivesOf, type StageVerdict } from "./limits.js";
import { LATENCY_KINDS, addCounters, zeroCounters, type Counters, type EncodedWindow, type LatencyKind } from "./metrics.js";
import type { LoadtestOptions, Scenario } from "./options.js";
import type { ServerReadings, TimelinePoint } from "./run-data.js";
import type { StageTimes } from "./runtime.js";
import { cpuBetween, peerCpuBetween } from "./server-stats.js";

/** The latency that judges a scenario against --slo-p99 (and the timeline's p50/p99). */
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

/** How many units of the scenario's throughput a window's counters hold (none: the stage is empty). */
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

export type Latencies = Record<LatencyKind, LatencySummary>;

export interface StageResult {
  index: number;
  /** Per second, in total (publishes, connects or presence operations), or "max". */
  rate: number | "max";
  /** connections: the open connections the stage was to hold. */
  level?: number;
  /** Seconds since the first stage started: this stage's start, measured window and end (the charts' stage lines). */
  startS: number;
  measureS: number;
  endS: number;
  warmupS: number;
  durationS: number;
  counters: Counters;
  perSecond: { published: number; deliveries: number; acked: number; connects: number; presenceOps: number; presenceEvents: number };
  latencyMs: Latencies;
  /** The scenario's main latency p99 in this stage, ms. */
  p99Ms: number;
  /** Connections open over the measured window, from the timeline (mean and at its end). */
  open?: { mean: number; end: number };
  server?: {
    cpuS: number;
    cores: number;
    cpuUsPerDelivery: number | undefined;
    /** Server CPU per unit of the scenario's throughput (delivery, connect, presence op, durable message), µs. */
    cpuUsPerUnit: number | undefined;
    /** RSS at the end of the measured window, and its lowest, mean and peak over the window. */
    rssBytes: number | undefined;
    minRssBytes?: number;
    meanRssBytes?: number;
    peakRssBytes?: number;
    /** Redis (clustered mode, on this host): cores over the measured window. Not part of `cores`. */
    redisCores?: number;
  };
  /** The host's memory over the measured window (local server). */
  host?: { totalBytes: number; minAvailableBytes: number };
  verdict: StageVerdict;
}

/** A stage's windows from every generator process, merged. */
export function mergeWindows(windows: readonly EncodedWindow[]): { counters: Counters; latency: Record<LatencyKind, Histogram> } {
  const counters = zeroCounters();
  const latency = Object.fromEntries(LATENCY_KINDS.map((k) => [k, newHistogram()])) as Record<LatencyKind, Histogram>;
  for (const w of windows) {
    addCounters(counters, w.counters);
    for (const k of LATENCY_KINDS) mergeEncoded(latency[k], w.latency[k]);
  }
  return { counters, latency };
}

export const summaries = (latency: Record<LatencyKind, Histogram>): Latencies =>
  Object.fromEntries(LATENCY_KINDS.map((k) => [k, summarize(latency[k])])) as Latencies;

const perSec = (n: number, s: number) => (s > 0 ? Math.round((n / s) * 10) / 10 : 0);
const usPer = (cpuS: number, n: number) => (n > 0 ? Math.round((cpuS * 1e6 * 100) / n) / 100 : undefined);
const mean = (values: number[]) => (values.length > 0 ? values.reduce((a, b) => a + b, 0) / values.length : undefined);

export interface StageInput {
  options: LoadtestOptions;
  stage: StageTimes;
  /** The first stage's start (wall clock, ms): time zero of the report. */
  zeroAt: number;
  merged: { counters: Counters; latency: Record<LatencyKind, Histogram> };
  readings: ServerReadings["stages"][number] | undefined;
  timeline: readonly TimelinePoint[];
  /** An interrupted run measured each stage only up to here. */
  interruptedAt?: number | undefined;
}

/** A stage's figures and verdict, from its merged windows, the server's readings and the timeline. */
export function shapeStage(input: StageInput): StageResult {
  const { options, stage, zeroAt, merged, readings, timeline } = input;
  const endAt = Math.min(stage.endAt, input.interruptedAt ?? Infinity);
  const seconds = Math.max(0, (endAt - stage.measureAt) / 1000);
  const c = merged.counters;
  const latencyMs = summaries(merged.latency);
  const units = unitsOf(options.scenario, c);
  // The timeline's points inside the measured window (each covers the second before it).
  const inside = timeline.filter((p) => p.at > stage.measureAt && p.at <= endAt + 500);
  const rss = inside.flatMap((p) => (p.serverRssBytes === undefined ? [] : [p.serverRssBytes]));
  const available = inside.flatMap((p) => (p.hostAvailableBytes === undefined ? [] : [p.hostAvailableBytes]));
  let server: StageResult["server"];
  if (readings?.start && readings.end) {
    const { totalS } = cpuBetween(readings.start, readings.end);
    const redisS = readings.start.peers.length > 0 ? peerCpuBetween(readings.start, readings.end) : undefined;
    server = {
      cpuS: Math.round(totalS * 1000) / 1000,
      cores: seconds > 0 ? Math.round((totalS / seconds) * 1000) / 1000 : 0,
      cpuUsPerDelivery: usPer(totalS, c.deliveries),
      cpuUsPerUnit: options.scenario === "connections" ? undefined : usPer(totalS, units),
      rssBytes: readings.end.rssBytes,
      ...(rss.length > 0
        ? { minRssBytes: Math.min(...rss), meanRssBytes: Math.round(mean(rss)!), peakRssBytes: Math.max(...rss, readings.end.rssBytes) }
        : { peakRssBytes: readings.end.rssBytes }),
      ...(redisS !== undefined && seconds > 0 ? { redisCores: Math.round((redisS / seconds) * 1000) / 1000 } : {}),
    };
  }
  const hostTotal = readings?.end?.host?.totalBytes;
  const host =
    hostTotal !== undefined && (available.length > 0 || readings?.end?.host)
      ? { totalBytes: hostTotal, minAvailableBytes: Math.min(...available, readings!.end!.host!.availableBytes) }
      : undefined;
  const open = inside.length > 0 ? { mean: Math.round(mean(inside.map((p) => p.open))!), end: inside[inside.length - 1]!.open } : undefined;
  const verdict = judgeStage({ counters: c, latencyMs, ...(server ? { server } : {}), ...(host ? { host } : {}) }, objectivesOf(options, primaryLatencyOf(options.scenario)), units);
  return {
    index: stage.index,
    rate: stage.rate,
    ...(stage.level !== undefined ? { level: stage.level } : {}),
    startS: (stage.warmupAt - zeroAt) / 1000,
    measureS: (stage.measureAt - zeroAt) / 1000,
    endS: (endAt - zeroAt) / 1000,
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
    p99Ms: latencyMs[primaryLatencyOf(options.scenario)].p99,
    ...(open ? { open } : {}),
    ...(server ? { server } : {}),
    ...(host ? { host } : {}),
    verdict,
  };
}

/** The scenario's headline measure of a stage: a rate, or for the connections scenario the connections held. */
export function throughputOf(scenario: string, stage: Pick<StageResult, "perSecond" | "open" | "level">): { unit: string; single: string; perSec: number } {
  const p = stage.perSecond;
  switch (scenario) {
    case "connect-storm":
      return { unit: "connects/s", single: "connect", perSec: p.connects };
    case "presence-churn":
      return { unit: "presence ops/s", single: "presence op", perSec: p.presenceOps };
    case "persistence-throughput":
      return { unit: "durable messages/s", single: "durable message", perSec: p.acked };
    case "connections":
      return { unit: "connections", single: "connection", perSec: stage.open?.mean ?? stage.level ?? 0 };
    default:
      return { unit: "deliveries/s", single: "delivery", perSec: p.deliveries };
  }
}
