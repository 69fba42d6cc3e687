/**
 * Recovery storm: drop 1,000 connected clients at once and measure how many
 * come back with their session recovered, how long until all are back, whether any broadcast was
 * lost, duplicated or delivered out of order, and what the primary, the workers and Redis spend
 * on CPU meanwhile.
 *
 * For each mode (embedded, then clustered against a `redis-server` this script starts) and each
 * variant it boots the compiled server (dist/src/primary/main.js) fresh, as a child process:
 *  - "drop": every client's transport is closed at once (`socket.io.engine.close()`, a transport
 *    close that Socket.IO recovers); the clients reconnect with a randomised delay, as real ones do.
 *  - "kill": one worker (not the publisher's) is SIGKILLed; its clients reconnect to the survivor.
 * A publisher client sends numbered messages at a steady rate over a few channels the whole time;
 * each client checks what it received against what the server acknowledged to the publisher.
 *
 * The clients live in `--client-procs` forked copies of this script (role "clients", reporting
 * over IPC): 1,000 socket.io-client sockets fed 50k messages/s are too much for one event loop to
 * also time reconnects fairly (see docs/recovery-storm.md for the measurement).
 *
 * CPU is read from /proc/<pid>/stat (utime+stime, in clock ticks) at the start and end of two
 * windows: a steady-state baseline of `--baseline-ms` just before the storm, and the storm itself
 * (from the drop/kill until the last affected client is back).
 *
 * Every storm is bounded (--storm-timeout, 60 s): one that does not complete ends and reports
 * what it has. Every process started here (server, redis-server, client processes) is stopped on
 * success, error and Ctrl-C. Evidence for any failure (who lost a message, had it twice or out of
 * order, when, the server's log lines, Redis command statistics) goes to the JSON file.
 *
 * Usage: npm run bench:recovery [-- options]
 *   --clients 1000          clients dropped at once
 *   --mode both             embedded | clustered | both
 *   --variant both          drop | kill | both
 *   --publish-rate 200      messages/s over all channels (each client gets rate/channels)
 *   --channels 4
 *   --persistence off       off | on (PERSISTENCE=embedded: the embedded store)
 *   --runs 1                repetitions; tables show medians
 *   --client-procs 2        processes the clients are spread over
 *   --quiet-wait 0          seconds to wait before each storm for the machine to go quiet
 *   --out recovery-storm.json
 * and --workers, --connect-concurrency, --reconnect-delay, --reconnect-jitter,
 * --reconnect-delay-max, --connect-timeout, --storm-timeout, --baseline-ms, --tail-ms, --quiet-below.
 */
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { io as ioClient, type Socket } from "socket.io-client";
import * as flags from "../harness/args.js";
import { LogTail } from "../harness/lines.js";
import { Processes, type Owned } from "../harness/processes.js";
import { childrenOf, clusterIdOf, cmdlineOf, machineLoad, machineTicks, readStat, ticksPerSecond } from "../harness/procfs.js";
import { spawnRedis } from "../harness/redis.js";
import { spawnServer } from "../harness/server.js";
import { medianOrNull, percentile } from "../harness/stats.js";
import { workerOf as workerOfSocket } from "../harness/sockets.js";
import { mintToken } from "../harness/token.js";
import { sleep } from "../harness/wait.js";
import { WELCOME_EVENT } from "../src/shared/contract.js";
import { messageEvent } from "../src/worker/rooms.js";

// ---------------------------------------------------------------------------------------------
// Options

const { values: args } = parseArgs({
  options: {
    role: { type: "string", default: "orchestrator" }, // "clients": a forked client process
    clients: { type: "string", default: "1000" },
    mode: { type: "string", default: "both" }, // embedded | clustered | both
    variant: { type: "string", default: "both" }, // drop | kill | both
    "publish-rate": { type: "string", default: "200" }, // messages/s over all channels
    channels: { type: "string", default: "4" },
    persistence: { type: "string", default: "off" }, // off | on (the embedded store)
    runs: { type: "string", default: "1" },
    "client-procs": { type: "string", default: "2" },
    workers: { type: "string", default: "2" },
    "connect-concurrency": { type: "string", default: "50" },
    "reconnect-delay": { type: "string", default: "300" }, // ms; first retry lands in delay·(1 ± jitter)
    "reconnect-jitter": { type: "string", default: "0.66" },
    "reconnect-delay-max": { type: "string", default: "2000" },
    "connect-timeout": { type: "string", default: "20000" }, // socket.io-client's default
    "storm-timeout": { type: "string", default: "60000" },
    "baseline-ms": { type: "string", default: "3000" },
    "tail-ms": { type: "string", default: "2000" },
    out: { type: "string", default: "recovery-storm.json" },
    // Before each storm, wait up to this many seconds for the machine to be quiet (others' load
    // under --quiet-below % of one core): on a shared machine other work distorts every figure.
    "quiet-wait": { type: "string", default: "0" },
    "quiet-below": { type: "string", default: "30" },
  },
});

const intArg = (name: keyof typeof args, min: number): number => flags.intArg(name, String(args[name]), min);
const oneOf = <T extends string>(name: keyof typeof args, allowed: readonly T[]): T => flags.oneOf(name, String(args[name]), allowed);

type Mode = "embedded" | "clustered";
type Variant = "drop" | "kill";

// ---------------------------------------------------------------------------------------------
// Clocks and /proc

/** Milliseconds since the epoch with sub-ms resolution, comparable across this machine's processes. */
const now = (): number => performance.timeOrigin + performance.now();
const CLK_TCK = ticksPerSecond();

type CpuRole = "primary" | "workers" | "store" | "redis" | "clientProcs" | "orchestrator";
type CpuSnapshot = { at: number; ticks: Map<number, { role: CpuRole; ticks: number }>; machine: MachineTicks };

type MachineTicks = ReturnType<typeof machineTicks>;

const round = (n: number | null | undefined, digits = 1): number | null =>
  n === null || n === undefined || !Number.isFinite(n) ? null : Math.round(n * 10 ** digits) / 10 ** digits;

// ---------------------------------------------------------------------------------------------
// IPC between the orchestrator and its client processes (tagged, like the server's own IPC)

const TAG = "recovery-storm";

interface ConnectSpec {
  url: string;
  token: string;
  indices: number[];
  channels: string[];
  concurrency: number;
  reconnectDelay: number;
  reconnectDelayMax: number;
  reconnectJitter: number;
  connectTimeout: number;
}

type ToClients =
  | { tag: typeof TAG; type: "connect"; spec: ConnectSpec }
  | { tag: typeof TAG; type: "drop" }
  | { tag: typeof TAG; type: "mark"; victimWorker: number }
  | { tag: typeof TAG; type: "expect"; acked: Record<string, number[]>; drainMs: number }
  | { tag: typeof TAG; type: "close" };

interface ClientRecord {
  index: number;
  channel: string;
  affected: boolean;
  workerBefore: number | null;
  workerAfter: number | null;
  droppedAt: number | null;
  backAt: number | null;
  recovered: boolean | null;
  sameId: boolean | null;
  disconnects: number;
  connectErrors: number;
  resubscribed: boolean;
  received: number;
  missing: number;
  duplicates: number;
  reordered: number;
  unacked: number;
  /** The first few duplicated, out-of-order and missing sequence numbers, for evidence. */
  duplicateDetail: DuplicateDetail[];
  reorderDetail: ReorderDetail[];
  missingSeqs: number[];
  /** Messages received before the client came back (its position in the stream at reconnect). */
  receivedBeforeBack: number | null;
  /** Reconnection attempts after the storm's start. */
  attempts: number;
  /** The first few connection errors after the storm's start: when (epoch ms) and why. */
  errors: Array<{ at: number; message: string }>;
  /** Where a client that is not connected at the end is stuck. */
  stateAtEnd: string;
  /** What happened to it after the storm's start (first few events): epoch ms and what. */
  events: Array<{ at: number; what: string }>;
}

