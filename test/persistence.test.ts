import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Socket } from "socket.io-client";
import { dynamoClient } from "./helpers/aws.js";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { MODES, startInMode } from "./helpers/modes.js";
import { freePort } from "./helpers/ports.js";
import type { RedisInstance } from "./helpers/redis.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { latch, waitFor } from "./helpers/wait.js";

type Page = { success: boolean; error?: string; pastMessages: Array<{ content: unknown; createdAt: string }>; lastEvaluatedKey?: unknown };
type Ack = { success: boolean; error?: string; messageId?: string };

const history = (s: Socket, channel: string, limit: unknown = 50, sort: unknown = "ascending", key: unknown = null) =>
  request<Page>(s, "channel:history", channel, limit, sort, key);

/** Publishes one after another, each acked (durable) before the next, so createdAt strictly grows. */
async function publishAll(s: Socket, channel: string, contents: unknown[]): Promise<string[]> {
  const ids: string[] = [];
  for (const content of contents) {
    const ack = await request<Ack>(s, "message:queue", channel, content);
    expect(ack).toMatchObject({ success: true });
    ids.push(ack.messageId!);
  }
  return ids;
}

const tempDataDir = () => join(mkdtempSync(join(tmpdir(), "cerebellum-data-")), "data");

/**
 * Both modes with the embedded store; with FIDELITY_DYNAMODB_ENDPOINT set (DynamoDB Local, see
 * docs/persistence.md), also the dynamodb sink against it.
 */
const fidelity = process.env.FIDELITY_DYNAMODB_ENDPOINT;
const TARGETS: Array<{ name: string; mode: (typeof MODES)[number]; external?: string }> = [
  ...MODES.map((mode) => ({ name: `${mode}, embedded store`, mode })),
  ...(fidelity ? [{ name: "embedded, dynamodb sink on DynamoDB Local", mode: "embedded" as const, external: fidelity }] : []),
];

