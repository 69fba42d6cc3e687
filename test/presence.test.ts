import { afterEach, describe, expect, it } from "vitest";
import type { Socket } from "socket.io-client";
import { Redis } from "ioredis";
import { closeAllClients, connect, nextEvent, request } from "./helpers/client.js";
import { MODES, modeServers, type ModeName } from "./helpers/modes.js";
import { startRedis, type RedisInstance } from "./helpers/redis.js";
import { closeAllRecoveringClients, nextConnect, recoveringClient } from "./helpers/recovering-client.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { isAlive, waitFor } from "./helpers/wait.js";

type Ack = { success: boolean; error?: string; users?: Array<Record<string, string>> };

/** Records every presence event of a channel on a socket. */
function watch(socket: Socket, channel: string) {
  const events: Array<{ kind: string; payload: Record<string, string> }> = [];
  for (const kind of ["join", "update", "leave"]) {
    socket.on(`presence:${channel}:${kind}`, (payload: Record<string, string>) => events.push({ kind, payload }));
  }
  return events;
}

const ids = (users: Ack["users"]) => (users ?? []).map((u) => u.socketId).sort();

describe.each(MODES)("presence (%s)", (mode: ModeName) => {
  const servers = modeServers(mode);
  const start = servers.start;

  const client = (server: RunningServer) => connect(server.url, server.token(), { transports: ["websocket"] });

  afterEach(async () => {
    closeAllRecoveringClients();
    closeAllClients();
    await stopAllServers();
    await servers.stop();
  });

  it("enters, updates with the full merged state, and leaves, as the contract says", async () => {
    const server = await start();
    const [a, b, outsider] = await Promise.all([client(server), client(server), client(server)]);
    const aEvents = watch(a, "room");
    const outsiderEvents = watch(outsider, "room");

    const aJoin = nextEvent(a, "presence:room:join");
    expect(await request(a, "presenceSet:enter", "room", { user: "ann", age: 7, on: true, x: null })).toEqual({ success: true });
    expect(await aJoin).toEqual({ user: "ann", age: "7", on: "true", x: "null", socketId: a.id }); // the joiner sees its own join

    const bJoinSeenByA = nextEvent(a, "presence:room:join");
    await request(b, "presenceSet:enter", "room", { user: "bob" });
    expect(await bJoinSeenByA).toEqual({ user: "bob", socketId: b.id });

    const update = nextEvent(b, "presence:room:update");
    await request(a, "presence:update", "room", { typing: true });
    expect(await update).toEqual({ user: "ann", age: "7", on: "true", x: "null", typing: "true", socketId: a.id });

    // Non-members may list members.
    const list = await request<Ack>(outsider, "presence:members:get", "room");
    expect(list.success).toBe(true);
    expect(ids(list.users)).toEqual([a.id, b.id].sort());

    const leave = nextEvent(b, "presence:room:leave");
    expect(await request(a, "presenceSet:leave", "room")).toEqual({ success: true });
    expect(await leave).toEqual({ socketId: a.id });
    // The leaver gets no leave of its own; the outsider got nothing at all.
    await request(b, "presence:update", "room", { mood: "ok" }); // barrier through the same path
    expect(aEvents.filter((e) => e.kind === "leave")).toEqual([]);
    expect(outsiderEvents).toEqual([]);
  });

  it("rejects update and leave without an enter, and leaves nothing behind", async () => {
    const server = await start();
    const [a, observer] = await Promise.all([client(server), client(server)]);
    const ownJoin = nextEvent(observer, "presence:quiet:join");
    await request(observer, "presenceSet:enter", "quiet", { user: "o" });
    await ownJoin;
    const seen = watch(observer, "quiet");
    expect(await request(a, "presence:update", "quiet", { typing: true })).toMatchObject({ success: false, error: "NOT_A_MEMBER" });
    expect(await request(a, "presenceSet:leave", "quiet")).toMatchObject({ success: false, error: "NOT_A_MEMBER" });
    const list = await request<Ack>(a, "presence:members:get", "quiet");
    expect(ids(list.users)).toEqual([observer.id]);
    expect(seen).toEqual([]);
  });

  it("announces nothing for a blip that recovers within the grace period", async () => {
    const server = await start();
    const observer = await client(server);
    const member = await recoveringClient(server.url, server.token());
    await request(member, "presenceSet:enter", "blip", { user: "m" });
    const ownJoin = nextEvent(observer, "presence:blip:join");
    await request(observer, "presenceSet:enter", "blip", { user: "o" });
    await ownJoin;
    const seen = watch(observer, "blip");
    const back = nextConnect(member);
    member.io.engine.close();
    expect(await back).toBe(true);
    // A later event from the member proves the observer's queue has flushed past the blip.
    const update = nextEvent(observer, "presence:blip:update");
    await request(member, "presence:update", "blip", { still: "here" });
    await update;
    expect(seen.map((e) => e.kind)).toEqual(["update"]);
    const list = await request<Ack>(observer, "presence:members:get", "blip");
    expect(ids(list.users)).toEqual([member.id, observer.id].sort());
  });

  it("sends leave when the grace ends first, and join again when the member recovers later", async () => {
    const server = await start({ env: { PRESENCE_GRACE_MS: "500", PRESENCE_REAP_INTERVAL_MS: "100" } });
    const observer = await client(server);
    const member = await recoveringClient(server.url, server.token(), { reconnection: false });
    await request(member, "presenceSet:enter", "late", { user: "m" });
    await request(observer, "presenceSet:enter", "late", { user: "o" });
    const memberId = member.id;
    const left = nextEvent(observer, "presence:late:leave");
    member.io.engine.close();
    expect(await left).toEqual({ socketId: memberId });
    const joined = nextEvent(observer, "presence:late:join");
    const back = nextConnect(member);
    member.connect(); // within the recovery window, after the grace
    expect(await back).toBe(true);
    expect(await joined).toEqual({ user: "m", socketId: memberId });
    const list = await request<Ack>(observer, "presence:members:get", "late");
    expect(ids(list.users)).toEqual([memberId, observer.id].sort());
  });

  it("sends leave at once when the client disconnects on purpose", async () => {
    const server = await start();
    const [member, observer] = await Promise.all([client(server), client(server)]);
    await request(member, "presenceSet:enter", "bye", { user: "m" });
    await request(observer, "presenceSet:enter", "bye", { user: "o" });
    const left = nextEvent(observer, "presence:bye:leave");
    const memberId = member.id;
    member.disconnect();
    expect(await left).toEqual({ socketId: memberId });
  });

  it("removes the members of a SIGKILLed worker that do not come back, within seconds, and keeps those that do", async () => {
    const server = await start({ env: { PRESENCE_REAP_INTERVAL_MS: "200" } });
    const observer = await client(server);
    await request(observer, "presenceSet:enter", "crash", { user: "o" });
    const observerWorker = observer.io.engine.id.split(".")[0];
    // Members on the other worker: one that will come back, one that will not.
    const goner = await (async () => {
      for (;;) {
        const s = await recoveringClient(server.url, server.token(), { reconnection: false });
        if (s.io.engine.id.split(".")[0] !== observerWorker) return s;
      }
    })();
    const stayer = await (async () => {
      for (;;) {
        const s = await recoveringClient(server.url, server.token());
        if (s.io.engine.id.split(".")[0] !== observerWorker) return s;
      }
    })();
    const joins = new Promise<void>((resolve) => {
      let count = 0;
      observer.on("presence:crash:join", () => ++count === 2 && resolve());
    });
    await request(goner, "presenceSet:enter", "crash", { user: "g" });
    await request(stayer, "presenceSet:enter", "crash", { user: "s" });
    await joins;
    const seen = watch(observer, "crash");
    const gonerId = goner.id;
    const victim = server.liveWorkerPids().find((pid) => pidServes(server, pid, goner.io.engine.id.split(".")[0]!))!;
    const started = Date.now();
    const left = nextEvent(observer, "presence:crash:leave", 15_000);
    const back = nextConnect(stayer);
    process.kill(victim, "SIGKILL");
    expect(await back).toBe(true);
    expect(await left).toEqual({ socketId: gonerId });
    expect(Date.now() - started).toBeLessThan(10_000);
    const list = await request<Ack>(observer, "presence:members:get", "crash");
    expect(ids(list.users)).toEqual([observer.id, stayer.id].sort());
    expect(seen.filter((e) => e.payload.socketId === stayer.id)).toEqual([]);
  });

  it("enforces its bounds with clear codes", async () => {
    const server = await start({
      env: { PRESENCE_MAX_MEMBERS: "2", PRESENCE_MAX_CHANNELS_PER_MEMBER: "2", PRESENCE_INFO_MAX_FIELDS: "3", PRESENCE_INFO_MAX_BYTES: "64" },
    });
    const [a, b, c] = await Promise.all([client(server), client(server), client(server)]);
    expect(await request(a, "presenceSet:enter", "full", {})).toEqual({ success: true });
    expect(await request(b, "presenceSet:enter", "full", {})).toEqual({ success: true });
    expect(await request(c, "presenceSet:enter", "full", {})).toMatchObject({ success: false, error: "LIMIT_EXCEEDED" });
    expect(await request(a, "presenceSet:enter", "full", { again: 1 })).toEqual({ success: true }); // a merge, not a new member
    expect(await request(a, "presenceSet:enter", "second", {})).toEqual({ success: true });
    expect(await request(a, "presenceSet:enter", "third", {})).toMatchObject({ success: false, error: "LIMIT_EXCEEDED" });
    expect(await request(c, "presenceSet:enter", "x", { a: 1, b: 2, c: 3, d: 4 })).toMatchObject({ success: false, error: "LIMIT_EXCEEDED" });
    expect(await request(c, "presenceSet:enter", "x", { a: "y".repeat(100) })).toMatchObject({ success: false, error: "PAYLOAD_TOO_LARGE" });
    expect(await request(c, "presenceSet:enter", "x", { nested: { no: 1 } })).toMatchObject({ success: false, error: "INVALID_ARGUMENT" });
    const list = await request<Ack>(c, "presence:members:get", "full");
    expect(ids(list.users)).toEqual([a.id, b.id].sort());
    const none = await request<Ack>(c, "presence:members:get", "x");
    expect(none.users).toEqual([]);
  });
});

