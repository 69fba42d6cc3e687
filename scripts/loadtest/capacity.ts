import type { LoadtestResult, StageResult } from "./result.js";

/** The plain-language verdict of a run: what the server sustained at the latency objective. */
export interface CapacitySummary {
  sloP99Ms: number;
  /** Index of the busiest stage that held the objective, or null. */
  sustainedStage: number | null;
  /** Throughput of that stage in the scenario's unit per second. */
  sustainedPerSec: number | null;
  unit: string;
  /** Server CPU cores used in that stage (local servers only). */
  serverCores: number | null;
  perCore: number | null;
  connectionsPerCore: number | null;
  rssPerConnectionBytes: number | null;
  connectionsPerGiB: number | null;
  lines: string[];
}

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });

/** The scenario's throughput unit and figure for a stage. */
export function throughputOf(scenario: string, stage: StageResult): { unit: string; single: string; perSec: number } {
  const p = stage.perSecond ?? {};
  switch (scenario) {
    case "connect-storm":
      return { unit: "connects/s", single: "connect", perSec: p.connects };
    case "presence-churn":
      return { unit: "presence ops/s", single: "presence op", perSec: p.presenceOps };
    case "persistence-throughput":
      return { unit: "durable messages/s", single: "durable message", perSec: p.acked };
    default:
      return { unit: "deliveries/s", single: "delivery", perSec: p.deliveries };
  }
}

/** A stage holds when its main latency p99 is within the objective and nothing in it failed. */
export function stageHeld(stage: StageResult, sloP99Ms: number): { held: boolean; why: string } {
  const c = stage.counters;
  if (stage.latencyMs && c.deliveries + c.acked + c.connects + c.presenceOps === 0) return { held: false, why: "nothing measured" };
  if (stage.p99Ms > sloP99Ms) return { held: false, why: `p99 ${fmt(stage.p99Ms, 1)} ms > ${fmt(sloP99Ms)} ms` };
  if (c.hung > 0) return { held: false, why: `${c.hung} hung connects` };
  if (c.connectErrors + c.disconnects > 0) return { held: false, why: `${c.connectErrors + c.disconnects} failed or dropped connections` };
  if (c.overloaded > 0) return { held: false, why: `${c.overloaded} publishes refused OVERLOADED` };
  if (c.ackTimeouts > 0) return { held: false, why: `${c.ackTimeouts} acks never answered` };
  if (c.errors > 0) return { held: false, why: `${c.errors} errors` };
  if (c.skipped > 0) return { held: false, why: `${c.skipped} publishes skipped (generator or acks behind)` };
  return { held: true, why: "held" };
}

