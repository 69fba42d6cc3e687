import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";

/** The workloads the tool knows (docs/loadtest.md describes each). */
export const SCENARIOS = [
  "fan-out",
  "chat",
  "connect-storm",
  "presence-churn",
  "recovery-storm",
  "persistence-throughput",
  "connections",
] as const;
export type Scenario = (typeof SCENARIOS)[number];

export const ENGINES = ["raw", "sio"] as const;
export type EngineName = (typeof ENGINES)[number];

/** websocket: websocket only; polling: HTTP long-polling only; upgrade: polling first, then websocket (the SDK's default). */
export const TRANSPORTS = ["websocket", "polling", "upgrade"] as const;
export type TransportName = (typeof TRANSPORTS)[number];

/** Publishers wait for the server's ack (`ack`) or, in one process, for every local subscriber to receive (`delivery`). */
export const WINDOW_MODES = ["ack", "delivery"] as const;
export type WindowMode = (typeof WINDOW_MODES)[number];

/** Every option, validated and frozen. Units are in the names or the comments. */
export interface LoadtestOptions {
  readonly url: string;
  /** Socket.IO path on the server. */
  readonly path: string;
  readonly scenario: Scenario;
  readonly engine: EngineName;
  readonly transport: TransportName;
  /**
   * Connections that subscribe (fan-out, recovery-storm, persistence-throughput), all members
   * (chat, presence-churn), connects in total (connect-storm), or the last level of the ramp
   * (connections).
   */
  readonly connections: number;
  /** connections: the open connections each stage holds, rising (others: `[connections]`). */
  readonly connectionLevels: readonly number[];
  readonly channels: number;
  readonly publishers: number;
  /**
   * One rate per stage, run one after another on the same connections (a ramp). Publishes/s in
   * total for the message scenarios, connects/s for connect-storm, presence operations/s for
   * presence-churn. `max`: no rate; every publisher keeps `inflight` messages outstanding.
   */
  readonly rates: readonly number[] | "max";
  readonly inflight: number;
  readonly windowBy: WindowMode;
  /** Measured seconds per stage. */
  readonly durationS: number;
  /** Seconds at the start of each stage not counted in its figures. */
  readonly warmupS: number;
  /** Longest wait, after publishing stops, for the last deliveries. */
  readonly drainS: number;
  /** Approximate size of each published content, in bytes of JSON. */
  readonly payloadBytes: number;
  /** Generator processes (the connections are split among them). */
  readonly procs: number;
  readonly apiKey: string | undefined;
  readonly token: string | undefined;
  /** Lifetime of minted tokens, in seconds. */
  readonly tokenTtlS: number;
  /** Connects per second while setting up (connect-storm uses `rates`). */
  readonly connectRate: number;
  /** Connects in progress at once. */
  readonly connectConcurrency: number;
  /** A connect that neither succeeds nor fails within this is counted as hung, in ms. */
  readonly connectTimeoutMs: number;
  /** Acks (subscribe, publish, presence) not answered within this count as errors, in ms. */
  readonly ackTimeoutMs: number;
  /** Publishers ask for an ack (needed for `max`; lets refusals be told from losses). */
  readonly ack: boolean;
  /** The objective of the scenario's main latency: the p99 a stage must hold to count as sustained, in ms. */
  readonly sloP99Ms: number;
  /** The objective of publish (and presence operation) acks where they are not the main latency, p99 in ms. */
  readonly sloAckP99Ms: number;
  /** The objective of connect latency where it is not the main latency, p99 in ms. */
  readonly sloConnectP99Ms: number;
  /** A stage whose server RSS (all its processes) passes this has reached the memory limit, bytes; undefined: only the host's memory is judged. */
  readonly maxRssBytes: number | undefined;
  /** recovery-storm: seconds between storms. */
  readonly stormEveryS: number;
  /** recovery-storm: share of the subscribers dropped by each storm (0..1]. */
  readonly dropFraction: number;
  /** Where the JSON and HTML results go. */
  readonly outDir: string;
  /** Base name of the result files (default: scenario and a timestamp). */
  readonly name: string | undefined;
  readonly html: boolean;
  /** The server's primary process; found from the URL's port when the server is on this host. */
  readonly serverPid: number | undefined;
  readonly serverStats: boolean;
  readonly progress: boolean;
}

const positiveInt = (max: number) => z.coerce.number().int().min(1).max(max);
const seconds = (min: number, max: number) => z.coerce.number().min(min).max(max);

