import { parseArgs } from "node:util";
import { TARGETS, type TargetName } from "./targets.js";

/**
 * `npm run bench` flags. Two suites share the command: `main` (the bar against plain
 * socket.io) and `scaling` (CPU per broadcast by part as workers are added, many
 * small rooms). Each suite has its own flags; a flag of the other suite is refused, not ignored.
 */

export const SUITES = ["main", "scaling", "metrics"] as const;
export type Suite = (typeof SUITES)[number];

export interface MainArgs {
  suite: "main";
  runs: number;
  connections: number;
  memoryConnections: number;
  latencySubscribers: number;
  durationS: number;
  targets: TargetName[];
  cpuProf: string | undefined;
  out: string;
}

export const SCALING_MODES = ["embedded", "clustered"] as const;
export type ScalingMode = (typeof SCALING_MODES)[number];
/** History storage of the rooms-of-5 measurements: none, or the default embedded store. */
export const SCALING_PERSISTENCE = ["off", "embedded"] as const;
export type ScalingPersistence = (typeof SCALING_PERSISTENCE)[number];

export interface ScalingArgs {
  suite: "scaling";
  runs: number;
  /** Worker counts of the rooms-of-one table (1 first: the ratios are to it). */
  workers: number[];
  modes: ScalingMode[];
  /** Rooms of one member: clients (= rooms). */
  clients: number;
  inflight: number;
  /** Rooms of 5: clients (a multiple of 5; 0 skips the workload) and the worker counts it runs at. */
  room5Clients: number;
  room5Workers: number[];
  /** Rooms of 5 with PERSISTENCE=off and/or the embedded store (every message stored for history). */
  room5Persistence: ScalingPersistence[];
  /** Connects/s of every connect phase (the measured one of rooms of 5 included). */
  connectRate: number;
  warmupS: number;
  durationS: number;
  out: string;
}

/** `--suite metrics`: fan-out and latency with GET /metrics scraped every few seconds, against none. */
export interface MetricsArgs {
  suite: "metrics";
  runs: number;
  connections: number;
  latencySubscribers: number;
  durationS: number;
  scrapeEveryS: number;
  targets: Array<"embedded-w2" | "clustered-w2">;
  out: string;
}

export type BenchArgs =
  | { suite: Suite; help: true }
  | (MainArgs & { help: false })
  | (ScalingArgs & { help: false })
  | (MetricsArgs & { help: false });

export class BenchArgsError extends Error {
  override name = "BenchArgsError";
}

const MAIN_FLAGS = ["connections", "memory-connections", "latency-subscribers", "targets", "cpu-prof"] as const;
const SCALING_FLAGS = ["workers", "modes", "clients", "inflight", "room5-clients", "room5-workers", "room5-persistence", "connect-rate", "warmup"] as const;
const METRICS_FLAGS = ["scrape-every"] as const;
/** Flags of each suite beyond --runs, --duration and --out (the metrics suite shares some of main's). */
const SUITE_FLAGS: Record<Suite, readonly string[]> = {
  main: MAIN_FLAGS,
  scaling: SCALING_FLAGS,
  metrics: ["connections", "latency-subscribers", "targets", ...METRICS_FLAGS],
};

function int(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new BenchArgsError(`--${name} must be an integer from ${min} to ${max} (got ${raw})`);
  return n;
}

function seconds(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new BenchArgsError(`--${name} must be seconds from ${min} to ${max} (got ${raw})`);
  return n;
}

/** A comma-separated list of worker counts: distinct, ascending, 1 to 64. */
export function workerList(name: string, raw: string): number[] {
  const list = raw.split(",").map((part) => int(name, part.trim(), 1, 64));
  const sorted = [...new Set(list)].sort((a, b) => a - b);
  if (sorted.length !== list.length) throw new BenchArgsError(`--${name} lists a worker count twice (${raw})`);
  return sorted;
}

