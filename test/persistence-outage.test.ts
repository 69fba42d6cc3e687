import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Socket } from "socket.io-client";
import { startDynalite, stopAllDynalites } from "./helpers/aws.js";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { readAll } from "./helpers/history.js";
import { freePort } from "./helpers/ports.js";
import { startServer, stopAllServers } from "./helpers/server.js";
import { latch, waitFor } from "./helpers/wait.js";
import { workerOf } from "./helpers/workers.js";

type Ack = { success: boolean; error?: string };
type Page = { success: boolean; error?: string; pastMessages: Array<{ content: unknown }>; lastEvaluatedKey?: unknown };

const temp: string[] = [];
const tempDir = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `cerebellum-${name}-`));
  temp.push(d);
  return d;
};

afterAll(async () => {
  closeAllClients();
  await stopAllServers();
  await stopAllDynalites();
  for (const d of temp) rmSync(d, { recursive: true, force: true });
});

let tableSeq = 0;
/** A server writing to `endpoint` with fast retry and replay settings, and its own tables. */
function dynamoEnv(endpoint: string, dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  tableSeq++;
  return {
    PERSISTENCE: "dynamodb",
    DYNAMODB_ENDPOINT: endpoint,
    DYNAMODB_MESSAGES_TABLE_NAME: `messages_${process.pid}_${tableSeq}`,
    DYNAMODB_CHANNELS_TABLE_NAME: `channels_${process.pid}_${tableSeq}`,
    DATA_DIR: dataDir,
    PERSISTENCE_RETRIES: "2",
    PERSISTENCE_RETRY_BASE_MS: "50",
    PERSISTENCE_RETRY_MAX_MS: "200",
    PERSISTENCE_REQUEST_TIMEOUT_MS: "1000",
    PERSISTENCE_REPLAY_INTERVAL_MS: "500",
    PERSISTENCE_BATCH_WAIT_MS: "20",
    ...extra,
  };
}