/** A list of numbers, as a comma-separated string or a JSON array. */
const numberList = (max: number) =>
  z.union([
    z
      .string()
      .regex(/^\s*\d+(\.\d+)?(\s*,\s*\d+(\.\d+)?)+\s*$/, "a number or a comma-separated list of numbers")
      .transform((s) => s.split(",").map((part) => Number(part.trim()))),
    z.array(z.coerce.number().positive().max(max)).min(1).max(50),
  ]);

/** Accepts `100`, `100,200,400` (stages) or `max`. */
const rateSchema = z.union([
  z.literal("max"),
  z.coerce.number().positive().max(1_000_000).transform((n) => [n]),
  z
    .string()
    .regex(/^\s*\d+(\.\d+)?(\s*,\s*\d+(\.\d+)?)*\s*$/, "a number, a comma-separated list of numbers, or max")
    .transform((s) => s.split(",").map((part) => Number(part.trim()))),
  z.array(z.coerce.number().positive().max(1_000_000)).min(1).max(50),
]);

const bool = z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")]);

/**
 * Raw option values as keys of the config file (camelCase) and long flags (kebab-case).
 * The flags and the file keys are the same names: `--connect-rate` is `connectRate`.
 */
const rawSchema = z
  .object({
    url: z.string().url().default("http://127.0.0.1:8001"),
    path: z.string().startsWith("/").default("/socket.io/"),
    scenario: z.enum(SCENARIOS).default("fan-out"),
    engine: z.enum(ENGINES).default("raw"),
    transport: z.enum(TRANSPORTS).default("websocket"),
    connections: z.union([positiveInt(1_000_000).transform((n) => [n]), numberList(1_000_000)]).optional(),
    channels: positiveInt(1_000_000).optional(),
    publishers: positiveInt(100_000).optional(),
    rate: rateSchema.optional(),
    inflight: positiveInt(10_000).optional(),
    windowBy: z.enum(WINDOW_MODES).default("ack"),
    duration: seconds(0.1, 24 * 3600).default(30),
    warmup: seconds(0, 3600).optional(),
    drain: seconds(0, 600).default(5),
    payload: z.coerce.number().int().min(40).max(10_000_000).default(100),
    procs: positiveInt(256).default(1),
    apiKey: z.string().min(1).optional(),
    token: z.string().min(1).optional(),
    tokenTtl: seconds(10, 30 * 24 * 3600).default(3600),
    connectRate: z.coerce.number().positive().max(1_000_000).default(500),
    connectConcurrency: positiveInt(100_000).default(100),
    connectTimeout: z.coerce.number().int().min(100).max(600_000).default(10_000),
    ackTimeout: z.coerce.number().int().min(100).max(600_000).default(10_000),
    ack: bool.default(true),
    sloP99: z.coerce.number().positive().max(3_600_000).default(100),
    sloAckP99: z.coerce.number().positive().max(3_600_000).default(1000),
    sloConnectP99: z.coerce.number().positive().max(3_600_000).optional(),
    maxRss: z.coerce.number().positive().max(16 * 2 ** 20).optional(),
    stormEvery: seconds(0.5, 3600).default(5),
    dropFraction: z.coerce.number().gt(0).max(1).default(1),
    out: z.string().min(1).optional(),
    name: z.string().regex(/^[\w.-]+$/, "letters, digits, '.', '_' and '-' only").optional(),
    html: bool.default(true),
    serverPid: z.coerce.number().int().positive().optional(),
    serverStats: bool.default(true),
    progress: bool.default(true),
  })
  .strict();

type RawOptions = z.input<typeof rawSchema>;

/** A bad option; `option` names it as a flag. */
export class OptionsError extends Error {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`--${option}: ${message}`);
    this.name = "OptionsError";
  }
}

const kebab = (camel: string) => camel.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const camel = (flag: string) => flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

const FLAG_NAMES = Object.keys(rawSchema.shape).map(kebab);
/** Flags that take no value. */
const SWITCHES = ["html", "ack", "server-stats", "progress"];

/** connections: a single `--connections N` ramps in this many equal steps up to N. */
export const CONNECTION_STEPS = 4;

/** The levels of the connections scenario's ramp: the list as given, or N in equal steps. */
function levelsOf(given: readonly number[] | undefined): number[] {
  if (given && given.length > 1) return [...given];
  const top = given?.[0] ?? 2000;
  const levels: number[] = [];
  for (let step = 1; step <= CONNECTION_STEPS; step++) levels.push(Math.max(1, Math.round((top * step) / CONNECTION_STEPS)));
  return [...new Set(levels)];
}

