import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Socket } from "socket.io-client";
import { MessageDb } from "../src/store/message-db.js";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { readAll } from "./helpers/history.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { isAlive, waitFor } from "./helpers/wait.js";
import { logLines, oneOnEachWorker, workerOf } from "./helpers/workers.js";

type Ack = { success: boolean; error?: string };
type Page = { success: boolean; error?: string; pastMessages: Array<{ content: unknown; createdAt: string }>; lastEvaluatedKey?: unknown };

const dirs: string[] = [];
const tempDataDir = () => {
  const d = mkdtempSync(join(tmpdir(), "cerebellum-store-"));
  dirs.push(d);
  return join(d, "data");
};
const stopped: number[] = [];
afterEach(async () => {
  // A store left stopped by a failed test would hold its files: let it go before it is killed.
  for (const pid of stopped.splice(0)) if (isAlive(pid)) process.kill(pid, "SIGCONT");
  closeAllClients();
  await stopAllServers();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Short retries, timeouts and replays, so that an outage plays out in seconds. */
const FAST = {
  // The publishers here send far past the per-connection event rate made for apps' clients.
  CLIENT_RATE_LIMIT_PER_SEC: "0",
  PERSISTENCE_BATCH_WAIT_MS: "5",
  PERSISTENCE_RETRIES: "2",
  PERSISTENCE_RETRY_BASE_MS: "50",
  PERSISTENCE_RETRY_MAX_MS: "200",
  PERSISTENCE_REQUEST_TIMEOUT_MS: "500",
  PERSISTENCE_REPLAY_INTERVAL_MS: "300",
};

/** Pids of the store processes that reported ready, oldest first. */
const storePids = (server: RunningServer) => logLines<{ pid: number }>(server, "store ready").map((l) => l.pid);

/**
 * Publishes from each socket, with acks, `burst` messages every 20 ms (a publishing rate, not a
 * wait for a condition) until stopped; resolves with each content and its ack (undefined when
 * the connection dropped before it came).
 */
function publishUntilStopped(publishers: Socket[], channel: string, burst = 5) {
  const sent: Array<{ content: string; ack: Promise<Ack | undefined> }> = [];
  let publishing = true;
  const loop = (async () => {
    for (let n = 0; publishing; n++) {
      for (const [i, p] of publishers.entries()) {
        for (let k = 0; k < burst; k++) {
          const content = `p${i}-${n}-${k}`;
          const ack = p.connected ? request<Ack>(p, "message:queue", channel, content).catch(() => undefined) : Promise.resolve(undefined);
          sent.push({ content, ack });
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    sent,
    async stop() {
      publishing = false;
      await loop;
      const acks = await Promise.all(sent.map((s) => s.ack));
      return sent.map((s, i) => ({ content: s.content, ack: acks[i] }));
    },
  };
}

/** Exactly-once: every acked message is in history once, and nothing is there twice. */
async function expectAckedOnce(reader: Socket, channel: string, results: Array<{ content: string; ack: Ack | undefined }>) {
  const acked = results.filter((r) => r.ack?.success).map((r) => r.content);
  await waitFor(async () => (await readAll(reader, channel).catch(() => [])).length >= acked.length, {
    what: `${acked.length} acked messages in history`,
    timeoutMs: 30_000,
  });
  const stored = (await readAll(reader, channel)) as string[];
  expect(stored.length).toBe(new Set(stored).size);
  const storedSet = new Set(stored);
  expect(acked.filter((c) => !storedSet.has(c))).toEqual([]);
  return { acked, stored };
}

describe("the embedded store process", () => {
  it("SIGKILLed under publish load: restarted by the primary; every acked message is in history exactly once", async () => {
    const server = await startServer({ workers: 2, env: { DATA_DIR: tempDataDir(), ...FAST } });
    const [a, b] = await oneOnEachWorker(server);
    const run = publishUntilStopped([a, b], "crash");
    const phase = (ms: number) => new Promise((r) => setTimeout(r, ms)); // duration of a scenario phase
    for (let kill = 1; kill <= 2; kill++) {
      await phase(700);
      const pids = storePids(server);
      process.kill(pids[pids.length - 1]!, "SIGKILL");
      await waitFor(() => storePids(server).length > kill, { what: `the store restarted (${kill})`, timeoutMs: 20_000 });
    }
    await phase(700);
    const results = await run.stop();
    expect(results.filter((r) => !r.ack?.success)).toEqual([]);
    expect(new Set(storePids(server)).size).toBe(3);
    expect(logLines(server, "embedded store exited; workers spill until it is back")).toHaveLength(2);
    const { acked } = await expectAckedOnce(a, "crash", results);
    expect(acked.length).toBeGreaterThan(500);
  });

  it("hung (SIGSTOP) under publish load: batches spill and acks keep coming; once it answers they are replayed, exactly once", async () => {
    const dataDir = tempDataDir();
    const server = await startServer({ workers: 2, env: { DATA_DIR: dataDir, ...FAST } });
    const [a, b] = await oneOnEachWorker(server);
    const run = publishUntilStopped([a, b], "hang");
    const phase = (ms: number) => new Promise((r) => setTimeout(r, ms)); // duration of a scenario phase
    await phase(500);
    const pid = storePids(server)[0]!;
    process.kill(pid, "SIGSTOP");
    stopped.push(pid);
    await waitFor(() => logLines(server, "store unavailable: spilling to disk until it answers").length >= 2, { what: "both workers spilling" });
    expect(await request<Page>(a, "channel:history", "hang", 10, "ascending", null)).toMatchObject({ success: false, error: "STORE_UNAVAILABLE" });
    const sentWhileHung = run.sent.length;
    await phase(1_500);
    expect(run.sent.length - sentWhileHung).toBeGreaterThan(200);
    process.kill(pid, "SIGCONT");
    await waitFor(() => logLines(server, "store is back: writing batches to it again").length >= 2, { what: "both workers back", timeoutMs: 20_000 });
    await phase(300);
    const results = await run.stop();
    expect(results.filter((r) => !r.ack?.success)).toEqual([]);
    const { acked, stored } = await expectAckedOnce(a, "hang", results);
    expect(stored.length).toBe(acked.length);
    expect(logLines(server, "replayed spilled messages into the store").length).toBeGreaterThan(0);
    await waitFor(() => readdirSync(join(dataDir, "spill")).filter((f) => f.startsWith("worker-")).length === 0, { what: "spill files replayed and removed" });
    expect(storePids(server)).toEqual([pid]); // hung, not dead: never restarted
  });

  it("hung at shutdown: the workers spill, the primary ends the store in time, and the next start replays", async () => {
    const dataDir = tempDataDir();
    // Batches that would wait a minute: only the shutdown flush can store them.
    const env = { DATA_DIR: dataDir, ...FAST, PERSISTENCE_BATCH_WAIT_MS: "60000", PERSISTENCE_BATCH_SIZE: "1000" };
    const first = await startServer({ workers: 2, env });
    const [a, b] = await oneOnEachWorker(first);
    // No acks: they would come once the messages are durable, at the shutdown, after the
    // sockets are closed. A request on each connection after its publishes is the barrier.
    for (let i = 0; i < 100; i++) (i % 2 ? a : b).emit("message:queue", "at-stop", i);
    await Promise.all([request(a, "channel:subscribe", "barrier"), request(b, "channel:subscribe", "barrier")]);
    const pid = storePids(first)[0]!;
    process.kill(pid, "SIGSTOP");
    stopped.push(pid);
    const exit = await first.stop("SIGTERM");
    expect(exit.code).toBe(0);
    expect(isAlive(pid)).toBe(false);
    expect(readdirSync(join(dataDir, "spill")).some((f) => f.startsWith("worker-"))).toBe(true);

    const second = await startServer({ workers: 2, env: { DATA_DIR: dataDir, ...FAST } });
    const reader = await connect(second.url, second.token(), { transports: ["websocket"] });
    await waitFor(async () => (await readAll(reader, "at-stop").catch(() => [])).length >= 100, { what: "replay at start" });
    expect(((await readAll(reader, "at-stop")) as number[]).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it("a worker SIGKILLed under publish load: every message it acked is in history exactly once", async () => {
    const server = await startServer({ workers: 2, env: { DATA_DIR: tempDataDir(), ...FAST } });
    const [a, b] = await oneOnEachWorker(server);
    const run = publishUntilStopped([a, b], "worker-crash");
    // Enough publishes under way from both before the kill (the victim's are checked below).
    await waitFor(() => run.sent.filter((x) => x.content.startsWith("p0-")).length >= 100, { what: "publishing under way" });
    const victim = logLines<{ pid: number }>(server, "worker ready").find((l) => l.worker === workerOf(a))!.pid;
    process.kill(victim, "SIGKILL");
    await waitFor(() => !a.connected, { what: "the victim's client dropped" });
    // The survivor keeps publishing meanwhile.
    const survivorBefore = run.sent.length;
    await waitFor(() => run.sent.length >= survivorBefore + 50, { what: "the survivor publishing after the kill" });
    const results = await run.stop();
    // The survivor's publishes are all acked; the victim's up to its death.
    expect(results.filter((r) => r.content.startsWith("p1-") && !r.ack?.success)).toEqual([]);
    expect(results.filter((r) => r.content.startsWith("p0-") && r.ack?.success).length).toBeGreaterThan(50);
    await expectAckedOnce(b, "worker-crash", results);
  });
});

describe("the embedded store's files", () => {
  it("hold history and the channel list in DATA_DIR/history after a graceful stop", async () => {
    const dataDir = tempDataDir();
    const server = await startServer({ workers: 2, env: { DATA_DIR: dataDir, PERSISTENCE_BATCH_WAIT_MS: "5", CLIENT_RATE_LIMIT_PER_SEC: "0" } });
    const client = await connect(server.url, server.token(), { transports: ["websocket"] });
    expect(await request(client, "channel:subscribe", "files:room")).toEqual({ success: true });
    expect(await request<Ack>(client, "message:queue", "files:room", { z: 1, a: [true, null] })).toMatchObject({ success: true });
    client.close();
    expect((await server.stop()).code).toBe(0);

    const db = await MessageDb.open(join(dataDir, "history"), { sync: false });
    try {
      expect(await db.channels()).toContain("files:room");
      const page = await db.page({ channel: Buffer.from("files:room"), limit: 10, ascending: true });
      const items = JSON.parse(page.itemsJson.toString()) as Array<{ content: unknown; createdAt: string }>;
      expect(JSON.stringify(items.map((i) => i.content))).toBe('[{"z":1,"a":[true,null]}]');
      expect(items[0]!.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    } finally {
      await db.close();
    }
  });
});
