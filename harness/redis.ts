import { spawn, type ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { LogTail } from "./lines.js";
import { freePort, redisPing } from "./net.js";
import type { Owned, Processes } from "./processes.js";
import { untilReady, waitFor } from "./wait.js";

export interface RedisInstance {
  port: number;
  pid: number;
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a private `redis-server` on a free port (or on `port`), keeping nothing on disk. Redis
 * cannot pick its own port, so a port found free can be taken before redis binds it (by anything
 * else starting on the machine): then it exits, and another free port is tried.
 */
export async function startRedis(port?: number): Promise<RedisInstance> {
  for (let attempt = 1; ; attempt++) {
    const started = await tryStartRedis(port ?? (await freePort()));
    if (started) return started;
    if (port !== undefined || attempt === 5) throw new Error(`redis-server could not bind ${port ?? "a free port"} (${attempt} attempts)`);
  }
}

async function tryStartRedis(p: number): Promise<RedisInstance | undefined> {
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"],
    { stdio: "ignore" },
  );
  const url = `redis://127.0.0.1:${p}`;
  const up = await waitFor(
    async () => {
      if (child.exitCode !== null) return "exited"; // the port was taken
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on("error", () => undefined); // refused while redis starts: retried by waitFor
      try {
        await probe.connect();
        // Ours, not another redis-server that holds the port (ours then exits).
        return (await probe.info("server")).includes(`process_id:${child.pid}\r\n`) && "up";
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    },
    { what: `redis-server on ${p}` },
  );
  if (up === "exited") return undefined;
  return {
    port: p,
    pid: child.pid!,
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        // Already gone (a second stop, after a SIGKILL that left no exit code): nothing to wait for.
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  };
}

/**
 * A private redis-server for a bench: its own process group that `processes` stops, on a free
 * port, its files in `dir`, nothing saved; resolves once it answers PING. A start that fails is
 * stopped and reported with what it wrote.
 */
export async function spawnRedis(
  processes: Processes,
  dir: string,
  options: { args?: string[]; tail?: LogTail; timeoutMs?: number } = {},
): Promise<{ proc: Owned; port: number }> {
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, ...(options.args ?? [])];
  const proc = processes.spawn("redis-server", "redis-server", args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, cwd: dir });
  const tail = (options.tail ?? new LogTail(30)).attach(proc.child.stdout, proc.child.stderr);
  const spawnError = new Promise<never>((_, reject) => proc.child.once("error", reject));
  try {
    await Promise.race([untilReady("redis-server", options.timeoutMs ?? 30_000, () => redisPing(port), proc.child), spawnError]);
  } catch (err) {
    await processes.stop(proc, 1_000);
    throw new Error(`${String(err)}\n${tail.lines.join("\n")}`);
  }
  return { proc, port };
}