/** Parses the bench's argv (after `--`); throws BenchArgsError with a one-line message. */
export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        suite: { type: "string", default: "main" },
        runs: { type: "string" },
        duration: { type: "string" },
        out: { type: "string", default: "loadtest-results" },
        help: { type: "boolean", short: "h", default: false },
        ...Object.fromEntries(MAIN_FLAGS.map((f) => [f, { type: "string" as const }])),
        ...Object.fromEntries(SCALING_FLAGS.map((f) => [f, { type: "string" as const }])),
        ...Object.fromEntries(METRICS_FLAGS.map((f) => [f, { type: "string" as const }])),
      },
    }));
  } catch (err) {
    throw new BenchArgsError((err as Error).message);
  }
  const suite = SUITES.find((name) => name === values.suite);
  if (!suite) throw new BenchArgsError(`--suite must be one of ${SUITES.join(", ")} (got ${String(values.suite)})`);
  if (values.help === true) return { suite, help: true };
  const str = (name: string): string | undefined => values[name] as string | undefined;
  const foreign = [...MAIN_FLAGS, ...SCALING_FLAGS, ...METRICS_FLAGS].find((f) => str(f) !== undefined && !SUITE_FLAGS[suite].includes(f));
  if (foreign) throw new BenchArgsError(`--${foreign} is not a flag of --suite ${suite}`);
  const out = str("out")!;
  const runs = int("runs", str("runs") ?? "3", 1, 100);

  if (suite === "main") {
    const targets = (str("targets") ?? TARGETS.join(",")).split(",").map((t) => t.trim());
    for (const t of targets) if (!(TARGETS as readonly string[]).includes(t)) throw new BenchArgsError(`--targets: unknown target ${t} (known: ${TARGETS.join(", ")})`);
    return {
      suite,
      help: false,
      runs,
      connections: int("connections", str("connections") ?? "1000", 1, 1_000_000),
      memoryConnections: int("memory-connections", str("memory-connections") ?? "10000", 1, 1_000_000),
      latencySubscribers: int("latency-subscribers", str("latency-subscribers") ?? "500", 1, 1_000_000),
      durationS: int("duration", str("duration") ?? "8", 1, 3600),
      targets: targets as TargetName[],
      cpuProf: str("cpu-prof"),
      out,
    };
  }
  if (suite === "metrics") {
    const known = ["embedded-w2", "clustered-w2"];
    const targets = (str("targets") ?? known.join(",")).split(",").map((t) => t.trim());
    for (const t of targets) if (!known.includes(t)) throw new BenchArgsError(`--targets: --suite metrics runs ${known.join(", ")} (got ${t})`);
    return {
      suite,
      help: false,
      runs,
      connections: int("connections", str("connections") ?? "1000", 1, 1_000_000),
      latencySubscribers: int("latency-subscribers", str("latency-subscribers") ?? "500", 1, 1_000_000),
      durationS: int("duration", str("duration") ?? "8", 1, 3600),
      scrapeEveryS: seconds("scrape-every", str("scrape-every") ?? "1", 0.1, 60),
      targets: [...new Set(targets)] as MetricsArgs["targets"],
      out,
    };
  }
  const workers = workerList("workers", str("workers") ?? "1,2,4,8");
  const room5Workers = workerList("room5-workers", str("room5-workers") ?? "1,2");
  if (workers[0] !== 1) throw new BenchArgsError("--workers must include 1: the ratios are to one worker");
  const modes = (str("modes") ?? SCALING_MODES.join(",")).split(",").map((m) => m.trim());
  for (const m of modes) if (!(SCALING_MODES as readonly string[]).includes(m)) throw new BenchArgsError(`--modes: unknown mode ${m} (known: ${SCALING_MODES.join(", ")})`);
  const room5Persistence = (str("room5-persistence") ?? "off").split(",").map((m) => m.trim());
  for (const m of room5Persistence) {
    if (!(SCALING_PERSISTENCE as readonly string[]).includes(m)) throw new BenchArgsError(`--room5-persistence: unknown value ${m} (known: ${SCALING_PERSISTENCE.join(", ")})`);
  }
  const room5Clients = int("room5-clients", str("room5-clients") ?? "2000", 0, 100_000);
  if (room5Clients % 5 !== 0) throw new BenchArgsError(`--room5-clients must be a multiple of 5 (got ${room5Clients})`);
  return {
    suite,
    help: false,
    runs,
    workers,
    modes: [...new Set(modes)] as ScalingMode[],
    clients: int("clients", str("clients") ?? "256", 1, 100_000),
    inflight: int("inflight", str("inflight") ?? "32", 1, 10_000),
    room5Clients,
    room5Workers,
    room5Persistence: SCALING_PERSISTENCE.filter((m) => room5Persistence.includes(m)),
    connectRate: int("connect-rate", str("connect-rate") ?? "400", 1, 100_000),
    warmupS: seconds("warmup", str("warmup") ?? "2", 0, 600),
    durationS: seconds("duration", str("duration") ?? "6", 0.5, 3600),
    out,
  };
}

