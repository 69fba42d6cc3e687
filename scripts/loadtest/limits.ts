import type { LatencySummary } from "./hdr.js";
import type { Counters, LatencyKind } from "./metrics.js";
import type { LoadtestOptions } from "./options.js";

/**
 * The limits a stage can reach, in the order the verdict names them when several are reached at
 * once. They often fall together, one the cause of the others: a full persistence queue refuses
 * publishes and slows the acks, and the CPU it takes slows deliveries; a server that drops
 * connections loses their messages. The order puts the nearest to a cause first:
 * - memory: the server's RSS passed --max-rss, or the host ran low on memory;
 * - connects: connects hung or failed, the server dropped connections, or connect p99 passed its objective;
 * - refusals: the server refused work as OVERLOADED (it is at a bound, e.g. its persistence queue);
 * - ack: publish (or presence operation) acks slower than their objective, or never answered;
 * - delivery, presence: the scenario's main latency p99 past --slo-p99;
 * - errors: anything else (failed subscribes, invalid publishes, a generator behind its schedule).
 */
export const LIMITS = ["memory", "connects", "refusals", "ack", "delivery", "presence", "errors"] as const;
export type Limit = (typeof LIMITS)[number];

/** A stage whose host has less than this share of its memory available has reached the memory limit. */
export const HOST_MEMORY_FLOOR = 0.1;

export interface LimitHit {
  limit: Limit;
  /** What was seen, against what objective. */
  detail: string;
}

export interface StageVerdict {
  /** held: every objective kept; missed: a limit reached; empty: nothing measured. */
  status: "held" | "missed" | "empty";
  /** The limits reached, in LIMITS order: the first is the one the verdict names. */
  limits: LimitHit[];
  /** One line: `held`, `missed: refusals — ...; also ack ...`, `empty: ...`. */
  text: string;
}

/** What a stage is judged against. */
export interface Objectives {
  /** The scenario's main latency (its p99 is judged against sloP99Ms). */
  main: LatencyKind;
  sloP99Ms: number;
  sloAckP99Ms: number;
  sloConnectP99Ms: number;
  maxRssBytes: number | undefined;
  /** Publishes ask for acks (a scenario that publishes with --no-ack has no ack latency to judge). */
  acks: boolean;
}

/** What judging a stage reads. */
export interface JudgedStage {
  counters: Counters;
  latencyMs: Record<LatencyKind, LatencySummary>;
  server?: { peakRssBytes?: number | undefined };
  host?: { totalBytes: number; minAvailableBytes: number };
}

/** The objectives of a run's options. */
export function objectivesOf(
  o: Pick<LoadtestOptions, "sloP99Ms" | "sloAckP99Ms" | "sloConnectP99Ms" | "maxRssBytes" | "ack">,
  main: LatencyKind,
): Objectives {
  return { main, sloP99Ms: o.sloP99Ms, sloAckP99Ms: o.sloAckP99Ms, sloConnectP99Ms: o.sloConnectP99Ms, maxRssBytes: o.maxRssBytes, acks: o.ack };
}

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const ms = (n: number) => `${fmt(n, n < 10 ? 2 : n < 100 ? 1 : 0)} ms`;
const mib = (bytes: number) => `${fmt(bytes / 2 ** 20)} MiB`;
const share = (part: number, whole: number) => (whole > 0 ? ` (${fmt((100 * part) / whole, part / whole < 0.01 ? 2 : 0)}%)` : "");
const plural = (n: number, one: string, many = `${one}s`) => `${fmt(n)} ${n === 1 ? one : many}`;

/** The limit a latency kind reaches when it is the scenario's main latency. */
const LIMIT_OF_KIND: Record<LatencyKind, Limit> = { delivery: "delivery", ack: "ack", connect: "connects", presence: "presence", recovery: "connects" };

/**
 * Judges one stage against the objectives. `units` is the stage's measure of the scenario's
 * throughput (deliveries, durable acks, connects, presence operations): with no limit reached and
 * none of it, the stage is empty rather than held.
 */
