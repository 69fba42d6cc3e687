import { REFERENCES, TARGET_LABELS, type TargetName } from "./targets.js";
import { median, medianOrNull } from "../../harness/stats.js";

/** One measurement round of one target. */
export interface TargetRun {
  target: TargetName;
  run: number;
  /** Fan-out: deliveries per second to 1 channel of `connections` subscribers, window by delivery. */
  fanoutPerSec: number;
  /** Server CPU per delivery in the fan-out phase, µs (all server processes). */
  serverUsPerDelivery: number | null;
  /** Server CPU cores used in the fan-out phase. */
  serverCores: number | null;
  /** Product: the primary's CPU per broadcast in the fan-out phase, µs. */
  primaryUsPerBroadcast: number | null;
  /** Clustered: redis-server's CPU per broadcast over the fan-out run, µs. */
  redisUsPerBroadcast: number | null;
  /**
   * Latency test, per broadcast over its measured window, µs: what its p50 is made of on a
   * machine the generator shares. The server's CPU (every process of the target); the
   * generator's (this process's main thread), and how long it waited on a run queue, runnable
   * while the server held every core (null where /proc has no schedstat). Not every microsecond
   * is on the way to a delivery: a store write between broadcasts costs CPU, not latency.
   */
  latencyServerUsPerBroadcast: number | null;
  generatorRunUsPerBroadcast: number | null;
  generatorWaitUsPerBroadcast: number | null;
  /** One broadcast in flight to the latency subscribers: publish → deliver, ms. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** (RSS with the connections − RSS before them) ÷ connections, all server processes. */
  rssPerConnectionBytes: number | null;
  /** RSS of all the target's processes before the fan-out's connections (after the warm-up). */
  idleRssBytes: number | null;
  hung: number;
  lost: number;
  duplicated: number;
  errors: number;
  /** What went wrong, by kind, over the three tests (a hung connect names the step it stalled at). */
  errorKinds?: Record<string, number>;
}

/** The main suite's bar: product ÷ baseline, measured on the same machine in the same run. */
export const BARS = {
  fanout: { min: 0.8 },
  latencyP50: { max: 1.5 },
  rssPerConnection: { max: 1.3 },
  hung: { max: 0 },
} as const;

export { median };

/** A target's medians over its rounds; `hung`, `lost`, `duplicated` and `errors` are summed instead (any hung connect fails the bar). */
export type TargetMedians = Omit<TargetRun, "target" | "run" | "errorKinds"> & { runs: number };

export interface Verdict {
  measure: string;
  ratio: number | null;
  bar: string;
  pass: boolean;
}

export interface BenchSummary {
  medians: Partial<Record<TargetName, TargetMedians>>;
  verdicts: Partial<Record<TargetName, Verdict[]>>;
  /**
   * Not a bar: the two-worker shapes against plain socket.io in two processes, and that reference
   * against the baseline (what running two socket.io processes costs on this machine, whoever runs them).
   */
  twoProcess: Array<{ target: TargetName; fanout: number | null; latencyP50: number | null }>;
  pass: boolean;
}

/** Product targets with two worker processes, compared with the two-process reference. */
const TWO_PROCESS: readonly TargetName[] = ["embedded-w2", "clustered-w2"];

const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : null);

