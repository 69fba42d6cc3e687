/**
 * CLIENT_QUEUE_MAX_BYTES: a client that stops reading is closed once the server holds more than
 * the cap for it, on the direct websocket path and on Engine.IO's queue (a polling client that
 * stops polling), while a healthy subscriber of the same channel gets every message.
 */
import type { Socket as NetSocket } from "node:net";
import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { rssBytes } from "./helpers/proc.js";
import { waitFor } from "./helpers/wait.js";
import { logLines } from "./helpers/workers.js";

const CONTENT = "x".repeat(8 * 1024);

/** Publishes `count` messages, `window` acks outstanding at a time; every ack must be a success. */
async function publishMany(socket: Socket, channel: string, count: number, window = 64): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const ack = await request(socket, "message:queue", channel, `${i}:${CONTENT}`);
      if (!ack.success) throw new Error(`publish ${i} refused: ${JSON.stringify(ack)}`);
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
}

/** A healthy subscriber's count of distinct messages received on `channel`. */
function counter(socket: Socket, channel: string): () => number {
  const seen = new Set<string>();
  socket.on(`message:receive:${channel}`, (m: { content: string }) => seen.add(m.content.slice(0, m.content.indexOf(":"))));
  return () => seen.size;
}

function closedAtCap(server: RunningServer) {
  return logLines<{ heldBytes: number; cap: number }>(server, "closed a client that does not read: over CLIENT_QUEUE_MAX_BYTES");
}