/** One duplicated message: where in the client's stream both copies arrived. */
interface DuplicateDetail {
  n: number;
  firstIndex: number;
  secondIndex: number;
}

/** One message that arrived after a later one of its channel: where, and the highest before it. */
interface ReorderDetail {
  n: number;
  index: number;
  after: number;
}

/** Most sequence numbers kept per client in the evidence lists. */
const DETAIL_MAX = 10;

interface Progress {
  affected: number;
  back: number;
  recovered: number;
}

type FromClients =
  | { tag: typeof TAG; type: "connected"; ready: number; failed: number; failures: Record<string, number> }
  | { tag: typeof TAG; type: "dropped"; firstAt: number; lastAt: number; affected: number }
  | { tag: typeof TAG; type: "marked"; affected: number }
  | ({ tag: typeof TAG; type: "progress" } & Progress)
  | {
      tag: typeof TAG;
      type: "report";
      records: ClientRecord[];
      /** This process's event-loop delay from the storm's start to the report, in ms. */
      loopDelayMs: { p50: number; p99: number; max: number };
      disconnectReasons: Record<string, number>;
      connectErrors: Record<string, number>;
    };

function isFromClients(m: unknown): m is FromClients {
  return typeof m === "object" && m !== null && (m as { tag?: unknown }).tag === TAG;
}

const tally = (map: Record<string, number>, key: string) => void (map[key] = (map[key] ?? 0) + 1);

// ---------------------------------------------------------------------------------------------
// Role "clients": a share of the fleet in one process

interface Client {
  index: number;
  channel: string;
  socket: Socket;
  welcomed: boolean;
  subscribed: boolean;
  got: number[];
  maxGot: number;
  marked: boolean;
  affected: boolean;
  idBefore: string | undefined;
  workerBefore: number | null;
  droppedAt: number | null;
  backAt: number | null;
  receivedBeforeBack: number | null;
  recovered: boolean | null;
  sameId: boolean | null;
  disconnects: number;
  connectErrors: number;
  attempts: number;
  errors: Array<{ at: number; message: string }>;
  events: Array<{ at: number; what: string }>;
  resubscribed: boolean;
}

/** Most events kept per client after the storm's start. */
const EVENTS_MAX = 16;

function note(c: Client, what: string): void {
  if (c.marked && c.events.length < EVENTS_MAX) c.events.push({ at: now(), what });
}

/** Where a socket stands: the Socket.IO socket, its manager and its Engine.IO connection. */
function stateOf(socket: Socket): string {
  if (socket.connected) return "connected";
  const manager = socket.io as unknown as { _readyState?: string; _reconnecting?: boolean; engine?: { readyState?: string } };
  return (
    `socket not connected (active ${socket.active}); manager ${manager._readyState ?? "?"}` +
    `${manager._reconnecting ? " reconnecting" : ""}; engine ${manager.engine?.readyState ?? "none"}`
  );
}

function workerOf(socket: Socket): number | null {
  const n = workerOfSocket(socket);
  return Number.isInteger(n) ? n : null;
}

