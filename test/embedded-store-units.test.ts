import { mkdtempSync, rmSync } from "node:fs";
import { connect as netConnect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { createLogger, type Logger } from "../src/shared/logger.js";
import { channelRange, messageKey, splitMessageKey } from "../src/store/keys.js";
import { MessageDb, PAGE_MAX_BYTES } from "../src/store/message-db.js";
import { StoreServer } from "../src/store/server.js";
import { FrameDecoder, FrameError, FrameReader, FrameWriter } from "../src/persistence/wire.js";
import { EmbeddedStoreClient } from "../src/persistence/embedded-client.js";
import type { StoredMessage } from "../src/persistence/record.js";
import { freePort } from "./helpers/ports.js";

const log = createLogger("silent", {});
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "cerebellum-store-units-"));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const b = (s: string) => Buffer.from(s, "utf8");

describe("wire frames", () => {
  it("reassembles frames cut anywhere, and several in one chunk", () => {
    const frames = [
      new FrameWriter(8).u8(1).u32(7).string("héllo").finish(),
      new FrameWriter(8).u8(2).u32(8).bytes(Buffer.alloc(70_000, 7)).finish(),
      new FrameWriter(8).u8(3).u32(9).finish(),
    ];
    const stream = Buffer.concat(frames);
    for (const cut of [1, 3, 4, 5, 17, 1000, stream.length]) {
      const decoder = new FrameDecoder();
      const bodies: Buffer[] = [];
      for (let i = 0; i < stream.length; i += cut) decoder.push(stream.subarray(i, i + cut), (body) => bodies.push(Buffer.from(body)));
      expect(bodies.map((body) => new FrameReader(body).u8())).toEqual([1, 2, 3]);
      const first = new FrameReader(bodies[0]!);
      first.u8();
      expect([first.u32(), first.string(), first.remaining]).toEqual([7, "héllo", 0]);
      const second = new FrameReader(bodies[1]!);
      second.u8();
      second.u32();
      expect(second.bytes().equals(Buffer.alloc(70_000, 7))).toBe(true);
    }
  });

  it("refuses a frame past its bound and a read past a frame's end", () => {
    const decoder = new FrameDecoder(1024);
    expect(() => decoder.push(new FrameWriter().bytes(Buffer.alloc(2000)).finish(), () => undefined)).toThrow(FrameError);
    expect(() => new FrameReader(Buffer.from([1, 2])).u32()).toThrow(FrameError);
    expect(() => new FrameReader(new FrameWriter().u32(100).finish().subarray(4)).bytes()).toThrow(FrameError);
  });
});

describe("key layout", () => {
  it("keeps each channel's messages in one range, ordered by createdAt then messageId", () => {
    const key = (ch: string, at: string, id: string) => messageKey(b(ch), b(at), b(id));
    // "a" and "a\u0000b" or "ab" must never share a range, whatever their bytes.
    const inA = [key("a", "2024-01-01T00:00:00.000Z", "z"), key("a", "2024-01-01T00:00:00.001Z", "a"), key("a", "2024-01-01T00:00:00.001Z", "b")];
    const others = [key("ab", "0", "x"), key("", "9", "x"), key("a\u0000b", "0", "x"), key("b", "0", "x")];
    const range = channelRange(b("a"));
    for (const k of inA) expect(Buffer.compare(k, range.gte) >= 0 && Buffer.compare(k, range.lt) < 0).toBe(true);
    for (const k of others) expect(Buffer.compare(k, range.gte) >= 0 && Buffer.compare(k, range.lt) < 0).toBe(false);
    const sorted = [...inA].reverse().sort(Buffer.compare);
    expect(sorted).toEqual(inA);
    // A shorter createdAt sorts first, as strings do.
    expect(Buffer.compare(key("a", "2024", "zzz"), key("a", "2024-01", "a"))).toBeLessThan(0);
    expect(splitMessageKey(inA[2]!)).toEqual({ createdAt: b("2024-01-01T00:00:00.001Z"), messageId: b("b") });
  });
});

/** A store process's parts in this process: LevelDB, its server on a free port, and a worker's client. */
async function startStore(secret = "s3cret", storeLog: Logger = log) {
  const path = join(tempDir(), "history");
  const db = await MessageDb.open(path, { sync: true });
  const server = new StoreServer({ db, secret, log: storeLog });
  const port = await server.listen(0);
  const clients: EmbeddedStoreClient[] = [];
  const client = (overrides: { secret?: string; timeoutMs?: number } = {}) => {
    const c = new EmbeddedStoreClient({ host: "127.0.0.1", port, secret: overrides.secret ?? secret }, overrides.timeoutMs ?? 5_000);
    clients.push(c);
    return c;
  };
  return {
    path,
    db,
    server,
    port,
    client,
    async stop() {
      await Promise.all(clients.map((c) => c.close()));
      await server.close(1_000);
      await db.close();
    },
  };
}