describe("presence across hosts", () => {
  let redis: RedisInstance;
  afterEach(async () => {
    closeAllClients();
    await stopAllServers();
    await redis.stop();
  });

  it("removes a dead host's members with leave events within PRESENCE_STALE_MS, and nothing in Redis lives forever", async () => {
    redis = await startRedis();
    const env = { REDIS_KEY_PREFIX: "hosts:", PRESENCE_STALE_MS: "3000", PRESENCE_REAP_INTERVAL_MS: "200" };
    const [hostA, hostB] = await Promise.all([
      startServer({ workers: 1, redisUrl: redis.url, env }),
      startServer({ workers: 1, redisUrl: redis.url, env }),
    ]);
    const observer = await connect(hostA.url, hostA.token(), { transports: ["websocket"] });
    const member = await connect(hostB.url, hostB.token(), { transports: ["websocket"], reconnection: false });
    await request(observer, "presenceSet:enter", "hosts", { user: "o" });
    await request(member, "presenceSet:enter", "hosts", { user: "m" });
    const memberId = member.id;
    const left = nextEvent(observer, "presence:hosts:leave", 20_000);
    // The whole host dies at once: primary and workers, no goodbye.
    const pids = [hostB.process.pid!, ...hostB.workerPids()];
    const killedAt = Date.now();
    for (const pid of pids) process.kill(pid, "SIGKILL");
    await waitFor(() => pids.every((pid) => !isAlive(pid)), { what: "host B gone" });
    expect(await left).toEqual({ socketId: memberId });
    const after = Date.now() - killedAt;
    // The lease runs out within PRESENCE_STALE_MS; the reaper runs every 200 ms on top.
    expect(after).toBeLessThan(3000 + 2000);
    const list = await request<Ack>(observer, "presence:members:get", "hosts");
    expect(ids(list.users)).toEqual([observer.id]);

    const probe = new Redis(redis.url);
    try {
      const keys = await probe.keys("hosts:*");
      expect(keys.length).toBeGreaterThan(0);
      const forever: string[] = [];
      for (const key of keys) if ((await probe.pttl(key)) === -1) forever.push(key);
      expect(forever).toEqual([]);
    } finally {
      probe.disconnect();
    }
  });
});

/** Whether the worker with this pid is the one whose cluster id is `workerId` (from its log line). */
function pidServes(server: RunningServer, pid: number, workerId: string): boolean {
  return server.output.some((line) => {
    if (!line.startsWith("{")) return false;
    const entry = JSON.parse(line) as { msg?: string; worker?: number; pid?: number };
    return entry.msg === "worker ready" && entry.pid === pid && String(entry.worker) === workerId;
  });
}