describe("a client that stops reading (CLIENT_QUEUE_MAX_BYTES)", () => {
  afterEach(async () => {
    closeAllClients();
    await stopAllServers();
  });

  /**
   * One run of the scenario on a fresh server: a healthy subscriber (and, if `slowToo`, a
   * second one that stops reading its TCP socket, so it also stops answering pings) of one
   * channel, 20,000 messages of 8 KB published to it. Returns the worker's peak RSS growth.
   */
  async function feedRun(slowToo: boolean): Promise<{ server: RunningServer; growth: number; slow?: { socket: Socket; tcp: NetSocket } }> {
    const server = await startServer({ workers: 1, env: { PERSISTENCE: "off", CLIENT_RATE_LIMIT_PER_SEC: "0" } });
    const [worker] = server.workerPids();
    const healthy = await connect(server.url, server.token(), { transports: ["websocket"] });
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    expect((await request(healthy, "channel:subscribe", "feed")).success).toBe(true);
    let slow: { socket: Socket; tcp: NetSocket } | undefined;
    if (slowToo) {
      const socket = await connect(server.url, server.token(), { transports: ["websocket"] });
      expect((await request(socket, "channel:subscribe", "feed")).success).toBe(true);
      const tcp = (socket.io.engine.transport as unknown as { ws: { _socket: NetSocket } }).ws._socket;
      tcp.pause();
      slow = { socket, tcp };
    }
    const received = counter(healthy, "feed");
    const before = rssBytes(worker!);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(worker!))), 50);
    try {
      await publishMany(publisher, "feed", 20_000);
      await waitFor(() => received() === 20_000, { what: "every message at the healthy subscriber", timeoutMs: 60_000 });
    } finally {
      clearInterval(sampler);
    }
    return { server, growth: peak - before, slow };
  }

  it("websocket: is closed past the cap, costing the worker at most 96 MB more than the same load without it, while a healthy subscriber gets all 20,000 × 8 KB", async () => {
    // The load alone grows a worker's RSS (V8's heap and the frames' buffers before a GC reclaims
    // them): the slow client is judged by what it adds to that.
    const alone = await feedRun(false);
    expect(closedAtCap(alone.server)).toEqual([]);
    await alone.server.stop();
    const withSlow = await feedRun(true);
    const [closed] = closedAtCap(withSlow.server);
    expect(closed, "the server closed the slow client at the cap").toBeDefined();
    expect(closed!.cap).toBe(4 * 1024 * 1024);
    expect(closed!.heldBytes).toBeGreaterThan(4 * 1024 * 1024);
    expect(withSlow.growth - alone.growth, `worker RSS growth: ${withSlow.growth} with the slow client, ${alone.growth} without`).toBeLessThanOrEqual(96 * 1024 * 1024);
    // Once it reads again it finds its transport closed (and would reconnect and recover).
    let disconnected = false;
    withSlow.slow!.socket.on("disconnect", () => (disconnected = true));
    withSlow.slow!.tcp.resume();
    await waitFor(() => disconnected, { what: "the slow client's disconnect" });
  }, 180_000);

  it("websocket: a client that stops reading its answers (history pages, through Engine.IO's send path) is closed at the cap", async () => {
    // Acks are not broadcasts: they go through Engine.IO's send path, not the direct write.
    const server = await startServer({ workers: 1, env: { PERSISTENCE: "embedded", CLIENT_RATE_LIMIT_PER_SEC: "0" } });
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    const big = "y".repeat(100 * 1024);
    await Promise.all(Array.from({ length: 60 }, (_, i) => request(publisher, "message:queue", "pages", `${i}:${big}`).then((ack) => expect(ack.success).toBe(true))));
    const reader = await connect(server.url, server.token(), { transports: ["websocket"] });
    const first = await request<{ success: boolean; pastMessages: unknown[] }>(reader, "channel:history", "pages", 100, "ascending", null);
    expect(first.success).toBe(true);
    expect(first.pastMessages.length).toBeGreaterThan(5);
    const tcp = (reader.io.engine.transport as unknown as { ws: { _socket: NetSocket } }).ws._socket;
    tcp.pause();
    // It still sends: each request asks for one more page it will not read.
    for (let i = 0; i < 40 && closedAtCap(server).length === 0; i++) {
      reader.emit("channel:history", "pages", 100, "ascending", null, () => undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await waitFor(() => closedAtCap(server).length === 1, { what: "the reader closed at the cap" });
    const [closed] = closedAtCap(server);
    expect(closed!.cap).toBe(4 * 1024 * 1024);
    expect(closed!.heldBytes).toBeGreaterThan(4 * 1024 * 1024);
    // A healthy client on the same worker is served as before.
    const other = await connect(server.url, server.token(), { transports: ["websocket"] });
    expect((await request<{ success: boolean }>(other, "channel:history", "pages", 1, "ascending", null)).success).toBe(true);
  });

  it("polling: a few large answers waiting in Engine.IO's queue count as much as many small ones", async () => {
    const server = await startServer({ workers: 1, env: { PERSISTENCE: "embedded", CLIENT_RATE_LIMIT_PER_SEC: "0" } });
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    const big = "y".repeat(100 * 1024);
    await Promise.all(Array.from({ length: 60 }, (_, i) => request(publisher, "message:queue", "pages", `${i}:${big}`).then((ack) => expect(ack.success).toBe(true))));
    const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
    const open = (await (await fetch(base)).text()) as string;
    const { sid } = JSON.parse(open.slice(1)) as { sid: string };
    const post = async (body: string) => (await fetch(`${base}&sid=${sid}`, { method: "POST", body })).status;
    expect(await post(`40${JSON.stringify({ token: server.token() })}`)).toBe(200);
    // It asks for pages of ~1 MiB and never polls: eight of them are twice the 4 MiB cap, in a
    // queue of eight packets.
    let requests = 0;
    for (; requests < 8 && closedAtCap(server).length === 0; requests++) {
      const status = await post(`42${requests}${JSON.stringify(["channel:history", "pages", 100, "ascending", null])}`);
      if (status !== 200) break; // closed meanwhile: its session is gone
    }
    await waitFor(() => closedAtCap(server).length === 1, { what: "the polling client closed at the cap" });
    expect(closedAtCap(server)[0]!.heldBytes).toBeGreaterThan(4 * 1024 * 1024);
  });

  it("polling: a client that stops polling is closed once Engine.IO's queue for it passes the cap", async () => {
    const server = await startServer({ workers: 1, env: { PERSISTENCE: "off", CLIENT_QUEUE_MAX_BYTES: "262144", CLIENT_RATE_LIMIT_PER_SEC: "0" } });
    const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
    const open = (await (await fetch(base)).text()) as string;
    const { sid } = JSON.parse(open.slice(1)) as { sid: string };
    const poll = async () => (await (await fetch(`${base}&sid=${sid}`)).text()).split("\x1e");
    const post = async (body: string) => expect((await fetch(`${base}&sid=${sid}`, { method: "POST", body })).status).toBe(200);
    await post(`40${JSON.stringify({ token: server.token() })}`);
    expect((await poll())[0]).toMatch(/^40/);
    await post(`420${JSON.stringify(["channel:subscribe", "feed"])}`);
    // The ack may come with a later poll (a ping can answer the first).
    const ack = `430${JSON.stringify([{ success: true }])}`;
    await waitFor(async () => (await poll()).includes(ack), { what: "the subscribe's ack over polling" });
    // From here on it never polls again.
    const healthy = await connect(server.url, server.token(), { transports: ["websocket"] });
    expect((await request(healthy, "channel:subscribe", "feed")).success).toBe(true);
    const received = counter(healthy, "feed");
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    await publishMany(publisher, "feed", 200, 8); // 1.6 MB: six times the cap
    await waitFor(() => received() === 200, { what: "every message at the healthy subscriber" });
    await waitFor(() => closedAtCap(server).length === 1, { what: "the polling client closed at the cap" });
    expect(closedAtCap(server)[0]!.heldBytes).toBeGreaterThan(262_144);
    // Its session is gone from the worker: a poll now is refused.
    const res = await fetch(`${base}&sid=${sid}`);
    expect(res.status).toBe(400);
  });
});