function runClientsRole(): void {
  const send = (m: FromClients) => {
    if (process.connected) process.send?.(m);
  };
  const clients: Client[] = [];
  const disconnectReasons: Record<string, number> = {};
  const connectErrorReasons: Record<string, number> = {};
  let progressTimer: NodeJS.Timeout | undefined;
  // A generator whose own event loop lags would time reconnects late: measured, and reported.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();

  const progress = (): Progress => {
    let affected = 0;
    let back = 0;
    let recovered = 0;
    for (const c of clients) {
      if (!c.affected) continue;
      affected++;
      if (c.backAt !== null) back++;
      if (c.recovered) recovered++;
    }
    return { affected, back, recovered };
  };
  const scheduleProgress = () => {
    if (progressTimer) return;
    progressTimer = setTimeout(() => {
      progressTimer = undefined;
      send({ tag: TAG, type: "progress", ...progress() });
    }, 20);
  };

  const subscribe = (c: Client, then: (ok: boolean) => void) => {
    c.socket.timeout(10_000).emit("channel:subscribe", c.channel, (err: Error | null, res: { success?: boolean } | undefined) => {
      then(!err && res?.success === true);
    });
  };

  function create(index: number, spec: ConnectSpec): Client {
    const channel = spec.channels[index % spec.channels.length]!;
    const socket = ioClient(spec.url, {
      transports: ["websocket"],
      forceNew: true,
      autoConnect: false,
      reconnection: true,
      reconnectionDelay: spec.reconnectDelay,
      reconnectionDelayMax: spec.reconnectDelayMax,
      randomizationFactor: spec.reconnectJitter,
      timeout: spec.connectTimeout,
      auth: { token: spec.token },
    });
    const c: Client = {
      index,
      channel,
      socket,
      welcomed: false,
      subscribed: false,
      got: [],
      maxGot: 0,
      marked: false,
      affected: false,
      idBefore: undefined,
      workerBefore: null,
      droppedAt: null,
      backAt: null,
      receivedBeforeBack: null,
      recovered: null,
      sameId: null,
      disconnects: 0,
      connectErrors: 0,
      attempts: 0,
      errors: [],
      events: [],
      resubscribed: false,
    };
    socket.on(WELCOME_EVENT, () => void (c.welcomed = true));
    socket.on(messageEvent(channel), (message: { content?: { n?: unknown } }) => {
      const n = message?.content?.n;
      if (typeof n !== "number") return;
      c.got.push(n);
      if (n > c.maxGot) c.maxGot = n;
    });
    socket.on("disconnect", (reason: string) => {
      if (!c.marked) return;
      note(c, `disconnect: ${reason}`);
      c.disconnects++;
      tally(disconnectReasons, reason);
      c.droppedAt ??= now();
    });
    socket.on("connect_error", (err: Error) => {
      c.connectErrors++;
      tally(connectErrorReasons, err.message);
      if (c.marked && c.errors.length < DETAIL_MAX) c.errors.push({ at: now(), message: err.message });
      note(c, `connect_error: ${err.message}`);
    });
    socket.io.on("reconnect_attempt", () => {
      if (c.marked) c.attempts++;
      note(c, "reconnect attempt");
    });
    // The Engine.IO connection is open; the Socket.IO CONNECT (carrying pid and offset) goes next.
    socket.io.on("open", () => note(c, `engine open (worker ${workerOf(socket) ?? "?"})`));
    socket.on("connect", () => {
      note(c, `connect (recovered ${socket.recovered})`);
      // The initial connect is handled by connectOne; after it, a session that was not recovered
      // lost its rooms: subscribe again, as an app would.
      if (c.subscribed && !socket.recovered) subscribe(c, (ok) => void (c.resubscribed = ok));
      if (!c.marked || c.backAt !== null) return;
      c.backAt = now();
      c.receivedBeforeBack = c.got.length;
      c.recovered = socket.recovered;
      c.sameId = socket.id === c.idBefore;
      scheduleProgress();
    });
    return c;
  }

  /** Resolves once the client is connected, welcomed (it holds a recovery offset) and subscribed. */
  function connectOne(c: Client, timeoutMs: number): Promise<string | undefined> {
    return new Promise((done) => {
      const timer = setTimeout(() => finish(c.socket.connected ? "subscribe/welcome timeout" : "connect timeout"), timeoutMs);
      let finished = false;
      const finish = (failure: string | undefined) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        c.socket.off("connect", onConnect);
        c.socket.off(WELCOME_EVENT, check);
        done(failure);
      };
      const check = () => {
        if (c.welcomed && c.subscribed) finish(undefined);
      };
      const onConnect = () => {
        subscribe(c, (ok) => {
          if (!ok) return finish("subscribe refused");
          c.subscribed = true;
          check();
        });
      };
      c.socket.on("connect", onConnect);
      c.socket.on(WELCOME_EVENT, check);
      c.socket.connect();
    });
  }

  async function connectAll(spec: ConnectSpec): Promise<void> {
    for (const index of spec.indices) clients.push(create(index, spec));
    const failures: Record<string, number> = {};
    let next = 0;
    let ready = 0;
    const lane = async () => {
      while (next < clients.length) {
        const c = clients[next++]!;
        const failure = await connectOne(c, spec.connectTimeout + 10_000);
        if (failure) tally(failures, failure);
        else ready++;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, spec.concurrency) }, lane));
    send({ tag: TAG, type: "connected", ready, failed: clients.length - ready, failures });
  }

  function markAll(victimWorker: number | null): number {
    loopDelay.reset();
    let affected = 0;
    for (const c of clients) {
      if (!c.socket.connected) continue; // never connected: not part of the storm
      c.marked = true;
      c.idBefore = c.socket.id;
      c.workerBefore = workerOf(c.socket);
      c.affected = victimWorker === null || c.workerBefore === victimWorker;
      if (c.affected) affected++;
    }
    return affected;
  }

  function drop(): void {
    const affected = markAll(null);
    const firstAt = now();
    for (const c of clients) {
      if (!c.marked) continue;
      c.droppedAt = now();
      // A transport close (what a network blip looks like to the server): Socket.IO recovers it.
      c.socket.io.engine.close();
    }
    send({ tag: TAG, type: "dropped", firstAt, lastAt: now(), affected });
  }

  async function expect(acked: Record<string, number[]>, drainMs: number): Promise<void> {
    // Wait (bounded) until every connected client has the last acknowledged message of its channel.
    const last: Record<string, number> = {};
    for (const [channel, seqs] of Object.entries(acked)) last[channel] = seqs.length ? Math.max(...seqs) : 0;
    const deadline = now() + drainMs;
    while (now() < deadline && clients.some((c) => c.socket.connected && c.maxGot < (last[c.channel] ?? 0))) await sleep(50);
    const ackedSets = new Map(Object.entries(acked).map(([ch, seqs]) => [ch, new Set(seqs)]));
    const records: ClientRecord[] = clients.map((c) => {
      const expected = ackedSets.get(c.channel) ?? new Set<number>();
      const seen = new Map<number, number>(); // n → index of its first arrival
      const duplicateDetail: DuplicateDetail[] = [];
      const reorderDetail: ReorderDetail[] = [];
      const missingSeqs: number[] = [];
      let duplicates = 0;
      let reordered = 0;
      let unacked = 0;
      let highest = 0;
      c.got.forEach((n, index) => {
        const first = seen.get(n);
        if (first !== undefined) {
          duplicates++;
          if (duplicateDetail.length < DETAIL_MAX) duplicateDetail.push({ n, firstIndex: first, secondIndex: index });
          return;
        }
        seen.set(n, index);
        if (n < highest) {
          reordered++;
          if (reorderDetail.length < DETAIL_MAX) reorderDetail.push({ n, index, after: highest });
        } else highest = n;
        if (!expected.has(n)) unacked++;
      });
      let missing = 0;
      for (const n of expected) {
        if (seen.has(n)) continue;
        missing++;
        if (missingSeqs.length < DETAIL_MAX) missingSeqs.push(n);
      }
      return {
        index: c.index,
        channel: c.channel,
        affected: c.affected,
        workerBefore: c.workerBefore,
        workerAfter: c.socket.connected ? workerOf(c.socket) : null,
        droppedAt: c.droppedAt,
        backAt: c.backAt,
        recovered: c.recovered,
        sameId: c.sameId,
        disconnects: c.disconnects,
        connectErrors: c.connectErrors,
        resubscribed: c.resubscribed,
        received: c.got.length,
        missing,
        duplicates,
        reordered,
        unacked,
        duplicateDetail,
        reorderDetail,
        missingSeqs,
        receivedBeforeBack: c.receivedBeforeBack,
        attempts: c.attempts,
        errors: c.errors,
        stateAtEnd: stateOf(c.socket),
        events: c.events,
      };
    });
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    const loopDelayMs = { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) };
    send({ tag: TAG, type: "report", records, loopDelayMs, disconnectReasons, connectErrors: connectErrorReasons });
  }

  process.on("SIGINT", () => {
    // Ctrl-C reaches the whole terminal group: the orchestrator decides when this process ends.
  });
  process.on("disconnect", () => process.exit(0)); // the orchestrator is gone
  process.on("message", (m: unknown) => {
    if (typeof m !== "object" || m === null || (m as { tag?: unknown }).tag !== TAG) return;
    const msg = m as ToClients;
    switch (msg.type) {
      case "connect":
        void connectAll(msg.spec);
        break;
      case "drop":
        drop();
        break;
      case "mark":
        send({ tag: TAG, type: "marked", affected: markAll(msg.victimWorker) });
        break;
      case "expect":
        void expect(msg.acked, msg.drainMs);
        break;
      case "close":
        for (const c of clients) c.socket.disconnect();
        setTimeout(() => process.exit(0), 100).unref();
        break;
      default:
        msg satisfies never;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Orchestrator: processes it starts, and their clean-up

const processes = new Processes();

/** Stops everything started here, then removes the temp dirs. */
async function stopAll(graceMs: number): Promise<void> {
  await processes.stopAll(graceMs);
  removeTempDirs();
}

const tempDirs = new Set<string>();

function makeTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "recovery-storm-"));
  tempDirs.add(dir);
  return dir;
}

function removeTempDirs(): void {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

// Last resort (an exception, or the deadline): no temp dir outlives the script (nor, through
// Processes, any process started here).
process.on("exit", () => removeTempDirs());

/** The AWS SDK's multi-line Node-version notice, printed by every process that loads it: noise here. */
const AWS_SDK_NOTICE =
  /NodeVersionSupportWarning|versions published after the first week|will require node >=22|To continue receiving updates to AWS|and security updates please upgrade|a\.co\/c895JFp|node --trace-warnings \.\.\.` to show where the warning/;

async function startRedis(dir: string): Promise<{ entry: Owned; port: number; log: LogTail }> {
  const log = new LogTail(50, AWS_SDK_NOTICE);
  const { proc: entry, port } = await spawnRedis(processes, dir, { tail: log, timeoutMs: 10_000 });
  return { entry, port, log };
}

/** One command to a Redis on a fresh connection (the stats reads must not need a client library's state). */
async function redisCommand(port: number, ...command: string[]): Promise<string> {
  const redis = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await redis.connect();
    return String(await redis.call(command[0]!, ...command.slice(1)));
  } finally {
    redis.disconnect();
  }
}

type CommandStats = Map<string, { calls: number; usec: number }>;

/** INFO commandstats: calls and microseconds per command since Redis started. */
async function commandStats(port: number): Promise<CommandStats | undefined> {
  try {
    const info = await redisCommand(port, "INFO", "commandstats");
    const stats: CommandStats = new Map();
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
      stats.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
    }
    return stats;
  } catch (err) {
    process.stderr.write(`  INFO commandstats failed: ${String(err)}\n`);
    return undefined; // the figures are extra evidence; the storm's own figures stand without them
  }
}

function diffCommandStats(a: CommandStats, b: CommandStats): Record<string, { calls: number; usec: number; usecPerCall: number }> {
  const out: Record<string, { calls: number; usec: number; usecPerCall: number }> = {};
  const rows = [...b].map(([cmd, v]) => {
    const calls = v.calls - (a.get(cmd)?.calls ?? 0);
    const usec = v.usec - (a.get(cmd)?.usec ?? 0);
    return [cmd, { calls, usec, usecPerCall: calls ? round(usec / calls)! : 0 }] as const;
  });
  for (const [cmd, v] of rows.filter(([, v]) => v.calls > 0).sort((x, y) => y[1].usec - x[1].usec)) out[cmd] = v;
  return out;
}

async function streamLength(port: number): Promise<number | undefined> {
  try {
    // The server's default REDIS_KEY_PREFIX ("cerebellum:") names the adapter's stream.
    return Number(await redisCommand(port, "XLEN", "cerebellum:stream"));
  } catch (err) {
    process.stderr.write(`  XLEN failed: ${String(err)}\n`);
    return undefined;
  }
}

interface ServerHandle {
  entry: Owned;
  port: number;
  pid: number;
  log: LogTail;
  exit: { code: number | null; signal: string | null; at: number } | undefined;
}

function serverExit(server: ServerHandle, since: number): RunResult["server"]["exited"] {
  const e = server.exit;
  return e ? { code: e.code, signal: e.signal, atMs: round(e.at - since)! } : null;
}

async function startServer(opts: { dir: string; redisPort: number | undefined; apiKey: string; workers: number; persistence: boolean }): Promise<ServerHandle> {
  const log = new LogTail(200, AWS_SDK_NOTICE);
  const { proc: entry, port } = await spawnServer(
    processes,
    opts.dir,
    {
      HOME: process.env.HOME,
      WORKERS: String(opts.workers),
      API_KEY: opts.apiKey,
      DATA_DIR: join(opts.dir, "data"),
      PERSISTENCE: opts.persistence ? "embedded" : "off",
      SHUTDOWN_TIMEOUT_MS: "5000",
      ...(opts.redisPort !== undefined ? { REDIS_URL: `redis://127.0.0.1:${opts.redisPort}` } : {}),
    },
    { tail: log },
  );
  // Exits during start-up fail spawnServer; later ones are recorded on the handle.
  const handle: ServerHandle = { entry, port, pid: entry.child.pid!, log, exit: undefined };
  entry.child.once("exit", (code, sig) => {
    handle.exit = { code, signal: sig, at: now() };
  });
  return handle;
}