describe.each(TARGETS)("history ($name)", ({ mode, external }) => {
  let server: RunningServer;
  let redis: RedisInstance | undefined;
  let client: Socket;
  let seq = 0;
  const fresh = (prefix: string) => `${prefix}:${mode}:${++seq}`;
  const tables = external ? { messages: `fidelity_messages_${Date.now()}`, channels: `fidelity_channels_${Date.now()}` } : { messages: "messages", channels: "channels" };

  beforeAll(async () => {
    const storePort = await freePort();
    const env: Record<string, string> = external
      ? { PERSISTENCE: "dynamodb", DYNAMODB_ENDPOINT: external, DYNAMODB_MESSAGES_TABLE_NAME: tables.messages, DYNAMODB_CHANNELS_TABLE_NAME: tables.channels }
      : { STORE_PORT: String(storePort) };
    ({ server, redis } = await startInMode(mode, { workers: 2, env: { ...env, PERSISTENCE_BATCH_WAIT_MS: "5" } }));
    client = await connect(server.url, server.token(), { transports: ["websocket"] });
    // The dynamodb sink creates its tables in the background (PERSISTENCE_CREATE_TABLES).
    await waitFor(async () => (await history(client, "warm-up")).success, { what: "tables" });
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
    await redis?.stop();
  });

  it("returns a published message with its createdAt, from a client on another worker too", async () => {
    const channel = fresh("chat");
    const reader = await connect(server.url, server.token(), { transports: ["websocket"] });
    const ack = await request<Ack>(client, "message:queue", channel, "hello");
    const received = await history(reader, channel);
    expect(received.success).toBe(true);
    expect(received.pastMessages).toEqual([{ content: "hello", createdAt: expect.stringMatching(/Z$/) }]);
    expect(received.lastEvaluatedKey).toBeUndefined();
    if (!external) return; // the embedded store's own layout is checked in test/embedded-store.test.ts
    // Stored in the contract's layout.
    const item = await dynamoClient(external).send(
      new GetItemCommand({ TableName: tables.messages, Key: { channelName: { S: channel }, messageId: { S: ack.messageId! } } }),
    );
    expect(item.Item).toMatchObject({ channelName: { S: channel }, content: { S: "hello" }, createdAt: { S: received.pastMessages[0]!.createdAt } });
  });

  it("round-trips content of every JSON shape exactly", async () => {
    const channel = fresh("shapes");
    const contents = [
      "", "text", 0, -1.5, 1e21, 1e200, true, false, null, [], {}, { a: { b: [1, "2", null, { c: false, d: "" }] } },
      [[["deep"]]], [""], { "": "empty key" }, JSON.parse('{"__proto__": {"x": 1}}') as unknown, "ünï 😀",
      { z: 1, a: 2, m: { y: [], b: "", k: { q: null, c: true } } },
    ];
    await publishAll(client, channel, contents);
    const page = await history(client, channel, 100);
    expect(JSON.stringify(page.pastMessages.map((m) => m.content))).toBe(JSON.stringify(contents));
    expect(page.pastMessages.map((m) => m.content)).toEqual(contents);
  });

  it("pages ascending and descending with lastEvaluatedKey across 3 pages", async () => {
    const channel = fresh("paging");
    const contents = Array.from({ length: 25 }, (_, i) => i);
    await publishAll(client, channel, contents);
    for (const [sort, expected] of [
      ["ascending", contents],
      ["descending", [...contents].reverse()],
    ] as const) {
      const seen: unknown[] = [];
      const sizes: number[] = [];
      let key: unknown = null;
      do {
        const page = await history(client, channel, 10, sort, key);
        expect(page.success).toBe(true);
        seen.push(...page.pastMessages.map((m) => m.content));
        sizes.push(page.pastMessages.length);
        key = page.lastEvaluatedKey;
      } while (key !== undefined && sizes.length < 10);
      expect(sizes.filter((n) => n > 0)).toEqual([10, 10, 5]);
      expect(seen).toEqual(expected);
    }
  });

  it("validates limit (default 50, 1..100) and refuses foreign cursors", async () => {
    const channel = fresh("limits");
    await publishAll(client, channel, Array.from({ length: 55 }, (_, i) => i));
    for (const bad of [0, 101, "x", 1.5, -1]) {
      expect(await history(client, channel, bad)).toMatchObject({ success: false, error: "INVALID_ARGUMENT" });
    }
    const byDefault = await history(client, channel, null, null, null);
    expect(byDefault.pastMessages).toHaveLength(50);
    expect(byDefault.lastEvaluatedKey).toBeDefined();
    expect(await history(client, channel, 10, "sideways")).toMatchObject({ success: false, error: "INVALID_ARGUMENT" });
    expect(await history(client, channel, 10, "ascending", { channelName: "other", messageId: "x", createdAt: "y" })).toMatchObject({
      success: false,
      error: "INVALID_ARGUMENT",
    });
    expect(await history(client, channel, 10, "ascending", "garbage")).toMatchObject({ success: false, error: "INVALID_ARGUMENT" });
  });

  it("answers an unknown channel with an empty page", async () => {
    expect(await history(client, fresh("nobody-wrote-here"))).toEqual({ success: true, pastMessages: [] });
  });

  // The embedded store's channel list is read from its files, after a stop (test/embedded-store.test.ts).
  it.skipIf(!external)("records subscribed channels in the channels table, off the ack's path", async () => {
    const channel = fresh("bookkeeping");
    expect(await request(client, "channel:subscribe", channel)).toEqual({ success: true });
    const store = dynamoClient(external!);
    await waitFor(
      async () =>
        (await store.send(new GetItemCommand({ TableName: tables.channels, Key: { channelName: { S: channel } } }))).Item !== undefined,
      { what: "channels item" },
    );
  });

  // Last in this block: by now the store created its tables and every worker's pool thread built
  // its SDK client for history reads, which is where the SDK prints its notice on Node 20.
  it("keeps the AWS SDK's Node-version notice out of the logs", async () => {
    expect((await history(client, fresh("notice"))).success).toBe(true);
    expect(server.output.filter((line) => line.includes("NodeVersionSupportWarning"))).toEqual([]);
  });
});