let seq = 0;
const record = (channelName: string, content: unknown, createdAt = new Date(Date.UTC(2024, 0, 1, 0, 0, 0, ++seq)).toISOString()): StoredMessage => ({
  channelName,
  messageId: `m-${String(seq).padStart(6, "0")}`,
  content,
  createdAt,
});

describe("the embedded store over its connection", () => {
  let store: Awaited<ReturnType<typeof startStore>>;
  let client: EmbeddedStoreClient;
  beforeAll(async () => {
    store = await startStore();
    client = store.client();
  });
  afterAll(() => store.stop());

  it("round-trips every JSON shape exactly, in key order", async () => {
    const nest = (levels: number) => {
      let value: unknown = "bottom";
      for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { k: value };
      return value;
    };
    const contents: unknown[] = [
      "", "text", 0, -1.5, 1e21, 2 ** 53 + 2, 1e-7, 5e-324, 1e200, -1e125, true, false, null, [], {}, [""], { "": "" },
      { z: 1, a: 2, m: { y: [], b: "", k: { q: null, c: true } } }, { a: { b: [1, "2", null, { c: false, d: [] }] } },
      "\ud800 lone", { "\udc00": 1 }, JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as unknown, nest(200), "emoji 😀 ünï \u0000 \n\"",
    ];
    const records = contents.map((content) => record("shapes", content));
    expect(await client.write(records)).toEqual({ failed: [], rejected: [] });
    const page = await client.page({ channel: "shapes", limit: 100, ascending: true, startKey: undefined });
    expect(page.lastEvaluatedKey).toBeUndefined();
    expect(JSON.stringify(page.items.map((i) => i.content))).toBe(JSON.stringify(contents));
    expect(page.items.map((i) => i.content)).toEqual(contents);
    expect(page.items.map((i) => i.createdAt)).toEqual(records.map((r) => r.createdAt));
    expect(Object.getPrototypeOf(page.items[21]!.content)).toBe(Object.prototype); // __proto__ stayed a plain key
  });

  it("pages both ways with the cursor of the DynamoDB layout, and stores a message written twice once", async () => {
    const records = Array.from({ length: 25 }, (_, i) => record("paging", i));
    await client.write(records.slice(0, 10));
    await client.write(records); // a replay of the first ten, with the rest
    for (const ascending of [true, false]) {
      const seen: unknown[] = [];
      const sizes: number[] = [];
      let startKey: { channelName: string; messageId: string; createdAt: string } | undefined;
      do {
        const page = await client.page({ channel: "paging", limit: 10, ascending, startKey });
        seen.push(...page.items.map((i) => i.content));
        sizes.push(page.items.length);
        startKey = page.lastEvaluatedKey;
        if (startKey) expect(Object.keys(startKey)).toEqual(["channelName", "messageId", "createdAt"]);
      } while (startKey);
      // Unlike DynamoDB, a cursor comes only when another item follows: no empty last page.
      expect(sizes).toEqual([10, 10, 5]);
      const expected = records.map((r) => r.content);
      expect(seen).toEqual(ascending ? expected : expected.reverse());
    }
    expect((await client.page({ channel: "pagin", limit: 10, ascending: true, startKey: undefined })).items).toEqual([]);
    expect((await client.page({ channel: "paging2", limit: 10, ascending: true, startKey: undefined })).items).toEqual([]);
  });

  it("orders messages of the same millisecond by messageId, and a cursor from another layout stays in its channel", async () => {
    const at = "2024-02-02T00:00:00.000Z";
    const same = ["c", "a", "b"].map((id) => ({ channelName: "tie", messageId: id, content: id, createdAt: at }));
    await client.write(same);
    expect((await client.page({ channel: "tie", limit: 10, ascending: true, startKey: undefined })).items.map((i) => i.content)).toEqual(["a", "b", "c"]);
    const after = await client.page({ channel: "tie", limit: 10, ascending: true, startKey: { channelName: "tie", messageId: "a", createdAt: at } });
    expect(after.items.map((i) => i.content)).toEqual(["b", "c"]);
    const odd = await client.page({ channel: "tie", limit: 10, ascending: false, startKey: { channelName: "tie", messageId: "\uffff", createdAt: "\u0000" } });
    expect(odd.items).toEqual([]);
  });

  it("stops a page at about 1 MiB, with a cursor to the rest", async () => {
    const big = "x".repeat(300 * 1024);
    await client.write(Array.from({ length: 5 }, () => record("big", big)));
    const first = await client.page({ channel: "big", limit: 100, ascending: true, startKey: undefined });
    expect(first.items.length).toBe(Math.ceil(PAGE_MAX_BYTES / (300 * 1024 + 40)));
    const rest = await client.page({ channel: "big", limit: 100, ascending: true, startKey: first.lastEvaluatedKey });
    expect(first.items.length + rest.items.length).toBe(5);
    expect(rest.lastEvaluatedKey).toBeUndefined();
  });

  it("refuses for good what it can never store, and stores the rest of the batch", async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const ok = record("refusals", "fine");
    const outcome = await client.write([
      ok,
      { ...record("refusals", "x"), createdAt: "2024\u00002" },
      { ...record("refusals", 1n) },
      { ...record("refusals", circular) },
      { ...record("refusals", "x"), channelName: "lone \ud800" },
      { ...record("refusals", "x"), messageId: "" },
    ]);
    expect(outcome.failed).toEqual([]);
    expect(outcome.rejected.map((r) => r.reason)).toEqual([
      expect.stringMatching(/^content is not JSON/),
      expect.stringMatching(/^content is not JSON/),
      expect.stringMatching(/lone UTF-16 surrogate/),
      "createdAt must not contain NUL",
      expect.stringMatching(/^messageId must be/),
    ]);
    expect((await client.page({ channel: "refusals", limit: 10, ascending: true, startKey: undefined })).items).toEqual([
      { content: "fine", createdAt: ok.createdAt },
    ]);
  });

  it("records channel names", async () => {
    expect(await client.channels(["room:1", "room:2", "room:1"])).toEqual([]);
    expect(await store.db.channels()).toEqual(expect.arrayContaining(["room:1", "room:2"]));
  });
});