/**
 * The primary's children: cluster workers (they carry NODE_UNIQUE_ID; their command line is
 * overwritten by process.title) and anything else, which is the embedded store.
 */
function serverChildren(primaryPid: number): Array<{ pid: number; role: "workers" | "store"; clusterId: number | undefined; cmd: string }> {
  return childrenOf(primaryPid).map((pid) => {
    const clusterId = clusterIdOf(pid);
    return { pid, role: clusterId !== undefined ? ("workers" as const) : ("store" as const), clusterId, cmd: cmdlineOf(pid).trim() };
  });
}

// ---------------------------------------------------------------------------------------------
// Orchestrator: the client fleet (forked processes) and the publisher

class Fleet {
  private readonly procs: ChildProcess[] = [];
  private readonly progress = new Map<ChildProcess, Progress>();
  private onProgress: (() => void) | undefined;

  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      const child = fork(__filename, ["--role", "clients"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
      processes.track(`clients#${i}`, child, false);
      child.on("message", (m: unknown) => {
        if (isFromClients(m) && m.type === "progress") {
          this.progress.set(child, { affected: m.affected, back: m.back, recovered: m.recovered });
          this.onProgress?.();
        }
      });
      this.procs.push(child);
    }
  }

  get pids(): number[] {
    return this.procs.flatMap((p) => (p.pid === undefined ? [] : [p.pid]));
  }

  private send(child: ChildProcess, m: ToClients): void {
    if (child.connected) child.send(m);
  }

  /** Sends one message to every client process and collects each one's reply of the given type. */
  private request<T extends FromClients["type"]>(make: (i: number) => ToClients, type: T, timeoutMs: number): Promise<Array<Extract<FromClients, { type: T }>>> {
    return Promise.all(
      this.procs.map(
        (child, i) =>
          new Promise<Extract<FromClients, { type: T }>>((done, fail) => {
            const timer = setTimeout(() => {
              child.off("message", onMessage);
              fail(new Error(`client process ${i}: no "${type}" reply in ${timeoutMs} ms`));
            }, timeoutMs);
            const onMessage = (m: unknown) => {
              if (!isFromClients(m) || m.type !== type) return;
              clearTimeout(timer);
              child.off("message", onMessage);
              done(m as Extract<FromClients, { type: T }>);
            };
            child.on("message", onMessage);
            this.send(child, make(i));
          }),
      ),
    );
  }

  connect(spec: Omit<ConnectSpec, "indices">, total: number, timeoutMs: number) {
    const n = this.procs.length;
    return this.request(
      (i) => ({
        tag: TAG,
        type: "connect",
        spec: {
          ...spec,
          indices: Array.from({ length: total }, (_, k) => k).filter((k) => k % n === i),
          concurrency: Math.max(1, Math.round(spec.concurrency / n)),
        },
      }),
      "connected",
      timeoutMs,
    );
  }

  drop() {
    this.progress.clear();
    return this.request(() => ({ tag: TAG, type: "drop" }), "dropped", 10_000);
  }

  mark(victimWorker: number) {
    this.progress.clear();
    return this.request(() => ({ tag: TAG, type: "mark", victimWorker }), "marked", 10_000);
  }

  /** Resolves when `affected` clients are back, or when the deadline passes (false). */
  waitBack(affected: number, deadline: number): Promise<boolean> {
    return new Promise((done) => {
      const check = () => {
        let back = 0;
        for (const p of this.progress.values()) back += p.back;
        if (back >= affected) finish(true);
      };
      const timer = setTimeout(() => finish(false), Math.max(0, deadline - now()));
      timer.unref(); // a storm ended otherwise (the primary died) must not hold the process
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.onProgress = undefined;
        done(ok);
      };
      this.onProgress = check;
      check();
    });
  }

  expect(acked: Record<string, number[]>, drainMs: number) {
    return this.request(() => ({ tag: TAG, type: "expect", acked, drainMs }), "report", drainMs + 20_000);
  }

  async close(): Promise<void> {
    for (const child of this.procs) this.send(child, { tag: TAG, type: "close" });
    await Promise.race([Promise.all(this.procs.map((c) => (c.exitCode === null ? new Promise((r) => c.once("exit", r)) : undefined))), sleep(3000)]);
    for (const child of this.procs) if (child.exitCode === null) child.kill("SIGKILL");
  }
}

/** One socket that publishes `{c, n}` at a steady rate, round-robin over the channels. */
class Publisher {
  readonly acked: Record<string, number[]> = {};
  /** When each message was sent, per channel, indexed by its sequence number. */
  readonly sentAt: Record<string, number[]> = {};
  readonly failures: Record<string, number> = {};
  sent = 0;
  private outstanding = 0;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private readonly seq: number[];

  private constructor(
    readonly socket: Socket,
    private readonly channels: string[],
    private readonly rate: number,
  ) {
    this.seq = channels.map(() => 0);
    for (const ch of channels) {
      this.acked[ch] = [];
      this.sentAt[ch] = [];
    }
  }

  static async connect(url: string, token: string, channels: string[], rate: number): Promise<Publisher> {
    const socket = ioClient(url, { transports: ["websocket"], forceNew: true, auth: { token }, reconnectionDelay: 100, reconnectionDelayMax: 500 });
    await new Promise<void>((done, fail) => {
      const timer = setTimeout(() => {
        socket.close();
        fail(new Error("publisher: no connection in 20 s"));
      }, 20_000);
      socket.once("connect", () => (clearTimeout(timer), done()));
    });
    return new Publisher(socket, channels, rate);
  }

  get worker(): number | null {
    return workerOf(this.socket);
  }

  start(): void {
    this.startedAt = now();
    // Catch up to rate × elapsed on every tick, so timer jitter does not lower the rate.
    this.timer = setInterval(() => {
      const due = Math.floor((this.rate * (now() - this.startedAt)) / 1000) - this.sent;
      for (let i = 0; i < Math.min(due, 1000); i++) this.publishOne();
    }, 5);
  }

  private publishOne(): void {
    const c = this.sent % this.channels.length;
    const channel = this.channels[c]!;
    const n = ++this.seq[c]!;
    this.sentAt[channel]![n] = now();
    this.sent++;
    this.outstanding++;
    this.socket.timeout(10_000).emit("message:queue", channel, { c, n }, (err: Error | null, res: { success?: boolean; error?: string } | undefined) => {
      this.outstanding--;
      if (err) tally(this.failures, "ack timeout");
      else if (res?.success) this.acked[channel]!.push(n);
      else tally(this.failures, res?.error ?? "refused");
    });
  }

