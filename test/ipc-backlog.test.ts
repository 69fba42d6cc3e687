/**
 * IPC_QUEUE_MAX_BYTES: a worker that stops reading its IPC channel (SIGSTOP here; a busy loop or
 * a long pause alike) makes the primary hold every relay for it. Past the bound the primary
 * replaces it, and its clients recover on the others with nothing lost.
 */
import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import { request } from "./helpers/client.js";
import { closeAllRecoveringClients, nextConnect, record, recoveringClient } from "./helpers/recovering-client.js";
import { startServer, stopAllServers } from "./helpers/server.js";
import { rssBytes } from "./helpers/proc.js";
import { waitFor } from "./helpers/wait.js";
import { logLines, workerOf } from "./helpers/workers.js";

const CONTENT = "x".repeat(8 * 1024);

describe("a worker that stops reading its IPC channel (IPC_QUEUE_MAX_BYTES)", () => {
  afterEach(async () => {
    closeAllRecoveringClients();
    await stopAllServers();
  });

  it("is replaced once the primary holds more than the bound for it; its clients recover everything", async () => {
    const server = await startServer({ workers: 2, env: { PERSISTENCE: "off", IPC_QUEUE_MAX_BYTES: "1048576", CLIENT_RATE_LIMIT_PER_SEC: "0" } });
    // A recovering client on each worker: one publishes, the other's worker is stopped.
    const byWorker = new Map<number, Socket>();
    for (let i = 0; i < 20 && byWorker.size < 2; i++) {
      const socket = await recoveringClient(server.url, server.token());
      if (byWorker.has(workerOf(socket))) socket.close();
      else byWorker.set(workerOf(socket), socket);
    }
    expect(byWorker.size).toBe(2);
    const [[, publisher], [victimWorker, victim]] = [...byWorker.entries()] as [[number, Socket], [number, Socket]];
    expect((await request(victim, "channel:subscribe", "feed")).success).toBe(true);
    const received = record(victim, "feed");
    const victimPid = logLines<{ pid: number }>(server, "worker ready").find((e) => e.worker === victimWorker)!.pid;
    const primaryBefore = rssBytes(server.process.pid!);

    process.kill(victimPid, "SIGSTOP");
    const reconnected = nextConnect(victim, 30_000);
    const sent: number[] = [];
    for (let i = 0; i < 400; i++) {
      expect((await request(publisher, "message:queue", "feed", { i, pad: CONTENT })).success).toBe(true);
      sent.push(i);
    }
    const [replaced] = await waitFor(() => {
      const lines = logLines<{ worker: number; backlogBytes: number }>(server, "replacing a worker that stopped reading its IPC channel (IPC_QUEUE_MAX_BYTES)");
      return lines.length > 0 && lines;
    }, { what: "the stopped worker replaced" });
    expect(replaced!.backlogBytes).toBeGreaterThan(1_048_576);
    expect(rssBytes(server.process.pid!) - primaryBefore, "the primary's RSS growth").toBeLessThan(64 * 1024 * 1024);

    expect(await reconnected, "the victim's session was recovered").toBe(true);
    await waitFor(() => received.contents.length >= sent.length, { what: "every message at the recovered client", timeoutMs: 30_000 });
    expect(received.contents.map((c) => (c as { i: number }).i)).toEqual(sent);
  }, 90_000);
});

describe("IpcBacklog", () => {
  it("counts what is sent until send() settles it; over past the bound until back under half, told of both", async () => {
    const { IpcBacklog, estimateSize } = await import("../src/shared/ipc-backlog.js");
    const told: string[] = [];
    const backlog = new IpcBacklog(1000, (bytes) => told.push(`over ${bytes}`), () => told.push("under"));
    const a = backlog.sent(600);
    expect([backlog.bytes, backlog.over, told]).toEqual([600, false, []]);
    a(null);
    const b = backlog.sent(600);
    const c = backlog.sent(600);
    expect([backlog.over, told]).toEqual([true, ["over 1200"]]);
    const d = backlog.sent(600);
    expect(told).toEqual(["over 1200"]); // once while over
    b(null);
    c(null);
    expect([backlog.bytes, backlog.over]).toEqual([600, true]); // not yet under half
    d(null);
    expect([backlog.bytes, backlog.over, told]).toEqual([0, false, ["over 1200", "under"]]);
    // A batch's broadcast strings are counted in full.
    expect(estimateSize({ m: [{ t: "bc", d: "x".repeat(5000) }, { t: "seen" }] })).toBeGreaterThan(5000);
    const unbounded = new IpcBacklog(0, () => told.push("never"));
    unbounded.sent(1e12);
    expect([unbounded.over, told.includes("never")]).toEqual([false, false]);
  });
});
