import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { io, type Socket } from "socket.io-client";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { MODES, modeServers, type ModeName } from "./helpers/modes.js";
import {
  closeAllRecoveringClients,
  nextConnect,
  record,
  recoveringClient,
  type Received,
} from "./helpers/recovering-client.js";
import { stopAllServers, type RunningServer } from "./helpers/server.js";
import { startTcpProxy } from "./helpers/tcp-proxy.js";
import { latch, waitFor } from "./helpers/wait.js";
import { workerOf } from "./helpers/workers.js";

const CHANNEL = "live";

describe.each(MODES)("connection state recovery (%s)", (mode: ModeName) => {
  const servers = modeServers(mode);
  const start = servers.start;
  const dirs: string[] = [];


  afterEach(async () => {
    closeAllRecoveringClients();
    closeAllClients();
    await stopAllServers();
    await servers.stop();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** `count` subscribed recovering clients spread over the workers, each recording CHANNEL. */
  async function subscribers(server: RunningServer, count: number) {
    const clients: Array<{ socket: Socket; received: Received }> = [];
    for (let i = 0; i < count; i++) {
      const socket = await recoveringClient(server.url, server.token());
      const received = record(socket, CHANNEL);
      await request(socket, "channel:subscribe", CHANNEL);
      clients.push({ socket, received });
    }
    return clients;
  }

  /** Publishes 0..n-1 (acked one by one, so each is sequenced before the next). */
  async function publish(publisher: Socket, from: number, to: number): Promise<void> {
    for (let n = from; n < to; n++) {
      const ack = await request(publisher, "message:queue", CHANNEL, n);
      expect(ack.success).toBe(true);
    }
  }

  /** Every client received exactly 0..total-1, in order, each with one string offset and nothing else. */
  async function expectAllReceived(clients: Array<{ received: Received }>, total: number) {
    const expected = Array.from({ length: total }, (_, n) => n);
    await waitFor(() => clients.every((c) => c.received.contents.length >= total), { what: "all deliveries", timeoutMs: 20_000 }).catch(
      (err: Error) => {
        throw new Error(`${err.message}: ${clients.map((c) => JSON.stringify(c.received.contents)).join("\n")}`);
      },
    );
    for (const { received } of clients) {
      expect(received.contents).toEqual(expected);
      expect(received.extras.filter((e) => !(e.count === 1 && e.offsetOk))).toEqual([]);
    }
  }

  it("recovers a dropped transport with its id, rooms and every missed message, exactly once", async () => {
    const server = await start();
    const clients = await subscribers(server, 8);
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    await publish(publisher, 0, 10);
    const ids = clients.map((c) => c.socket.id);
    const back = clients.map((c) => nextConnect(c.socket));
    for (const { socket } of clients) socket.io.engine.close(); // the network drops
    await publish(publisher, 10, 30); // published while they are away
    expect(await Promise.all(back)).toEqual(clients.map(() => true));
    expect(clients.map((c) => c.socket.id)).toEqual(ids);
    await publish(publisher, 30, 40);
    await expectAllReceived(clients, 40);
  });

  it("recovers exactly once while a publisher keeps publishing through the drop and the restores", async () => {
    const server = await start();
    const clients = await subscribers(server, 8);
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    // Restores on the publisher's worker overlap its own broadcasts (which then wait for the log).
    expect(clients.some((c) => workerOf(c.socket) === workerOf(publisher))).toBe(true);
    await publish(publisher, 0, 5);
    let total = 5;
    let allBack = false;
    const publishing = (async () => {
      while (!allBack || total < 60) await publish(publisher, total, ++total);
    })();
    const back = clients.map((c) => nextConnect(c.socket));
    for (const { socket } of clients) socket.io.engine.close();
    expect(await Promise.all(back)).toEqual(clients.map(() => true));
    allBack = true;
    await publishing;
    await expectAllReceived(clients, total);
  });

  it("goes ahead with a restore whose offset counts another worker's broadcasts that never reach the log", async () => {
    const server = await start();
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    const old = await recoveringClient(server.url, server.token(), { reconnection: false });
    const oldGot = record(old, CHANNEL);
    await request(old, "channel:subscribe", CHANNEL);
    await publish(publisher, 0, 2);
    await waitFor(() => oldGot.contents.length === 2, { what: "deliveries before the drop" });
    const internals = old as unknown as { _pid?: string; _lastOffset?: string };
    const oldId = old.id;
    old.io.engine.close(); // the network drops (a client-side close would end the session)
    await publish(publisher, 2, 4);
    // The offset now also claims 7 broadcasts of a worker "0badc0de" that the log never gets
    // (as if that worker died before they left it): the restore waits for them, bounded, then goes ahead.
    const fresh = io(server.url, { autoConnect: false, transports: ["websocket"], forceNew: true, reconnection: false, auth: { token: server.token() } });
    const freshInternals = fresh as unknown as { _pid?: string; _lastOffset?: string };
    freshInternals._pid = internals._pid;
    freshInternals._lastOffset = `${internals._lastOffset!.split(".")[0]}.0badc0de.7`;
    const got = record(fresh, CHANNEL);
    fresh.connect();
    expect(await nextConnect(fresh, 15_000)).toBe(true);
    expect(fresh.id).toBe(oldId);
    await publish(publisher, 4, 5);
    await waitFor(() => got.contents.length === 3, { what: "the gap and the next message" });
    expect(got.contents).toEqual([2, 3, 4]);
    fresh.close();
  });

  it("recovers a connection that never received a message (the welcome event gives it an offset)", async () => {
    const server = await start();
    const socket = await recoveringClient(server.url, server.token());
    const welcomes: Array<{ socketId: string }> = [];
    socket.on("cerebellum:welcome", (info: { socketId: string }) => welcomes.push(info));
    const back = nextConnect(socket);
    socket.io.engine.close();
    expect(await back).toBe(true);
    // The recovered connection gets a fresh welcome, once (welcomes are sequenced, never replayed).
    await waitFor(() => welcomes.length > 0, { timeoutMs: 5000, what: "fresh welcome" });
    const ack = await request(socket, "channel:subscribe", CHANNEL);
    expect(ack).toEqual({ success: true });
    expect(welcomes).toEqual([{ socketId: socket.id, serverTime: expect.any(String) }]);
  });

  it("recovers the clients of a SIGKILLed worker on the other worker with every message of the gap", async () => {
    const server = await start();
    const clients = await subscribers(server, 12);
    // The publisher stays on the worker that survives, so its own messages are never in flight in the dead one.
    let publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    const victimWorker = clients.map((c) => workerOf(c.socket)).find((w) => w !== workerOf(publisher))!;
    expect(victimWorker).toBeDefined();
    await publish(publisher, 0, 10);
    const victims = clients.filter((c) => workerOf(c.socket) === victimWorker);
    expect(victims.length).toBeGreaterThan(0);
    const back = victims.map((c) => nextConnect(c.socket));
    const pids = server.liveWorkerPids();
    // Which pid is the victim? Ask the kernel which worker process holds a victim's TCP connection
    // is overkill: kill both candidates in turn would kill the publisher. Use the log instead.
    const victimPid = pidOfWorker(server, victimWorker);
    expect(pids).toContain(victimPid);
    process.kill(victimPid, "SIGKILL");
    publisher.on("disconnect", (reason) => {
      if (reason !== "io client disconnect") console.error("publisher lost:", reason, server.output.filter((l) => /"level":(40|50|60)/.test(l) || !l.startsWith("{")).join("\n"));
    });
    await publish(publisher, 10, 30);
    const recovered = await Promise.all(back);
    expect(recovered.filter(Boolean).length / victims.length).toBeGreaterThanOrEqual(0.95);
    await publish(publisher, 30, 40);
    await expectAllReceived(clients, 40);
    publisher.close();
  });

  it("recovers promptly when the old connection is half-open (no FIN, ping timeout far away)", async () => {
    const server = await start({ env: { PING_INTERVAL_MS: "60000", PING_TIMEOUT_MS: "60000" } });
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    const sameWorkerSeen = new Set<boolean>();
    for (const sameWorker of [false, true]) {
      const old = await recoveringClient(server.url, server.token(), { reconnection: false });
      const oldGot = record(old, CHANNEL);
      await request(old, "channel:subscribe", CHANNEL);
      await publish(publisher, 0, 1);
      await waitFor(() => oldGot.contents.length === 1, { what: "delivery to the old connection" });
      const evicted = new Promise<string>((resolve) => old.once("disconnect", (reason) => resolve(reason)));
      // The app's network changed: the old connection is silently dead to the client, alive to the server.
      old.io.engine.transport.pause?.(() => undefined);
      if (sameWorker) await connect(server.url, server.token(), { transports: ["websocket"] }); // shifts round-robin
      const fresh = io(server.url, { autoConnect: false, transports: ["websocket"], forceNew: true, reconnection: false, auth: { token: server.token() } });
      const internals = fresh as unknown as { _pid?: string; _lastOffset?: string };
      const oldInternals = old as unknown as { _pid?: string; _lastOffset?: string };
      internals._pid = oldInternals._pid;
      internals._lastOffset = oldInternals._lastOffset;
      const got = record(fresh, CHANNEL);
      const oldId = old.id;
      const oldWorker = workerOf(old);
      const started = Date.now();
      fresh.connect();
      expect(await nextConnect(fresh, 15_000)).toBe(true);
      expect(Date.now() - started).toBeLessThan(15_000); // far below the 60 s ping timeout
      expect(fresh.id).toBe(oldId);
      sameWorkerSeen.add(workerOf(fresh) === oldWorker);
      await evicted;
      await publish(publisher, 1, 2);
      await waitFor(() => got.contents.length === 1, { what: "delivery to the recovered connection" });
      expect(got.contents).toEqual([1]);
      fresh.close();
    }
    expect(sameWorkerSeen).toEqual(new Set([false, true]));
  });

  it("loses no session when one worker is stopped gracefully (SIGTERM)", async () => {
    const server = await start({ env: { LOG_LEVEL: "debug" } });
    const clients = await subscribers(server, 10);
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    await publish(publisher, 0, 5);
    const victimWorker = clients.map((c) => workerOf(c.socket)).find((w) => w !== workerOf(publisher))!;
    const victims = clients.filter((c) => workerOf(c.socket) === victimWorker);
    const back = victims.map((c) => nextConnect(c.socket));
    process.kill(pidOfWorker(server, victimWorker), "SIGTERM");
    await publish(publisher, 5, 15);
    expect(await Promise.all(back)).toEqual(victims.map(() => true));
    await publish(publisher, 15, 20);
    await expectAllReceived(clients, 20).catch((err: Error) => {
      throw new Error(`${err.message}\n${clients.map((c) => c.socket.id).join(",")}\n${server.output.filter((l) => l.includes("restored")).join("\n")}`);
    });
  });

  it("loses no session across a rolling restart of every worker (SIGHUP)", async () => {
    const server = await start();
    const clients = await subscribers(server, 10);
    const before = server.liveWorkerPids();
    const recoveries: boolean[] = [];
    for (const { socket } of clients) socket.on("connect", () => recoveries.push(socket.recovered));
    process.kill(server.process.pid!, "SIGHUP");
    await waitFor(() => server.output.some((l) => l.includes("rolling restart done")), { what: "rolling restart", timeoutMs: 30_000 });
    await waitFor(() => clients.every((c) => c.socket.connected), { what: "clients back" });
    const after = server.liveWorkerPids();
    expect(after.filter((p) => before.includes(p))).toEqual([]);
    // Every client was on a replaced worker, so each reconnected at least once, and always recovered.
    expect(recoveries.length).toBeGreaterThanOrEqual(clients.length);
    expect(recoveries.every(Boolean)).toBe(true);
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    await publish(publisher, 0, 5);
    await expectAllReceived(clients, 5);
  });

  it("loses no session when the whole server is stopped with SIGTERM and started again", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "cerebellum-recovery-"));
    dirs.push(dataDir);
    const first = await start({ dataDir, env: { REDIS_KEY_PREFIX: "restart:" } });
    const clients = await subscribers(first, 6);
    let publisher = await connect(first.url, first.token(), { transports: ["websocket"] });
    await publish(publisher, 0, 5);
    const back = clients.map((c) => nextConnect(c.socket, 30_000));
    publisher.close();
    const stopped = await first.stop("SIGTERM");
    expect(stopped.code).toBe(0);
    const second = await start({ dataDir, port: first.port, healthPort: first.healthPort, env: { REDIS_KEY_PREFIX: "restart:" } });
    expect(await Promise.all(back)).toEqual(clients.map(() => true));
    publisher = await connect(second.url, second.token(), { transports: ["websocket"] });
    await publish(publisher, 5, 10);
    await expectAllReceived(clients, 10);
  });

  it.runIf(mode === "clustered")("moves the clients of a host that is stopped to another host, with recovery", async () => {
    const env = { REDIS_KEY_PREFIX: "moving:" };
    const hostA = await start({ env });
    const hostB = await start({ env });
    let current = hostA.port;
    const proxy = await startTcpProxy(() => current); // the load balancer in front of both
    try {
      const url = `http://127.0.0.1:${proxy.port}`;
      const clients: Array<{ socket: Socket; received: Received }> = [];
      for (let i = 0; i < 6; i++) {
        const socket = await recoveringClient(url, hostA.token());
        const received = record(socket, CHANNEL);
        await request(socket, "channel:subscribe", CHANNEL);
        clients.push({ socket, received });
      }
      const publisher = await connect(hostB.url, hostB.token(), { transports: ["websocket"] });
      await publish(publisher, 0, 5);
      const back = clients.map((c) => nextConnect(c.socket, 30_000));
      current = hostB.port; // the balancer takes host A out of rotation
      const stopped = await hostA.stop("SIGTERM");
      expect(stopped.code).toBe(0);
      await publish(publisher, 5, 15);
      expect(await Promise.all(back)).toEqual(clients.map(() => true));
      await publish(publisher, 15, 20);
      await expectAllReceived(clients, 20);
    } finally {
      await proxy.close();
    }
  });

  it("fails cleanly, never partly, once the replay log no longer covers the gap", async () => {
    // Clustered: the Redis stream's MAXLEN, trimmed approximately (whole nodes of ~100 entries),
    // so the gap below is made far longer than the bound.
    // The gap is published in one burst of up to 500 events, past the default burst of client
    // events (200): the bucket is made big enough to hold it.
    const server = await start({ env: { RECOVERY_LOG_MAX_ENTRIES: "5", CLIENT_RATE_BURST: "1000" } });
    const socket = await recoveringClient(server.url, server.token(), { reconnection: false });
    const client = { socket, received: record(socket, CHANNEL) };
    await request(socket, "channel:subscribe", CHANNEL);
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    await publish(publisher, 0, 2);
    await waitFor(() => client.received.contents.length === 2);
    const gone = new Promise((resolve) => socket.once("disconnect", resolve));
    socket.io.engine.close();
    await gone;
    // More than the log keeps, while it is away (unacknowledged but in order; the last one acked).
    const gap = mode === "embedded" ? 10 : 500;
    for (let n = 2; n < 2 + gap - 1; n++) publisher.emit("message:queue", CHANNEL, n);
    await publish(publisher, 2 + gap - 1, 2 + gap);
    const back = nextConnect(socket);
    socket.connect(); // comes back with its session id and offset
    expect(await back).toBe(false);
    expect(socket.connected).toBe(true); // a normal new connection, authenticated again
    // It received nothing of the gap: no partial replay.
    expect(client.received.contents).toEqual([0, 1]);
  });

  it.runIf(mode === "embedded")("fails cleanly once the replay log's byte bound dropped part of the gap", async () => {
    const server = await start({ env: { RECOVERY_LOG_MAX_BYTES: "4096" } });
    const socket = await recoveringClient(server.url, server.token(), { reconnection: false });
    const received = record(socket, CHANNEL);
    await request(socket, "channel:subscribe", CHANNEL);
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    const gone = new Promise((resolve) => socket.once("disconnect", resolve));
    socket.io.engine.close();
    await gone;
    // Ten messages of ~1 KB: more bytes than the log keeps, though far fewer entries than its count bound.
    for (let n = 0; n < 10; n++) await request(publisher, "message:queue", CHANNEL, "x".repeat(1000));
    const back = nextConnect(socket);
    socket.connect();
    expect(await back).toBe(false);
    expect(received.contents).toEqual([]);
  });

  it.runIf(mode === "embedded")("fails cleanly past the session bound, keeping the newest sessions", async () => {
    const server = await start({ env: { RECOVERY_MAX_SESSIONS: "1", LOG_LEVEL: "debug" } });
    const a = await recoveringClient(server.url, server.token(), { reconnection: false });
    const b = await recoveringClient(server.url, server.token(), { reconnection: false });
    const aId = a.id;
    const bId = b.id;
    for (const socket of [a, b]) {
      const gone = new Promise((resolve) => socket.once("disconnect", resolve));
      socket.io.engine.close();
      await gone;
    }
    // One session pushed the other out (whichever the primary heard of first): wait for it.
    const dropped = await waitFor(
      () => {
        const line = server.output.find((l) => l.includes('"reason":"over-bound"'));
        return line ? (JSON.parse(line) as { sid: string }).sid : undefined;
      },
      { what: "a session dropped over the bound" },
    );
    expect([aId, bId]).toContain(dropped);
    const [lost, kept] = dropped === aId ? [a, b] : [b, a];
    const lostBack = nextConnect(lost);
    lost.connect();
    expect(await lostBack).toBe(false);
    const keptBack = nextConnect(kept);
    kept.connect();
    expect(await keptBack).toBe(true);
  });

  it("fails cleanly after the recovery window", async () => {
    const server = await start({ env: { RECOVERY_MAX_DISCONNECTION_MS: "1000", PING_INTERVAL_MS: "1000", PING_TIMEOUT_MS: "1000" } });
    // The client itself waits 2.5 s before reconnecting: past the 1 s window.
    const socket = await recoveringClient(server.url, server.token(), { reconnectionDelay: 2500, reconnectionDelayMax: 2500 });
    const back = nextConnect(socket);
    socket.io.engine.close();
    expect(await back).toBe(false);
  });
});

/** The pid of the worker whose cluster id prefixes the session ids it issues. */
function pidOfWorker(server: RunningServer, workerId: number): number {
  for (const line of server.output) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line) as { msg?: string; worker?: number; pid?: number };
    if (entry.msg === "worker ready" && entry.worker === workerId && entry.pid) return entry.pid;
  }
  throw new Error(`no pid for worker ${workerId}`);
}
