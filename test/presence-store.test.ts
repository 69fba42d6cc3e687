import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import pino from "pino";
import { PresenceTable } from "../src/shared/presence-table.js";
import { RedisPresenceStore } from "../src/worker/presence/redis-store.js";
import { startRedis, type RedisInstance } from "./helpers/redis.js";
import { waitFor } from "./helpers/wait.js";

const limits = { maxMembers: 3, maxChannelsPerMember: 2 };

/** The six operations and the suspend/reap/resume lifecycle, against both implementations. */
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

  function redisStore(staleMs = 60_000): RedisPresenceStore {
    const client = new Redis(redis.url);
    clients.push(client);
    const store = new RedisPresenceStore({
      redis: client,
      prefix: `unit${++n}:`,
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
    table.suspend("s1", 1000);
    expect(table.resume("s1", 3, 500)).toEqual([]);
    expect(table.reap(2000)).toEqual([{ channel: "c1", socketId: "s3" }]);
    expect(table.members("c1").map((m) => m.socketId)).toEqual(["s1"]);
    expect(table.resume("s3", 3, 3000)).toEqual([{ channel: "c1", state: { socketId: "s3" } }]);
    expect(table.members("c1").map((m) => m.socketId).sort()).toEqual(["s1", "s3"]);
  });
});
