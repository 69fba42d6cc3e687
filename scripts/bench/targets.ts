import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { LogTail } from "../../harness/lines.js";
import { freePort } from "../../harness/net.js";
import { startRedis } from "../../harness/redis.js";
import { untilReady } from "../../harness/wait.js";
import { sleep } from "../loadtest/clock.js";
import { processTree, readProcess } from "../loadtest/server-stats.js";

/** What the bench compares: the baselines and the product in its modes (docs/benchmarks.md). */
export type TargetName = "baseline" | "baseline-w2" | "embedded-w1" | "embedded-w2" | "clustered-w2";

export const TARGETS: readonly TargetName[] = ["baseline", "baseline-w2", "embedded-w1", "embedded-w2", "clustered-w2"];

/** Plain socket.io targets: what the product is measured against, never judged themselves. */
export const REFERENCES: readonly TargetName[] = ["baseline", "baseline-w2"];

export const TARGET_LABELS: Record<TargetName, string> = {
  baseline: "baseline (plain socket.io, 1 process)",
  "baseline-w2": "plain socket.io, 2 processes (reference)",
  "embedded-w1": "product, embedded, WORKERS=1",
  "embedded-w2": "product, embedded, WORKERS=2",
  "clustered-w2": "product, clustered (Redis), WORKERS=2",
};

export const BENCH_API_KEY = "bench-api-key-0123456789abcdef";

const PRODUCT_MAIN = resolve(__dirname, "../../src/primary/main.js");
const BASELINE_MAIN = resolve(__dirname, "baseline-server.js");
const BASELINE_CLUSTER_MAIN = resolve(__dirname, "baseline-cluster.js");

export interface RunningTarget {
  name: TargetName;
  url: string;
  /** The top process (the product's primary, the baseline, or the reference's primary). */
  pid: number;
  /** API key for tokens; undefined for the plain socket.io references (no authentication). */
  apiKey: string | undefined;
  /** The side port (GET /metrics, /readyz); the product only. */
  healthUrl?: string;
  stop(): Promise<void>;
}

export { freePort, startRedis };

