import type { ScalingArgs } from "./cli.js";
import { perUnitUs } from "./parts.js";
import { runRooms } from "./rooms.js";
import { allParts, formatScaling, summarizeScaling, type Mode, type Persistence, type ScalingRun, type ScalingSummary, type Workload } from "./scaling-report.js";
import { startPlain, startProduct, startRedis, untilSettled, type ServerProcess } from "./targets.js";

/**
 * `npm run bench -- --suite scaling`: what one broadcast to a small room costs each
 * part of the product as workers are added, against plain socket.io. docs/benchmarks.md has the
 * method; scaling-report.ts the figures and the bars.
 */

/** One measurement of a round: a workload against a freshly started server shape. */
export interface ScalingUnit {
  workload: Workload;
  mode: Mode;
  workers: number;
  persistence: Persistence;
}

/** The measurements of one round, in the order of round 1. */
export function scalingUnits(args: Pick<ScalingArgs, "workers" | "modes" | "room5Clients" | "room5Workers" | "room5Persistence">): ScalingUnit[] {
  const units: ScalingUnit[] = [{ workload: "rooms-1", mode: "plain", workers: 1, persistence: "off" }];
  for (const mode of args.modes) for (const workers of args.workers) units.push({ workload: "rooms-1", mode, workers, persistence: "off" });
  if (args.room5Clients > 0) {
    units.push({ workload: "rooms-5", mode: "plain", workers: 1, persistence: "off" });
    for (const mode of args.modes) {
      for (const workers of args.room5Workers) for (const persistence of args.room5Persistence) units.push({ workload: "rooms-5", mode, workers, persistence });
    }
  }
  return units;
}

/** Upper bound of one measurement (start, connects, warm-up, window, stop), for the suite's deadline. */
export const DEADLINE_PER_UNIT_MS = 30_000;
export const DEADLINE_MIN_MS = 10 * 60_000;

/**
 * Product settings of every shape: persistence off, so a broadcast's cost is the broadcast's;
 * rooms of 5 also with the default embedded store when asked (--room5-persistence).
 */
const PRODUCT_ENV: Record<Persistence, Record<string, string>> = { off: { PERSISTENCE: "off" }, embedded: { PERSISTENCE: "embedded" } };
/** Publish refusals among the workload's error kinds (rooms.ts counts them as `publish: <code>`). */
const REFUSAL = /^publish: (OVERLOADED|STORE_UNAVAILABLE|RATE_LIMITED)$/;
const CONNECT_CONCURRENCY = 50;
/** With history stored: a page of 50 read every so often during the window (its latency under the load). */
const HISTORY_EVERY_MS = 50;
const PAYLOAD_BYTES = 100;

const unitLabel = (u: ScalingUnit) => `${u.workload} ${u.mode === "plain" ? "plain" : `${u.mode} w${u.workers}${u.persistence === "embedded" ? " stored" : ""}`}`;

async function measureUnit(unit: ScalingUnit, round: number, args: ScalingArgs, redis: { url: string; pid: number } | undefined, signal: AbortSignal): Promise<ScalingRun> {
  const roomSize = unit.workload === "rooms-1" ? 1 : 5;
  const clients = unit.workload === "rooms-1" ? args.clients : args.room5Clients;
  // Rooms of 5 measure the connect phase too: start from a server whose memory (and start-up work) has settled.
  const measureConnects = unit.workload === "rooms-5";
  const clustered = unit.mode === "clustered";
  const server: ServerProcess =
    unit.mode === "plain" ? await startPlain(1) : await startProduct({ workers: unit.workers, redisUrl: clustered ? redis?.url : undefined, env: PRODUCT_ENV[unit.persistence] });
  try {
    if (measureConnects) await untilSettled(server.pid, 10_000, signal);
    const outcome = await runRooms({
      url: server.url,
      apiKey: server.apiKey,
      clients,
      roomSize,
      inflight: args.inflight,
      warmupMs: args.warmupS * 1000,
      measureMs: args.durationS * 1000,
      connectRate: args.connectRate,
      connectConcurrency: CONNECT_CONCURRENCY,
      measureConnects,
      payloadBytes: PAYLOAD_BYTES,
      seed: round,
      rootPid: server.pid,
      historyEveryMs: unit.persistence === "embedded" ? HISTORY_EVERY_MS : undefined,
      redisPid: clustered ? redis?.pid : undefined,
      signal,
    });
    const usPerConnect = outcome.connect ? perUnitUs(outcome.connect.cpu, outcome.connect.connects) : null;
    return {
      ...unit,
      round,
      clients,
      roomSize,
      broadcasts: outcome.broadcasts,
      measuredS: outcome.measuredS,
      usPerBroadcast: outcome.cpu ? perUnitUs(outcome.cpu, outcome.broadcasts) : null,
      generatorUsPerBroadcast: outcome.broadcasts > 0 ? (outcome.generatorCpuS * 1e6) / outcome.broadcasts : null,
      connect: outcome.connect && usPerConnect ? { connects: outcome.connect.connects, usPerConnect } : null,
      lost: outcome.lost,
      duplicated: outcome.duplicated,
      misrouted: outcome.misrouted,
      hung: outcome.hung,
      connectErrors: outcome.connectErrors,
      errors: outcome.errors,
      historyMs: outcome.historyMs,
      refused: Object.entries(outcome.errors).reduce((n, [kind, count]) => (REFUSAL.test(kind) ? n + count : n), 0),
    };
  } finally {
    await server.stop();
  }
}

