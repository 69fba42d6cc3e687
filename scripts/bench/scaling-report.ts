import type { PartCpu } from "./parts.js";
import { median, medianOrNull } from "../../harness/stats.js";

/**
 * The scaling suite's figures: one record per workload, server shape and round; medians over the
 * rounds; ratios to one worker of the same mode and to the plain process; the scaling suite's bars.
 */

export type Mode = "plain" | "embedded" | "clustered";
export const WORKLOADS = ["rooms-1", "rooms-5"] as const;
export type Workload = (typeof WORKLOADS)[number];
export type Persistence = "off" | "embedded";

/** One workload against one freshly started server shape, in one round. */
export interface ScalingRun {
  workload: Workload;
  mode: Mode;
  /** History storage: off, or the embedded store (rooms of 5 only); the plain process: off. */
  persistence: Persistence;
  /** Product workers; 1 for the plain process. */
  workers: number;
  round: number;
  clients: number;
  roomSize: number;
  /** Broadcasts done (every member had it) in the measured window, and the window's seconds. */
  broadcasts: number;
  measuredS: number;
  /** Server CPU by part per broadcast done, µs (redis-server: clustered only). */
  usPerBroadcast: PartCpu | null;
  /** This process (the generator) per broadcast, µs: how much of the two cores the load itself took. */
  generatorUsPerBroadcast: number | null;
  /** The connect phase, when measured: connects, and µs per connect by part. */
  connect: { connects: number; usPerConnect: PartCpu } | null;
  lost: number;
  duplicated: number;
  misrouted: number;
  hung: number;
  connectErrors: number;
  errors: Record<string, number>;
  /** Publishes the server refused (OVERLOADED, STORE_UNAVAILABLE, RATE_LIMITED): also in errors. */
  refused: number;
  /** History pages of 50 read during the window (history stored only), ms each. */
  historyMs?: number[];
}

/** The scaling suite's bars. */
export const SCALING_BARS = {
  /** Rooms of one member, CPU per broadcast of each part at the most workers ÷ at one worker. */
  perPartGrowth: { max: 1.25 },
  /** Rooms of one member, the product at one worker (embedded) ÷ the plain process, CPU per broadcast. */
  oneWorkerVsPlain: { max: 1.3 },
  /** Server CPU per authenticated connect, the product (embedded, one worker) ÷ the plain process. */
  connectVsPlain: { max: 1.3 },
  /** The primary's CPU per connect, µs. */
  primaryPerConnectUs: { max: 150 },
  /**
   * A part's growth is taken against at least this many µs per broadcast at one worker: a part
   * with next to no work per broadcast there (the primary in clustered mode) would otherwise
   * divide by zero or by the noise of a tick or two. /proc counts CPU in 10 ms ticks; at 8
   * workers on 2 cores the window holds some 3,000–6,000 broadcasts, so one tick is 1.7–3.3 µs
   * per broadcast. 5 µs is also small beside the workers' figure (150 µs and more here).
   */
  growthFloorUs: 5,
  /** Rooms of 5, the same shape: server CPU per message with every message stored ÷ with none. */
  storedVsOff: { max: 1.3 },
  /** Rooms of 5 with history stored: a page of 50 read during the load, p50 in ms. */
  historyPageP50Ms: { max: 2 },
} as const;

/** Every measured part together: the server's processes and redis-server where measured. */
export const allParts = (p: PartCpu) => p.primary + p.workers + p.other + (p.redis ?? 0);

export interface ShapeMedians {
  workload: Workload;
  mode: Mode;
  persistence: Persistence;
  workers: number;
  rounds: number;
  clients: number;
  roomSize: number;
  broadcastsPerSec: number | null;
  usPerBroadcast: PartCpu | null;
  allUsPerBroadcast: number | null;
  generatorUsPerBroadcast: number | null;
  connectUs: PartCpu | null;
  allUsPerConnect: number | null;
  /** Totals over the rounds. */
  lost: number;
  duplicated: number;
  misrouted: number;
  hung: number;
  connectErrors: number;
  errors: number;
  refused: number;
  /** History pages read over every round: how many, p50 and p99 ms (null when none). */
  history: { reads: number; p50: number; p99: number } | null;
}

export interface ScalingVerdict {
  measure: string;
  value: number | null;
  unit: "×" | "µs" | "ms" | "";
  bar: string;
  pass: boolean;
  /** Why the figure is not a plain ratio (the growth floor applied). */
  note?: string;
}

export interface ScalingSummary {
  shapes: ShapeMedians[];
  verdicts: ScalingVerdict[];
  pass: boolean;
}

