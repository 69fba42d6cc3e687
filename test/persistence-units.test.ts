import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { GetItemCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { decodeContent, encodeContent } from "../src/persistence/content-codec.js";
import dynalite from "dynalite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/shared/logger.js";
import { BatchingSink, type BatcherTuning } from "../src/persistence/batcher.js";
import { parseCursor, HistoryRequestError } from "../src/persistence/history-reader.js";
import { SpillFile } from "../src/persistence/spill-file.js";
import { InlineStoreRunner } from "../src/persistence/inline-runner.js";
import type { StoreRunner } from "../src/persistence/store-runner.js";
import type { StoreResults, StoreTask, StoreTaskOf, StoreSettings } from "../src/persistence/store-ops.js";
import type { StoredMessage } from "../src/persistence/record.js";
import type { ChannelMessage } from "../src/shared/contract.js";
import { ensureTables } from "../src/persistence/tables.js";
import { dynamoClient } from "./helpers/aws.js";
import { waitFor } from "./helpers/wait.js";
import { freePort } from "./helpers/ports.js";

const log = createLogger("silent", {});
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "cerebellum-units-"));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

let seq = 0;
const message = (content: unknown = ++seq): ChannelMessage => ({
  createdAt: new Date().toISOString(),
  content,
  messageId: `m-${++seq}-${Math.random().toString(36).slice(2)}`,
});

/** A store whose availability the test flips; it keeps what it stores by key, like DynamoDB. */
class ScriptedStore implements StoreRunner {
  up = true;
  hang = false;
  writes = 0;
  closing = false;
  readonly items = new Map<string, StoredMessage>();
  readonly rejectIds = new Set<string>();

  async run<K extends StoreTask["op"]>(task: StoreTaskOf<K>): Promise<StoreResults[K]> {
    const t = task as StoreTask;
    if (t.op === "channels") return { failed: [] } as unknown as StoreResults[K];
    if (t.op !== "write") throw new Error(`unexpected ${t.op}`);
    this.writes++;
    if (this.hang) return new Promise(() => undefined);
    if (!this.up) throw new Error("connect ECONNREFUSED");
    const rejected = t.records.filter((r) => this.rejectIds.has(r.messageId)).map((r) => ({ messageId: r.messageId, reason: "too big" }));
    for (const r of t.records) if (!this.rejectIds.has(r.messageId)) this.items.set(r.messageId, r);
    return { failed: [], rejected } as unknown as StoreResults[K];
  }
  async close(): Promise<void> {
    this.closing = true;
  }
}

const tuning = (over: Partial<BatcherTuning> = {}): BatcherTuning => ({
  batchSize: 3,
  batchWaitMs: 10,
  queueMax: 100,
  concurrency: 2,
  retries: 2,
  retryBaseMs: 5,
  retryMaxMs: 20,
  replayIntervalMs: 30,
  ...over,
});

function sinkOver(store: StoreRunner, dir: string, over: Partial<BatcherTuning> = {}) {
  return new BatchingSink({
    runner: store,
    spill: new SpillFile(join(dir, "spill"), 0, 1_000_000, log),
    tuning: tuning(over),
    flushTimeoutMs: 1000,
    workerCount: 1,
    log,
  });
}

const durableOf = (e: ReturnType<BatchingSink["enqueue"]>) => {
  if (!e.accepted) throw new Error("refused");
  return e.durable;
};

describe("batching sink", () => {
  it("flushes on size and on age", async () => {
    const store = new ScriptedStore();
    const sink = sinkOver(store, tempDir(), { batchSize: 3, batchWaitMs: 60_000 });
    const full = [1, 2, 3].map(() => durableOf(sink.enqueue("c", message())));
    await Promise.all(full);
    expect(store.writes).toBe(1);
    await sink.close();

    const aged = sinkOver(store, tempDir(), { batchSize: 100, batchWaitMs: 20 });
    await durableOf(aged.enqueue("c", message()));
    expect(store.items.size).toBe(4);
    await aged.close();
  });

  it("refuses at the queue bound while messages are not durable", async () => {
    const store = new ScriptedStore();
    store.hang = true;
    const sink = sinkOver(store, tempDir(), { queueMax: 2, batchSize: 1 });
    expect(sink.enqueue("c", message()).accepted).toBe(true);
    expect(sink.enqueue("c", message()).accepted).toBe(true);
    expect(sink.enqueue("c", message()).accepted).toBe(false);
    expect(sink.pending).toBe(2);
    await sink.close(); // the hung writes are spilled at the flush deadline
  });

  it("retries, spills when the store stays down, replays exactly once when it returns", async () => {
    const store = new ScriptedStore();
    store.up = false;
    const dir = tempDir();
    const sink = sinkOver(store, dir);
    const sent = Array.from({ length: 20 }, () => message());
    await Promise.all(sent.map((m) => durableOf(sink.enqueue("c", m))));
    expect(store.items.size).toBe(0);
    expect(store.writes).toBeGreaterThan(1); // retried before spilling
    const spilled = readdirSync(join(dir, "spill"));
    expect(spilled.length).toBeGreaterThan(0);
    store.up = true;
    await waitFor(() => store.items.size === 20 && readdirSync(join(dir, "spill")).length === 0, { what: "replay" });
    expect([...store.items.keys()].sort()).toEqual(sent.map((m) => m.messageId).sort());
    await sink.close();
  });

  it("spills on close while the store is down, and a new sink replays the file at start", async () => {
    const store = new ScriptedStore();
    store.up = false;
    const dir = tempDir();
    const sink = sinkOver(store, dir, { batchWaitMs: 60_000, batchSize: 1000 });
    const sent = Array.from({ length: 5 }, () => message());
    const durable = sent.map((m) => durableOf(sink.enqueue("c", m)));
    await sink.close();
    await Promise.all(durable);
    store.up = true;
    const next = sinkOver(store, dir);
    await waitFor(() => store.items.size === 5, { what: "replay at start" });
    await next.close();
  });

  it("sets aside messages the store refuses for good, and resolves them", async () => {
    const store = new ScriptedStore();
    const dir = tempDir();
    const sink = sinkOver(store, dir, { batchSize: 2 });
    const bad = message();
    store.rejectIds.add(bad.messageId);
    await Promise.all([durableOf(sink.enqueue("c", bad)), durableOf(sink.enqueue("c", message()))]);
    await sink.close();
    const rejected = readFileSync(join(dir, "spill", "rejected-0.jsonl"), "utf8").trim().split("\n");
    expect(rejected).toHaveLength(1);
    expect(JSON.parse(rejected[0]!)).toMatchObject({ messageId: bad.messageId, rejectedBecause: "too big" });
  });
});

