import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import { closeAllClients, nextEvent, request } from "./helpers/client.js";
import { MODES, modeServers, type ModeName } from "./helpers/modes.js";
import { stopAllServers, type RunningServer } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";
import { logLines, oneOnEachWorker, workerOf } from "./helpers/workers.js";

/**
 * A broadcast costs only the workers with a member in its channel: the others never receive it
 * (embedded: the primary relays only to them; clustered: only they subscribe to the room's Redis
 * channel). Each worker logs every broadcast it receives from elsewhere at `trace` level, with
 * its rooms; that log is what these tests read.
 */
describe.each(MODES)("interest routing (%s)", (mode: ModeName) => {
  const servers = modeServers(mode);
  const startServer = servers.start;

  afterEach(async () => {
    closeAllClients();
    await stopAllServers();
    await servers.stop();
  });

  /** How many broadcasts to `room` were relayed to worker `worker`, from its log. */
  function relayedTo(server: RunningServer, worker: number, room: string): number {
    return logLines<{ rooms?: string[] }>(server, "relayed broadcast").filter((e) => e.worker === worker && e.rooms?.includes(room)).length;
  }

  async function publish(socket: Socket, channel: string, times: number): Promise<void> {
    for (let i = 0; i < times; i++) expect((await request(socket, "message:queue", channel, i)).success).toBe(true);
  }

  it("relays a channel's broadcasts only to workers with a subscriber, and stops at the last unsubscribe", async () => {
    const server = await startServer({ workers: 2, env: { LOG_LEVEL: "trace", PERSISTENCE: "off" } });
    const [one, two] = await oneOnEachWorker(server);
    const [w1, w2] = [workerOf(one), workerOf(two)];
    for (const [socket, channel] of [[one, "only-one"], [one, "both"], [one, "barrier"], [two, "both"], [two, "sentinel"]] as const) {
      expect((await request(socket, "channel:subscribe", channel)).success).toBe(true);
    }

    // From worker 2 to a channel only worker 1 has: relayed there, delivered.
    const delivered = new Promise<void>((resolve) => {
      let n = 0;
      one.on("message:receive:only-one", () => ++n === 3 && resolve());
    });
    await publish(two, "only-one", 3);
    await delivered;
    // From worker 1 to a channel nobody has, and to one both have.
    await publish(one, "nobody", 3);
    await publish(one, "both", 2);
    // Worker 2's last subscriber leaves "both": later broadcasts to it stay on worker 1.
    expect((await request(two, "channel:unsubscribe", "both")).success).toBe(true);
    // The ack does not wait for the primary (or Redis) to stop routing: a broadcast from worker 2
    // that worker 1 receives went through the same channel after the leave, so it was taken.
    const barrier = nextEvent(one, "message:receive:barrier");
    await publish(two, "barrier", 1);
    await barrier;
    await publish(one, "both", 2);
    // The primary relays to a worker in order, as Redis delivers to one subscriber connection:
    // once the sentinel is in worker 2's log, so is every earlier broadcast relayed to it.
    const sentinel = nextEvent(two, "message:receive:sentinel");
    await publish(one, "sentinel", 1);
    await sentinel;
    await waitFor(() => relayedTo(server, w2, "ch:sentinel") === 1, { what: "the sentinel in worker 2's log" });

    expect(relayedTo(server, w1, "ch:only-one")).toBe(3);
    expect(relayedTo(server, w2, "ch:only-one")).toBe(0);
    expect(relayedTo(server, w2, "ch:nobody")).toBe(0);
    expect(relayedTo(server, w2, "ch:both")).toBe(2);
  });

  it("routes a channel to a worker as soon as its subscribe is acknowledged", async () => {
    const server = await startServer({ workers: 2, env: { PERSISTENCE: "off" } });
    const [one, two] = await oneOnEachWorker(server);
    // Subscribe and publish from the other worker right after each ack, over fresh channels: a
    // broadcast sequenced before the subscriber's worker was routed would be missing.
    for (let i = 0; i < 20; i++) {
      const channel = `fresh-${i}`;
      expect((await request(two, "channel:subscribe", channel)).success).toBe(true);
      const received = nextEvent<{ content: unknown }>(two, `message:receive:${channel}`, 5_000);
      expect((await request(one, "message:queue", channel, i)).success).toBe(true);
      expect((await received).content).toBe(i);
    }
  });
});
