/**
 * The primary's supervision of its workers: process titles, restart of a dead worker with
 * exponential backoff while the other keeps serving, graceful shutdown on SIGTERM/SIGINT, and
 * workers that leave by themselves when the primary is killed.
 */
import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import { closeAllClients, connect, request, type ClientOptions } from "./helpers/client.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";
import { cmdlineOf, isGone } from "../harness/procfs.js";
import { workerOf } from "./helpers/workers.js";

/** The SHUTDOWN_TIMEOUT_MS that startServer sets. */
const SHUTDOWN_TIMEOUT_MS = 5000;

interface LogLine {
  msg?: string;
  role?: string;
  pid?: number;
  worker?: number;
  slot?: number;
  restartInMs?: number;
  time?: number;
  signal?: string | null;
}

function logLines(server: RunningServer): LogLine[] {
  return server.output.flatMap((line) => {
    if (!line.startsWith("{")) return [];
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return []; // a line split across chunks: not a log entry we look for
    }
  });
}

/** "worker ready" entries: cluster worker id (the Engine.IO session id prefix) and pid. */
function readyWorkers(server: RunningServer): Array<{ worker: number; pid: number; time: number }> {
  return logLines(server)
    .filter((l) => l.role === "worker" && l.msg === "worker ready")
    .map((l) => ({ worker: l.worker!, pid: l.pid!, time: l.time! }));
}

function exitLines(server: RunningServer): LogLine[] {
  return logLines(server).filter((l) => l.msg === "worker exited");
}

const cmdline = (pid: number) => cmdlineOf(pid).trim();


async function bothWorkersReady(server: RunningServer) {
  return waitFor(() => readyWorkers(server).length >= 2 && readyWorkers(server), { what: "two worker ready lines" });
}

/** Resolves with the exit of the server's primary, however it ends. */
function exitOf(server: RunningServer): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const child = server.process;
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

/** Connects `count` clients, alternating polling-first (the SDK default) and websocket-only. */
async function connectMany(server: RunningServer, count: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i++) {
    const options: ClientOptions = i % 2 === 0 ? {} : { transports: ["websocket"] };
    sockets.push(await connect(server.url, server.token(), options));
  }
  return sockets;
}

