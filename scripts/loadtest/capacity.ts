import type { CapacitySummary, Headline, LoadtestResult } from "./result-schema.js";
import { isRedisPeer } from "./server-stats.js";
import { throughputOf, type StageResult } from "./stage-result.js";

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
const ms = (n: number) => `${fmt(n, n < 10 ? 2 : n < 100 ? 1 : 0)} ms`;
const kib = (bytes: number) => `${fmt(bytes / 1024, 1)} KiB`;

/** Below this many connections the idle readings of a run say nothing per connection (each process's fixed growth dominates). */
const MIN_CONNECTIONS_FOR_RSS = 5000;

const rateOf = (stage: StageResult) => (stage.rate === "max" ? "max" : `${fmt(stage.rate, 1)}/s`);

/** How a stage is named in the summary: `stage 2 (400/s)`. */
export function stageName(_scenario: string, stage: StageResult): string {
  return `stage ${stage.index + 1} (${rateOf(stage)})`;
}

/** The first stage that missed, and the limit it names first. */
function firstLimitOf(stages: readonly StageResult[]): CapacitySummary["firstLimit"] {
  const missed = stages.find((s) => s.verdict.status === "missed");
  const limit = missed?.verdict.limits[0];
  return missed && limit ? { stage: missed.index, limit: limit.limit, detail: limit.detail } : null;
}

/** One line per stage: its figure, the main latency, acks and refusals, and the verdict. */
function stageLine(r: Omit<LoadtestResult, "capacity">, stage: StageResult): string {
  const scenario = String(r.options.scenario);
  const { unit, perSec } = throughputOf(scenario, stage);
  const main = r.charts.kind;
  const parts = [`${fmt(perSec)} ${unit}`];
  parts.push(`${main} p50 ${ms(stage.latencyMs[main].p50)} p99 ${ms(stage.p99Ms)}`);
  if (main !== "ack" && stage.latencyMs.ack.count > 0 && r.options.ack !== false) parts.push(`ack p99 ${ms(stage.latencyMs.ack.p99)}`);
  if (main !== "connect" && stage.latencyMs.connect.count > 0) parts.push(`connect p99 ${ms(stage.latencyMs.connect.p99)}`);
  if (stage.counters.overloaded > 0) parts.push(`${fmt(stage.counters.overloaded)} refused`);
  return `  ${stageName(scenario, stage)}: ${parts.join(", ")} — ${stage.verdict.text}`;
}

/**
 * The verdict of a run in plain language: what it sustained, the first limit it reached and
 * where, then what that means per core and per GiB. Reads only the result's other fields.
 */
