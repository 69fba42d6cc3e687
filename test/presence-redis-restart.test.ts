/**
 * Redis restarted empty (a restart without persistence, a failover to a fresh node) under load:
 * broadcasts keep flowing with nothing lost, and presence is rebuilt from what each worker knows
 * of its own members within PRESENCE_STALE_MS, with no `leave` (or `join`) for anyone connected.
 */
import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { startRedis, type RedisInstance } from "./helpers/redis.js";
import { startServer, stopAllServers } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";
import { workerOf } from "./helpers/workers.js";

type Ack = { success: boolean; error?: string; users?: Array<Record<string, string>> };

describe("a Redis that restarts empty (clustered)", () => {
  let redis: RedisInstance | undefined;
  afterEach(async () => {
    closeAllClients();
    await stopAllServers();
    await redis?.stop();
  });

  it("keeps broadcasts whole and gets the member list whole again within PRESENCE_STALE_MS, with no leave or join", async () => {
    redis = await startRedis();
    const server = await startServer({ workers: 2, redisUrl: redis.url, env: { PRESENCE_STALE_MS: "3000", PERSISTENCE: "off", CLIENT_RATE_LIMIT_PER_SEC: "0" } });
    const members: Socket[] = [];
    for (let i = 0; i < 12 && new Set(members.map(workerOf)).size < 2; i++) {
      members.push(await connect(server.url, server.token(), { transports: ["websocket"] }));
    }
    expect(new Set(members.map(workerOf)).size).toBe(2);
    const events: string[] = [];
    for (const [i, m] of members.entries()) {
      for (const kind of ["join", "leave"]) m.on(`presence:room:${kind}`, (p: { socketId: string }) => events.push(`${kind} ${p.socketId}`));
      expect(await request(m, "presenceSet:enter", "room", { user: `u${i}` })).toEqual({ success: true });
      expect(await request(m, "channel:subscribe", "feed")).toMatchObject({ success: true });
    }
    await waitFor(async () => ((await request<Ack>(members[0]!, "presence:members:get", "room")).users?.length ?? 0) === members.length, { what: "every member listed" });
    events.length = 0;
    const expected = members.map((m, i) => ({ socketId: m.id, user: `u${i}` })).sort((a, b) => a.socketId!.localeCompare(b.socketId!));

    // A publisher keeps sending, one at a time, counting what it got acked.
    const publisher = members[0]!;
    const receivedBy = members.map((m) => {
      const got: number[] = [];
      m.on("message:receive:feed", (msg: { content: number }) => got.push(msg.content));
      return got;
    });
    const acked: number[] = [];
    let publishing = true;
    const load = (async () => {
      for (let n = 0; publishing; n++) {
        const ack = await request(publisher, "message:queue", "feed", n).catch(() => ({ success: false }));
        if (ack.success) acked.push(n);
      }
    })();
    await waitFor(() => acked.length >= 50, { what: "publishing under way" });

    const port = redis.port;
    await redis.stop();
    redis = await startRedis(port);
    // Whole again, as each worker wrote its members back (no one entered again).
    await waitFor(
      async () => {
        const list = await request<Ack>(members[1]!, "presence:members:get", "room").catch(() => undefined);
        return list?.users?.length === members.length;
      },
      { what: "the member list whole again", timeoutMs: 3000 + 5000, intervalMs: 100 },
    );
    await waitFor(() => acked.length >= 150 + 50, { what: "publishing after the restart" });
    publishing = false;
    await load;

    const list = await request<Ack>(members[1]!, "presence:members:get", "room");
    expect((list.users ?? []).map((u) => ({ socketId: u.socketId, user: u.user })).sort((a, b) => a.socketId!.localeCompare(b.socketId!))).toEqual(expected);
    expect(events, "no join or leave for a connected member").toEqual([]);
    // Every acked broadcast reached every subscriber, once, in order.
    await waitFor(() => receivedBy.every((got) => got.length >= acked.length), { what: "every acked message delivered" });
    for (const got of receivedBy) {
      const ackedSet = new Set(acked);
      const seen = got.filter((n) => ackedSet.has(n));
      expect(seen).toEqual(acked);
    }
  }, 60_000);
});