export function usage(targets: readonly string[]): string {
  return `Usage: npm run bench [-- flags]

--suite main (the default): the bar against plain socket.io. Each target started fresh per round, then memory,
fan-out and latency tests with the raw engine; prints every run, the medians and the ratios
against the baseline with the bar (docs/benchmarks.md).

  --runs N                  rounds; targets alternate their order each round      [3]
  --memory-connections N    idle subscribed connections of the memory test        [10000]
  --connections N           subscribers of the fan-out test                       [1000]
  --latency-subscribers N   subscribers of the latency test                       [500]
  --duration S              measured seconds of the fan-out test (latency: 0.6×)  [8]
  --targets LIST            of ${targets.join(", ")}   [all]
  --cpu-prof DIR            V8 CPU profiles of the server processes into DIR
  --out DIR                 result directory                                      [loadtest-results]

--suite scaling: many small rooms. The product with PERSISTENCE=off (rooms of 5: also with the
embedded store, --room5-persistence), started fresh for
every measurement, in embedded mode and clustered over a private redis-server, and the plain
socket.io process (scripts/bench/baseline-server.ts). Clients alone in their room (rooms of
one member) or in rooms of 5; random clients publish to random rooms, a fixed number of
broadcasts in flight, each done when every member of its room has it. Prints µs of CPU per
broadcast of the primary, of all workers together and of redis-server (from /proc/<pid>/stat
over the measured window), each part's ratio to one worker, the product against the plain
process, the CPU per connect (the rooms of 5's connect phase), and the bars with PASS/MISS.
This machine's cores are shared by the server's processes and the generator: with more
workers than cores, CPU per broadcast is the measure, not throughput. About 11 minutes at
the defaults on 2 cores; it stops by itself (a deadline of 30 s per measurement, 10 min at
least) and reports what it has.

  --runs N                  rounds; the measurements alternate their order each round  [3]
  --workers LIST            worker counts of rooms of one member (must include 1)     [1,2,4,8]
  --modes LIST              product modes: embedded, clustered                         [both]
  --clients N               rooms of one member: clients, each in its own room         [256]
  --inflight N              broadcasts in flight (window by delivery)                  [32]
  --room5-clients N         rooms of 5: clients (multiple of 5; 0 skips it)            [2000]
  --room5-workers LIST      rooms of 5: worker counts                                  [1,2]
  --room5-persistence LIST  rooms of 5: off and/or embedded (every message stored, the   [off]
                            default store); with both, prints stored ÷ off per message
  --connect-rate R          connects/s of each connect phase (fixed)                   [400]
  --warmup S                unmeasured seconds of broadcasts before the window         [2]
  --duration S              measured seconds of broadcasts                             [6]
  --out DIR                 result directory                                           [loadtest-results]

--suite metrics: what scraping GET /metrics costs delivery. Each round starts the product fresh
twice per target, once scraped every --scrape-every seconds and once not (the order alternates
round by round), and runs main's fan-out and latency tests; prints the medians and the ratios
scraped ÷ not scraped.

  --runs N                  rounds                                                     [3]
  --connections N           subscribers of the fan-out test                            [1000]
  --latency-subscribers N   subscribers of the latency test                            [500]
  --duration S              measured seconds of the fan-out test (latency: 0.6×)       [8]
  --scrape-every S          seconds between scrapes                                    [1]
  --targets LIST            of embedded-w2, clustered-w2                               [both]
  --out DIR                 result directory                                           [loadtest-results]
`;
}