describe("spill file", () => {
  it("skips a torn line and never appends after one", async () => {
    const dir = join(tempDir(), "spill");
    mkdirSync(dir, { recursive: true });
    const good = { channelName: "c", messageId: "a", content: { x: [1, null] }, createdAt: "2024-01-01T00:00:00.000Z" };
    writeFileSync(join(dir, "worker-0.jsonl"), JSON.stringify(good) + "\n" + '{"channelName":"c","mess');
    const spill = new SpillFile(dir, 0, 1_000_000, log);
    await spill.open(1);
    expect(await spill.append([{ ...good, messageId: "b" }])).toBe(true);
    const read: StoredMessage[] = [];
    for (const segment of await spill.takeSegments()) for await (const batch of spill.read(segment, 10)) read.push(...batch);
    expect(read.map((r) => r.messageId).sort()).toEqual(["a", "b"]);
    expect(read.find((r) => r.messageId === "a")!.content).toEqual({ x: [1, null] });
    await spill.close();
  });

  it("refuses an append beyond its bound", async () => {
    const spill = new SpillFile(join(tempDir(), "spill"), 0, 200, log);
    await spill.open(1);
    const big = { channelName: "c", messageId: "a", content: "x".repeat(300), createdAt: "t" };
    expect(await spill.append([big])).toBe(false);
    await spill.close();
  });

  it("slot 0 adopts files of slots that no longer exist", async () => {
    const dir = join(tempDir(), "spill");
    mkdirSync(dir, { recursive: true });
    appendFileSync(join(dir, "worker-3.jsonl"), JSON.stringify({ channelName: "c", messageId: "z", content: 1, createdAt: "t" }) + "\n");
    const spill = new SpillFile(dir, 0, 1_000_000, log);
    await spill.open(2);
    expect(spill.pendingBytes).toBeGreaterThan(0);
    expect(readdirSync(dir).every((f) => f.startsWith("worker-0."))).toBe(true);
    await spill.close();
  });
});

describe("history cursor", () => {
  it("accepts what the server hands out and refuses anything else", () => {
    const cursor = { channelName: "c", messageId: "m", createdAt: "2024-01-01T00:00:00.000Z" };
    expect(parseCursor("c", cursor)).toEqual(cursor);
    expect(parseCursor("c", null)).toBeUndefined();
    for (const bad of ["x", 1, {}, { ...cursor, extra: 1 }, { ...cursor, messageId: 5 }, { ...cursor, channelName: "other" }]) {
      expect(() => parseCursor("c", bad)).toThrow(HistoryRequestError);
    }
  });
});

describe("content codec", () => {
  it("puts object keys back in their order when the store returns them in another", () => {
    const value = { z: 1, a: { y: [{ q: 1, b: 2 }], c: null }, m: "" };
    const encoded = encodeContent(value);
    const shuffle = (av: AttributeValue): AttributeValue =>
      av.M ? { M: Object.fromEntries(Object.entries(av.M).reverse().map(([k, v]) => [k, shuffle(v)])) } : av.L ? { L: av.L.map(shuffle) } : av;
    const item = { content: shuffle(encoded.content), contentKeyOrder: { S: encoded.keyOrder! } };
    expect(JSON.stringify(decodeContent(item))).toBe(JSON.stringify(value));
    // Without the attribute (written by other tools) the value is still equal, in the store's order.
    expect(decodeContent({ content: shuffle(encoded.content) })).toEqual(value);
    expect(encodeContent({ only: { one: [] } }).keyOrder).toBeUndefined();
  });
});