  /** Stops publishing and waits (bounded) for the outstanding acks. */
  async stop(timeoutMs: number): Promise<void> {
    clearInterval(this.timer);
    const deadline = now() + timeoutMs;
    while (this.outstanding > 0 && now() < deadline) await sleep(20);
  }

  get achievedRate(): number {
    return this.sent / ((now() - this.startedAt) / 1000);
  }

  close(): void {
    clearInterval(this.timer);
    this.socket.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// Orchestrator: one measured storm

interface CpuFigure {
  cpuSeconds: number;
  /** Percent of one core over the window. */
  pctOfCore: number;
  /** Same, over the steady-state baseline window just before the storm. */
  baselinePctOfCore: number;
}

interface RunResult {
  mode: Mode;
  variant: Variant;
  run: number;
  /** When the run began (ISO time) and the checkout it ran: the tree may change between runs. */
  startedAt: string;
  commit: string;
  error?: string;
  clients: number;
  ready: number;
  connectFailures: Record<string, number>;
  connectMs: number;
  victimWorker: number | null;
  affected: number;
  recovered: number;
  notRecovered: number;
  notBack: number;
  sameIdRecovered: number;
  stormComplete: boolean;
  /** Clients that came back, but later than --storm-timeout after the storm's start. */
  backAfterBound: number;
  allBackMs: number | null;
  dropSpreadMs: number | null;
  reconnectMs: { p50: number | null; p99: number | null; max: number | null };
  loss: {
    /** Among recovered clients: the promise is none lost, none duplicated, none out of order. */
    recovered: LossFigure;
    /** Among clients that came back without their session (they lose the gap by design). */
    notRecovered: LossFigure;
    /** Among clients the storm did not touch (kill variant: the surviving worker's). */
    untouched: LossFigure;
  };
  collateralDisconnects: number;
  /** Worst event-loop delay of the client processes from the storm's start to the end (ms). */
  generatorLoopDelayMs: { p99: number; max: number };
  /**
   * A few clients of each kind: with a loss or a duplicate, never back, and the slowest back;
   * times in ms relative to the storm's start.
   */
  evidence: Evidence[];
  /** Clients back per 500 ms bucket after the storm's start. */
  backTimeline: number[];
  /** Affected clients not back at the end, by where they were stuck. */
  notBackStates: Record<string, number>;
  /** Connection errors seen by affected clients after the storm's start (first 10 per client). */
  connectErrorsAfterStorm: number;
  reconnectAttempts: { total: number; max: number };
  disconnectReasons: Record<string, number>;
  connectErrors: Record<string, number>;
  published: { sent: number; acked: number; failures: Record<string, number>; ratePerS: number };
  cpu: { windowMs: number; baselineMs: number; clkTck: number } & Partial<Record<CpuRole, CpuFigure>>;
  /**
   * The whole machine over the same windows, in % of one core (nproc × 100 is all of it):
   * `others` is what processes not started by this run used, the interference behind the figures.
   */
  machine: { loadBeforePct: number; busyPct: number; othersPct: number; stealPct: number; baselineBusyPct: number; baselineOthersPct: number };
  /** Redis command statistics over the storm window (clustered mode). */
  redisCommands?: Record<string, { calls: number; usec: number; usecPerCall: number }>;
  /** Entries in the adapter's stream at the storm's end (clustered mode). */
  redisStreamLength?: number;
  server: {
    logLines: number;
    logTail: string[];
    /** Set when the primary exited during the measurement (it should not). */
    exited: { code: number | null; signal: string | null; atMs: number } | null;
  };
  redisLog: string[];
}

interface Evidence {
  index: number;
  channel: string;
  affected: boolean;
  recovered: boolean | null;
  workerBefore: number | null;
  workerAfter: number | null;
  droppedAtMs: number | null;
  backAtMs: number | null;
  received: number;
  receivedBeforeBack: number | null;
  missing: number;
  duplicates: number;
  /** Duplicated messages: when they were sent (ms after the storm's start) and where both copies arrived. */
  duplicated: Array<DuplicateDetail & { sentAtMs: number | null }>;
  reordered: number;
  /** Messages that arrived after a later one (one publisher per channel: its order must hold). */
  outOfOrder: ReorderDetail[];
  /** Missing messages: when they were sent, ms after the storm's start. */
  missingSentAtMs: Array<{ n: number; sentAtMs: number | null }>;
  attempts: number;
  errors: Array<{ atMs: number | null; message: string }>;
  stateAtEnd: string;
  events: Array<{ atMs: number | null; what: string }>;
}

/** Most clients of each kind (lossy, never back) listed in a run's evidence. */
const EVIDENCE_MAX = 10;
/** The slowest clients to come back listed in a run's evidence. */
const EVIDENCE_SLOWEST = 5;

interface LossFigure {
  clients: number;
  clientsWithLoss: number;
  lost: number;
  maxLostPerClient: number;
  clientsWithDuplicates: number;
  duplicates: number;
  reordered: number;
}

function lossOf(records: ClientRecord[]): LossFigure {
  return {
    clients: records.length,
    clientsWithLoss: records.filter((r) => r.missing > 0).length,
    lost: records.reduce((s, r) => s + r.missing, 0),
    maxLostPerClient: records.reduce((m, r) => Math.max(m, r.missing), 0),
    clientsWithDuplicates: records.filter((r) => r.duplicates > 0).length,
    duplicates: records.reduce((s, r) => s + r.duplicates, 0),
    reordered: records.reduce((s, r) => s + r.reordered, 0),
  };
}

function snapshot(server: ServerHandle, redisPid: number | undefined, fleet: Fleet): CpuSnapshot {
  const ticks: CpuSnapshot["ticks"] = new Map();
  const add = (pid: number, role: CpuRole) => {
    const t = readStat(pid)?.ticks;
    if (t !== undefined) ticks.set(pid, { role, ticks: t });
  };
  add(server.pid, "primary");
  for (const c of serverChildren(server.pid)) add(c.pid, c.role);
  if (redisPid !== undefined) add(redisPid, "redis");
  for (const pid of fleet.pids) add(pid, "clientProcs");
  add(process.pid, "orchestrator");
  return { at: now(), ticks, machine: machineTicks() };
}

/** CPU-seconds per role between two snapshots (a process born in between counts from zero). */
function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): Partial<Record<CpuRole, number>> {
  const out: Partial<Record<CpuRole, number>> = {};
  for (const [pid, end] of b.ticks) {
    const start = a.ticks.get(pid)?.ticks ?? 0;
    out[end.role] = (out[end.role] ?? 0) + (end.ticks - start) / CLK_TCK;
  }
  return out;
}

interface Params {
  clients: number;
  channels: number;
  rate: number;
  persistence: boolean;
  workers: number;
  clientProcs: number;
  concurrency: number;
  reconnectDelay: number;
  reconnectDelayMax: number;
  reconnectJitter: number;
  connectTimeout: number;
  stormTimeoutMs: number;
  baselineMs: number;
  tailMs: number;
  quietWaitS: number;
  quietBelowPct: number;
}

/** A storm that could not be measured, with what the server last logged. */
class StormError extends Error {
  constructor(
    message: string,
    readonly serverLog: string[],
  ) {
    super(message);
    this.name = "StormError";
  }
}

/** Machine CPU busy over one second, in % of one core (nothing of this run is running then). */
const busyNow = async (): Promise<number> => (await machineLoad()).busyPct;

/** Waits (bounded) for the machine to be quiet; returns the last load measured. */
async function waitQuiet(maxWaitS: number, belowPct: number): Promise<number> {
  const deadline = now() + maxWaitS * 1000;
  let load = await busyNow();
  while (load > belowPct && now() < deadline) {
    process.stdout.write(`  waiting for a quiet machine: ${round(load)}% of a core busy\n`);
    await sleep(4000);
    load = await busyNow();
  }
  return load;
}

async function runStorm(mode: Mode, variant: Variant, run: number, p: Params): Promise<Omit<RunResult, "startedAt" | "commit">> {
  const loadBefore = p.quietWaitS > 0 ? await waitQuiet(p.quietWaitS, p.quietBelowPct) : await busyNow();
  const dir = makeTempDir();
  const apiKey = `storm-${Math.random().toString(36).slice(2)}-key-0123456789`;
  const channels = Array.from({ length: p.channels }, (_, i) => `storm:${i}`);
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  let server: ServerHandle | undefined;
  let fleet: Fleet | undefined;
  let publisher: Publisher | undefined;
  try {
    if (mode === "clustered") redis = await startRedis(dir);
    server = await startServer({ dir, redisPort: redis?.port, apiKey, workers: p.workers, persistence: p.persistence });
    const url = `http://127.0.0.1:${server.port}`;
    // The SDK's token: HS256 over the UTF-8 bytes of API_KEY, with only `exp`.
    const token = mintToken(apiKey, { exp: Math.floor(Date.now() / 1000) + 3600 });

    fleet = new Fleet(p.clientProcs);
    const connectStart = now();
    const connected = await fleet.connect(
      {
        url,
        token,
        channels,
        concurrency: p.concurrency,
        reconnectDelay: p.reconnectDelay,
        reconnectDelayMax: p.reconnectDelayMax,
        reconnectJitter: p.reconnectJitter,
        connectTimeout: p.connectTimeout,
      },
      p.clients,
      120_000,
    );
    const connectMs = now() - connectStart;
    const ready = connected.reduce((s, c) => s + c.ready, 0);
    const connectFailures: Record<string, number> = {};
    for (const c of connected) for (const [k, v] of Object.entries(c.failures)) connectFailures[k] = (connectFailures[k] ?? 0) + v;

    publisher = await Publisher.connect(url, token, channels, p.rate);
    publisher.start();
    await sleep(1000); // warm-up: every channel flowing before the baseline
    const base0 = snapshot(server, redis?.entry.child.pid, fleet);
    await sleep(p.baselineMs);
    const base1 = snapshot(server, redis?.entry.child.pid, fleet);
    const redisStats0 = redis ? await commandStats(redis.port) : undefined;

    let affected: number;
    let stormStart: number;
    let dropSpreadMs: number | null = null;
    let victimWorker: number | null = null;
    if (variant === "drop") {
      const dropped = await fleet.drop();
      affected = dropped.reduce((s, d) => s + d.affected, 0);
      stormStart = Math.min(...dropped.map((d) => d.firstAt));
      dropSpreadMs = Math.max(...dropped.map((d) => d.lastAt)) - stormStart;
    } else {
      const workers = serverChildren(server.pid).filter((c) => c.role === "workers");
      const victim = workers.find((w) => w.clusterId !== undefined && w.clusterId !== publisher!.worker);
      if (!victim || victim.clusterId === undefined) throw new Error(`no worker to kill besides the publisher's (workers: ${JSON.stringify(workers)})`);
      victimWorker = victim.clusterId;
      const marked = await fleet.mark(victimWorker);
      affected = marked.reduce((s, m) => s + m.affected, 0);
      stormStart = now();
      process.kill(victim.pid, "SIGKILL");
    }
    // A primary that dies ends the storm at once: nobody can come back.
    const stormComplete = await Promise.race([fleet.waitBack(affected, stormStart + p.stormTimeoutMs), server.entry.exited.then(() => false)]);
    const storm1 = snapshot(server, redis?.entry.child.pid, fleet);
    const redisStats1 = redis ? await commandStats(redis.port) : undefined;
    const redisStreamLength = redis ? await streamLength(redis.port) : undefined;

    await sleep(p.tailMs);
    await publisher.stop(10_000);
    const reports = await fleet.expect(publisher.acked, 5000);
    const records = reports.flatMap((r) => r.records);
    const disconnectReasons: Record<string, number> = {};
    const connectErrors: Record<string, number> = {};
    for (const r of reports) {
      for (const [k, v] of Object.entries(r.disconnectReasons)) disconnectReasons[k] = (disconnectReasons[k] ?? 0) + v;
      for (const [k, v] of Object.entries(r.connectErrors)) connectErrors[k] = (connectErrors[k] ?? 0) + v;
    }

    const hit = records.filter((r) => r.affected);
    const back = hit.filter((r) => r.backAt !== null);
    const perClient = back
      .map((r) => r.backAt! - (variant === "drop" ? r.droppedAt ?? stormStart : stormStart))
      .sort((a, b) => a - b);
    const lastBack = back.reduce((m, r) => Math.max(m, r.backAt!), 0);

    const windowMs = storm1.at - base1.at;
    const baselineMs = base1.at - base0.at;
    const stormCpu = cpuBetween(base1, storm1);
    const baseCpu = cpuBetween(base0, base1);
    const cpu: RunResult["cpu"] = { windowMs: round(windowMs)!, baselineMs: round(baselineMs)!, clkTck: CLK_TCK };
    for (const role of ["primary", "workers", "store", "redis", "clientProcs", "orchestrator"] as const) {
      if (stormCpu[role] === undefined && baseCpu[role] === undefined) continue;
      cpu[role] = {
        cpuSeconds: round(stormCpu[role] ?? 0, 2)!,
        pctOfCore: round(((stormCpu[role] ?? 0) / (windowMs / 1000)) * 100)!,
        baselinePctOfCore: round(((baseCpu[role] ?? 0) / (baselineMs / 1000)) * 100)!,
      };
    }

    const ours = (c: Partial<Record<CpuRole, number>>) => Object.values(c).reduce((s, v) => s + (v ?? 0), 0);
    const pctOf = (ticks: number, ms: number) => round((ticks / CLK_TCK / (ms / 1000)) * 100)!;
    const machine: RunResult["machine"] = {
      loadBeforePct: round(loadBefore)!,
      busyPct: pctOf(storm1.machine.busy - base1.machine.busy, windowMs),
      othersPct: pctOf(storm1.machine.busy - base1.machine.busy - ours(stormCpu) * CLK_TCK, windowMs),
      stealPct: pctOf(storm1.machine.steal - base1.machine.steal, windowMs),
      baselineBusyPct: pctOf(base1.machine.busy - base0.machine.busy, baselineMs),
      baselineOthersPct: pctOf(base1.machine.busy - base0.machine.busy - ours(baseCpu) * CLK_TCK, baselineMs),
    };
    const acked = Object.values(publisher.acked).reduce((s, a) => s + a.length, 0);
    const sentAtMs = (channel: string, n: number) => {
      const t = publisher!.sentAt[channel]?.[n];
      return t === undefined ? null : round(t - stormStart);
    };
    // Evidence, a few clients of each kind: lost, duplicated or reordered messages, never back, slowest back.
    const lossy = records.filter((r) => r.duplicates > 0 || r.reordered > 0 || (r.missing > 0 && r.recovered !== false));
    const stuck = hit.filter((r) => r.backAt === null);
    const slowest = [...back].sort((a, b) => b.backAt! - a.backAt!).filter((r) => !lossy.includes(r));
    const evidence: Evidence[] = [...lossy.slice(0, EVIDENCE_MAX), ...stuck.slice(0, EVIDENCE_MAX), ...slowest.slice(0, EVIDENCE_SLOWEST)]
      .map((r) => ({
        index: r.index,
        channel: r.channel,
        affected: r.affected,
        recovered: r.recovered,
        workerBefore: r.workerBefore,
        workerAfter: r.workerAfter,
        droppedAtMs: r.droppedAt === null ? null : round(r.droppedAt - stormStart),
        backAtMs: r.backAt === null ? null : round(r.backAt - stormStart),
        received: r.received,
        receivedBeforeBack: r.receivedBeforeBack,
        missing: r.missing,
        duplicates: r.duplicates,
        duplicated: r.duplicateDetail.map((d) => ({ ...d, sentAtMs: sentAtMs(r.channel, d.n) })),
        reordered: r.reordered,
        outOfOrder: r.reorderDetail,
        missingSentAtMs: r.missingSeqs.map((n) => ({ n, sentAtMs: sentAtMs(r.channel, n) })),
        attempts: r.attempts,
        errors: r.errors.map((e) => ({ atMs: round(e.at - stormStart), message: e.message })),
        stateAtEnd: r.stateAtEnd,
        events: r.events.map((e) => ({ atMs: round(e.at - stormStart), what: e.what })),
      }));
    // How the clients came back over time: counts per 500 ms after the storm's start.
    const backTimeline: number[] = [];
    for (const r of back) {
      const bucket = Math.floor((r.backAt! - stormStart) / 500);
      for (let i = backTimeline.length; i <= bucket; i++) backTimeline.push(0);
      backTimeline[bucket]!++;
    }
    const notBackStates: Record<string, number> = {};
    for (const r of hit) if (r.backAt === null) tally(notBackStates, r.stateAtEnd);
    return {
      mode,
      variant,
      run,
      clients: p.clients,
      ready,
      connectFailures,
      connectMs: round(connectMs)!,
      victimWorker,
      affected,
      recovered: hit.filter((r) => r.recovered === true).length,
      notRecovered: hit.filter((r) => r.recovered === false).length,
      notBack: hit.length - back.length,
      sameIdRecovered: hit.filter((r) => r.recovered && r.sameId).length,
      stormComplete,
      backAfterBound: back.filter((r) => r.backAt! - stormStart > p.stormTimeoutMs).length,
      allBackMs: back.length ? round(lastBack - stormStart) : null,
      dropSpreadMs: round(dropSpreadMs),
      reconnectMs: { p50: round(percentile(perClient, 50)), p99: round(percentile(perClient, 99)), max: round(percentile(perClient, 100)) },
      loss: {
        recovered: lossOf(hit.filter((r) => r.recovered === true)),
        notRecovered: lossOf(hit.filter((r) => r.recovered !== true)),
        untouched: lossOf(records.filter((r) => !r.affected)),
      },
      collateralDisconnects: records.filter((r) => !r.affected && r.disconnects > 0).length,
      generatorLoopDelayMs: {
        p99: Math.max(...reports.map((r) => r.loopDelayMs.p99)),
        max: Math.max(...reports.map((r) => r.loopDelayMs.max)),
      },
      evidence,
      backTimeline,
      notBackStates,
      connectErrorsAfterStorm: hit.reduce((s, r) => s + r.errors.length, 0),
      reconnectAttempts: { total: hit.reduce((s, r) => s + r.attempts, 0), max: hit.reduce((m, r) => Math.max(m, r.attempts), 0) },
      disconnectReasons,
      connectErrors,
      published: { sent: publisher.sent, acked, failures: publisher.failures, ratePerS: round(publisher.achievedRate)! },
      cpu,
      machine,
      ...(redisStats0 && redisStats1 ? { redisCommands: diffCommandStats(redisStats0, redisStats1) } : {}),
      ...(redisStreamLength !== undefined ? { redisStreamLength } : {}),
      server: { logLines: server.log.count, logTail: server.log.lines.slice(-40), exited: serverExit(server, stormStart) },
      redisLog: redis ? redis.log.lines.filter((l) => /warn|error|#/i.test(l)).slice(-10) : [],
    };
  } catch (err) {
    throw new StormError(err instanceof Error ? err.message : String(err), server?.log.lines.slice(-40) ?? []);
  } finally {
    publisher?.close();
    await fleet?.close();
    if (server) await processes.stop(server.entry, 8000);
    if (redis) await processes.stop(redis.entry, 3000);
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// Orchestrator: reporting

/** The figures reported per mode and variant: a label and how to read it from a run. */
const ROWS: Array<[string, (r: RunResult) => number | null]> = [
  ["clients connected", (r) => r.ready],
  ["affected (dropped / on killed worker)", (r) => r.affected],
  ["recovered", (r) => r.recovered],
  ["not recovered (new session)", (r) => r.notRecovered],
  ["not back at the end", (r) => r.notBack],
  ["back only after the storm bound", (r) => r.backAfterBound],
  ["recovered with same socket id", (r) => r.sameIdRecovered],
  ["all back after (ms)", (r) => r.allBackMs],
  ["per-client reconnect p50 (ms)", (r) => r.reconnectMs.p50],
  ["per-client reconnect p99 (ms)", (r) => r.reconnectMs.p99],
  ["per-client reconnect max (ms)", (r) => r.reconnectMs.max],
  ["recovered: clients with loss", (r) => r.loss.recovered.clientsWithLoss],
  ["recovered: messages lost", (r) => r.loss.recovered.lost],
  ["recovered: messages duplicated", (r) => r.loss.recovered.duplicates],
  ["recovered: out of order", (r) => r.loss.recovered.reordered],
  ["not recovered: messages lost (gap)", (r) => r.loss.notRecovered.lost],
  ["untouched clients: lost + dup + out of order", (r) => r.loss.untouched.lost + r.loss.untouched.duplicates + r.loss.untouched.reordered],
  ["untouched clients disconnected", (r) => r.collateralDisconnects],
  ["reconnect attempts (total)", (r) => r.reconnectAttempts.total],
  ["connect errors after the storm began", (r) => r.connectErrorsAfterStorm],
  ["published msg/s (acked total)", (r) => r.published.ratePerS],
  ["publish failures", (r) => Object.values(r.published.failures).reduce((s, v) => s + v, 0)],
  ["server (primary) exited during the run", (r) => (r.server.exited ? 1 : 0)],
  ["storm window (ms)", (r) => r.cpu.windowMs],
  ["machine busy before the run (%)", (r) => r.machine.loadBeforePct],
  ["machine busy % of a core: storm", (r) => r.machine.busyPct],
  ["  of which others (not this run)", (r) => r.machine.othersPct],
  ["machine busy %: baseline", (r) => r.machine.baselineBusyPct],
  ["  of which others: baseline", (r) => r.machine.baselineOthersPct],
  ["primary CPU % of a core: storm", (r) => r.cpu.primary?.pctOfCore ?? null],
  ["primary CPU % of a core: baseline", (r) => r.cpu.primary?.baselinePctOfCore ?? null],
  ["primary CPU-seconds in storm", (r) => r.cpu.primary?.cpuSeconds ?? null],
  ["workers CPU % (sum): storm", (r) => r.cpu.workers?.pctOfCore ?? null],
  ["workers CPU % (sum): baseline", (r) => r.cpu.workers?.baselinePctOfCore ?? null],
  ["workers CPU-seconds in storm", (r) => r.cpu.workers?.cpuSeconds ?? null],
  ["store CPU %: storm", (r) => r.cpu.store?.pctOfCore ?? null],
  ["redis CPU %: storm", (r) => r.cpu.redis?.pctOfCore ?? null],
  ["redis CPU %: baseline", (r) => r.cpu.redis?.baselinePctOfCore ?? null],
  ["redis CPU-seconds in storm", (r) => r.cpu.redis?.cpuSeconds ?? null],
  ["generator CPU % (client procs): storm", (r) => r.cpu.clientProcs?.pctOfCore ?? null],
  ["generator CPU % (client procs): baseline", (r) => r.cpu.clientProcs?.baselinePctOfCore ?? null],
  ["orchestrator+publisher CPU %: storm", (r) => r.cpu.orchestrator?.pctOfCore ?? null],
  ["generator event-loop delay p99 (ms)", (r) => r.generatorLoopDelayMs.p99],
  ["generator event-loop delay max (ms)", (r) => r.generatorLoopDelayMs.max],
];

function medianTable(results: RunResult[], mode: Mode, variants: Variant[]): { text: string; medians: Record<string, Record<string, number | null>> } {
  const cols = variants.map((v) => results.filter((r) => r.mode === mode && r.variant === v && !r.error));
  const medians: Record<string, Record<string, number | null>> = {};
  const width = Math.max(...ROWS.map(([l]) => l.length));
  const head = `${"".padEnd(width)}  ${variants.map((v, i) => `${v} (n=${cols[i]!.length})`.padStart(16)).join("  ")}`;
  const lines = [head];
  for (const [label, read] of ROWS) {
    const vals = cols.map((runs) => medianOrNull(runs.map(read)));
    if (vals.every((v) => v === null)) continue;
    variants.forEach((v, i) => ((medians[v] ??= {})[label] = vals[i]!));
    lines.push(`${label.padEnd(width)}  ${vals.map((v) => (v === null ? "-" : String(round(v, 2))).padStart(16)).join("  ")}`);
  }
  return { text: lines.join("\n"), medians };
}

/** Whether processes outside this run used more than `belowPct` of a core during its windows. */
function contended(r: RunResult, belowPct: number): boolean {
  return r.machine.othersPct > belowPct || r.machine.baselineOthersPct > belowPct;
}

/** Whether clients that kept their session (or never lost it) missed, repeated or reordered anything. */
function broken(loss: LossFigure): boolean {
  return loss.lost > 0 || loss.duplicates > 0 || loss.reordered > 0;
}

function runLine(r: RunResult): string {
  if (r.error) return `  ${r.mode}/${r.variant} run ${r.run}: FAILED: ${r.error}`;
  return (
    `  ${r.mode}/${r.variant} run ${r.run}: ${r.recovered}/${r.affected} recovered, ${r.notRecovered} new session, ` +
    `${r.notBack} not back; all back in ${r.allBackMs ?? "-"} ms (p50 ${r.reconnectMs.p50}, p99 ${r.reconnectMs.p99}); ` +
    `lost ${r.loss.recovered.lost} dup ${r.loss.recovered.duplicates} out of order ${r.loss.recovered.reordered} (recovered)` +
    (broken(r.loss.untouched) ? `, lost ${r.loss.untouched.lost} dup ${r.loss.untouched.duplicates} out of order ${r.loss.untouched.reordered} (untouched)` : "") +
    "; " +
    `CPU primary ${r.cpu.primary?.pctOfCore ?? "-"}% workers ${r.cpu.workers?.pctOfCore ?? "-"}%` +
    (r.cpu.redis ? ` redis ${r.cpu.redis.pctOfCore}%` : "") +
    ` gen ${r.cpu.clientProcs?.pctOfCore ?? "-"}% over ${r.cpu.windowMs} ms; others ${r.machine.othersPct}%` +
    (r.server.exited ? `; SERVER EXITED ${r.server.exited.atMs} ms after the storm began (code ${r.server.exited.code}, signal ${r.server.exited.signal})` : "")
  );
}

/** The checkout measured: HEAD, and whether the working tree differs from it. */
function gitCommit(): string {
  try {
    const cwd = resolve(__dirname, "../..");
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd, encoding: "utf8" }).trim() !== "";
    return dirty ? `${head} (with uncommitted changes)` : head;
  } catch {
    return "unknown"; // not a git checkout
  }
}

async function orchestrate(): Promise<void> {
  const modeArg = oneOf("mode", ["embedded", "clustered", "both"] as const);
  const variantArg = oneOf("variant", ["drop", "kill", "both"] as const);
  const modes: Mode[] = modeArg === "both" ? ["embedded", "clustered"] : [modeArg];
  const variants: Variant[] = variantArg === "both" ? ["drop", "kill"] : [variantArg];
  const p: Params = {
    clients: intArg("clients", 1),
    channels: intArg("channels", 1),
    rate: intArg("publish-rate", 1),
    persistence: oneOf("persistence", ["on", "off"] as const) === "on",
    workers: intArg("workers", 2),
    clientProcs: intArg("client-procs", 1),
    concurrency: intArg("connect-concurrency", 1),
    reconnectDelay: intArg("reconnect-delay", 1),
    reconnectDelayMax: intArg("reconnect-delay-max", 1),
    reconnectJitter: Number(args["reconnect-jitter"]),
    connectTimeout: intArg("connect-timeout", 100),
    stormTimeoutMs: intArg("storm-timeout", 1000),
    baselineMs: intArg("baseline-ms", 500),
    tailMs: intArg("tail-ms", 0),
    quietWaitS: intArg("quiet-wait", 0),
    quietBelowPct: intArg("quiet-below", 1),
  };
  if (!(p.reconnectJitter >= 0 && p.reconnectJitter < 1)) throw new Error("--reconnect-jitter must be in [0, 1)");
  const runs = intArg("runs", 1);
  const out = resolve(String(args.out));

  const machine = {
    nproc: cpus().length,
    model: /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown",
    node: process.version,
    clkTck: CLK_TCK,
    commit: gitCommit(),
  };
  process.stdout.write(
    `Recovery storm: ${p.clients} clients over ${p.channels} channels, ${p.rate} msg/s, persistence ${p.persistence ? "on" : "off"}, ` +
      `${p.workers} workers, ${p.clientProcs} client process(es), ${runs} run(s); ${machine.nproc} × ${machine.model}\n`,
  );

  const results: RunResult[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const mode of modes) {
      for (const variant of variants) {
        let result: Omit<RunResult, "startedAt" | "commit">;
        const startedAt = new Date().toISOString();
        const commit = gitCommit();
        try {
          result = await runStorm(mode, variant, run, p);
        } catch (err) {
          const serverLog = err instanceof StormError ? err.serverLog : [];
          // A partial record: only mode, variant, run, error and the server's last lines.
          result = { mode, variant, run, error: err instanceof Error ? err.message : String(err), server: { logLines: serverLog.length, logTail: serverLog } } as RunResult;
        }
        const full: RunResult = { ...result, startedAt, commit };
        results.push(full);
        process.stdout.write(`${runLine(full)}\n`);
        for (const line of (full.server?.logTail ?? []).slice(-15)) process.stdout.write(`      server: ${line}\n`);
      }
    }
  }

  const summary: Record<string, unknown> = {};
  for (const mode of modes) {
    const { text, medians } = medianTable(results, mode, variants);
    summary[mode] = medians;
    process.stdout.write(`\n== ${mode} (medians of ${runs} run(s)) ==\n${text}\n`);
  }
  // On a shared machine others' work inflates every time: the runs it spared are shown apart.
  const quiet = results.filter((r) => !r.error && !contended(r, p.quietBelowPct));
  const quietSummary: Record<string, unknown> = {};
  if (quiet.length < results.length) {
    for (const mode of modes) {
      const { text, medians } = medianTable(quiet, mode, variants);
      quietSummary[mode] = medians;
      process.stdout.write(`\n== ${mode}, uncontended runs only (others < ${p.quietBelowPct}% of a core in baseline and storm) ==\n${text}\n`);
    }
  }
  writeFileSync(
    out,
    JSON.stringify({ at: new Date().toISOString(), machine, params: { ...p, runs }, medians: summary, mediansUncontended: quietSummary, runs: results }, null, 2),
  );
  process.stdout.write(`\nwrote ${out}\n`);
  // A storm that did not complete, or a recovered client that did not get every message once and
  // in order, fails the run (clients without their session lose the gap by design).
  if (results.some((r) => r.error || !r.stormComplete || broken(r.loss.recovered))) process.exitCode = 1;
}

// ---------------------------------------------------------------------------------------------
// Entry

if (args.role === "clients") {
  runClientsRole();
} else {
  let stopping = false;
  const abort = (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${why}: stopping every process started here\n`);
    const hard = setTimeout(() => process.exit(code), 15_000);
    hard.unref();
    void stopAll(5000).finally(() => process.exit(code));
  };
  process.on("SIGINT", () => abort("SIGINT", 130));
  process.on("SIGTERM", () => abort("SIGTERM", 143));
  orchestrate().then(
    () => stopAll(5000),
    (err: unknown) => {
      process.stderr.write(`recovery storm failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
      return stopAll(5000);
    },
  );
}
