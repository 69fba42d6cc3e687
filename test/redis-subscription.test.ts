import { execFileSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { closeAllClients, request } from "./helpers/client.js";
import { startRedis, type RedisInstance } from "./helpers/redis.js";
import { startServer, stopAllServers } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";
import { logLines, oneOnEachWorker, workerOf } from "./helpers/workers.js";

const CHANNEL = "through-the-drop";

/**
 * Clustered mode delivers broadcasts by Redis pub/sub, which keeps nothing for a subscriber that
 * is away: a worker whose subscriber connection dropped reads what it missed from the stream.
 */
describe("clustered: a worker's Redis subscription drops and comes back", () => {
  let redis: RedisInstance | undefined;

  afterEach(async () => {
    closeAllClients();
    await stopAllServers();
    await redis?.stop();
    redis = undefined;
  });

  it("delivers what was published meanwhile, in order, once, while another worker keeps publishing", async () => {
    redis = await startRedis();
    // The publisher sends as fast as acks come back, past the per-connection event limit made for
    // apps' clients (100/s) whenever the machine is quick: the limit is not what this test checks.
    const server = await startServer({ workers: 2, redisUrl: redis.url, env: { PERSISTENCE: "off", CLIENT_RATE_LIMIT_PER_SEC: "0" } });
    const [one, two] = await oneOnEachWorker(server);
    // `far` is on the other worker than the publisher: it gets every message through Redis.
    const [far, publisher] = [one, two];
    const clients = [far, publisher].map((socket) => ({ socket, seen: [] as number[] }));
    for (const { socket, seen } of clients) {
      expect((await request(socket, "channel:subscribe", CHANNEL)).success).toBe(true);
      socket.on(`message:receive:${CHANNEL}`, (m: { content: number }) => seen.push(m.content));
    }

    let sent = 0;
    let stop = false;
    const publishing = (async () => {
      // One at a time (each acked), so the publisher's order is the order of the numbers.
      while (!stop) {
        expect((await request(publisher, "message:queue", CHANNEL, sent)).success).toBe(true);
        sent++;
      }
    })();
    await waitFor(() => clients[0]!.seen.length >= 20, { what: "deliveries before the drop" });

    // Every subscriber connection of the server is cut (the command connections stay): ioredis
    // reconnects after its backoff, while the publisher goes on.
    const killed = Number(execFileSync("redis-cli", ["-p", String(redis.port), "CLIENT", "KILL", "TYPE", "pubsub"]).toString().trim());
    expect(killed).toBeGreaterThanOrEqual(2);
    const caughtUp = () => logLines<{ delivered: number }>(server, "subscription caught up from the stream").filter((e) => e.worker === workerOf(far));
    await waitFor(() => caughtUp().length > 0, { what: "the far worker's catch-up" });
    // The catch-up did deliver something: the drop was not in a quiet moment.
    expect(caughtUp()[0]!.delivered).toBeGreaterThan(0);
    const atCatchUp = sent;
    await waitFor(() => sent >= atCatchUp + 20, { what: "publishing after the catch-up" });
    stop = true;
    await publishing;

    const expected = Array.from({ length: sent }, (_, i) => i);
    for (const { seen } of clients) {
      await waitFor(() => seen.length >= sent, { what: `all ${sent} deliveries` }).catch((err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(seen)}`);
      });
      expect(seen).toEqual(expected);
    }
    expect(server.output.filter((line) => line.includes("subscription catch-up incomplete"))).toEqual([]);
  });
});
