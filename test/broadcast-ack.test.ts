/**
 * An honest publish ack: a broadcast dropped on its way to the other workers (at the bound of
 * broadcasts waiting for the primary or held for Redis, or refused by Redis) is answered with a
 * failure code, never with success. At a bound nothing is broadcast or stored, so a retry makes
 * no duplicate.
 */
import { Redis } from "ioredis";
import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { startRedis, type RedisInstance } from "./helpers/redis.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { latch, waitFor } from "./helpers/wait.js";
import { logLines, oneOnEachWorker, workerOf } from "./helpers/workers.js";

type Ack = { success: boolean; error?: string; message?: string; messageId?: string };

/** Publishes with an ack; the returned promise settles with the ack (or rejects after 30 s). */
function publish(socket: Socket, channel: string, content: unknown): Promise<Ack> {
  return socket.timeout(30_000).emitWithAck("message:queue", channel, content) as Promise<Ack>;
}

/** Records the contents a socket receives on a channel, and counts them on a latch. */
function receive(socket: Socket, channel: string, expected: number, what: string) {
  const got: unknown[] = [];
  const arrived = latch(expected, 30_000, what);
  socket.on(`message:receive:${channel}`, (m: { content: unknown }) => {
    got.push(m.content);
    arrived.hit();
  });
  return { got, arrived };
}

const WEBSOCKET = { transports: ["websocket"] };

describe("an honest publish ack", () => {
  const redises: RedisInstance[] = [];
  afterEach(async () => {
    closeAllClients();
    await stopAllServers();
    for (const r of redises.splice(0)) await r.stop();
  });

  it("embedded: past BROADCAST_MAX_PENDING broadcasts waiting for the primary, OVERLOADED, and nothing broadcast or stored", async () => {
    const server = await startServer({ workers: 2, env: { BROADCAST_MAX_PENDING: "3" } });
    // Websocket only: once connected, a client's traffic no longer passes through the primary.
    const [here, there] = await oneOnEachWorker(server, WEBSOCKET);
    const channel = "acks:waiting";
    for (const s of [here, there]) expect(await request(s, "channel:subscribe", channel)).toEqual({ success: true });
    const local = receive(here, channel, 3, "deliveries on the publisher's worker");
    const remote = receive(there, channel, 3, "deliveries on the other worker");

    const primary = server.process.pid!;
    process.kill(primary, "SIGSTOP");
    let acks: Array<Promise<Ack>>;
    try {
      // The primary answers nothing now: three broadcasts wait for it, the fourth is one too many.
      acks = [1, 2, 3, 4].map((n) => publish(here, channel, `m${n}`));
      expect(await acks[3]).toMatchObject({ success: false, error: "OVERLOADED" });
      // The waiting ones went to the publisher's own worker at once, as usual.
      await local.arrived.done;
    } finally {
      process.kill(primary, "SIGCONT");
    }
    for (const ack of acks.slice(0, 3)) expect(await ack).toMatchObject({ success: true });
    await remote.arrived.done;
    expect(local.got).toEqual(["m1", "m2", "m3"]);
    expect(remote.got).toEqual(["m1", "m2", "m3"]);
    // Refused whole: not stored either, so retrying it makes no duplicate.
    const page = await request<{ success: boolean; pastMessages: Array<{ content: unknown }> }>(here, "channel:history", channel, 50, "ascending", null);
    // (Sorted: messages of one millisecond come back in the store's order, not in publish order.)
    expect(page.pastMessages.map((m) => m.content).sort()).toEqual(["m1", "m2", "m3"]);
    expect(await publish(here, channel, "m4 again")).toMatchObject({ success: true });
    expect(logLines(server, "broadcast dropped: too many waiting for the primary")).toHaveLength(1);
  });

  it("clustered: past BROADCAST_MAX_PENDING broadcasts held while Redis is down, OVERLOADED; an XADD Redis refuses, STORE_UNAVAILABLE", async () => {
    const redis = await startRedis();
    redises.push(redis);
    const server = await startServer({ workers: 1, redisUrl: redis.url, env: { BROADCAST_MAX_PENDING: "3", PERSISTENCE: "off" } });
    const publisher = await connect(server.url, server.token(), WEBSOCKET);
    const subscriber = await connect(server.url, server.token(), WEBSOCKET);
    expect(workerOf(publisher)).toBe(workerOf(subscriber));
    const channel = "acks:held";
    expect(await request(subscriber, "channel:subscribe", channel)).toEqual({ success: true });
    const got = receive(subscriber, channel, 5, "deliveries");

    await redis.stop();
    // The worker's adapter connection has seen Redis go (its reconnects are refused): own
    // broadcasts are held for Redis from now on.
    await waitFor(() => logLines<{ client: string }>(server, "redis error").some((l) => l.client.startsWith("cerebellum-adapter-")), {
      what: "the adapter's connection to notice Redis is gone",
    });
    const acks = [1, 2, 3, 4].map((n) => publish(publisher, channel, `m${n}`));
    expect(await acks[3]).toMatchObject({ success: false, error: "OVERLOADED" });

    redises.push(await startRedis(redis.port)); // back, empty
    for (const ack of acks.slice(0, 3)) expect(await ack).toMatchObject({ success: true });

    // Redis refuses writes (as it does when it cannot reach its replicas, or is out of memory).
    const admin = new Redis(redis.url);
    try {
      await admin.config("SET", "min-replicas-to-write", "1");
      const refused = await publish(publisher, channel, "m5");
      expect(refused).toMatchObject({ success: false, error: "STORE_UNAVAILABLE" });
      expect(refused.message).toMatch(/only subscribers on this server/);
      await admin.config("SET", "min-replicas-to-write", "0");
    } finally {
      admin.disconnect();
    }
    expect(await publish(publisher, channel, "m6")).toMatchObject({ success: true });
    await got.arrived.done;
    // m4 was refused whole; m5 reached this worker's subscriber only (the ack said so).
    expect(got.got).toEqual(["m1", "m2", "m3", "m5", "m6"]);
  });
});