export function summarizeBench(runs: readonly TargetRun[]): BenchSummary {
  const medians: BenchSummary["medians"] = {};
  for (const target of new Set(runs.map((r) => r.target))) {
    const mine = runs.filter((r) => r.target === target);
    medians[target] = {
      runs: mine.length,
      fanoutPerSec: median(mine.map((r) => r.fanoutPerSec)),
      serverUsPerDelivery: medianOrNull(mine.map((r) => r.serverUsPerDelivery)),
      serverCores: medianOrNull(mine.map((r) => r.serverCores)),
      primaryUsPerBroadcast: medianOrNull(mine.map((r) => r.primaryUsPerBroadcast)),
      redisUsPerBroadcast: medianOrNull(mine.map((r) => r.redisUsPerBroadcast)),
      latencyServerUsPerBroadcast: medianOrNull(mine.map((r) => r.latencyServerUsPerBroadcast)),
      generatorRunUsPerBroadcast: medianOrNull(mine.map((r) => r.generatorRunUsPerBroadcast)),
      generatorWaitUsPerBroadcast: medianOrNull(mine.map((r) => r.generatorWaitUsPerBroadcast)),
      latencyP50Ms: median(mine.map((r) => r.latencyP50Ms)),
      latencyP99Ms: median(mine.map((r) => r.latencyP99Ms)),
      rssPerConnectionBytes: medianOrNull(mine.map((r) => r.rssPerConnectionBytes)),
      idleRssBytes: medianOrNull(mine.map((r) => r.idleRssBytes)),
      hung: mine.reduce((s, r) => s + r.hung, 0),
      lost: mine.reduce((s, r) => s + r.lost, 0),
      duplicated: mine.reduce((s, r) => s + r.duplicated, 0),
      errors: mine.reduce((s, r) => s + r.errors, 0),
    };
  }
  const base = medians.baseline;
  const verdicts: BenchSummary["verdicts"] = {};
  // Without a baseline there is nothing to judge against, without a product target nothing to
  // judge: never a pass.
  let pass = base !== undefined && Object.keys(medians).some((t) => !REFERENCES.includes(t as TargetName));
  for (const [target, m] of Object.entries(medians) as Array<[TargetName, TargetMedians]>) {
    if (REFERENCES.includes(target) || !base) continue;
    const fan = ratio(m.fanoutPerSec, base.fanoutPerSec);
    const lat = ratio(m.latencyP50Ms, base.latencyP50Ms);
    const rss = ratio(m.rssPerConnectionBytes, base.rssPerConnectionBytes);
    const list: Verdict[] = [
      { measure: "fan-out deliveries/s", ratio: fan, bar: `≥ ${BARS.fanout.min}×`, pass: fan !== null && fan >= BARS.fanout.min },
      { measure: "p50 publish→deliver, 1 in flight", ratio: lat, bar: `≤ ${BARS.latencyP50.max}×`, pass: lat !== null && lat <= BARS.latencyP50.max },
      { measure: "RSS per idle connection", ratio: rss, bar: `≤ ${BARS.rssPerConnection.max}×`, pass: rss !== null && rss <= BARS.rssPerConnection.max },
      { measure: "hung connects", ratio: m.hung, bar: "0", pass: m.hung <= BARS.hung.max },
    ];
    verdicts[target] = list;
    if (list.some((v) => !v.pass)) pass = false;
  }
  const twoProcess: BenchSummary["twoProcess"] = [];
  const reference = medians["baseline-w2"];
  if (reference) {
    const against = (target: TargetName, m: TargetMedians, to: TargetMedians) =>
      twoProcess.push({ target, fanout: ratio(m.fanoutPerSec, to.fanoutPerSec), latencyP50: ratio(m.latencyP50Ms, to.latencyP50Ms) });
    if (base) against("baseline-w2", reference, base);
    for (const target of TWO_PROCESS) {
      const m = medians[target];
      if (m) against(target, m, reference);
    }
  }
  return { medians, verdicts, twoProcess, pass };
}

const fmt = (n: number | null, digits = 0) => (n === null || !Number.isFinite(n) ? "—" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }));

function pad(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
}

