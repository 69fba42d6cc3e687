import { HOST_MEMORY_FLOOR } from "./limits.js";
import { fitLine, type LineFit } from "./linear-fit.js";
import type { CapacitySummary, Headline, LoadtestResult } from "./result-schema.js";
import { isRedisPeer } from "./server-stats.js";
import { throughputOf, type StageResult } from "./stage-result.js";

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
const ms = (n: number) => `${fmt(n, n < 10 ? 2 : n < 100 ? 1 : 0)} ms`;
const kib = (bytes: number) => `${fmt(bytes / 1024, 1)} KiB`;
const gib = (bytes: number) => `${fmt(bytes / 2 ** 30, 1)} GiB`;

/** Below this many connections the idle readings of a run say nothing per connection (each process's fixed growth dominates). */
const MIN_CONNECTIONS_FOR_RSS = 5000;

/** A fit whose r² is below this is reported as noise, not as a cost per connection. */
const MIN_R2 = 0.8;

const rateOf = (stage: StageResult) => (stage.rate === "max" ? "max" : `${fmt(stage.rate, 1)}/s`);

/** How a stage is named in the summary: `stage 2 (400/s)` or, in the connections ramp, `stage 2 (2,000 connections)`. */
export function stageName(scenario: string, stage: StageResult): string {
  return `stage ${stage.index + 1} (${scenario === "connections" ? `${fmt(stage.level ?? 0)} connections` : rateOf(stage)})`;
}

/** The connections scenario's costs per connection: lines through the held stages' readings. */
interface ConnectionFits {
  rss: LineFit | undefined;
  cores: LineFit | undefined;
  stages: number[];
}

/**
 * Memory is each level's lowest RSS over its measured window: the floor garbage collection
 * comes back to. The mean would carry a server's memory still shrinking from an earlier load,
 * or a collection that happened to fall in one level and not the next.
 */