describe("content in DynamoDB (dynalite)", () => {
  let server: Server | undefined;
  let settings: StoreSettings;
  // FIDELITY_DYNAMODB_ENDPOINT=http://127.0.0.1:8000 runs these against DynamoDB Local instead (docs/persistence.md).
  const external = process.env.FIDELITY_DYNAMODB_ENDPOINT;
  beforeAll(async () => {
    let endpoint = external;
    if (!endpoint) {
      const local = dynalite({ createTableMs: 0 });
      server = local;
      await new Promise<void>((r) => local.listen(0, "127.0.0.1", () => r()));
      endpoint = `http://127.0.0.1:${(local.address() as AddressInfo).port}`;
    }
    await ensureTables(dynamoClient(endpoint), { messages: "messages", channels: "channels" });
    settings = {
      target: "dynamodb",
      region: "us-east-1",
      dynamodbEndpoint: endpoint,
      sqsEndpoint: undefined,
      requestTimeoutMs: 5000,
      localCredentials: true,
      messagesTable: "messages",
      channelsTable: "channels",
      queueUrl: undefined,
      embeddedStore: undefined,
      unprocessedRetries: 2,
      retryBaseMs: 10,
      retryMaxMs: 50,
    };
  });
  afterAll(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  const ch = (name: string) => `${name}-sdk`;
  it("round-trips every JSON shape, natively where DynamoDB can hold it", async () => {
    const runner = new InlineStoreRunner(settings);
    const nest = (levels: number, leaf: unknown = "bottom") => {
      let value = leaf;
      for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { k: value };
      return value;
    };
    const deepest = nest(30); // the deepest content kept native
    const deep = nest(40); // beyond DynamoDB's 32 levels: JSON text
    const proto = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as unknown;
    const contents: unknown[] = [
      "", "text", 0, -1.5, 1e21, 2 ** 53 + 2, 1e-7, true, false, null, [], {}, [""], { "": "" }, { e: "" },
      { a: { b: [1, "2", null, { c: false, d: [] }] } }, [[["deep"]]], 1e200, 5e-324, -1e125, "\ud800 lone", { "\udc00": 1 },
      deepest, deep, proto, "emoji 😀 ünï",
    ];
    const records = contents.map((content, i) => ({
      channelName: ch("shapes"),
      messageId: `id-${String(i).padStart(3, "0")}`,
      content,
      createdAt: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(),
    }));
    const outcome = await runner.run({ op: "write", records });
    expect(outcome).toEqual({ failed: [], rejected: [] });
    const page = await runner.run({ op: "page", channel: ch("shapes"), limit: 100, ascending: true, startKey: undefined });
    expect(page.items.map((i) => i.content)).toEqual(contents);
    expect(JSON.stringify(page.items.map((i) => i.content))).toBe(JSON.stringify(contents));
    // Ordinary content is stored natively, for the tools that read `content`.
    const item = await dynamoClient(settings.dynamodbEndpoint!).send(
      new GetItemCommand({ TableName: "messages", Key: { channelName: { S: ch("shapes") }, messageId: { S: "id-015" } } }),
    );
    expect(item.Item?.content?.M?.a?.M?.b?.L?.[0]).toEqual({ N: "1" });
    expect(item.Item?.contentEncoding).toBeUndefined();
    await runner.close();
  });

  it("isolates an item the table refuses and stores the rest of its batch", async () => {
    const runner = new InlineStoreRunner(settings);
    const records = [
      { channelName: ch("big"), messageId: "ok-1", content: "fine", createdAt: "2024-01-01T00:00:00.000Z" },
      { channelName: ch("big"), messageId: "too-big", content: "x".repeat(410 * 1024), createdAt: "2024-01-01T00:00:01.000Z" },
      { channelName: ch("big"), messageId: "ok-2", content: "fine", createdAt: "2024-01-01T00:00:02.000Z" },
    ];
    const outcome = await runner.run({ op: "write", records });
    expect(outcome.failed).toEqual([]);
    expect(outcome.rejected.map((r) => r.messageId)).toEqual(["too-big"]);
    expect(outcome.rejected[0]!.reason).toMatch(/^ValidationException: /);
    const page = await runner.run({ op: "page", channel: ch("big"), limit: 10, ascending: true, startKey: undefined });
    expect(page.items.map((i) => i.createdAt)).toEqual(["2024-01-01T00:00:00.000Z", "2024-01-01T00:00:02.000Z"]);
    await runner.close();
  });

  it("reports every message as failed, with the cause, when the store does not answer", async () => {
    const closed = await freePort();
    const runner = new InlineStoreRunner({ ...settings, dynamodbEndpoint: `http://127.0.0.1:${closed}` });
    const records = ["a", "b"].map((id) => ({ channelName: ch("down"), messageId: id, content: id, createdAt: "2024-01-01T00:00:00.000Z" }));
    const outcome = await runner.run({ op: "write", records });
    expect(outcome.failed.sort()).toEqual(["a", "b"]);
    expect(outcome.rejected).toEqual([]);
    expect(outcome.error).toMatch(/ECONNREFUSED/);
    await runner.close();
  });
});