/** Scenario-dependent defaults, applied where neither the file nor the flags set a value. */
function scenarioDefaults(scenario: Scenario, connections: number | undefined) {
  const common = { warmup: 2, inflight: 8, sloConnectP99: 1000 };
  switch (scenario) {
    case "fan-out":
      return { ...common, connections: 1000, channels: 1, publishers: 1, rates: [10] as number[] | "max" };
    case "chat": {
      const n = connections ?? 1000;
      const c = Math.max(1, Math.floor(n / 10));
      return { ...common, connections: n, channels: c, publishers: c, rates: [100] as number[] | "max" };
    }
    case "connect-storm":
      // The connects are the measure: none of them is warm-up.
      return { ...common, warmup: 0, connections: 1000, channels: 1, publishers: 1, rates: [200] as number[] | "max" };
    case "presence-churn":
      return { ...common, connections: 200, channels: 10, publishers: 1, rates: [100] as number[] | "max" };
    case "recovery-storm":
      return { ...common, connections: 200, channels: 1, publishers: 1, rates: [50] as number[] | "max" };
    case "persistence-throughput":
      // Acks wait for a batch (PERSISTENCE_BATCH_WAIT_MS): a deep window keeps the store busy.
      return { ...common, inflight: 64, connections: 10, channels: 4, publishers: 4, rates: "max" as number[] | "max" };
    case "connections": {
      // Rooms of 10 at the top level; 10 publishers at 1/s each keep a few rooms lightly active.
      // The warm-up after a level's connects is longer: the server is still busy with their
      // subscribes and its young generation when the connects themselves are done. A level's
      // connects come as a burst, whose latency says how fast the server opens connections
      // (connect-storm's question) more than how many it holds: judged loosely here.
      const n = connections ?? 2000;
      const c = Math.max(1, Math.floor(n / 10));
      return { ...common, warmup: 5, sloConnectP99: 5000, connections: n, channels: c, publishers: Math.min(10, c), rates: [10] as number[] | "max" };
    }
  }
}

/** The directory results go to unless --out says otherwise: `loadtest-results` in the project (where package.json is), whatever the current directory. */
export function defaultOutDir(from: string = __dirname): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "loadtest-results");
    if (dirname(dir) === dir) return resolve("loadtest-results"); // not inside a project: the current directory's
  }
}

/** Reads the JSON config file named by `--config`; its keys are the flags' camelCase names. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new OptionsError("config", `cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new OptionsError("config", `${path} is not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new OptionsError("config", `${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Splits argv into flag values (camelCase keys) and the config path, rejecting unknown flags. */
export function parseFlags(argv: readonly string[]): { flags: Record<string, string | boolean>; config?: string; help: boolean } {
  const options: Record<string, { type: "string" | "boolean" }> = { config: { type: "string" }, help: { type: "boolean" } };
  for (const name of FLAG_NAMES) options[name] = { type: SWITCHES.includes(name) ? "boolean" : "string" };
  // Switches: `--html` / `--no-html` and so on.
  for (const name of SWITCHES) options[`no-${name}`] = { type: "boolean" };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }) as {
      values: Record<string, string | boolean | undefined>;
    });
  } catch (err) {
    throw new OptionsError("flags", (err as Error).message);
  }
  const flags: Record<string, string | boolean> = {};
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined || key === "config" || key === "help") continue;
    if (key.startsWith("no-")) flags[camel(key.slice(3))] = false;
    else flags[camel(key)] = value;
  }
  return { flags, config: values.config as string | undefined, help: values.help === true };
}

/**
 * Builds the options: defaults < config file < flags < environment fallbacks for the key.
 * `env` supplies API_KEY when neither a key nor a token was given.
 */
export function resolveOptions(
  argv: readonly string[],
  env: Record<string, string | undefined> = {},
  readFile: (path: string) => Record<string, unknown> = readConfigFile,
): LoadtestOptions {
  const { flags, config } = parseFlags(argv);
  // Accept kebab-case keys too, so a file can be written with the flags' spelling.
  const fromFile = config ? Object.fromEntries(Object.entries(readFile(config)).map(([k, v]) => [camel(k), v])) : {};
  return buildOptions({ ...fromFile, ...flags } as RawOptions, env);
}