/** Waits for a started server (`untilReady`); a failure says what the server last wrote. */
async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, child: ChildProcess, output: string[]): Promise<void> {
  try {
    await untilReady(what, timeoutMs, async () => check(), child);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${output.slice(-20).join("\n")}`);
  }
}

/** Stops a process tree: SIGTERM (the product drains, profiles get written), SIGKILL for what is left. */
async function stopTree(child: ChildProcess, timeoutMs: number): Promise<void> {
  const pids = child.pid ? processTree(child.pid) : [];
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    await Promise.race([exited, sleep(timeoutMs)]);
  }
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

export interface StartOptions {
  redisUrl?: string;
  /** Directory for V8 CPU profiles of the server processes (`node --cpu-prof`). */
  cpuProfDir?: string;
  /** Extra node flags for the top process (experiments: `--max-semi-space-size=1`, say). */
  nodeArgs?: string[];
  /** Extra environment for the product (experiments: `PERSISTENCE=off`, say). */
  env?: Record<string, string>;
}

/** The last 200 lines a server wrote. */
function collector(): { output: string[]; collect(stream: NodeJS.ReadableStream | null): void } {
  const tail = new LogTail(200);
  return { output: tail.lines, collect: (stream) => void tail.attach(stream) };
}

const execArgvOf = (options: StartOptions) => [...(options.nodeArgs ?? []), ...(options.cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", options.cpuProfDir] : [])];

/** Starts a target on free ports and resolves once it serves. */
export async function startTarget(name: TargetName, options: StartOptions = {}): Promise<RunningTarget> {
  if (REFERENCES.includes(name)) return { name, ...(await startPlain(name === "baseline" ? 1 : 2, options)) };
  if (name === "clustered-w2" && !options.redisUrl) throw new Error("clustered target needs a Redis URL");
  const workers = name === "embedded-w1" ? 1 : 2;
  return { name, ...(await startProduct({ ...options, workers, redisUrl: name === "clustered-w2" ? options.redisUrl : undefined })) };
}

/** A started server, whichever it is. */
export type ServerProcess = Omit<RunningTarget, "name">;

/**
 * Plain socket.io: one process (baseline-server.ts) or `processes` of them behind node:cluster
 * (baseline-cluster.ts), on a free port.
 */
export async function startPlain(processes: 1 | 2, options: StartOptions = {}): Promise<ServerProcess> {
  const { output, collect } = collector();
  const main = processes === 1 ? [BASELINE_MAIN] : [BASELINE_CLUSTER_MAIN, "--workers", "2"];
  const child = spawn(process.execPath, [...execArgvOf(options), ...main, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  collect(child.stdout);
  collect(child.stderr);
  let port = 0;
  await waitUntil(
    () => {
      const line = output.find((l) => l.startsWith('{"port"'));
      if (line) port = (JSON.parse(line) as { port: number }).port;
      return port > 0;
    },
    15_000,
    TARGET_LABELS[processes === 1 ? "baseline" : "baseline-w2"],
    child,
    output,
  );
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, apiKey: undefined, stop: () => stopTree(child, 10_000) };
}

/**
 * The product with `workers` workers, clustered over `redisUrl` when given (embedded mode
 * otherwise), on free ports; resolves once /readyz answers 200. It waits longer the more
 * workers it forks: on two cores, eight workers take a while to load.
 */
export async function startProduct(options: StartOptions & { workers: number }): Promise<ServerProcess> {
  const { output, collect } = collector();
  const [port, healthPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), "cerebellum-bench-"));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: String(port),
    HEALTH_PORT: String(healthPort),
    WORKERS: String(options.workers),
    API_KEY: BENCH_API_KEY,
    LOG_LEVEL: "warn",
    DATA_DIR: dataDir,
    // The bench measures the server's work per connect, not the balancer's admission.
    CONNECT_RATE_LIMIT: "0",
    // The bench's few publishers send thousands of events a second each, far past the
    // per-connection limit made for apps' clients (the baseline has none): measured without it.
    CLIENT_RATE_LIMIT_PER_SEC: "0",
    ...(options.redisUrl ? { REDIS_URL: options.redisUrl, REDIS_KEY_PREFIX: `bench${port}:` } : {}),
    ...options.env,
  };
  const child = spawn(process.execPath, [...execArgvOf(options), PRODUCT_MAIN], { cwd: dataDir, env, stdio: ["ignore", "pipe", "pipe"] });
  collect(child.stdout);
  collect(child.stderr);
  try {
    await waitUntil(
      async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined))?.status === 200,
      60_000 + 10_000 * options.workers,
      `product (WORKERS=${options.workers}${options.redisUrl ? ", clustered" : ""})`,
      child,
      output,
    );
  } catch (err) {
    // Not ready: whatever it started must not outlive the bench.
    await stopTree(child, 5000);
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    apiKey: BENCH_API_KEY,
    healthUrl: `http://127.0.0.1:${healthPort}`,
    stop: async () => {
      await stopTree(child, 20_000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Waits until a started server's memory is steady: its processes' summed RSS spans less than
 * 1 MiB over the last 2 s (at most `timeoutMs`). A process may still be loading code or
 * collecting its startup garbage when it first answers; the idle reading of the memory test
 * must not count that as growth per connection (nor a shrink as a saving).
 */
export async function untilSettled(pid: number, timeoutMs = 15_000, signal?: AbortSignal): Promise<void> {
  const readings: number[] = [];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !signal?.aborted) {
    readings.push(processTree(pid).reduce((sum, p) => sum + (readProcess(p)?.rssBytes ?? 0), 0));
    const window = readings.slice(-5); // 5 readings, 500 ms apart: 2 s
    if (window.length === 5 && Math.max(...window) - Math.min(...window) < 2 ** 20) return;
    await sleep(500);
  }
}