/** Runs the suite's rounds until done or aborted (the deadline, Ctrl-C); prints a line per measurement. */
export async function runScaling(
  args: ScalingArgs,
  signal: AbortSignal,
  write: (text: string) => void,
  cores: string,
): Promise<{ runs: ScalingRun[]; summary: ScalingSummary; report: string }> {
  const units = scalingUnits(args);
  write(
    `${args.runs} rounds × ${units.length} measurements; rooms of one member: ${args.clients} clients, WORKERS ${args.workers.join(", ")}` +
      (args.room5Clients > 0 ? `; rooms of 5: ${args.room5Clients} clients, WORKERS ${args.room5Workers.join(", ")}` : "") +
      `; modes ${args.modes.join(", ")}; ${args.inflight} broadcasts in flight; ${args.warmupS} s warm-up, ${args.durationS} s measured; PERSISTENCE=off` +
      (args.room5Persistence.includes("embedded") && args.room5Clients > 0 ? " (rooms of 5: also embedded, every message stored)" : "") +
      "\n",
  );
  const redis = args.modes.includes("clustered") ? await startRedis() : undefined;
  const runs: ScalingRun[] = [];
  try {
    for (let round = 1; round <= args.runs && !signal.aborted; round++) {
      // Each round starts one measurement later, so none always runs first on a machine that warms up.
      const order = units.map((_, i) => units[(i + round - 1) % units.length]!);
      for (const unit of order) {
        if (signal.aborted) break;
        const t0 = Date.now();
        const run = await measureUnit(unit, round, args, redis, signal);
        if (signal.aborted) break; // cut short: its window is not the one asked for
        runs.push(run);
        const p = run.usPerBroadcast;
        const plain = unit.mode === "plain";
        const parts = !p
          ? "no broadcasts measured"
          : plain
            ? `server ${p.primary.toFixed(1)} µs/bcast`
            : `primary ${p.primary.toFixed(1)}  workers ${p.workers.toFixed(1)}${p.redis === null ? "" : `  redis ${p.redis.toFixed(1)}`} µs/bcast`;
        const c = run.connect?.usPerConnect;
        const connect = c ? `  connect ${allParts(c).toFixed(0)} µs${plain ? "" : ` (primary ${c.primary.toFixed(0)})`}` : "";
        const problems = run.lost + run.hung + run.connectErrors + run.duplicated + run.misrouted > 0 || Object.keys(run.errors).length > 0 ? `  errors ${JSON.stringify(run.errors)} lost ${run.lost}` : "";
        write(
          `  round ${round} ${unitLabel(unit).padEnd(22)} ${Math.round(run.measuredS > 0 ? run.broadcasts / run.measuredS : 0).toLocaleString("en-US").padStart(7)} bcast/s  ${parts}${connect}  (${((Date.now() - t0) / 1000).toFixed(0)} s)${problems}\n`,
        );
      }
    }
  } finally {
    await redis?.stop();
  }
  const summary = summarizeScaling(runs);
  return { runs, summary, report: formatScaling(summary, { cores }) };
}
