import { spawn } from "node:child_process";
import { connect as tcpConnect, type Socket as NetSocket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Socket } from "socket.io-client";
import { Balancer, type Target } from "../src/primary/balancer.js";
import { createLogger } from "../src/shared/logger.js";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";

/** Runs `task` for 0..count-1 with at most `concurrency` in flight; returns the failures. */
async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const lanes = Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++;
      await task(i).catch((err: Error) => failures.push(`${i}: ${err.message}`));
    }
  });
  await Promise.all(lanes);
  return failures;
}

/** Opens a client, proves the session works with one ack round trip, closes it. */
async function connectAndProbe(server: RunningServer, transports: string[]): Promise<Socket> {
  const socket = await connect(server.url, server.token(), { transports });
  const ack = await request(socket, "channel:subscribe", "probe");
  if (!ack.success) throw new Error(`subscribe failed: ${JSON.stringify(ack)}`);
  return socket;
}

/** Sends raw bytes in pieces and resolves with everything the server answered. */
function rawExchange(port: number, pieces: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, "127.0.0.1");
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => (answer += d));
    socket.on("error", reject);
    socket.on("close", () => resolve(answer));
    socket.on("connect", async () => {
      for (const piece of pieces) {
        socket.write(piece);
        // Separate TCP segments: wait until the kernel took this piece before writing the next.
        await new Promise<void>((r) => setImmediate(r));
        await new Promise<void>((r) => socket.write("", () => r()));
      }
    });
  });
}

