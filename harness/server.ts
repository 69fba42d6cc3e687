import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import type jwt from "jsonwebtoken";
import { LogTail, onLines } from "./lines.js";
import { freePort, httpStatus } from "./net.js";
import type { Owned, Processes } from "./processes.js";
import { mintToken } from "./token.js";
import { isAlive, untilReady, waitFor } from "./wait.js";

/** The repository, whether this file runs as TypeScript (harness/) or compiled (dist/harness/). */
export const ROOT = resolve(__dirname, basename(resolve(__dirname, "..")) === "dist" ? "../.." : "..");
/** The compiled server (`npm run build`). */
export const MAIN = join(ROOT, "dist/src/primary/main.js");
export const TEST_API_KEY = "test-api-key-0123456789abcdef";

export interface ServerOptions {
  env?: Record<string, string>;
  workers?: number;
  redisUrl?: string;
  /** Wait for /readyz (default true). */
  waitReady?: boolean;
  /** Fixed ports (to restart a server where its clients expect it). */
  port?: number;
  healthPort?: number;
  /** A DATA_DIR that outlives the server (the caller removes it). */
  dataDir?: string;
}

export interface RunningServer {
  port: number;
  healthPort: number;
  url: string;
  healthUrl: string;
  apiKey: string;
  process: ChildProcess;
  output: string[];
  /** A fresh HS256 token for API_KEY. */
  token(claims?: object, options?: jwt.SignOptions): string;
  /** Pids of the workers that logged "worker ready", newest last. */
  workerPids(): number[];
  /** Workers currently alive. */
  liveWorkerPids(): number[];
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

const running = new Set<RunningServer>();
/** Tells this process's servers apart (their Redis key prefixes). */
let started = 0;

/**
 * Starts the compiled server as a user would: its own process tree, env vars, ports the system
 * picks when it binds them (port 0, read back from its "cerebellum listening" line). A port
 * found free a moment before and bound later can be taken in between by anything else starting
 * on the machine (another test run, say).
 */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const cwd = mkdtempSync(join(tmpdir(), "cerebellum-test-"));
  const serial = `${process.pid}-${++started}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    NODE_ENV: "test",
    HOST: "127.0.0.1",
    PORT: String(options.port ?? 0),
    HEALTH_PORT: String(options.healthPort ?? 0),
    WORKERS: String(options.workers ?? 2),
    API_KEY: TEST_API_KEY,
    LOG_LEVEL: "info",
    DATA_DIR: options.dataDir ?? join(cwd, "data"),
    SHUTDOWN_TIMEOUT_MS: "5000",
    ...(options.redisUrl ? { REDIS_URL: options.redisUrl, REDIS_KEY_PREFIX: `t${serial}:` } : {}),
    ...options.env,
  };
  const child = spawn(process.execPath, [MAIN], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  // Whole lines only (readline): a pipe may cut a log line between two chunks.
  onLines([child.stdout, child.stderr], (line) => {
    if (line) output.push(line);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  );

  const workerPids = () =>
    output.flatMap((line) => {
      if (!line.startsWith("{")) return [];
      const entry = JSON.parse(line) as { role?: string; msg?: string; pid?: number };
      return entry.role === "worker" && entry.msg === "worker ready" && entry.pid ? [entry.pid] : [];
    });

  // The ports the server bound, from its "cerebellum listening" line (0 until it is read).
  const bound = { port: options.port ?? 0, healthPort: options.healthPort ?? 0 };
  const listening = (): boolean => {
    if (bound.port !== 0 && bound.healthPort !== 0) return true;
    for (const line of output) {
      if (!line.startsWith("{") || !line.includes('"cerebellum listening"')) continue;
      const entry = JSON.parse(line) as { msg?: string; port?: number; healthPort?: number };
      if (entry.msg !== "cerebellum listening" || !entry.port || !entry.healthPort) continue;
      bound.port = entry.port;
      bound.healthPort = entry.healthPort;
      return true;
    }
    return false;
  };

  const server: RunningServer = {
    get port() {
      listening();
      return bound.port;
    },
    get healthPort() {
      listening();
      return bound.healthPort;
    },
    get url() {
      return `http://127.0.0.1:${server.port}`;
    },
    get healthUrl() {
      return `http://127.0.0.1:${server.healthPort}`;
    },
    apiKey: env.API_KEY!,
    process: child,
    output,
    token: (claims = {}, signOptions = {}) =>
      mintToken(env.API_KEY!, claims, { expiresIn: 300, ...signOptions }),
    workerPids,
    liveWorkerPids: () => workerPids().filter(isAlive),
    async stop(signal = "SIGTERM") {
      running.delete(server);
      const started = Date.now();
      const pids = workerPids();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const result = await Promise.race([
        exited,
        new Promise<null>((r) => setTimeout(() => r(null), 20_000)),
      ]);
      if (!result) child.kill("SIGKILL");
      // Whatever happened, leave nothing behind for the next test.
      for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
      rmSync(cwd, { recursive: true, force: true });
      const final = result ?? (await exited);
      return { ...final, ms: Date.now() - started };
    },
  };
  running.add(server);

  if (options.waitReady !== false) {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`server exited early:\n${output.join("\n")}`);
        if (!listening()) return false;
        const res = await fetch(`${server.healthUrl}/readyz`).catch(() => undefined);
        return res?.status === 200;
      },
      { what: "server ready", timeoutMs: 30_000 },
    );
    // /readyz can answer before this process has read the workers' log lines.
    const workers = Number(env.WORKERS);
    await waitFor(() => workerPids().length >= workers, { what: "worker pids in the log" });
  }
  return server;
}

/** Stops every server a test left running (call from afterEach/afterAll). */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop("SIGKILL")));
}

/**
 * Starts the compiled server for a bench, as its own process group that `processes` stops, on
 * two free ports, in `dir` (so that no developer's .env is read), with `env` over a minimal
 * environment (warn logs, no per-connection rate limit: benches measure the server, not that
 * limit); resolves once /readyz answers 200. A start that fails is stopped and reported with
 * the server's last lines.
 */
export async function spawnServer(
  processes: Processes,
  dir: string,
  env: Record<string, string | undefined>,
  options: { timeoutMs?: number; tail?: LogTail; onSpawn?: (proc: Owned) => void } = {},
): Promise<{ proc: Owned; port: number; healthPort: number; url: string }> {
  const [port, healthPort] = [await freePort(), await freePort()];
  const proc = processes.spawn("server", process.execPath, [MAIN], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOST: "127.0.0.1", PORT: String(port), HEALTH_PORT: String(healthPort), LOG_LEVEL: "warn", CLIENT_RATE_LIMIT_PER_SEC: "0", ...env },
  });
  const tail = (options.tail ?? new LogTail(30)).attach(proc.child.stdout, proc.child.stderr);
  options.onSpawn?.(proc);
  try {
    await untilReady("server /readyz", options.timeoutMs ?? 30_000, async () => (await httpStatus(`http://127.0.0.1:${healthPort}/readyz`)) === 200, proc.child);
  } catch (err) {
    await processes.stop(proc, 2_000);
    throw new Error(`${String(err)}\n${tail.lines.join("\n")}`);
  }
  return { proc, port, healthPort, url: `http://127.0.0.1:${port}` };
}