/** Validates merged raw values (file keys and flags) into frozen options. */
export function buildOptions(raw: RawOptions, env: Record<string, string | undefined> = {}): LoadtestOptions {
  const parsed = rawSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path.length > 0 ? kebab(String(issue.path[0])) : "config";
    if (issue.code === "unrecognized_keys") throw new OptionsError(kebab(String(issue.keys[0])), "unknown option");
    throw new OptionsError(key, issue.message);
  }
  const o = parsed.data;
  if (o.connections && o.connections.length > 1 && o.scenario !== "connections") {
    throw new OptionsError("connections", "a list of levels is for --scenario connections; the other scenarios take one number");
  }
  const levels = o.scenario === "connections" ? levelsOf(o.connections) : undefined;
  const connections = levels ? levels[levels.length - 1]! : o.connections?.[0];
  const defaults = scenarioDefaults(o.scenario, connections);
  const rates = o.rate ?? defaults.rates;
  const options: LoadtestOptions = {
    url: o.url.replace(/\/+$/, ""),
    path: o.path.endsWith("/") ? o.path : `${o.path}/`,
    scenario: o.scenario,
    engine: o.engine,
    transport: o.transport,
    connections: connections ?? defaults.connections,
    connectionLevels: levels ?? [connections ?? defaults.connections],
    channels: o.channels ?? defaults.channels,
    publishers: o.publishers ?? defaults.publishers,
    rates,
    inflight: o.inflight ?? defaults.inflight,
    windowBy: o.windowBy,
    durationS: o.duration,
    warmupS: o.warmup ?? defaults.warmup,
    drainS: o.drain,
    payloadBytes: o.payload,
    procs: o.procs,
    apiKey: o.apiKey ?? (o.token ? undefined : env.API_KEY || undefined),
    token: o.token,
    tokenTtlS: o.tokenTtl,
    connectRate: o.connectRate,
    connectConcurrency: o.connectConcurrency,
    connectTimeoutMs: o.connectTimeout,
    ackTimeoutMs: o.ackTimeout,
    ack: o.ack,
    sloP99Ms: o.sloP99,
    sloAckP99Ms: o.sloAckP99,
    sloConnectP99Ms: o.sloConnectP99 ?? defaults.sloConnectP99,
    maxRssBytes: o.maxRss === undefined ? undefined : Math.round(o.maxRss * 2 ** 20),
    stormEveryS: o.stormEvery,
    dropFraction: o.dropFraction,
    outDir: o.out ?? defaultOutDir(),
    name: o.name,
    html: o.html,
    serverPid: o.serverPid,
    serverStats: o.serverStats,
    progress: o.progress,
  };
  checkCombinations(options);
  return Object.freeze(options);
}

function checkCombinations(o: LoadtestOptions): void {
  const url = new URL(o.url);
  if (!["http:", "https:", "ws:", "wss:"].includes(url.protocol)) {
    throw new OptionsError("url", `unsupported protocol ${url.protocol} (use http, https, ws or wss)`);
  }
  if (o.engine === "raw" && o.transport !== "websocket") {
    throw new OptionsError("transport", "the raw engine speaks websocket only; use --engine sio for polling or upgrade");
  }
  if (o.rates === "max" && !o.ack && o.windowBy === "ack") {
    throw new OptionsError("rate", "max needs publisher acks (drop --no-ack) or --window-by delivery");
  }
  if (o.windowBy === "delivery" && o.procs !== 1) {
    throw new OptionsError("window-by", "delivery windows need every subscriber in one process (--procs 1)");
  }
  if (o.scenario === "persistence-throughput" && !o.ack) {
    throw new OptionsError("ack", "persistence-throughput measures the durable acks; it needs --ack");
  }
  if (o.scenario === "connect-storm" && o.rates === "max") {
    // Connect storms run at connectConcurrency when no rate is set: fine, nothing to check.
  }
  if (o.scenario === "chat" && o.publishers > o.connections) {
    throw new OptionsError("publishers", `chat publishers are members: at most --connections (${o.connections})`);
  }
  if ((o.scenario === "chat" || o.scenario === "presence-churn") && o.channels > o.connections) {
    throw new OptionsError("channels", `at most one channel per connection (${o.connections})`);
  }
  if (o.scenario === "connections") {
    if (o.rates === "max" || o.rates.length > 1) {
      throw new OptionsError("rate", "the connections scenario ramps connections (--connections 1000,2000,4000); --rate is its one steady publish rate");
    }
    if (o.connectionLevels.some((level) => !Number.isInteger(level) || level > 1_000_000)) {
      throw new OptionsError("connections", "levels are whole numbers of connections, at most 1,000,000");
    }
    if (o.connectionLevels.some((level, i) => i > 0 && level <= o.connectionLevels[i - 1]!)) {
      throw new OptionsError("connections", "the levels must rise (1000,2000,4000)");
    }
  }
  if (o.procs > o.connections + o.publishers) {
    throw new OptionsError("procs", "more generator processes than connections");
  }
  const stages = stageRates(o).length;
  const total = stages * (o.durationS + o.warmupS);
  if (total > 24 * 3600) throw new OptionsError("duration", "the stages add up to more than 24 hours");
}