/** Publishes from `from` and waits until every socket in `to` received it. */
async function deliver(from: Socket, to: Socket[], channel: string, text: string): Promise<void> {
  const arrivals = to.map(
    (socket) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${text} did not reach ${socket.id}`)), 10_000);
        const onMessage = (message: { content: unknown }) => {
          if (message.content !== text) return;
          clearTimeout(timer);
          socket.off(`message:receive:${channel}`, onMessage);
          resolve();
        };
        socket.on(`message:receive:${channel}`, onMessage);
      }),
  );
  expect(await request(from, "message:queue", channel, text)).toMatchObject({ success: true });
  await Promise.all(arrivals);
}

afterEach(async () => {
  closeAllClients();
  await stopAllServers();
});

describe("process titles", () => {
  it("names the primary cerebellum-primary and each worker cerebellum-worker", async () => {
    const server = await startServer();
    const workers = await bothWorkersReady(server);
    expect(cmdline(server.process.pid!)).toMatch(/^cerebellum-primary/);
    for (const { pid } of workers) expect(cmdline(pid)).toMatch(/^cerebellum-worker/);
  });
});

describe("a worker that dies", () => {
  it("is restarted while clients on the other worker keep working throughout", async () => {
    // A slow restart leaves a window in which only one worker serves.
    const server = await startServer({ env: { WORKER_RESTART_DELAY_MS: "3000" } });
    const workers = await bothWorkersReady(server);

    const clients = await connectMany(server, 6);
    const drops = new Map<Socket, string>();
    for (const socket of clients) socket.on("disconnect", (reason) => drops.set(socket, reason));
    const victimWorker = workerOf(clients[0]!);
    const victimPid = workers.find((w) => w.worker === victimWorker)!.pid;
    const onVictim = clients.filter((s) => workerOf(s) === victimWorker);
    const onSurvivor = clients.filter((s) => workerOf(s) !== victimWorker);
    // Round-robin put clients on both workers.
    expect(onVictim.length).toBeGreaterThan(0);
    expect(onSurvivor.length).toBeGreaterThan(1);
    for (const socket of clients) expect(await request(socket, "channel:subscribe", "sup:room")).toEqual({ success: true });
    await deliver(onSurvivor[0]!, clients, "sup:room", "before the crash");

    process.kill(victimPid, "SIGKILL");
    await waitFor(() => onVictim.every((s) => drops.has(s)), { what: "the dead worker's clients to notice" });

    // Inside the restart delay: the survivors still publish and receive, new clients still get in.
    await deliver(onSurvivor[1]!, onSurvivor, "sup:room", "during the restart");
    const newcomer = await connect(server.url, server.token());
    expect(workerOf(newcomer)).not.toBe(victimWorker);
    expect(await request(newcomer, "channel:subscribe", "sup:room")).toEqual({ success: true });
    await deliver(newcomer, onSurvivor, "sup:room", "from a newcomer during the restart");
    expect(readyWorkers(server), "no replacement yet: the checks above ran inside the window").toHaveLength(2);

    // The replacement comes up with a new pid (and a new cluster worker id).
    const replacement = await waitFor(() => readyWorkers(server)[2], { what: "a replacement worker ready" });
    expect(workers.map((w) => w.pid)).not.toContain(replacement.pid);
    expect(replacement.worker).not.toBe(victimWorker);
    expect(isGone(victimPid)).toBe(true);

    // New connections reach the replacement too, and it shares broadcasts with the survivor.
    const late = await waitFor(
      async () => {
        const socket = await connect(server.url, server.token());
        if (workerOf(socket) === replacement.worker) return socket;
        socket.close();
        return undefined;
      },
      { what: "a connection on the replacement" },
    );
    expect(await request(late, "channel:subscribe", "sup:room")).toEqual({ success: true });
    await deliver(late, onSurvivor, "sup:room", "from the replacement");
    await deliver(onSurvivor[0]!, [late], "sup:room", "to the replacement");

    // Only the dead worker's clients were dropped.
    for (const socket of onSurvivor) expect(drops.get(socket), socket.id).toBeUndefined();
    expect(onSurvivor.every((s) => s.connected)).toBe(true);
  });

  it("is restarted with a doubling delay when it keeps dying quickly, per slot", async () => {
    const server = await startServer(); // defaults: 500 ms doubling
    const [first, other] = await bothWorkersReady(server);

    // Kill the same slot three times in a row, each time as soon as its replacement is ready.
    let target = first!;
    const killed: number[] = [];
    for (let round = 1; round <= 3; round++) {
      process.kill(target.pid, "SIGKILL");
      killed.push(target.pid);
      const next = await waitFor(() => readyWorkers(server)[1 + round], {
        what: `replacement ${round}`,
        timeoutMs: 15_000,
      });
      target = next;
    }
    const exits = exitLines(server);
    expect(exits.map((e) => e.restartInMs)).toEqual([500, 1000, 2000]);
    expect(new Set(exits.map((e) => e.slot)).size).toBe(1);
    expect(exits.every((e) => e.signal === "SIGKILL")).toBe(true);
    // Each replacement logged ready no earlier than its delay after the exit (both clocks are the host's).
    const ready = readyWorkers(server).slice(2);
    exits.forEach((exit, i) => expect(ready[i]!.time - exit.time!).toBeGreaterThanOrEqual(exit.restartInMs!));
    for (const pid of killed) expect(isGone(pid)).toBe(true);

    // The other slot has its own count: its first crash restarts after the base delay.
    process.kill(other!.pid, "SIGKILL");
    await waitFor(() => exitLines(server).length === 4, { what: "the other slot's exit line" });
    const otherExit = exitLines(server)[3]!;
    expect(otherExit.slot).not.toBe(exits[0]!.slot);
    expect(otherExit.restartInMs).toBe(500);
    await waitFor(() => readyWorkers(server).length === 6, { what: "the other slot's replacement" });
    await waitFor(async () => (await fetch(`${server.healthUrl}/readyz`)).status === 200, { what: "ready again" });
  });
});

describe("shutdown", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`${signal}: exits 0 within SHUTDOWN_TIMEOUT_MS, disconnects clients, leaves no worker behind`, async () => {
      const server = await startServer();
      const workers = await bothWorkersReady(server);
      const clients = await connectMany(server, 4);
      expect(new Set(clients.map(workerOf)).size).toBe(2);
      const drops = new Map<Socket, string>();
      for (const socket of clients) socket.on("disconnect", (reason) => drops.set(socket, reason));

      const started = Date.now();
      const exited = exitOf(server);
      server.process.kill(signal);
      const result = await exited;
      const ms = Date.now() - started;

      expect(result).toEqual({ code: 0, signal: null });
      expect(ms).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 1500);
      // The primary waited for its workers: they are gone the moment it is.
      for (const { pid } of workers) expect(isGone(pid), `worker ${pid}`).toBe(true);
      // They drained rather than being killed at the deadline.
      const lines = logLines(server);
      expect(lines.filter((l) => l.msg === "worker stopped")).toHaveLength(2);
      expect(lines.some((l) => l.msg === "worker did not stop in time, killing it")).toBe(false);
      expect(lines.some((l) => l.msg === "stopped" && l.role === "primary")).toBe(true);

      await waitFor(() => drops.size === clients.length, { what: "every client to see the disconnect" });
      // And nothing is listening any more.
      await expect(fetch(`${server.healthUrl}/healthz`)).rejects.toThrow();
    });
  }

  it("SIGKILL of the primary: the workers notice the lost IPC channel and exit by themselves", async () => {
    const server = await startServer();
    const workers = await bothWorkersReady(server);
    const clients = await connectMany(server, 2);
    const drops = new Map<Socket, string>();
    for (const socket of clients) socket.on("disconnect", (reason) => drops.set(socket, reason));

    const exited = exitOf(server);
    server.process.kill("SIGKILL");
    expect(await exited).toEqual({ code: null, signal: "SIGKILL" });

    await waitFor(() => workers.every(({ pid }) => isGone(pid)), { what: "orphaned workers to exit" });
    await waitFor(() => drops.size === clients.length, { what: "clients to see the disconnect" });
  });
});
