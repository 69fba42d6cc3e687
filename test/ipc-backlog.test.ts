/**
 * IPC_QUEUE_MAX_BYTES: a worker that stops reading its IPC channel (SIGSTOP here; a busy loop or
 * a long pause alike) makes the primary hold every relay for it. Past the bound the primary
 * replaces it, and its clients recover on the others with nothing lost.
 */
import { Redis } from "ioredis";
import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import { request } from "./helpers/client.js";
import { closeAllRecoveringClients, nextConnect, record, recoveringClient } from "./helpers/recovering-client.js";
import { startRedis, type RedisInstance } from "./helpers/redis.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { rssBytes } from "./helpers/proc.js";
import { waitFor } from "./helpers/wait.js";
import { logLines, workerOf } from "./helpers/workers.js";

const CONTENT = "x".repeat(8 * 1024);

/** A recovering client on each of the server's two workers, by worker id: one publishes, the other's worker is stopped. */
async function clientOnEachWorker(server: RunningServer): Promise<[[number, Socket], [number, Socket]]> {
  const byWorker = new Map<number, Socket>();
  for (let i = 0; i < 20 && byWorker.size < 2; i++) {
    const socket = await recoveringClient(server.url, server.token());
    if (byWorker.has(workerOf(socket))) socket.close();
    else byWorker.set(workerOf(socket), socket);
  }
  expect(byWorker.size).toBe(2);
  return [...byWorker.entries()] as [[number, Socket], [number, Socket]];
}
const BIG = "x".repeat(32 * 1024);

describe("a worker that stops reading its IPC channel (IPC_QUEUE_MAX_BYTES)", () => {
  afterEach(async () => {
    closeAllRecoveringClients();
    await stopAllServers();
  });

  it("is replaced once the primary holds more than the bound for it; its clients recover everything", async () => {
    const server = await startServer({ workers: 2, env: { PERSISTENCE: "off", IPC_QUEUE_MAX_BYTES: "1048576", CLIENT_RATE_LIMIT_PER_SEC: "0" } });
    const [[, publisher], [victimWorker, victim]] = await clientOnEachWorker(server);
    expect((await request(victim, "channel:subscribe", "feed")).success).toBe(true);
    const received = record(victim, "feed");
    const victimPid = logLines<{ pid: number }>(server, "worker ready").find((e) => e.worker === victimWorker)!.pid;
    const primaryBefore = rssBytes(server.process.pid!);

    process.kill(victimPid, "SIGSTOP");
    const reconnected = nextConnect(victim, 30_000);
    const sent: number[] = [];
    for (let i = 0; i < 400; i++) {
      expect((await request(publisher, "message:queue", "feed", { i, pad: CONTENT })).success).toBe(true);
      sent.push(i);
    }
    const [replaced] = await waitFor(() => {
      const lines = logLines<{ worker: number; backlogBytes: number }>(server, "replacing a worker that stopped reading its IPC channel (IPC_QUEUE_MAX_BYTES)");
      return lines.length > 0 && lines;
    }, { what: "the stopped worker replaced" });
    expect(replaced!.backlogBytes).toBeGreaterThan(1_048_576);
    expect(rssBytes(server.process.pid!) - primaryBefore, "the primary's RSS growth").toBeLessThan(64 * 1024 * 1024);

    expect(await reconnected, "the victim's session was recovered").toBe(true);
    await waitFor(() => received.contents.length >= sent.length, { what: "every message at the recovered client", timeoutMs: 30_000 });
    expect(received.contents.map((c) => (c as { i: number }).i)).toEqual(sent);
  }, 90_000);
});