export function judgeStage(stage: JudgedStage, o: Objectives, units: number): StageVerdict {
  const c = stage.counters;
  const l = stage.latencyMs;
  const found: LimitHit[] = [];
  const hit = (limit: Limit, detail: string) => found.push({ limit, detail });

  const peak = stage.server?.peakRssBytes;
  if (o.maxRssBytes !== undefined && peak !== undefined && peak > o.maxRssBytes) {
    hit("memory", `server RSS ${mib(peak)} > --max-rss ${mib(o.maxRssBytes)}`);
  }
  const host = stage.host;
  if (host && host.minAvailableBytes < host.totalBytes * HOST_MEMORY_FLOOR) {
    hit("memory", `the host had ${mib(host.minAvailableBytes)} of ${mib(host.totalBytes)} available`);
  }

  const connectObjective = o.main === "connect" ? o.sloP99Ms : o.sloConnectP99Ms;
  const connectProblems: string[] = [];
  if (c.hung > 0) connectProblems.push(`${plural(c.hung, "connect")} hung`);
  if (c.connectErrors > 0) connectProblems.push(`${plural(c.connectErrors, "connect")} failed`);
  if (c.disconnects > 0) connectProblems.push(`${plural(c.disconnects, "connection")} dropped by the server`);
  if (l.connect.count > 0 && l.connect.p99 > connectObjective) connectProblems.push(`connect p99 ${ms(l.connect.p99)} > ${ms(connectObjective)}`);
  if (connectProblems.length > 0) hit("connects", connectProblems.join(", "));

  if (c.overloaded > 0) {
    const what = c.published > 0 ? `of ${plural(c.published, "publish", "publishes")}` : c.presenceOps > 0 ? `of ${plural(c.presenceOps, "operation")}` : "requests";
    hit("refusals", `${fmt(c.overloaded)} ${what}${share(c.overloaded, c.published || c.presenceOps)} refused OVERLOADED`);
  }

  const ackObjective = o.main === "ack" ? o.sloP99Ms : o.sloAckP99Ms;
  const ackProblems: string[] = [];
  if (o.acks && l.ack.count > 0 && l.ack.p99 > ackObjective) ackProblems.push(`ack p99 ${ms(l.ack.p99)} > ${ms(ackObjective)} (p50 ${ms(l.ack.p50)})`);
  if (c.ackTimeouts > 0) ackProblems.push(`${plural(c.ackTimeouts, "ack")} never answered`);
  if (ackProblems.length > 0) hit("ack", ackProblems.join(", "));

  if (o.main === "delivery" || o.main === "presence") {
    const main = l[o.main];
    if (main.count > 0 && main.p99 > o.sloP99Ms) hit(LIMIT_OF_KIND[o.main], `${o.main} p99 ${ms(main.p99)} > ${ms(o.sloP99Ms)}`);
  }

  const errorProblems: string[] = [];
  if (c.errors > 0) errorProblems.push(plural(c.errors, "error"));
  if (c.skipped > 0) {
    const what = c.published > 0 ? plural(c.skipped, "publish", "publishes") : plural(c.skipped, "operation");
    errorProblems.push(`${what} skipped by the generator (behind its schedule, or too many acks outstanding)`);
  }
  if (errorProblems.length > 0) hit("errors", errorProblems.join(", "));

  const limits = found.sort((a, b) => LIMITS.indexOf(a.limit) - LIMITS.indexOf(b.limit));
  if (limits.length > 0) {
    const [first, ...others] = limits;
    const also = others.length > 0 ? `; also ${others.map((h) => `${h.limit}: ${h.detail}`).join("; ")}` : "";
    return { status: "missed", limits, text: `missed: ${first!.limit} — ${first!.detail}${also}` };
  }
  if (units === 0) return { status: "empty", limits, text: "empty: nothing was measured" };
  return { status: "held", limits, text: "held" };
}