function connectionFits(stages: readonly StageResult[]): ConnectionFits {
  const used = stages.filter((s) => s.verdict.status === "held" && s.server && s.open);
  const x = (s: StageResult) => s.open!.mean;
  return {
    rss: fitLine(used.map((s) => [x(s), s.server!.minRssBytes ?? s.server!.rssBytes ?? 0] as const)),
    cores: fitLine(used.map((s) => [x(s), s.server!.cores] as const)),
    stages: used.map((s) => s.index),
  };
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
  if (scenario === "connections") parts.push(`${fmt(stage.perSecond.deliveries)} deliveries/s`);
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
  const ramp = scenario === "connections";
  const lines: string[] = [];
  const headline: Headline[] = [];
  const connections = Math.max(r.connections.openAtReady, r.connections.openAtEnd, ...r.stages.map((s) => s.open?.end ?? 0));
  const server = r.server;
  const where = server
    ? `${server.mode === "unknown" ? "a server" : `${server.mode} mode`} (${server.processes.length} processes on this host${server.peers.some(isRedisPeer) ? ", with Redis" : ""})`
    : "a server not on this host (no CPU or memory readings)";
  const levels = Array.isArray(r.options.connectionLevels) ? r.options.connectionLevels.length : 1;
  const load = ramp ? `a ramp to ${fmt(Number(r.options.connections))} connections in ${levels} levels` : `${fmt(connections)} connections`;
  lines.push(`Load test: ${scenario} → ${String(r.options.url)}, ${load}, ${String(r.options.engine)} engine, against ${where}`);
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
    connectionsPerCore: null,
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
      const at = ramp ? `${fmt(summary.sustainedPerSec!)} connections held` : `sustained ${fmt(summary.sustainedPerSec!)} ${unit} with ${fmt(connections)} connections`;
      lines.push(`Verdict: ${at} in ${stageName(scenario, best)} at ${r.charts.kind} p99 ${ms(best.p99Ms)}; ${limitText}.`);
      headline.push({
        label: ramp ? "Connections held" : "Sustained",
        value: ramp ? fmt(summary.sustainedPerSec!) : `${fmt(summary.sustainedPerSec!)} ${unit}`,
        note: `${stageName(scenario, best)}${ramp ? "" : `, ${fmt(connections)} connections`}`,
        tone: "good",
      });
      headline.push({ label: `${r.charts.kind} p99 there`, value: ms(best.p99Ms), note: `objective ≤ ${ms(slo)}`, tone: "good" });
    } else {
      const bottom = Number(r.stages[0]?.level ?? r.options.connections);
      const lower = [bottom / 4, bottom / 2, bottom].map((n) => Math.max(1, Math.round(n))).join(",");
      const advice = ramp ? `start the ramp lower (--connections ${lower})` : "run a ramp of lower rates (--rate 50,100,200)";
      lines.push(`Verdict: no stage held every objective; ${limitText}. The load starts past this server's limit: ${advice}.`);
      headline.push({ label: ramp ? "Connections held" : "Sustained", value: "none", note: `no stage held: ${advice}`, tone: "bad" });
    }
    if (first) {
      headline.push({ label: "First limit reached", value: first.limit, note: `${stageName(scenario, r.stages[first.stage]!)}: ${first.detail}`, tone: "bad" });
    } else {
      headline.push({ label: "First limit reached", value: "none", note: "every stage held: raise the load to find the limit", tone: "good" });
    }
    if (ramp && first?.limit === "connects") {
      lines.push(`  (Connects are timed while each level opens at --connect-rate ${fmt(Number(r.options.connectRate))}/s: a lower rate tells holding connections from opening them.)`);
    }
    if (best && first && first.stage < best.index) {
      lines.push(`  (${stageName(scenario, best)} held after ${stageName(scenario, r.stages[first.stage]!)} missed: the server is near that limit; a longer ramp tells which side it is on.)`);
    }
  }
  for (const stage of r.stages) lines.push(stageLine(r, stage));
  if (r.stoppedAfter) {
    lines.push(`  The ramp stopped after stage ${r.stoppedAfter.stage + 1}: ${r.stoppedAfter.reason}; the later levels were not run.`);
  }

  // CPU: per unit in the sustained stage (a rate scenario), or per connection (a fit over the ramp).
  if (best?.server && !ramp) {
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

  if (ramp) connectionsCapacity(r, summary);
  else memoryLine(r, summary, connections);

  const d = r.delivery;
  if (d.expected > 0) {
    lines.push(`Messages: ${fmt(d.lost)} lost, ${fmt(d.duplicated)} duplicated of ${fmt(d.expected)} deliveries owed.`);
    headline.push({ label: "Lost / duplicated", value: `${fmt(d.lost)} / ${fmt(d.duplicated)}`, note: `of ${fmt(d.expected)} deliveries owed`, tone: d.lost + d.duplicated > 0 ? "bad" : "good" });
  } else if (ramp) {
    lines.push("Messages: not counted for loss here (connections join during the run); the message scenarios count them.");
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
    summary.lines.push(`Server memory per connection: not measured with ${fmt(connections)} connections (each process's own growth dominates); --scenario connections measures it.`);
  }
}

/** How well the line fits its levels: r², which says nothing through two points. */
const fitQuality = (fit: LineFit) => (fit.points > 2 ? `, r² ${fmt(fit.r2, 2)}` : ", two levels only");

/** Why a line through the levels gives no cost per connection. */
function unsteady(what: string, fit: LineFit | undefined): string {
  if (!fit || fit.slope <= 0) return `${what} did not rise with the connections`;
  return `${what} did not rise steadily with the connections, r² ${fmt(fit.r2, 2)}`;
}

