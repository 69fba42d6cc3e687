import type { Worker } from "node:cluster";
import { EventEmitter } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import pino from "pino";
import { hostPresence } from "../src/primary/presence-host.js";
import type { Supervisor } from "../src/primary/supervisor.js";
import { loadConfig } from "../src/shared/config.js";
import { IPC_SOURCE, type PresenceOp } from "../src/shared/ipc.js";
import { PresenceTable } from "../src/primary/presence-table.js";
import { RedisPresenceStore } from "../src/worker/presence/redis-store.js";
import { startRedis, type RedisInstance } from "./helpers/redis.js";
import { waitFor } from "./helpers/wait.js";

const limits = { maxMembers: 3, maxChannelsPerMember: 2 };

/**
 * The six operations and the suspend/reap/resume lifecycle, against both implementations (the
 * Redis one on a real redis-server), including the owner check on what a worker reports of a
 * connection it lost.
 */
describe("presence stores", () => {
  let redis: RedisInstance;
  const clients: Redis[] = [];
  const stores: RedisPresenceStore[] = [];
  let n = 0;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    for (const c of clients) c.disconnect();
    await redis.stop();
  });

  /** A store (one server) on its own prefix, or on `prefix` to share it with another server. */
  function redisStore(staleMs = 60_000, prefix = `unit${++n}:`): RedisPresenceStore {
    const client = new Redis(redis.url);
    clients.push(client);
    const store = new RedisPresenceStore({
      redis: client,
      prefix,
      limits,
      staleMs,
      ghostTtlMs: 60_000,
      log: pino({ level: "silent" }),
    });
    stores.push(store);
    return store;
  }

  it("Redis: add, update, members, channelsOf, remove, removeAll", async () => {
    const store = redisStore();
    expect(await store.add("c1", "s1", { user: "a" })).toEqual({ user: "a", socketId: "s1" });
    expect(await store.add("c1", "s1", { mood: "ok" })).toEqual({ user: "a", mood: "ok", socketId: "s1" });
    await store.add("c2", "s1", { user: "a" });
    await store.add("c1", "s2", { user: "b" });
    expect(await store.update("c1", "s2", { typing: "true" })).toEqual({ user: "b", typing: "true", socketId: "s2" });
    expect(await store.update("c1", "nobody", { typing: "true" })).toBeUndefined();
    expect((await store.members("c1")).map((m) => m.socketId).sort()).toEqual(["s1", "s2"]);
    expect(await store.members("c1")).not.toContainEqual(expect.objectContaining({ socketId: "nobody" }));
    expect((await store.channelsOf("s1")).sort()).toEqual(["c1", "c2"]);
    expect(await store.remove("c2", "s1")).toBe(true);
    expect(await store.remove("c2", "s1")).toBe(false);
    expect(await store.removeAll("s1")).toEqual(["c1"]);
    expect(await store.channelsOf("s1")).toEqual([]);
    expect((await store.members("c1")).map((m) => m.socketId)).toEqual(["s2"]);
  });

  it("Redis: bounds hold under concurrent adds (atomic)", async () => {
    const store = redisStore();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.add("busy", `s${i}`, {})));
    expect(results.filter((r) => typeof r === "object")).toHaveLength(3);
    expect(results.filter((r) => r === "members")).toHaveLength(17);
    await store.add("other1", "s0", {});
    expect(await store.add("other2", "s0", {})).toBe("channels");
  });

  it("Redis: a suspended socket is reaped after its grace, and re-entered when it resumes later", async () => {
    const store = redisStore();
    await store.add("c", "s1", { user: "a" });
    await store.suspend("s1", 50);
    await waitFor(async () => (await store.reap()).length > 0 || undefined, { what: "reap" }).then((removed) =>
      expect(removed).toBe(true),
    );
    expect(await store.members("c")).toEqual([]);
    expect(await store.resume("s1")).toEqual([{ channel: "c", state: { user: "a", socketId: "s1" } }]);
    expect(await store.members("c")).toEqual([{ user: "a", socketId: "s1" }]);
    // Resuming before the grace ends cancels the leave.
    await store.suspend("s1", 60_000);
    expect(await store.resume("s1")).toEqual([]);
    expect(await store.reap()).toEqual([]);
  });

  it("Redis: a late suspend or removal from a server that lost the connection leaves a member that moved to another server", async () => {
    const prefix = `unit${++n}:`;
    const [lost, taker] = [redisStore(60_000, prefix), redisStore(60_000, prefix)];
    await lost.add("c", "s1", { user: "a" });
    await lost.add("c", "s2", { user: "b" });
    // The connection recovered on the other server before the first one noticed the drop.
    expect(await taker.resume("s1")).toEqual([]);
    // The first server's late reports, with a grace already over: nothing may change.
    expect(await lost.suspend("s1", 0)).toBe(false);
    expect(await taker.reap()).toEqual([]);
    expect(await lost.removeAll("s1")).toEqual([]);
    expect((await taker.members("c")).map((m) => m.socketId).sort()).toEqual(["s1", "s2"]);
    // Its own connections it still suspends and removes; so does the new owner with s1.
    expect(await lost.suspend("s2", 0)).toBe(true);
    expect(await taker.suspend("s1", 0)).toBe(true);
    expect((await lost.reap()).sort((x, y) => x.socketId.localeCompare(y.socketId))).toEqual([
      { channel: "c", socketId: "s1" },
      { channel: "c", socketId: "s2" },
    ]);
    await taker.add("c", "s3", {});
    expect(await taker.removeAll("s3")).toEqual(["c"]);
  });

  it("Redis: a server whose lease ran out loses its members to another server's reaper", async () => {
    const dead = redisStore(300);
    await dead.add("c", "s9", { user: "z" });
    await dead.close(); // stops renewing its lease
    const survivor = new RedisPresenceStore({
      redis: clients[clients.length - 1]!,
      prefix: `unit${n}:`,
      limits,
      staleMs: 60_000,
      ghostTtlMs: 60_000,
      log: pino({ level: "silent" }),
    });
    stores.push(survivor);
    const removed = await waitFor(async () => {
      const r = await survivor.reap();
      return r.length > 0 ? r : undefined;
    }, { what: "lease expiry" });
    expect(removed).toEqual([{ channel: "c", socketId: "s9" }]);
    expect(await survivor.members("c")).toEqual([]);
  });

  it("embedded table: the same operations, bounds and lifecycle", () => {
    const table = new PresenceTable(limits, 60_000, 100);
    expect(table.add("c1", "s1", { user: "a" }, 1)).toEqual({ user: "a", socketId: "s1" });
    expect(table.add("c2", "s1", {}, 1)).toEqual({ socketId: "s1" });
    expect(table.add("c3", "s1", {}, 1)).toBe("channels");
    table.add("c1", "s2", {}, 1);
    table.add("c1", "s3", {}, 2);
    expect(table.add("c1", "s4", {}, 2)).toBe("members");
    expect(table.update("c1", "s1", { t: "1" })).toEqual({ user: "a", t: "1", socketId: "s1" });
    expect(table.update("c1", "nobody", { t: "1" })).toBeUndefined();
    expect(table.channelsOf("s1").sort()).toEqual(["c1", "c2"]);
    expect(table.removeAll("s2")).toEqual(["c1"]);
    // A dead worker's members leave after the deadline unless they resume.
    expect(table.suspendOwnedBy(2, 1000)).toBe(1);
    expect(table.suspend("s1", 1000, 1)).toBe(true);
    expect(table.resume("s1", 3, 500)).toEqual([]);
    expect(table.reap(2000)).toEqual([{ channel: "c1", socketId: "s3" }]);
    expect(table.members("c1").map((m) => m.socketId)).toEqual(["s1"]);
    expect(table.resume("s3", 3, 3000)).toEqual([{ channel: "c1", state: { socketId: "s3" } }]);
    expect(table.members("c1").map((m) => m.socketId).sort()).toEqual(["s1", "s3"]);
  });

  it("embedded table: a late suspend or removal from a worker that lost the connection leaves a member that moved", () => {
    const table = new PresenceTable(limits, 60_000, 100);
    table.add("c", "s1", { user: "a" }, 1);
    table.add("c", "s2", { user: "b" }, 1);
    // The connection recovered on worker 2 before worker 1 noticed the drop.
    expect(table.resume("s1", 2, 0)).toEqual([]);
    // Worker 1's late reports, with a grace already over: nothing may change.
    expect(table.suspend("s1", 0, 1)).toBe(false);
    expect(table.reap(1)).toEqual([]);
    expect(table.removeAll("s1", 1)).toEqual([]);
    expect(table.members("c").map((m) => m.socketId).sort()).toEqual(["s1", "s2"]);
    // Each worker still suspends and removes its own.
    expect(table.suspend("s2", 0, 1)).toBe(true);
    expect(table.suspend("s1", 0, 2)).toBe(true);
    expect(table.reap(1).sort((x, y) => x.socketId.localeCompare(y.socketId))).toEqual([
      { channel: "c", socketId: "s1" },
      { channel: "c", socketId: "s2" },
    ]);
    table.add("c", "s3", {}, 2);
    expect(table.removeAll("s3", 2)).toEqual(["c"]);
  });

  it("embedded host: the worker a suspend or removal comes from is the owner it is checked against", () => {
    // The primary's side of embedded presence, driven as the supervisor drives it: a worker's
    // IPC request in, the answer out to that worker.
    const supervisor = new EventEmitter() as EventEmitter & { send(worker: Worker, message: unknown): void };
    const answers: unknown[] = [];
    supervisor.send = (_worker, message) => answers.push((message as { result: unknown }).result);
    const config = loadConfig({ API_KEY: "presence-host-test-key-0123456789" }, () => "unused");
    hostPresence(supervisor as unknown as Supervisor, config, pino({ level: "silent" }));
    const from = (id: number, request: PresenceOp) => {
      supervisor.emit("message", { id } as Worker, { source: IPC_SOURCE, type: "presence", id: answers.length, request });
      return answers[answers.length - 1];
    };
    expect(from(1, { op: "add", channel: "c", socketId: "s1", info: { user: "a" } })).toEqual({ user: "a", socketId: "s1" });
    expect(from(2, { op: "resume", socketId: "s1" })).toEqual([]);
    expect(from(1, { op: "suspend", socketId: "s1", graceMs: 0 })).toBe(false);
    expect(from(1, { op: "removeAll", socketId: "s1" })).toEqual([]);
    expect(from(2, { op: "reap" })).toEqual([]);
    expect(from(2, { op: "members", channel: "c" })).toEqual([{ user: "a", socketId: "s1" }]);
    expect(from(2, { op: "suspend", socketId: "s1", graceMs: 0 })).toBe(true);
    expect(from(2, { op: "removeAll", socketId: "s1" })).toEqual(["c"]);
  });
});