const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || !Number.isFinite(n) ? "—" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Each part's median on its own (so a part's figure is the middle of that part's rounds). */
function medianParts(parts: ReadonlyArray<PartCpu | null | undefined>): PartCpu | null {
  const present = parts.filter((p): p is PartCpu => p !== null && p !== undefined);
  if (present.length === 0) return null;
  return {
    primary: median(present.map((p) => p.primary)),
    workers: median(present.map((p) => p.workers)),
    other: median(present.map((p) => p.other)),
    redis: medianOrNull(present.map((p) => p.redis)),
  };
}

export const ratioOf = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a !== null && a !== undefined && b !== null && b !== undefined && b > 0 ? a / b : null;

const shapeKey = (r: { workload: Workload; mode: Mode; workers: number; persistence: Persistence }) => `${r.workload}/${r.mode}/${r.workers}/${r.persistence}`;
const MODE_ORDER: Record<Mode, number> = { plain: 0, embedded: 1, clustered: 2 };

function historyOf(ms: number[]): ShapeMedians["history"] {
  if (ms.length === 0) return null;
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { reads: sorted.length, p50: at(0.5), p99: at(0.99) };
}

export function summarizeScaling(runs: readonly ScalingRun[]): ScalingSummary {
  const groups = new Map<string, ScalingRun[]>();
  for (const r of runs) groups.set(shapeKey(r), [...(groups.get(shapeKey(r)) ?? []), r]);
  const shapes: ShapeMedians[] = [...groups.values()].map((mine) => {
    const first = mine[0]!;
    const sum = (f: (r: ScalingRun) => number) => mine.reduce((s, r) => s + f(r), 0);
    return {
      workload: first.workload,
      mode: first.mode,
      persistence: first.persistence,
      workers: first.workers,
      rounds: mine.length,
      clients: first.clients,
      roomSize: first.roomSize,
      broadcastsPerSec: medianOrNull(mine.map((r) => (r.measuredS > 0 ? r.broadcasts / r.measuredS : null))),
      usPerBroadcast: medianParts(mine.map((r) => r.usPerBroadcast)),
      allUsPerBroadcast: medianOrNull(mine.map((r) => (r.usPerBroadcast ? allParts(r.usPerBroadcast) : null))),
      generatorUsPerBroadcast: medianOrNull(mine.map((r) => r.generatorUsPerBroadcast)),
      connectUs: medianParts(mine.map((r) => r.connect?.usPerConnect)),
      allUsPerConnect: medianOrNull(mine.map((r) => (r.connect ? allParts(r.connect.usPerConnect) : null))),
      lost: sum((r) => r.lost),
      duplicated: sum((r) => r.duplicated),
      misrouted: sum((r) => r.misrouted),
      hung: sum((r) => r.hung),
      connectErrors: sum((r) => r.connectErrors),
      errors: sum((r) => Object.values(r.errors).reduce((a, b) => a + b, 0)),
      refused: sum((r) => r.refused),
      history: historyOf(mine.flatMap((r) => r.historyMs ?? [])),
    };
  });
  shapes.sort(
    (a, b) => a.workload.localeCompare(b.workload) || MODE_ORDER[a.mode] - MODE_ORDER[b.mode] || a.workers - b.workers || a.persistence.localeCompare(b.persistence) * -1,
  );

  const find = (workload: Workload, mode: Mode, workers: number) =>
    shapes.find((s) => s.workload === workload && s.mode === mode && s.workers === workers && s.persistence === "off");
  const verdicts: ScalingVerdict[] = [];
  const judge = (measure: string, value: number | null, unit: ScalingVerdict["unit"], max: number) =>
    verdicts.push({ measure, value, unit, bar: `≤ ${max}${unit === "×" ? "×" : " µs"}`, pass: value !== null && value <= max });

  for (const mode of ["embedded", "clustered"] as const) {
    const one = find("rooms-1", mode, 1);
    const most = shapes.filter((s) => s.workload === "rooms-1" && s.mode === mode && s.workers > 1).at(-1);
    if (!one || !most) continue;
    const parts: Array<[string, keyof PartCpu]> = [
      ["primary", "primary"],
      ["all workers", "workers"],
      ...(mode === "clustered" ? ([["redis-server", "redis"]] as Array<[string, keyof PartCpu]>) : []),
    ];
    for (const [label, part] of parts) {
      const [at1, atMost] = [one.usPerBroadcast?.[part], most.usPerBroadcast?.[part]];
      const floored = typeof at1 === "number" && at1 < SCALING_BARS.growthFloorUs;
      judge(
        `rooms of 1, ${mode}, ${label}: CPU per broadcast, ${most.workers} ÷ 1 workers`,
        ratioOf(atMost, typeof at1 === "number" ? Math.max(at1, SCALING_BARS.growthFloorUs) : at1),
        "×",
        SCALING_BARS.perPartGrowth.max,
      );
      if (floored) verdicts[verdicts.length - 1]!.note = `${fmt(at1, 2)} µs at 1 worker: taken as ${SCALING_BARS.growthFloorUs} µs`;
    }
  }
  const plain1 = find("rooms-1", "plain", 1);
  const embedded1 = find("rooms-1", "embedded", 1);
  if (plain1 && embedded1) {
    judge("rooms of 1, CPU per broadcast, embedded 1 worker ÷ plain", ratioOf(embedded1.allUsPerBroadcast, plain1.allUsPerBroadcast), "×", SCALING_BARS.oneWorkerVsPlain.max);
  }
  // Connects are measured in the rooms-of-5 workload (its clients connect before they subscribe).
  const plainConnect = shapes.find((s) => s.mode === "plain" && s.allUsPerConnect !== null);
  const productConnect = shapes.find((s) => s.mode === "embedded" && s.workers === 1 && s.allUsPerConnect !== null);
  if (plainConnect && productConnect) {
    judge("CPU per connect, embedded 1 worker ÷ plain", ratioOf(productConnect.allUsPerConnect, plainConnect.allUsPerConnect), "×", SCALING_BARS.connectVsPlain.max);
  }
  if (productConnect) {
    judge("CPU per connect, the primary (embedded, 1 worker)", productConnect.connectUs?.primary ?? null, "µs", SCALING_BARS.primaryPerConnectUs.max);
  }
  for (const stored of shapes.filter((s) => s.persistence === "embedded")) {
    const off = find(stored.workload, stored.mode, stored.workers);
    if (!off) continue;
    const shape = `rooms of 5, ${stored.mode} ${stored.workers}w`;
    judge(`${shape}: CPU per message, history stored ÷ off`, ratioOf(stored.allUsPerBroadcast, off.allUsPerBroadcast), "×", SCALING_BARS.storedVsOff.max);
    verdicts.push({
      measure: `${shape}, history stored: page of 50 read under the load, p50`,
      value: stored.history?.p50 ?? null,
      unit: "ms",
      bar: `≤ ${SCALING_BARS.historyPageP50Ms.max} ms`,
      pass: stored.history !== null && stored.history.p50 <= SCALING_BARS.historyPageP50Ms.max,
    });
    verdicts.push({
      measure: `${shape}, history stored: publishes refused`,
      value: stored.refused,
      unit: "",
      bar: "= 0",
      pass: stored.refused === 0,
    });
  }
  return { shapes, verdicts, pass: verdicts.length > 0 && verdicts.every((v) => v.pass) };
}