describe("the embedded store client when the store is not there", () => {
  const stores: Array<Awaited<ReturnType<typeof startStore>>> = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.stop()));
  });

  it("reports every message as failed, with the cause, when nothing listens", async () => {
    const client = new EmbeddedStoreClient({ host: "127.0.0.1", port: await freePort(), secret: "x" }, 1_000);
    const outcome = await client.write([record("down", "a"), record("down", "b")]);
    expect(outcome.failed).toHaveLength(2);
    expect(outcome.rejected).toEqual([]);
    expect(outcome.error).toMatch(/ECONNREFUSED/);
    expect(await client.channels(["down"])).toEqual(["down"]);
    await expect(client.page({ channel: "down", limit: 1, ascending: true, startKey: undefined })).rejects.toThrow(/ECONNREFUSED/);
    await client.close();
  });

  it("is refused with a wrong secret", async () => {
    const store = await startStore("right");
    stores.push(store);
    const outcome = await store.client({ secret: "wrong" }).write([record("secret", "a")]);
    expect(outcome.failed).toHaveLength(1);
    expect(outcome.error).toMatch(/wrong secret|closed|ECONNRESET/);
  });

  it("finds a store restarted on the same port, and answers in time when one hangs", async () => {
    const first = await startStore();
    const client = first.client();
    expect((await client.write([record("again", 1)])).failed).toEqual([]);
    await first.server.close(1_000);
    await first.db.close();
    const outcome = await client.write([record("again", 2)]);
    expect(outcome.failed).toHaveLength(1);
    // Back on the same port and files: the next request reconnects by itself.
    const db = await MessageDb.open(first.path, { sync: true });
    const server = new StoreServer({ db, secret: "s3cret", log });
    await server.listen(first.port);
    expect((await client.write([record("again", 3)])).failed).toEqual([]);
    expect((await client.page({ channel: "again", limit: 10, ascending: true, startKey: undefined })).items.map((i) => i.content)).toEqual([1, 3]);
    await client.close();
    await server.close(1_000);
    await db.close();

    // A peer that accepts and never answers: the request fails at its timeout.
    const accepted: Socket[] = [];
    const mute = createServer((socket) => accepted.push(socket));
    await new Promise<void>((r) => mute.listen(0, "127.0.0.1", () => r()));
    const port = (mute.address() as { port: number }).port;
    const slow = new EmbeddedStoreClient({ host: "127.0.0.1", port, secret: "x" }, 200);
    const started = Date.now();
    const hung = await slow.write([record("hang", 1)]);
    expect(hung.failed).toHaveLength(1);
    expect(hung.error).toMatch(/did not answer within 200 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
    await slow.close();
    for (const socket of accepted) socket.destroy();
    await new Promise<void>((r) => mute.close(() => r()));
  });

  it("closes a connection that does not speak the protocol", async () => {
    const warnings: string[] = [];
    const store = await startStore("s3cret", pino({ level: "warn" }, { write: (line: string) => void warnings.push(JSON.parse(line).msg) }));
    stores.push(store);
    const socket = netConnect({ host: "127.0.0.1", port: store.port });
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); // "GET " read as a length: past the frame bound
    await closed;
    // Before its hello, a peer may not even announce a big frame.
    const stranger = netConnect({ host: "127.0.0.1", port: store.port });
    const strangerClosed = new Promise<void>((r) => stranger.once("close", () => r()));
    stranger.write(new FrameWriter(16).u32(1 << 20).finish().subarray(4)); // a length prefix of 1 MiB, nothing else
    await strangerClosed;
    // Both for what they sent, not for a hello that never came.
    expect(warnings).toEqual(["bad frame from a client: connection closed", "bad frame from a client: connection closed"]);
    // The store still serves its clients.
    expect((await store.client().write([record("after-garbage", 1)])).failed).toEqual([]);
  });
});