describe("persistence when the store is down", () => {
  it("keeps every acknowledged message through a 30 s outage, exactly once", async () => {
    const store = await startDynalite({ path: join(tempDir("dynalite"), "db") });
    const dataDir = join(tempDir("data"), "data");
    const server = await startServer({ workers: 2, env: dynamoEnv(store.endpoint, dataDir) });
    // Wait for the worker that creates the tables (PERSISTENCE_CREATE_TABLES defaults on with an endpoint).
    const publishers: Socket[] = [];
    while (publishers.length < 2 || new Set(publishers.map(workerOf)).size < 2) {
      publishers.push(await connect(server.url, server.token(), { transports: ["websocket"] }));
    }
    const reader = publishers[0]!;
    await waitFor(async () => (await request<Page>(reader, "channel:history", "steady", 1, "ascending", null)).success, {
      what: "tables",
    });

    const sent: string[] = [];
    const acks: Array<Promise<Ack>> = [];
    let publishing = true;
    const loop = (async () => {
      for (let n = 0; publishing; n++) {
        for (const [i, p] of publishers.entries()) {
          const content = `p${i}-${n}`;
          sent.push(content);
          acks.push(request<Ack>(p, "message:queue", "steady", content));
        }
        await new Promise((r) => setTimeout(r, 50)); // the publishing rate, not a wait for a condition
      }
    })();
    const phase = (ms: number) => new Promise((r) => setTimeout(r, ms)); // duration of a scenario phase
    await phase(2_000);
    await store.stop();
    const outageStarted = Date.now();
    await phase(1_000);
    expect(await request<Page>(reader, "channel:history", "steady", 10, "ascending", null)).toMatchObject({
      success: false,
      error: "STORE_UNAVAILABLE",
    });
    await phase(30_000 - (Date.now() - outageStarted));
    const sentDuringOutage = sent.length;
    await store.start();
    await phase(2_000);
    publishing = false;
    await loop;

    const results = await Promise.all(acks);
    expect(results.filter((a) => !a.success)).toEqual([]);
    // The outage went through the spill file and back (the workers say so in their logs).
    await waitFor(() => server.output.some((l) => l.includes("replayed spilled messages into the store")), { what: "replay log" });
    expect(server.output.some((l) => l.includes("spilling to disk until it answers"))).toBe(true);
    await waitFor(async () => (await readAll(reader, "steady")).length >= sent.length, { timeoutMs: 30_000, what: "replay" });
    const stored = await readAll(reader, "steady");
    expect(stored).toHaveLength(sent.length);
    expect(new Set(stored)).toEqual(new Set(sent));
    expect(sentDuringOutage).toBeGreaterThan(500);
    await waitFor(() => readdirSync(join(dataDir, "spill")).filter((f) => f.startsWith("worker-")).length === 0, {
      what: "spill files replayed and removed",
    });
    await server.stop();
  });

  it("refuses acked publishes with OVERLOADED at the queue bound", async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const server = await startServer({
      workers: 1,
      // Retries far apart: refused writes stay in memory, where the bound counts them.
      env: dynamoEnv(nowhere, join(tempDir("data"), "data"), {
        PERSISTENCE_QUEUE_MAX: "5",
        PERSISTENCE_RETRIES: "100",
        PERSISTENCE_RETRY_BASE_MS: "60000",
        PERSISTENCE_RETRY_MAX_MS: "60000",
        PERSISTENCE_BATCH_WAIT_MS: "1",
        PERSISTENCE_CREATE_TABLES: "false",
      }),
    });
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    const subscriber = await connect(server.url, server.token(), { transports: ["websocket"] });
    await request(subscriber, "channel:subscribe", "bounded");
    const delivered: unknown[] = [];
    subscriber.on("message:receive:bounded", (m: { content: unknown }) => delivered.push(m.content));
    const refusals = latch(5, 10_000, "OVERLOADED acks");
    const refused: number[] = [];
    for (let i = 0; i < 10; i++) {
      publisher.emit("message:queue", "bounded", i, (ack: Ack) => {
        if (ack.error === "OVERLOADED") {
          refused.push(i);
          refusals.hit();
        }
      });
    }
    await refusals.done;
    expect(refused).toEqual([5, 6, 7, 8, 9]);
    // A refused message is not broadcast either, so that a retry cannot show twice.
    await request(publisher, "channel:subscribe", "barrier");
    await waitFor(() => delivered.length === 5, { what: "accepted broadcasts" });
    expect(delivered).toEqual([0, 1, 2, 3, 4]);
    await server.stop("SIGKILL");
  });

  it("spills queued messages on SIGTERM while the store is down, and replays them at the next start", async () => {
    const store = await startDynalite();
    const dataDir = join(tempDir("data"), "data");
    const env = dynamoEnv(store.endpoint, dataDir, { PERSISTENCE_BATCH_WAIT_MS: "60000", PERSISTENCE_BATCH_SIZE: "1000" });
    const first = await startServer({ workers: 2, env });
    const subscriber = await connect(first.url, first.token(), { transports: ["websocket"] });
    const publisher = await connect(first.url, first.token(), { transports: ["websocket"] });
    await request(subscriber, "channel:subscribe", "spilled");
    const all = latch(100, 10_000, "broadcasts");
    subscriber.on("message:receive:spilled", () => all.hit());
    for (let i = 0; i < 100; i++) publisher.emit("message:queue", "spilled", i);
    await all.done;
    await store.stop();
    expect((await first.stop("SIGTERM")).code).toBe(0);
    expect(readdirSync(join(dataDir, "spill")).some((f) => f.startsWith("worker-"))).toBe(true);

    await store.start();
    const second = await startServer({ workers: 2, env });
    const reader = await connect(second.url, second.token(), { transports: ["websocket"] });
    await waitFor(async () => (await readAll(reader, "spilled").catch(() => [])).length >= 100, { what: "replay at start" });
    const stored = await readAll(reader, "spilled");
    expect([...stored].sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 100 }, (_, i) => i));
    await second.stop();
  });
});