describe("balancer", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ workers: 2 });
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("connects 2,000 websocket-only clients without a failure", async () => {
    const failures = await pool(2000, 50, async () => {
      const socket = await connectAndProbe(server, ["websocket"]);
      socket.close();
    });
    expect(failures).toEqual([]);
  });

  it("connects 1,000 polling-first clients without a failure, upgrade included", async () => {
    let upgraded = 0;
    const failures = await pool(1000, 50, async () => {
      const socket = await connectAndProbe(server, ["polling", "websocket"]);
      if (socket.io.engine.transport.name !== "websocket") {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("no upgrade within 10 s")), 10_000);
          socket.io.engine.once("upgrade", () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      upgraded++;
      // One more round trip over the upgraded transport.
      const ack = await request(socket, "channel:unsubscribe", "probe");
      if (!ack.success) throw new Error("unsubscribe failed after upgrade");
      socket.close();
    });
    expect(failures).toEqual([]);
    expect(upgraded).toBe(1000);
  });

  it("connects polling-only clients that keep polling on their worker", async () => {
    const sockets = await Promise.all(
      Array.from({ length: 50 }, () => connectAndProbe(server, ["polling"])),
    );
    // Several long-poll cycles each: every request must reach the session's owner.
    for (let round = 0; round < 3; round++) {
      const acks = await Promise.all(sockets.map((s) => request(s, "channel:subscribe", `r${round}`)));
      expect(acks.every((a) => a.success)).toBe(true);
    }
    for (const s of sockets) s.close();
  });

  it("spreads 1,000 simultaneous connects within 10% of even", async () => {
    const sockets = await Promise.all(
      Array.from({ length: 1000 }, () => connect(server.url, server.token(), { transports: ["websocket"] })),
    );
    const perWorker = new Map<string, number>();
    for (const s of sockets) {
      const owner = s.io.engine.id.split(".")[0]!;
      perWorker.set(owner, (perWorker.get(owner) ?? 0) + 1);
    }
    for (const s of sockets) s.close();
    expect(perWorker.size).toBe(2);
    for (const count of perWorker.values()) {
      expect(Math.abs(count - 500)).toBeLessThanOrEqual(50);
    }
  });

  it("routes a request head that arrives in several TCP segments", async () => {
    const answer = await rawExchange(server.port, [
      "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n",
      "Host: 127.0.0.1\r\n",
      "X-Filler: ",
      "x".repeat(3000),
      "\r\n\r\n",
    ]);
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toContain('"sid":"');
  });

  it("delivers a POST body sent right behind its head to the session's worker", async () => {
    const handshake = await rawExchange(server.port, ["GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"]);
    const sid = /"sid":"([^"]+)"/.exec(handshake)?.[1];
    expect(sid).toBeDefined();
    const body = `40${JSON.stringify({ token: server.token() })}`;
    const post = await rawExchange(server.port, [
      `POST /socket.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
      body.slice(10),
    ]);
    expect(post).toMatch(/^HTTP\/1\.1 200/);
    expect(post.trimEnd().endsWith("ok")).toBe(true);
  });

  it("answers 431 to a request head larger than 16 KiB", async () => {
    const answer = await rawExchange(server.port, [
      `GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nX-Big: ${"y".repeat(20_000)}\r\n\r\n`,
    ]);
    expect(answer).toMatch(/^HTTP\/1\.1 431/);
  });

  it("answers 404 for paths that are not Socket.IO", async () => {
    const res = await fetch(`${server.url}/elsewhere`);
    expect(res.status).toBe(404);
  });
});

const WEBSOCKET_HEAD = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\r\n";

/**
 * A balancer on a free port whose one worker keeps the sockets handed to it (`held`), the way
 * Node's hand-over queue holds them until the worker acknowledges.
 */
async function holdingBalancer(): Promise<{ port: number; held: NetSocket[]; close(): Promise<void> }> {
  const held: NetSocket[] = [];
  const target: Target = {
    id: 1,
    send: (_message, handle) => {
      held.push(handle);
      return true;
    },
  };
  const balancer = new Balancer({
    byId: () => undefined,
    ready: () => [target],
    message: (head) => head,
    headerTimeoutMs: 10_000,
    log: createLogger("silent", {}),
  });
  const port = await balancer.listen(0, "127.0.0.1");
  return {
    port,
    held,
    close: async () => {
      for (const socket of held) socket.destroy();
      await balancer.close();
    },
  };
}

describe("balancer hand-over", () => {
  it("stops reading the connection for good once it routed it, even while the hand-over waits", async () => {
    // Node queues a hand-over while the previous one to that worker is unacknowledged, and
    // until the worker acknowledges, the primary's copy of the handle would drop what it reads.
    // The target holds the sockets the way that queue does: nothing more may be read from them.
    const { port, held, close } = await holdingBalancer();
    const client = tcpConnect(port, "127.0.0.1");
    let latch: NetSocket | undefined;
    try {
      client.write(WEBSOCKET_HEAD);
      await until(() => held.length === 1);
      // Several event-loop turns (the read-ahead that used to restart reads runs on the next
      // one), then what a client sends once its upgrade is answered.
      for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
      await new Promise<void>((r) => client.write("40{}", () => r()));
      // The latch: a second connection, opened only now, gets routed in a later poll of the
      // event loop than the one that saw those bytes arrive. A reading handle would have
      // taken them by the time it is routed.
      latch = tcpConnect(port, "127.0.0.1", () => latch!.write(WEBSOCKET_HEAD));
      await until(() => held.length === 2);
      expect(held[0]!.bytesRead).toBe(Buffer.byteLength(WEBSOCKET_HEAD));
      expect((held[0] as unknown as { _handle: { reading: boolean } })._handle.reading).toBe(false);
    } finally {
      client.destroy();
      latch?.destroy();
      await close();
    }
  });

  it("hands over connections with TCP_NODELAY set, as Node's HTTP server would", async () => {
    const { port, held, close } = await holdingBalancer();
    const client = tcpConnect(port, "127.0.0.1");
    try {
      client.write(WEBSOCKET_HEAD);
      await until(() => held.length === 1);
      // Node has no getter for the option: ask the kernel, through a child that shares the descriptor.
      expect(await tcpNoDelayOf(held[0]!)).toBe(1);
    } finally {
      client.destroy();
      await close();
    }
  });
});

/** getsockopt(TCP_NODELAY) of a connected socket, read by python3 from a shared descriptor. */
function tcpNoDelayOf(socket: NetSocket): Promise<number> {
  const script = "import socket; s = socket.socket(fileno=3); print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)); s.detach()";
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-c", script], { stdio: ["ignore", "pipe", "inherit", socket] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString("utf8")));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`python3 exited with ${code}`))));
  });
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met within 5 s");
    await new Promise<void>((r) => setTimeout(r, 5));
  }
}