/** The bench's printed report: every run, the medians, and the ratios against the bar. */
export function formatBench(runs: readonly TargetRun[], summary: BenchSummary): string {
  const lines: string[] = [];
  const head = ["target / run", "deliv/s", "srv µs/deliv", "srv cores", "p50 ms", "p99 ms", "KiB/conn", "idle MiB", "hung", "lost", "dup", "errors"];
  const widths = [40, 9, 12, 9, 7, 7, 8, 8, 5, 5, 4, 6];
  const mib = (b: number | null) => fmt(b === null ? null : b / 2 ** 20, 0);
  lines.push("All runs:");
  lines.push(pad(head, widths));
  for (const r of runs) {
    lines.push(
      pad(
        [
          `${r.target} #${r.run}`,
          fmt(r.fanoutPerSec),
          fmt(r.serverUsPerDelivery, 2),
          fmt(r.serverCores, 2),
          fmt(r.latencyP50Ms, 2),
          fmt(r.latencyP99Ms, 2),
          fmt(r.rssPerConnectionBytes === null ? null : r.rssPerConnectionBytes / 1024, 1),
          mib(r.idleRssBytes),
          String(r.hung),
          String(r.lost),
          String(r.duplicated),
          String(r.errors),
        ],
        widths,
      ),
    );
  }
  lines.push("", "Medians (hung/lost/dup/errors: totals over the runs):");
  lines.push(pad(["target", ...head.slice(1)], widths));
  for (const [target, m] of Object.entries(summary.medians) as Array<[TargetName, TargetMedians]>) {
    lines.push(
      pad(
        [
          TARGET_LABELS[target],
          fmt(m.fanoutPerSec),
          fmt(m.serverUsPerDelivery, 2),
          fmt(m.serverCores, 2),
          fmt(m.latencyP50Ms, 2),
          fmt(m.latencyP99Ms, 2),
          fmt(m.rssPerConnectionBytes === null ? null : m.rssPerConnectionBytes / 1024, 1),
          mib(m.idleRssBytes),
          String(m.hung),
          String(m.lost),
          String(m.duplicated),
          String(m.errors),
        ],
        widths,
      ),
    );
  }
  lines.push("", "What one broadcast costs the shared parts (medians, fan-out phase):");
  for (const [target, m] of Object.entries(summary.medians) as Array<[TargetName, TargetMedians]>) {
    if (target === "baseline") continue;
    const redis = m.redisUsPerBroadcast === null ? "" : `, redis-server ${fmt(m.redisUsPerBroadcast, 0)} µs (upper bound)`;
    lines.push(`  ${TARGET_LABELS[target].padEnd(40)} primary ${fmt(m.primaryUsPerBroadcast, 0)} µs${redis}`);
  }
  const perBroadcast = (Object.entries(summary.medians) as Array<[TargetName, TargetMedians]>).filter(
    ([, m]) => m.latencyServerUsPerBroadcast !== null || m.generatorRunUsPerBroadcast !== null || m.generatorWaitUsPerBroadcast !== null,
  );
  if (perBroadcast.length > 0) {
    const cols = [40, 10, 13, 16];
    lines.push("", "Latency test, µs per broadcast (medians; the generator shares the machine's cores):");
    lines.push(`  ${pad(["target", "server CPU", "generator CPU", "generator waits", "p50 ms"], [...cols, 7])}`);
    for (const [target, m] of perBroadcast) {
      const cells = [TARGET_LABELS[target], fmt(m.latencyServerUsPerBroadcast), fmt(m.generatorRunUsPerBroadcast), fmt(m.generatorWaitUsPerBroadcast), fmt(m.latencyP50Ms, 2)];
      lines.push(`  ${pad(cells, [...cols, 7])}`);
    }
  }
  const base = summary.medians.baseline;
  if (base?.serverUsPerDelivery) {
    lines.push("", "Server CPU per delivery against the baseline (not a bar: robust when other load shares the machine):");
    for (const [target, m] of Object.entries(summary.medians) as Array<[TargetName, TargetMedians]>) {
      if (target === "baseline" || m.serverUsPerDelivery === null) continue;
      lines.push(`  ${TARGET_LABELS[target].padEnd(40)} ${fmt(m.serverUsPerDelivery / base.serverUsPerDelivery, 2)}×`);
    }
  }
  if (summary.twoProcess.length > 0) {
    lines.push("", "Two processes on this machine (medians; not a bar):");
    for (const r of summary.twoProcess) {
      const what = r.target === "baseline-w2" ? `${TARGET_LABELS[r.target]} against the baseline` : `${TARGET_LABELS[r.target]} against plain socket.io, 2 processes`;
      lines.push(`  ${what.padEnd(78)} fan-out ${fmt(r.fanout, 2)}×  p50 ${fmt(r.latencyP50, 2)}×`);
    }
  }
  lines.push("", "Ratios against the baseline (medians) and the bar:");
  for (const [target, list] of Object.entries(summary.verdicts) as Array<[TargetName, Verdict[]]>) {
    lines.push(`  ${TARGET_LABELS[target]}`);
    for (const v of list) {
      const value = v.measure === "hung connects" ? String(v.ratio) : `${fmt(v.ratio, 2)}×`;
      lines.push(`    ${v.measure.padEnd(36)} ${value.padStart(7)}   bar ${v.bar.padEnd(7)} ${v.pass ? "PASS" : "MISS"}`);
    }
  }
  lines.push(
    "",
    !summary.medians.baseline
      ? "No baseline in this run: the bar is not judged (include the baseline target)."
      : Object.keys(summary.verdicts).length === 0
        ? "No product target in this run: the bar is not judged."
        : summary.pass
        ? "The product meets the bar in every mode."
        : "The product misses the bar somewhere (MISS above).",
  );
  return lines.join("\n");
}