describe("a clustered worker stopped under broadcast load (SIGSTOP)", () => {
  let redis: RedisInstance | undefined;
  afterEach(async () => {
    closeAllRecoveringClients();
    await stopAllServers();
    await redis?.stop();
    redis = undefined;
  });

  /**
   * In clustered mode broadcasts reach a worker from Redis, not through the primary: what is held
   * for a worker that stopped reading is bounded by Redis's output-buffer limit for pub/sub
   * clients, past which Redis drops that subscriber connection. Once the worker runs again it
   * subscribes anew and catches up from the stream, so its clients miss nothing.
   */
  it("costs the primary nothing, Redis drops its subscription at the output-buffer limit, and its clients get everything once it runs again", async () => {
    redis = await startRedis();
    const admin = new Redis(redis.url);
    // 1 MiB instead of Redis's default 32 MiB, so that 13 MB of broadcasts (beyond what the
    // kernel's socket buffers take) pass it.
    await admin.config("SET", "client-output-buffer-limit", "pubsub 1mb 512kb 1");
    try {
      const server = await startServer({ workers: 2, redisUrl: redis.url, env: { PERSISTENCE: "off", CLIENT_RATE_LIMIT_PER_SEC: "0" } });
      const [[, publisher], [victimWorker, victim]] = await clientOnEachWorker(server);
      expect((await request(victim, "channel:subscribe", "feed")).success).toBe(true);
      const received = record(victim, "feed");
      const victimPid = logLines<{ pid: number }>(server, "worker ready").find((e) => e.worker === victimWorker)!.pid;
      const primaryBefore = rssBytes(server.process.pid!);
      const subscriberOfVictim = async () => String(await admin.client("LIST")).includes(`name=cerebellum-sub-${victimPid} `);
      expect(await subscriberOfVictim(), "the victim's worker holds a subscriber connection").toBe(true);

      process.kill(victimPid, "SIGSTOP");
      const sent: number[] = [];
      try {
        for (let i = 0; i < 400; i++) {
          expect((await request(publisher, "message:queue", "feed", { i, pad: BIG })).success).toBe(true);
          sent.push(i);
        }
        await waitFor(async () => !(await subscriberOfVictim()), { what: "Redis dropping the stopped worker's subscriber connection at its output-buffer limit" });
        expect(rssBytes(server.process.pid!) - primaryBefore, "the primary's RSS growth").toBeLessThan(16 * 1024 * 1024);
        expect(received.contents).toEqual([]);
      } finally {
        process.kill(victimPid, "SIGCONT");
      }
      await waitFor(() => received.contents.length >= sent.length, { what: "every message at the stopped worker's client", timeoutMs: 30_000 });
      expect(received.contents.map((c) => (c as { i: number }).i)).toEqual(sent);
      expect(logLines(server, "subscription caught up from the stream").length).toBeGreaterThan(0);
    } finally {
      admin.disconnect();
    }
  }, 90_000);
});

describe("IpcBacklog", () => {
  it("counts what is sent until send() settles it; over past the bound until back under half, told of both", async () => {
    const { IpcBacklog, estimateSize } = await import("../src/shared/ipc-backlog.js");
    const told: string[] = [];
    const backlog = new IpcBacklog(1000, (bytes) => told.push(`over ${bytes}`), () => told.push("under"));
    const a = backlog.sent(600);
    expect([backlog.bytes, backlog.over, told]).toEqual([600, false, []]);
    a(null);
    const b = backlog.sent(600);
    const c = backlog.sent(600);
    expect([backlog.over, told]).toEqual([true, ["over 1200"]]);
    const d = backlog.sent(600);
    expect(told).toEqual(["over 1200"]); // once while over
    b(null);
    c(null);
    expect([backlog.bytes, backlog.over]).toEqual([600, true]); // not yet under half
    d(null);
    expect([backlog.bytes, backlog.over, told]).toEqual([0, false, ["over 1200", "under"]]);
    // A batch's broadcast strings are counted in full.
    expect(estimateSize({ m: [{ t: "bc", d: "x".repeat(5000) }, { t: "seen" }] })).toBeGreaterThan(5000);
    const unbounded = new IpcBacklog(0, () => told.push("never"));
    unbounded.sent(1e12);
    expect([unbounded.over, told.includes("never")]).toEqual([false, false]);
  });
});
