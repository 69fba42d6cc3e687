import { cpus, hostname } from "node:os";
import { capacitySummary } from "./capacity.js";
import { logBuckets, newHistogram, percentileCurve, summarize } from "./hdr.js";
import type { Counters } from "./metrics.js";
import { runOutcome } from "./outcome.js";
import { redactedOptions } from "./options.js";
import { RESULT_SCHEMA, type LoadtestResult, type ServerResult } from "./result-schema.js";
import type { RunData } from "./run-data.js";
import { tallyDeliveries, type ReceivedTally, type SentTally } from "./sequence.js";
import { cpuBetween, isRedisPeer } from "./server-stats.js";
import { mergeWindows, primaryLatencyOf, shapeStage, summaries, type StageResult } from "./stage-result.js";

export { RESULT_SCHEMA, type CapacitySummary, type LoadtestResult, type RunOutcome, type ServerResult } from "./result-schema.js";
export { primaryLatencyOf, unitsOf, type Latencies, type StageResult } from "./stage-result.js";

const perSec = (n: number, s: number) => (s > 0 ? Math.round((n / s) * 10) / 10 : 0);

/** Shapes a run's data into the result file's JSON. */
export function buildResult(run: RunData): LoadtestResult {
  const { options, finals } = run;
  const primary = primaryLatencyOf(options.scenario);

  const zeroAt = run.stages[0]?.warmupAt ?? run.startedAt;
  const mergedStages = run.stages.map((stage) => mergeWindows(finals.flatMap((f) => (f.stages[stage.index] ? [f.stages[stage.index]!] : []))));
  const stages: StageResult[] = run.stages.map((stage, i) =>
    shapeStage({ options, stage, zeroAt, merged: mergedStages[i]!, readings: run.server?.stages[stage.index], timeline: run.timeline, interruptedAt: run.interruptedAt }),
  );

  const measured = mergeWindows(finals.flatMap((f) => f.stages.slice(0, run.stages.length)));
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
    ...(run.abandoned !== undefined ? { abandoned: run.abandoned } : {}),
    ...(run.stoppedAfter !== undefined ? { stoppedAfter: run.stoppedAfter } : {}),
    outcome: { ok: true },
    options: redactedOptions(options),
    host: {
      hostname: hostname(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "unknown",
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      ...(hostMemory(run) !== undefined ? { memoryBytes: hostMemory(run) } : {}),
    },
    connections: {
      planned: options.connections + (DEDICATED_PUBLISHERS.has(options.scenario) ? options.publishers : 0),
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
    server: serverResult(run),
    charts: {
      kind: primary,
      stages: mergedStages.map((m, index) => ({ index, percentiles: percentileCurve(m.latency[primary]), buckets: logBuckets(m.latency[primary]) })),
    },
    timeline: run.timeline,
    capacity: undefined as unknown as LoadtestResult["capacity"],
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
  result.outcome = runOutcome(result);
  result.capacity = capacitySummary(result);
  return result;
}

/** Scenarios whose publishers are connections of their own, beside --connections. */
const DEDICATED_PUBLISHERS: ReadonlySet<string> = new Set(["fan-out", "recovery-storm", "persistence-throughput", "connections"]);

/** The host's memory, from any server reading. */
function hostMemory(run: RunData): number | undefined {
  const s = run.server;
  return (s?.connected ?? s?.idle ?? s?.ran)?.host?.totalBytes;
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

function serverResult(run: RunData): ServerResult | null {
  const s = run.server;
  if (!s) return null;
  const last = s.ran ?? s.connected ?? s.idle;
  const steady = run.options.scenario !== "connect-storm" && run.options.scenario !== "connections";
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
  const processes = last?.processes ?? [];
  const mode = s.peers.some(isRedisPeer) ? "clustered" : processes.some((p) => p.name.startsWith("cerebellum-prim")) ? "embedded" : "unknown";
  return {
    rootPid: s.rootPid,
    mode,
    peers: s.peers,
    processes: processes.map((p) => ({ pid: p.pid, ppid: p.ppid, name: p.name, rssBytes: p.rssBytes, cpuS: p.cpuS })),
    idleRssBytes: s.idle?.rssBytes,
    connectedRssBytes: held?.rssBytes,
    rssPerConnectionBytes,
    peakRssBytes: Math.max(s.peakRssBytes, held?.rssBytes ?? 0),
    cpuShare: [...byPid].map(([pid, v]) => ({ pid, name: names.get(pid) ?? "?", share: cpuS > 0 ? Math.round((v / cpuS) * 1000) / 1000 : 0 })),
  };
}