const times = (n: number | null) => (n === null ? "—" : `${fmt(n, 2)}×`);

function table(rows: string[][], widths: number[]): string[] {
  return rows.map((cells) => `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")}`);
}

/** "3 rounds", or "2–3 rounds" when the deadline cut the last round short. */
function roundsText(shapes: readonly ShapeMedians[]): string {
  const counts = shapes.map((s) => s.rounds);
  const [lo, hi] = [Math.min(...counts), Math.max(...counts)];
  if (counts.length === 0) return "no rounds";
  return `${lo === hi ? lo : `${lo}–${hi}`} round${hi === 1 ? "" : "s"}`;
}

const shapeLabel = (s: { mode: Mode; workers: number; persistence: Persistence }) =>
  s.mode === "plain" ? "plain socket.io, 1 process" : `${s.mode}, WORKERS=${s.workers}${s.persistence === "embedded" ? ", stored" : ""}`;

/** The printed report: the per-part table of each workload, the connect costs, the bars. */
export function formatScaling(summary: ScalingSummary, context: { cores: string }): string {
  const lines: string[] = [];
  for (const workload of WORKLOADS) {
    const mine = summary.shapes.filter((s) => s.workload === workload);
    if (mine.length === 0) continue;
    const { clients, roomSize } = mine[0]!;
    lines.push(
      "",
      `${roomSize === 1 ? "Rooms of one member" : `Rooms of ${roomSize}`}: ${fmt(clients)} clients in ${fmt(clients / roomSize)} rooms; µs of CPU per broadcast by part, medians over the rounds;`,
      "×1w: the same part's figure ÷ its figure at WORKERS=1 in the same mode and run.",
    );
    const head = ["server", "bcast/s", "primary", "workers", "other", "redis", "all", "×1w prim", "×1w wrk", "×1w redis", "gen µs", "lost", "errors"];
    const widths = [28, 8, 8, 8, 6, 7, 8, 8, 8, 9, 7, 5, 6];
    const rows = [head];
    for (const s of mine) {
      const one = mine.find((o) => o.mode === s.mode && o.workers === 1 && o.persistence === s.persistence);
      const p = s.usPerBroadcast;
      const grow = (part: keyof PartCpu) => (s.mode === "plain" ? "" : times(ratioOf(p?.[part], one?.usPerBroadcast?.[part])));
      rows.push([
        shapeLabel(s),
        fmt(s.broadcastsPerSec),
        s.mode === "plain" ? "" : fmt(p?.primary, 1),
        s.mode === "plain" ? "" : fmt(p?.workers, 1),
        s.mode === "plain" ? "" : fmt(p?.other, 1),
        s.mode === "clustered" ? fmt(p?.redis, 1) : "",
        fmt(s.allUsPerBroadcast, 1),
        grow("primary"),
        grow("workers"),
        s.mode === "clustered" ? grow("redis") : "",
        fmt(s.generatorUsPerBroadcast, 1),
        String(s.lost),
        String(s.errors + s.hung + s.connectErrors + s.duplicated + s.misrouted),
      ]);
    }
    lines.push(...table(rows, widths));
    const plain = mine.find((s) => s.mode === "plain");
    if (plain?.allUsPerBroadcast) {
      const against = mine.filter((s) => s.mode !== "plain" && s.workers <= 2 && s.persistence === "off");
      lines.push(`  CPU per broadcast against the plain process (all parts): ${against.map((s) => `${shapeLabel(s)} ${times(ratioOf(s.allUsPerBroadcast, plain.allUsPerBroadcast))}`).join(", ")}`);
    }
  }
  const connects = summary.shapes.filter((s) => s.connectUs !== null);
  if (connects.length > 0) {
    lines.push("", "Connect cost: µs of server CPU per authenticated websocket connect (the plain process: no authentication), medians:");
    const plain = connects.find((s) => s.mode === "plain");
    const rows = [["server", "all", "primary", "workers", "other", "redis", "÷ plain"]];
    for (const s of connects) {
      rows.push([
        shapeLabel(s),
        fmt(s.allUsPerConnect, 0),
        s.mode === "plain" ? "" : fmt(s.connectUs?.primary, 0),
        s.mode === "plain" ? "" : fmt(s.connectUs?.workers, 0),
        s.mode === "plain" ? "" : fmt(s.connectUs?.other, 0),
        s.mode === "clustered" ? fmt(s.connectUs?.redis, 0) : "",
        s.mode === "plain" ? "" : times(ratioOf(s.allUsPerConnect, plain?.allUsPerConnect)),
      ]);
    }
    lines.push(...table(rows, [28, 7, 8, 8, 6, 6, 8]));
  }
  lines.push(
    "",
    `Each part's CPU is utime + stime from /proc/<pid>/stat over the measured window (10 ms ticks). This machine has ${context.cores}:`,
    "more workers than cores oversubscribe them, so CPU per broadcast is the measure here, not throughput (bcast/s is for reference).",
    "gen µs: the generator's own CPU per broadcast (this process, sharing the same cores).",
    ...(summary.shapes.some((s) => s.persistence === "embedded")
      ? [
          "stored: PERSISTENCE=embedded, every message written to the embedded store (other: the store process) and acked once on disk;",
          `  one client reads a page of 50 of a random room every 50 ms meanwhile (its CPU is in the figures): ${summary.shapes
            .filter((s) => s.history)
            .map((s) => `${shapeLabel(s)} ${s.history!.reads} pages, p50 ${fmt(s.history!.p50, 2)} ms, p99 ${fmt(s.history!.p99, 2)} ms`)
            .join("; ")}.`,
        ]
      : []),
    "",
    `Targets, medians of ${roundsText(summary.shapes)}:`,
  );
  for (const v of summary.verdicts) {
    const value = v.unit === "×" ? times(v.value) : v.unit === "µs" ? `${fmt(v.value, 0)} µs` : v.unit === "ms" ? `${fmt(v.value, 2)} ms` : fmt(v.value, 0);
    lines.push(`  ${v.measure.padEnd(70)} ${value.padStart(9)}   bar ${v.bar.padEnd(9)} ${v.pass ? "PASS" : "MISS"}${v.note ? `  (${v.note})` : ""}`);
  }
  if (summary.verdicts.length === 0) lines.push("  nothing to judge (a bar needs its shapes: 1 and more workers, the plain process)");
  else lines.push("", summary.pass ? "Every scaling bar holds." : "Some scaling bars are missed (MISS above).");
  return lines.join("\n");
}
