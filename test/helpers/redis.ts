import { spawn, type ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { freePort } from "./ports.js";
import { waitFor } from "./wait.js";

export interface RedisInstance {
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** Starts a private `redis-server` on a free port, keeping nothing on disk. */
export async function startRedis(port?: number): Promise<RedisInstance> {
  const p = port ?? (await freePort());
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"],
    { stdio: "ignore" },
  );
  const url = `redis://127.0.0.1:${p}`;
  await waitFor(
    async () => {
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on("error", () => undefined); // refused while redis starts: retried by waitFor
      try {
        await probe.connect();
        return (await probe.ping()) === "PONG";
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    },
    { what: `redis-server on ${p}` },
  );
  return {
    port: p,
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