/** The connections scenario: what one host holds, per GiB and per core, from lines through the held levels. */
function connectionsCapacity(r: Omit<LoadtestResult, "capacity">, summary: CapacitySummary): void {
  const { lines, headline } = summary;
  if (!r.server) return;
  const fits = connectionFits(r.stages);
  const from = fits.stages.length > 0 ? `stages ${fits.stages.map((i) => i + 1).join(", ")}` : "";
  const publishers = Number(r.options.publishers);
  const rate = Array.isArray(r.options.rates) ? Number(r.options.rates[0]) : 0;
  lines.push(
    `Activity: every connection subscribed to one of ${fmt(Number(r.options.channels))} channels; ${fmt(publishers)} publishers send ${fmt(rate, 1)} messages/s in all to ${fmt(Math.min(publishers, Number(r.options.channels)))} of them, the rest are idle.`,
  );
  if (fits.stages.length < 2) {
    lines.push("Per connection: needs two held levels or more (the cost is the slope between them): run a longer ramp, or start it lower.");
    return;
  }
  const rss = fits.rss;
  if (rss && rss.slope > 0 && rss.r2 >= MIN_R2) {
    summary.rssPerConnectionBytes = Math.round(rss.slope);
    summary.connectionsPerGiB = Math.floor(2 ** 30 / rss.slope);
    lines.push(
      `Memory: ${kib(rss.slope)} of server RSS per connection (a line through ${from}${fitQuality(rss)}; ${fmt(Math.max(0, rss.intercept) / 2 ** 20)} MiB whatever the count) → about ${fmt(summary.connectionsPerGiB)} connections per GiB.`,
    );
    headline.push({ label: "Per GiB", value: `${fmt(summary.connectionsPerGiB)} connections`, note: `${kib(rss.slope)} of server RSS each (${from})`, tone: "plain" });
  } else {
    lines.push(`Memory per connection: not measurable over ${from} (${unsteady("RSS", rss)}); use larger steps.`);
  }
  const cores = fits.cores;
  if (cores && cores.slope > 0 && cores.r2 >= MIN_R2) {
    summary.connectionsPerCore = Math.floor(1 / cores.slope);
    lines.push(`CPU: about ${fmt(summary.connectionsPerCore)} connections per core of server CPU at this activity (a line through ${from}${fitQuality(cores)}).`);
    headline.push({ label: "Per core", value: `${fmt(summary.connectionsPerCore)} connections`, note: "at this activity (server CPU, all processes)", tone: "plain" });
  } else {
    lines.push(`CPU per connection: not measurable over ${from} (${unsteady("server CPU", cores)}); at this activity the connections cost little CPU.`);
  }
  // This host, extrapolated along both lines: only when both were measured, since either may bind.
  const memory = r.host.memoryBytes;
  if (memory === undefined || summary.rssPerConnectionBytes === null || !rss) return;
  const byMemory = Math.floor((memory * (1 - HOST_MEMORY_FLOOR) - Math.max(0, rss.intercept)) / rss.slope);
  const host = `${r.host.cpus} cores, ${gib(memory)}`;
  const ramp = `the ramp itself held ${fmt(summary.sustainedPerSec ?? 0)}`;
  if (summary.connectionsPerCore === null || !cores) {
    lines.push(`This host (${host}): its memory would hold about ${fmt(byMemory)} such connections; what its CPU carries was not measurable at these levels, so that is no estimate of the host (${ramp}; ramp higher).`);
    return;
  }
  const byCpu = Math.floor((r.host.cpus - Math.max(0, cores.intercept)) / cores.slope);
  const limit = byCpu < byMemory ? "CPU" : "memory";
  const estimate = Math.min(byMemory, byCpu);
  lines.push(`This host (${host}), the server alone on it: about ${fmt(estimate)} such connections, limited by ${limit} (memory allows ${fmt(byMemory)}, CPU ${fmt(byCpu)}); an extrapolation, ${ramp}.`);
  headline.push({ label: "This host", value: `≈ ${fmt(estimate)} connections`, note: `${host}; limited by ${limit} (extrapolated)`, tone: "plain" });
}
