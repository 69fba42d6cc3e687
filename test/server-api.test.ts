import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Socket } from "socket.io-client";
import { closeAllClients, connect, nextEvent, request } from "./helpers/client.js";
import { api, http } from "./helpers/http-api.js";
import { MODES, modeServers } from "./helpers/modes.js";
import { stopAllServers, type RunningServer } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const settle = (ms = 600) => new Promise((r) => setTimeout(r, ms));
const workerOf = (s: Socket) => s.io.engine.id.split(".")[0];

function collect(socket: Socket, channel: string): unknown[] {
  const seen: unknown[] = [];
  socket.on(`message:receive:${channel}`, (m: unknown) => seen.push(m));
  return seen;
}

/**
 * The server API (`POST /api/<method>`). Clustered: two hosts (two servers sharing one
 * redis-server), clients on both, the API asked on one; embedded: one host with two workers.
 */
describe.each(MODES)("server API (%s)", (mode) => {
  const servers = modeServers(mode);
  let hostA: RunningServer;
  let hostB: RunningServer;
  let seq = 0;
  const fresh = (prefix: string) => `${prefix}-${mode}-${++seq}`;
  const hosts = () => (mode === "clustered" ? [hostA, hostB] : [hostA]);
  const workersInCluster = () => hosts().length * 2;
  /** Clients spread over every worker of every host. */
  async function clientsEverywhere(perHost: number, claims: object = {}): Promise<Socket[]> {
    const sockets: Socket[] = [];
    for (const host of hosts()) {
      const here: Socket[] = [];
      while (here.length < perHost || new Set(here.map(workerOf)).size < 2) {
        here.push(await connect(host.url, host.token(claims), { transports: ["websocket"] }));
      }
      sockets.push(...here);
    }
    return sockets;
  }

  beforeAll(async () => {
    // One key prefix for both hosts: they share the Redis, and so the cluster.
    const env = { CLIENT_RATE_LIMIT_PER_SEC: "0", REDIS_KEY_PREFIX: `serverapi${process.pid}:` };
    hostA = await servers.start({ workers: 2, env });
    hostB = mode === "clustered" ? await servers.start({ workers: 2, env }) : hostA;
    // Every worker knows every other (their adapters' heartbeats) before the cluster is asked.
    await waitFor(async () => (await api(hostA, "info")).json.result?.nodes.length === workersInCluster(), { what: "every worker in info" });
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
    await servers.stop();
  });

  it("refuses a request without the key (401), an unknown method (404), a GET (405) and a body that is not an object (400)", async () => {
    const channel = fresh("guarded");
    const [subscriber] = await clientsEverywhere(1);
    await request(subscriber!, "channel:subscribe", channel);
    const seen = collect(subscriber!, channel);
    expect(await api(hostA, "publish", { channel, data: 1 }, null)).toMatchObject({
      status: 401,
      json: { error: { code: "UNAUTHORIZED", message: "an API key is required (X-API-Key, or Authorization: Bearer)" } },
    });
    expect(await api(hostA, "publish", { channel, data: 1 }, "not-the-key-0123456789")).toMatchObject({ status: 401 });
    expect(await api(hostA, "nope")).toMatchObject({ status: 404, json: { error: { code: "METHOD_NOT_FOUND" } } });
    expect(await http(hostA, "/api/info")).toMatchObject({ status: 405, json: { error: { code: "METHOD_NOT_ALLOWED" } } });
    expect(await http(hostA, "/api/publish", { body: "[1]" })).toMatchObject({ status: 400, json: { error: { code: "INVALID_ARGUMENT", message: "body must be a JSON object" } } });
    expect(await http(hostA, "/api/publish", { body: "{oops" })).toMatchObject({ status: 400, json: { error: { code: "INVALID_ARGUMENT", message: "body is not JSON" } } });
    await settle();
    expect(seen).toEqual([]);
  });

  it("publish: reaches subscribers on every worker and host, durable when answered, with no socketId", async () => {
    const channel = fresh("pub");
    const subscribers = await clientsEverywhere(2);
    for (const s of subscribers) await request(s, "channel:subscribe", channel);
    const received = subscribers.map((s) => nextEvent<Record<string, unknown>>(s, `message:receive:${channel}`));
    const res = await api(hostA, "publish", { channel, data: { text: "hi", n: 0 } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ result: { messageId: expect.stringMatching(UUID), createdAt: expect.stringMatching(ISO_MS) } });
    for (const m of await Promise.all(received)) {
      expect(m).toEqual({ createdAt: res.json.result.createdAt, content: { text: "hi", n: 0 }, messageId: res.json.result.messageId });
    }
    // Durable once answered: history has it at once (the embedded store is per host, so asked where it was published).
    const page = await api(hostA, "history", { channel });
    expect(page.json).toEqual({ result: { publications: [{ data: { text: "hi", n: 0 }, createdAt: res.json.result.createdAt }] } });
  });

  it("publish: bad input gets a 4xx and changes nothing", async () => {
    const channel = fresh("pubbad");
    const [subscriber] = await clientsEverywhere(1);
    await request(subscriber!, "channel:subscribe", channel);
    const seen = collect(subscriber!, channel);
    expect(await api(hostA, "publish", { channel })).toMatchObject({ status: 400, json: { error: { code: "INVALID_ARGUMENT", message: "content is missing" } } });
    expect(await api(hostA, "publish", { data: 1 })).toMatchObject({ status: 400, json: { error: { code: "INVALID_ARGUMENT", message: "channel is required" } } });
    expect(await api(hostA, "publish", { channel: "", data: 1 })).toMatchObject({ status: 400, json: { error: { code: "INVALID_CHANNEL" } } });
    expect(await api(hostA, "publish", { channel: "x".repeat(201), data: 1 })).toMatchObject({ status: 400, json: { error: { code: "INVALID_CHANNEL" } } });
    expect(await api(hostA, "publish", { channel, data: "x".repeat(140_000) })).toMatchObject({ status: 413, json: { error: { code: "PAYLOAD_TOO_LARGE" } } });
    await settle();
    expect(seen).toEqual([]);
    expect((await api(hostA, "history", { channel })).json).toEqual({ result: { publications: [] } });
  });

  it("broadcast: one publish per channel, each answered; one bad channel refuses them all", async () => {
    const [one, two] = [fresh("bc"), fresh("bc")];
    const sockets = await clientsEverywhere(1);
    const a = sockets[0]!;
    const b = sockets[sockets.length - 1]!;
    await request(a, "channel:subscribe", one);
    await request(b, "channel:subscribe", two);
    const seenA = collect(a, one);
    const seenB = collect(b, two);
    const bad = await api(hostA, "broadcast", { channels: [one, "", two], data: "x" });
    expect(bad).toMatchObject({ status: 400, json: { error: { code: "INVALID_CHANNEL" } } });
    expect(bad.json.error!.message).toMatch(/^channels\.1: /);
    expect(await api(hostA, "broadcast", { channels: [], data: "x" })).toMatchObject({ status: 400 });
    expect(await api(hostA, "broadcast", { channels: Array.from({ length: 101 }, (_, i) => `c${i}`), data: "x" })).toMatchObject({ status: 400 });
    await settle();
    expect([seenA, seenB]).toEqual([[], []]);
    const res = await api(hostB, "broadcast", { channels: [one, two], data: "both" });
    expect(res.status).toBe(200);
    expect(res.json.result.responses).toEqual([
      { result: { messageId: expect.stringMatching(UUID), createdAt: expect.stringMatching(ISO_MS) } },
      { result: { messageId: expect.stringMatching(UUID), createdAt: expect.stringMatching(ISO_MS) } },
    ]);
    await waitFor(() => seenA.length === 1 && seenB.length === 1, { what: "both broadcasts" });
    expect((seenA[0] as { content: unknown }).content).toBe("both");
    expect((seenB[0] as { content: unknown }).content).toBe("both");
  });

  it("history: in order, limited, reversed, paged with the cursor", async () => {
    const channel = fresh("hist");
    for (let i = 0; i < 5; i++) expect((await api(hostA, "publish", { channel, data: i })).status).toBe(200);
    const data = (r: { json: { result?: { publications: Array<{ data: unknown }> } } }) => r.json.result!.publications.map((p) => p.data);
    const first = await api(hostA, "history", { channel, limit: 2 });
    expect(data(first)).toEqual([0, 1]);
    expect(first.json.result.cursor).toBeDefined();
    const second = await api(hostA, "history", { channel, limit: 2, cursor: first.json.result.cursor });
    expect(data(second)).toEqual([2, 3]);
    expect(data(await api(hostA, "history", { channel, limit: 3, reverse: true }))).toEqual([4, 3, 2]);
    expect(await api(hostA, "history", { channel, limit: 0 })).toMatchObject({ status: 400, json: { error: { code: "INVALID_ARGUMENT" } } });
    expect(await api(hostA, "history", { channel, cursor: { forged: true } })).toMatchObject({ status: 400, json: { error: { code: "INVALID_ARGUMENT" } } });
    expect(await api(hostA, "history", { channel, reverse: "yes" })).toMatchObject({ status: 400 });
  });

  it("presence and presence_stats: members entered on every host", async () => {
    const channel = fresh("lobby");
    const sockets = await clientsEverywhere(1);
    for (const [i, s] of sockets.entries()) expect(await request(s, "presenceSet:enter", channel, { name: `u${i}` })).toEqual({ success: true });
    for (const host of hosts()) {
      const res = await api(host, "presence", { channel });
      expect(res.status).toBe(200);
      expect(res.json.result.presence).toEqual(
        Object.fromEntries(sockets.map((s, i) => [s.id, { client: s.id, info: { name: `u${i}` } }])),
      );
      expect((await api(host, "presence_stats", { channel })).json).toEqual({ result: { num_clients: sockets.length } });
    }
    expect((await api(hostA, "presence_stats", { channel: fresh("empty") })).json).toEqual({ result: { num_clients: 0 } });
    expect(await api(hostA, "presence", {})).toMatchObject({ status: 400, json: { error: { code: "INVALID_ARGUMENT" } } });
  });

  it("channels: subscribers counted across every worker and host, with a pattern; no internal rooms", async () => {
    const tag = fresh("count");
    const sockets = await clientsEverywhere(2);
    for (const s of sockets) await request(s, "channel:subscribe", `${tag}:all`);
    await request(sockets[0]!, "channel:subscribe", `${tag}:one`);
    // A presence set and the sockets' own rooms are rooms too: never listed.
    await request(sockets[1]!, "presenceSet:enter", `${tag}:presence-only`, {});
    const res = await api(hostA, "channels", { pattern: `${tag}:*` });
    expect(res.status).toBe(200);
    expect(res.json.result).toEqual({ channels: { [`${tag}:all`]: { num_clients: sockets.length }, [`${tag}:one`]: { num_clients: 1 } } });
    const everything = (await api(hostB, "channels")).json.result.channels as Record<string, unknown>;
    expect(everything[`${tag}:all`]).toEqual({ num_clients: sockets.length });
    expect(Object.keys(everything).some((name) => name.includes("presence-only") || sockets.some((s) => name.includes(s.id!)))).toBe(false);
    expect(await api(hostA, "channels", { pattern: 5 })).toMatchObject({ status: 400 });
  });

  it("info: every worker of every host, with its connections and channels", async () => {
    const before = (await api(hostA, "info")).json.result.nodes as Array<{ num_clients: number }>;
    const baseline = before.reduce((n, node) => n + node.num_clients, 0);
    const sockets = await clientsEverywhere(2);
    const res = await api(hostB, "info");
    expect(res.status).toBe(200);
    const nodes = res.json.result.nodes as Array<Record<string, unknown>>;
    expect(nodes).toHaveLength(workersInCluster());
    expect(res.json.result.missing).toBeUndefined();
    for (const node of nodes) {
      expect(node).toEqual({
        uid: expect.any(String),
        name: expect.any(String),
        host: expect.any(String),
        pid: expect.any(Number),
        worker: expect.any(Number),
        version: "0.1.0",
        mode,
        uptime: expect.any(Number),
        num_clients: expect.any(Number),
        num_channels: expect.any(Number),
      });
    }
    const workerPids = hosts().flatMap((h) => h.liveWorkerPids()).sort();
    expect(nodes.map((n) => n.pid).sort()).toEqual(workerPids);
    expect(nodes.reduce((n, node) => n + (node.num_clients as number), 0)).toBe(baseline + sockets.length);
  });

  it("disconnect: one connection by id on another host, or every connection of a token subject", async () => {
    const lobby = fresh("bye");
    const alice = await clientsEverywhere(1, { sub: `alice-${mode}` });
    const [bob] = await clientsEverywhere(1, { sub: `bob-${mode}` });
    const target = alice[alice.length - 1]!; // on host B in clustered mode
    await request(bob!, "presenceSet:enter", lobby, { name: "bob" });
    await request(target, "presenceSet:enter", lobby, { name: "alice" });
    const told = nextEvent<{ code: string; message: string }>(target, "cerebellum:disconnecting");
    const gone = nextEvent<string>(target, "disconnect");
    const left = nextEvent<{ socketId: string }>(bob!, `presence:${lobby}:leave`);
    const id = target.id;
    const one = await api(hostA, "disconnect", { client: id });
    expect(one.json).toEqual({ result: { disconnected: 1 } });
    expect(await told).toEqual({ code: "DISCONNECTED", message: "disconnected by the server API" });
    expect(await gone).toBe("io server disconnect");
    // Presence as after any server-side disconnect: the member leaves at once.
    expect(await left).toEqual({ socketId: id });
    expect(alice.filter((s) => s.connected)).toHaveLength(alice.length - 1);
    // Its session is over, not suspended: connecting again (the client still holds its session
    // id and offset) starts a new one, so a disconnect cannot be undone by recovering.
    target.connect();
    await nextEvent(target, "connect");
    expect(target.recovered).toBe(false);
    expect(target.id).not.toBe(id);

    const rest = alice.filter((s) => s.connected);
    const all = await api(hostA, "disconnect", { user: `alice-${mode}` });
    expect(all.json).toEqual({ result: { disconnected: rest.length } });
    await waitFor(() => rest.every((s) => !s.connected), { what: "alice's connections closed" });
    expect(bob!.connected).toBe(true);
    expect((await api(hostA, "disconnect", { user: `nobody-${mode}` })).json).toEqual({ result: { disconnected: 0 } });
    expect(await api(hostA, "disconnect", {})).toMatchObject({ status: 400, json: { error: { code: "INVALID_ARGUMENT", message: "body: client or user is required" } } });
  });

  it("unsubscribe: the named connections stop receiving the channel, as after their own unsubscribe; presence untouched", async () => {
    const channel = fresh("unsub");
    const carol = await clientsEverywhere(1, { sub: `carol-${mode}` });
    const [dave] = await clientsEverywhere(1, { sub: `dave-${mode}` });
    for (const s of [...carol, dave!]) await request(s, "channel:subscribe", channel);
    await request(carol[0]!, "presenceSet:enter", channel, { name: "carol" });
    const seenCarol = carol.map((s) => collect(s, channel));
    const seenDave = collect(dave!, channel);
    expect(await api(hostA, "unsubscribe", { channel })).toMatchObject({ status: 400 });
    const res = await api(hostA, "unsubscribe", { channel, user: `carol-${mode}` });
    expect(res.json).toEqual({ result: { unsubscribed: carol.length } });
    expect((await api(hostA, "publish", { channel, data: "after" })).status).toBe(200);
    await waitFor(() => seenDave.length === 1, { what: "dave's message" });
    await settle(300);
    expect(seenCarol.flat()).toEqual([]);
    expect((await api(hostB, "channels", { pattern: channel })).json.result.channels).toEqual({ [channel]: { num_clients: 1 } });
    expect(Object.keys((await api(hostB, "presence", { channel })).json.result.presence)).toEqual([carol[0]!.id]);
    // Twice: nothing left to do.
    expect((await api(hostA, "unsubscribe", { channel, user: `carol-${mode}` })).json).toEqual({ result: { unsubscribed: 0 } });
  });

  it.runIf(mode === "clustered")("answers with the servers that did not answer, rather than hang, when one is stuck", async () => {
    const stuck = hostB.liveWorkerPids()[0]!;
    process.kill(stuck, "SIGSTOP");
    try {
      const started = Date.now();
      const res = await api(hostA, "info");
      const took = Date.now() - started;
      expect(res.status).toBe(200);
      expect(res.json.result.nodes).toHaveLength(workersInCluster() - 1);
      expect(res.json.result.missing).toEqual([expect.objectContaining({ pid: stuck, uid: expect.any(String), name: expect.any(String) })]);
      // The gather's timeout (5 s), not longer.
      expect(took).toBeGreaterThanOrEqual(4500);
      expect(took).toBeLessThan(8000);
    } finally {
      process.kill(stuck, "SIGCONT");
    }
  });
});