describe("embedded store across restarts", () => {
  const dataDirs: string[] = [];
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
    for (const d of dataDirs) rmSync(join(d, ".."), { recursive: true, force: true });
  });

  it("keeps history across a restart with the same DATA_DIR", async () => {
    const dataDir = tempDataDir();
    dataDirs.push(dataDir);
    const first = await startServer({ workers: 2, env: { DATA_DIR: dataDir } });
    const a = await connect(first.url, first.token(), { transports: ["websocket"] });
    await publishAll(a, "survivor", ["before", { n: 1 }]);
    a.close();
    expect((await first.stop()).code).toBe(0);

    const second = await startServer({ workers: 2, env: { DATA_DIR: dataDir } });
    const b = await connect(second.url, second.token(), { transports: ["websocket"] });
    expect((await history(b, "survivor")).pastMessages.map((m) => m.content)).toEqual(["before", { n: 1 }]);
    await second.stop();
  });

  it("flushes queued messages on SIGTERM", async () => {
    const dataDir = tempDataDir();
    dataDirs.push(dataDir);
    // Batches that would wait a minute: only the shutdown flush can store them.
    const env = { DATA_DIR: dataDir, PERSISTENCE_BATCH_WAIT_MS: "60000", PERSISTENCE_BATCH_SIZE: "1000" };
    const first = await startServer({ workers: 2, env });
    const subscriber = await connect(first.url, first.token(), { transports: ["websocket"] });
    const publisher = await connect(first.url, first.token(), { transports: ["websocket"] });
    await request(subscriber, "channel:subscribe", "flushed");
    const count = 200;
    // Broadcast comes after enqueue: once the subscriber has them all, the server holds them all.
    const all = latch(count, 15_000, "broadcasts");
    subscriber.on("message:receive:flushed", () => all.hit());
    for (let i = 0; i < count; i++) publisher.emit("message:queue", "flushed", i);
    await all.done;
    const stopped = await first.stop("SIGTERM");
    expect(stopped.code).toBe(0);

    const second = await startServer({ workers: 2, env: { DATA_DIR: dataDir } });
    const reader = await connect(second.url, second.token(), { transports: ["websocket"] });
    const seen: unknown[] = [];
    let key: unknown = null;
    do {
      const page = await history(reader, "flushed", 100, "ascending", key);
      seen.push(...page.pastMessages.map((m) => m.content));
      key = page.lastEvaluatedKey;
    } while (key !== undefined);
    expect(new Set(seen).size).toBe(count);
    expect(seen).toHaveLength(count);
    await second.stop();
  });

  it("on SIGTERM, acks every publish it took before the publisher's connection closes, and stores each once", async () => {
    const dataDir = tempDataDir();
    dataDirs.push(dataDir);
    // Batches that would wait ten minutes: these acks can only come from the drain.
    // (A roomy shutdown budget: a quarter of it is the time the acks may take on a busy machine.)
    const env = { DATA_DIR: dataDir, PERSISTENCE_BATCH_WAIT_MS: "600000", PERSISTENCE_BATCH_SIZE: "1000", SHUTDOWN_TIMEOUT_MS: "12000" };
    const first = await startServer({ workers: 1, env });
    const subscriber = await connect(first.url, first.token(), { transports: ["websocket"] });
    const publisher = await connect(first.url, first.token(), { transports: ["websocket"] });
    await request(subscriber, "channel:subscribe", "drained");
    const count = 50;
    const all = latch(count, 15_000, "broadcasts");
    subscriber.on("message:receive:drained", () => all.hit());
    // What the publisher sees, in order: its acks, then its connection closing.
    const seen: string[] = [];
    const closed = new Promise<void>((resolve) => publisher.once("disconnect", () => resolve()));
    publisher.once("disconnect", () => seen.push("disconnect"));
    for (let i = 0; i < count; i++) {
      publisher.emit("message:queue", "drained", i, (ack: { success: boolean; error?: string }) => seen.push(ack.success ? "ack" : `refused ${ack.error}`));
    }
    // Broadcast comes after the server took them: once the subscriber has them all, every ack is owed.
    await all.done;
    expect(seen).toEqual([]);

    expect((await first.stop("SIGTERM")).code).toBe(0);
    await closed;
    expect(seen).toEqual([...Array<string>(count).fill("ack"), "disconnect"]);

    // Stored once each: nothing for a publisher to send again.
    const second = await startServer({ workers: 1, env: { DATA_DIR: dataDir } });
    const reader = await connect(second.url, second.token(), { transports: ["websocket"] });
    const page = await history(reader, "drained", 100, "ascending", null);
    expect(page.pastMessages.map((m) => m.content).sort((a, b) => Number(a) - Number(b))).toEqual([...Array(count).keys()]);
    await second.stop();
  });
});
