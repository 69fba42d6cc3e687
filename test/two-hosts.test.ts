import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAllClients, connect, nextEvent, request } from "./helpers/client.js";
import { startRedis, type RedisInstance } from "./helpers/redis.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { latch } from "./helpers/wait.js";

describe("two hosts sharing one Redis", () => {
  let redis: RedisInstance;
  let hostA: RunningServer;
  let hostB: RunningServer;

  beforeAll(async () => {
    redis = await startRedis();
    const env = { REDIS_KEY_PREFIX: "twohosts:" };
    [hostA, hostB] = await Promise.all([
      startServer({ workers: 2, redisUrl: redis.url, env }),
      startServer({ workers: 2, redisUrl: redis.url, env }),
    ]);
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
    await redis.stop();
  });

  it("delivers each host's messages to the other's subscribers, in order", async () => {
    const onA = await connect(hostA.url, hostA.token(), { transports: ["websocket"] });
    const onB = await connect(hostB.url, hostB.token(), { transports: ["websocket"] });
    await request(onA, "channel:subscribe", "cross");
    await request(onB, "channel:subscribe", "cross");
    const count = 200;
    const seenA: number[] = [];
    const seenB: number[] = [];
    const all = latch(count * 2, 20_000, "cross-host messages");
    onA.on("message:receive:cross", (m: { content: number; socketId: string }) => {
      if (m.socketId === onB.id) seenA.push(m.content);
      all.hit();
    });
    onB.on("message:receive:cross", (m: { content: number; socketId: string }) => {
      if (m.socketId === onA.id) seenB.push(m.content);
      all.hit();
    });
    for (let i = 0; i < count / 2; i++) {
      onA.emit("message:queue", "cross", i);
      onB.emit("message:queue", "cross", i);
    }
    await all.done;
    const expected = Array.from({ length: count / 2 }, (_, i) => i);
    expect(seenA).toEqual(expected);
    expect(seenB).toEqual(expected);
  });

  it("shares presence across hosts", async () => {
    const onA = await connect(hostA.url, hostA.token(), { transports: ["websocket"] });
    const onB = await connect(hostB.url, hostB.token(), { transports: ["websocket"] });
    const aJoined = nextEvent(onA, "presence:lobby:join");
    onA.emit("presenceSet:enter", "lobby", { user: "a" });
    await aJoined;
    const seenByA = nextEvent<Record<string, string>>(onA, "presence:lobby:join");
    onB.emit("presenceSet:enter", "lobby", { user: "b", n: 2 });
    expect(await seenByA).toEqual({ user: "b", n: "2", socketId: onB.id });
    const members = await request<{ success: boolean; users: Array<{ socketId: string }> }>(
      onB,
      "presence:members:get",
      "lobby",
    );
    expect(members.users.map((u) => u.socketId).sort()).toEqual([onA.id, onB.id].sort());
  });
});