/** The options as they go into the result file: secrets out. */
export function redactedOptions(o: LoadtestOptions): Record<string, unknown> {
  return { ...o, apiKey: o.apiKey ? "(set)" : undefined, token: o.token ? "(set)" : undefined };
}

/** The rate of each stage the options describe (connections: the one rate at every level). */
export function stageRates(o: Pick<LoadtestOptions, "scenario" | "rates" | "connectionLevels">): Array<number | "max"> {
  if (o.scenario === "connections") return o.connectionLevels.map(() => (o.rates === "max" ? "max" : o.rates[0]!));
  return o.rates === "max" ? ["max"] : [...o.rates];
}

export const USAGE = `Usage: npm run loadtest -- [--config file.json] [flags]

Targets only the URL given (default http://127.0.0.1:8001). Every run stops by itself;
Ctrl-C stops early and still prints and writes what was measured.

  --url URL                 server URL (http, https, ws or wss)            [http://127.0.0.1:8001]
  --scenario NAME           fan-out | chat | connect-storm | presence-churn |
                            recovery-storm | persistence-throughput |
                            connections                                      [fan-out]
  --engine raw|sio          raw: Engine.IO/Socket.IO framing over ws (cheap);
                            sio: socket.io-client (realistic, ~1 core per 100k msgs/s)   [raw]
  --transport T             websocket | polling | upgrade (polling and upgrade need sio) [websocket]
  --connections N           subscribers / members / connects in the storm  [per scenario]
                            connections: the levels of the ramp, 1000,2000,4000, or N
                            for ${CONNECTION_STEPS} equal steps up to N                       [2000]
  --channels C              channels (or presence sets)                    [per scenario]
  --publishers P            publishing connections                         [per scenario]
  --rate R                  per second in total: publishes (connects for connect-storm,
                            presence ops for presence-churn); 100,200,400 runs a ramp of
                            stages; max keeps --inflight messages outstanding per publisher
                            (connections: one steady publish rate, default 10)
  --inflight W              outstanding messages per publisher with --rate max
                            [8; 64 for persistence-throughput]
  --window-by ack|delivery  what completes a message with --rate max              [ack]
  --duration S              measured seconds per stage                               [30]
  --warmup S                unmeasured seconds at the start of each stage
                            [2; 0 for connect-storm, 5 for connections]
  --drain S                 longest wait for the last deliveries after publishing     [5]
  --payload B               bytes of JSON per published content                     [100]
  --procs K                 generator processes                                       [1]
  --api-key KEY             mint HS256 tokens with this key (default: $API_KEY)
  --token JWT               use this token for every connection instead
  --token-ttl S             lifetime of minted tokens                              [3600]
  --connect-rate R          connects/s while setting up                             [500]
  --connect-concurrency N   connects in progress at once                            [100]
  --connect-timeout MS      a connect with no answer by then is hung              [10000]
  --ack-timeout MS          an ack with no answer by then counts against the ack
                            limit                                          [10000]
  --no-ack                  publish without asking for acks
  --slo-p99 MS              objective of the scenario's main latency (delivery; ack for
                            persistence-throughput, connect for connect-storm), p99 [100]
  --slo-ack-p99 MS          objective of publish acks where they are not the main  [1000]
  --slo-connect-p99 MS      objective of connects where they are not the main
                            [1000; 5000 for connections]
  --max-rss MIB             a stage past this server RSS reached the memory limit
                            (the host below 10% memory available always does)
  --storm-every S           recovery-storm: seconds between storms                    [5]
  --drop-fraction F         recovery-storm: share of subscribers dropped per storm    [1]
  --out DIR                 result directory       [loadtest-results in the project]
  --name NAME               result file base name          [<scenario>-<timestamp>]
  --no-html                 skip the HTML report
  --server-pid PID          server primary pid (default: found from the port, local only)
  --no-server-stats         do not read the server's CPU and memory
  --no-progress             no live progress line
`;