export function capacitySummary(r: LoadtestResult): CapacitySummary {
  const slo = Number(r.options.sloP99Ms);
  const scenario = String(r.options.scenario);
  const lines: string[] = [];
  const connections = Math.max(r.connections.openAtReady, r.connections.openAtEnd);
  lines.push(
    `Capacity summary: ${scenario}, ${fmt(connections)} connections, ${String(r.options.engine)} engine, objective p99 ≤ ${fmt(slo)} ms (${r.charts.kind} latency)`,
  );
  let best: StageResult | undefined;
  let bestUnit = "";
  for (const stage of r.stages) {
    const { unit, perSec } = throughputOf(scenario, stage);
    const verdict = stageHeld(stage, slo);
    const rate = stage.rate === "max" ? "max" : `${fmt(stage.rate, 1)}/s`;
    lines.push(
      `  stage ${stage.index + 1} (rate ${rate}): ${fmt(perSec)} ${unit}, p50 ${fmt(stage.latencyMs[r.charts.kind].p50, 2)} ms, p99 ${fmt(stage.p99Ms, 2)} ms — ${verdict.held ? "held" : `missed (${verdict.why})`}`,
    );
    if (verdict.held && (!best || perSec > throughputOf(scenario, best).perSec)) {
      best = stage;
      bestUnit = unit;
    }
  }
  const rssPerConnection = r.server?.rssPerConnectionBytes ?? null;
  const summary: CapacitySummary = {
    sloP99Ms: slo,
    sustainedStage: best?.index ?? null,
    sustainedPerSec: best ? throughputOf(scenario, best).perSec : null,
    unit: best ? bestUnit : throughputOf(scenario, r.stages[0] ?? ({} as StageResult)).unit,
    serverCores: best?.server?.cores ?? null,
    perCore: null,
    connectionsPerCore: null,
    rssPerConnectionBytes: rssPerConnection,
    connectionsPerGiB: rssPerConnection && rssPerConnection > 0 ? Math.floor(2 ** 30 / rssPerConnection) : null,
    lines,
  };
  if (!best) {
    lines.push(`  No stage held the objective: the load is past what this server sustains at p99 ≤ ${fmt(slo)} ms; run a ramp of lower rates (--rate 50,100,200).`);
  } else {
    const perSec = throughputOf(scenario, best).perSec;
    lines.push(`  Sustained: ${fmt(perSec)} ${bestUnit} with ${fmt(connections)} connections at p99 ≤ ${fmt(slo)} ms (stage ${best.index + 1}).`);
    const cores = best.server?.cores;
    if (cores && cores > 0.01) {
      summary.perCore = Math.round(perSec / cores);
      summary.connectionsPerCore = Math.round(connections / cores);
      lines.push(
        `  Server CPU in that stage: ${fmt(cores, 2)} cores → about ${fmt(summary.perCore)} ${bestUnit} per core and ${fmt(summary.connectionsPerCore)} connections per core at this traffic (linear; see docs/benchmarks.md for what stops scaling on many cores).`,
      );
      if (best.server?.cpuUsPerUnit !== undefined) {
        lines.push(`  Server CPU per ${throughputOf(scenario, best).single}: ${fmt(best.server.cpuUsPerUnit, 2)} µs.`);
      }
    } else if (!r.server) {
      lines.push("  Server CPU not measured (the server is not on this host, or --no-server-stats): per-core figures need a local run or the server's own metrics.");
    }
  }
  if (rssPerConnection !== null && (rssPerConnection <= 0 || connections < 500)) {
    lines.push(`  Server memory per connection: not measurable with ${fmt(connections)} connections (heap noise dominates; use 10,000 or more).`);
  } else if (rssPerConnection !== null) {
    lines.push(
      `  Server memory: ${fmt(rssPerConnection / 1024, 1)} KiB RSS per ${scenario === "connect-storm" ? "" : "idle "}connection (all server processes)${summary.connectionsPerGiB ? ` → about ${fmt(summary.connectionsPerGiB)} connections per GiB` : ""}.`,
    );
    if (connections < 5000) {
      lines.push("  (With fewer than 5,000 connections this includes each server process's fixed growth under load; use 10,000 or more for the cost per connection.)");
    }
  }
  const d = r.delivery;
  if (d.expected > 0) lines.push(`  Messages: ${fmt(d.lost)} lost, ${fmt(d.duplicated)} duplicated of ${fmt(d.expected)} deliveries owed.`);
  lines.push(`  Connections: ${fmt(r.connections.hung)} hung, ${fmt(r.connections.errors)} failed, ${fmt(r.connections.disconnects)} dropped by the server; ${fmt(r.totals.errors)} errors in all.`);
  if (r.recovery) {
    lines.push(`  Recovery: ${fmt(r.recovery.recovered)} of ${fmt(r.recovery.attempts)} reconnects recovered their session (p99 ${fmt(r.recovery.latencyMs.p99, 1)} ms).`);
  }
  if (r.presence && r.presence.setsChecked > 0) {
    lines.push(`  Presence lists at the end: ${fmt(r.presence.ghosts)} ghosts, ${fmt(r.presence.missing)} missing over ${fmt(r.presence.setsChecked)} sets.`);
  }
  if (r.server) lines.push("  The generator ran on the server's host: it took CPU from the server, so the server alone would do somewhat better.");
  if (r.interrupted) lines.push("  Interrupted: these figures cover only the part that ran.");
  return summary;
}