export function capacitySummary(r: Omit<LoadtestResult, "capacity">): CapacitySummary {
  const scenario = String(r.options.scenario);
  const slo = Number(r.options.sloP99Ms);
  const lines: string[] = [];
  const headline: Headline[] = [];
  const connections = Math.max(r.connections.openAtReady, r.connections.openAtEnd, ...r.stages.map((s) => s.open?.end ?? 0));
  const server = r.server;
  const where = server
    ? `${server.mode === "unknown" ? "a server" : `${server.mode} mode`} (${server.processes.length} processes on this host${server.peers.some(isRedisPeer) ? ", with Redis" : ""})`
    : "a server not on this host (no CPU or memory readings)";
  lines.push(`Load test: ${scenario} → ${String(r.options.url)}, ${fmt(connections)} connections, ${String(r.options.engine)} engine, against ${where}`);
  const objectives = [`${r.charts.kind} p99 ≤ ${ms(slo)}`];
  if (r.charts.kind !== "ack" && r.options.ack !== false && scenario !== "connect-storm") objectives.push(`ack p99 ≤ ${ms(Number(r.options.sloAckP99Ms))}`);
  if (r.charts.kind !== "connect") objectives.push(`connect p99 ≤ ${ms(Number(r.options.sloConnectP99Ms))}`);
  if (r.options.maxRssBytes !== undefined) objectives.push(`server RSS ≤ ${fmt(Number(r.options.maxRssBytes) / 2 ** 20)} MiB`);
  lines.push(`Objectives: ${objectives.join(", ")}; no refusals, hung or failed connects, or errors.`);

  const held = r.stages.filter((s) => s.verdict.status === "held");
  let best: StageResult | undefined;
  for (const stage of held) if (!best || throughputOf(scenario, stage).perSec > throughputOf(scenario, best).perSec) best = stage;
  const first = firstLimitOf(r.stages);
  const unit = best ? throughputOf(scenario, best).unit : throughputOf(scenario, r.stages[0] ?? ({ perSecond: {} } as StageResult)).unit;
  const summary: CapacitySummary = {
    sloP99Ms: slo,
    sustainedStage: best?.index ?? null,
    sustainedPerSec: best ? throughputOf(scenario, best).perSec : null,
    unit,
    serverCores: best?.server?.cores ?? null,
    perCore: null,
    firstLimit: first,
    rssPerConnectionBytes: null,
    connectionsPerGiB: null,
    headline,
    lines,
  };

  if (!r.outcome.ok) {
    lines.push(`Run failed: ${r.outcome.cause}`);
    headline.push({ label: "Run failed", value: "nothing measured", note: r.outcome.cause, tone: "bad" });
  } else {
    // The verdict: what held, and the first limit reached.
    const firstStage = first ? r.stages[first.stage]! : undefined;
    const limitText = first && firstStage ? `the first limit reached was ${first.limit}, in ${stageName(scenario, firstStage)}: ${first.detail}` : "no limit was reached";
    if (best) {
      lines.push(`Verdict: sustained ${fmt(summary.sustainedPerSec!)} ${unit} with ${fmt(connections)} connections in ${stageName(scenario, best)} at ${r.charts.kind} p99 ${ms(best.p99Ms)}; ${limitText}.`);
      headline.push({ label: "Sustained", value: `${fmt(summary.sustainedPerSec!)} ${unit}`, note: `${stageName(scenario, best)}, ${fmt(connections)} connections`, tone: "good" });
      headline.push({ label: `${r.charts.kind} p99 there`, value: ms(best.p99Ms), note: `objective ≤ ${ms(slo)}`, tone: "good" });
    } else {
      const advice = "run a ramp of lower rates (--rate 50,100,200)";
      lines.push(`Verdict: no stage held every objective; ${limitText}. The load starts past this server's limit: ${advice}.`);
      headline.push({ label: "Sustained", value: "none", note: `no stage held: ${advice}`, tone: "bad" });
    }
    if (first) {
      headline.push({ label: "First limit reached", value: first.limit, note: `${stageName(scenario, r.stages[first.stage]!)}: ${first.detail}`, tone: "bad" });
    } else {
      headline.push({ label: "First limit reached", value: "none", note: "every stage held: raise the load to find the limit", tone: "good" });
    }
    if (best && first && first.stage < best.index) {
      lines.push(`  (${stageName(scenario, best)} held after ${stageName(scenario, r.stages[first.stage]!)} missed: the server is near that limit; a longer ramp tells which side it is on.)`);
    }
  }
  for (const stage of r.stages) lines.push(stageLine(r, stage));

  // CPU: per unit in the sustained stage.
  if (best?.server) {
    const cores = best.server.cores;
    const perSec = throughputOf(scenario, best).perSec;
    if (cores > 0.01) {
      summary.perCore = Math.round(perSec / cores);
      const perUnit = best.server.cpuUsPerUnit !== undefined ? `, ${fmt(best.server.cpuUsPerUnit, 1)} µs of server CPU per ${throughputOf(scenario, best).single}` : "";
      lines.push(
        `Server CPU in ${stageName(scenario, best)}: ${fmt(cores, 2)} cores (all server processes)${perUnit} → about ${fmt(summary.perCore)} ${unit} per core (linear; on many cores the primary's relay or Redis stops the line first).`,
      );
      headline.push({ label: "Per core", value: `${fmt(summary.perCore)} ${unit}`, note: `${fmt(cores, 2)} server cores in ${stageName(scenario, best)}`, tone: "plain" });
    }
    if (best.server.redisCores !== undefined) {
      lines.push(`Redis in that stage: ${fmt(best.server.redisCores, 2)} cores (not counted above; one Redis serves every host).`);
    }
  } else if (!server && r.outcome.ok) {
    lines.push("Server CPU and memory not measured (the server is not on this host, or --no-server-stats): per-core and per-GiB figures need a local run.");
  }

  memoryLine(r, summary, connections);

  const d = r.delivery;
  if (d.expected > 0) {
    lines.push(`Messages: ${fmt(d.lost)} lost, ${fmt(d.duplicated)} duplicated of ${fmt(d.expected)} deliveries owed.`);
    headline.push({ label: "Lost / duplicated", value: `${fmt(d.lost)} / ${fmt(d.duplicated)}`, note: `of ${fmt(d.expected)} deliveries owed`, tone: d.lost + d.duplicated > 0 ? "bad" : "good" });
  }
  const c = r.connections;
  const connectLatency = c.connects > 0 ? `; connect p50 ${ms(c.latencyMs.p50)}, p99 ${ms(c.latencyMs.p99)}` : "";
  lines.push(`Connections: ${fmt(c.connects)} connects for ${fmt(c.planned)} planned; ${fmt(c.hung)} hung, ${fmt(c.errors)} failed, ${fmt(c.disconnects)} dropped by the server${connectLatency}.`);
  const t = r.totals;
  if (t.published > 0) {
    lines.push(`Publishes: ${fmt(t.published)}, ${fmt(t.acked)} acked, ${fmt(t.overloaded)} refused OVERLOADED, ${fmt(t.ackTimeouts)} never answered.`);
  }
  lines.push(`Other errors: ${fmt(t.errors)}${t.skipped > 0 ? `, ${fmt(t.skipped)} publishes skipped by the generator` : ""}.`);
  if (r.recovery) {
    lines.push(`Recovery: ${fmt(r.recovery.recovered)} of ${fmt(r.recovery.attempts)} reconnects recovered their session (p99 ${ms(r.recovery.latencyMs.p99)}).`);
  }
  if (r.presence && r.presence.setsChecked > 0) {
    lines.push(`Presence lists at the end: ${fmt(r.presence.ghosts)} ghosts, ${fmt(r.presence.missing)} missing over ${fmt(r.presence.setsChecked)} sets.`);
  }
  if (server && r.outcome.ok) lines.push("The generator ran on the server's host: it took CPU from the server, so the server alone would do somewhat better.");
  if (r.interrupted) lines.push("Interrupted: these figures cover only the part that ran.");
  return summary;
}

/** Rate scenarios: memory per connection only where the run had enough connections to say it. */
function memoryLine(r: Omit<LoadtestResult, "capacity">, summary: CapacitySummary, connections: number): void {
  const perConnection = r.server?.rssPerConnectionBytes;
  if (perConnection === undefined) return;
  if (perConnection > 0 && connections >= MIN_CONNECTIONS_FOR_RSS) {
    summary.rssPerConnectionBytes = perConnection;
    summary.connectionsPerGiB = Math.floor(2 ** 30 / perConnection);
    summary.lines.push(
      `Server memory: ${kib(perConnection)} RSS per ${r.options.scenario === "connect-storm" ? "" : "idle "}connection (all server processes, before and after the connects) → about ${fmt(summary.connectionsPerGiB)} connections per GiB.`,
    );
  } else {
    summary.lines.push(`Server memory per connection: not measured with ${fmt(connections)} connections (each process's own growth dominates); use ${fmt(MIN_CONNECTIONS_FOR_RSS)} or more.`);
  }
}
