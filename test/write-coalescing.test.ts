import { createServer } from "node:http";
import type { AddressInfo, Socket as TcpSocket } from "node:net";
import { Server, type Socket } from "socket.io";
import { io as connect, type Socket as ClientSocket } from "socket.io-client";
import { describe, expect, it, onTestFinished } from "vitest";
import { BroadcastBatching, coalesceFlushedWrites, tcpSocketOf } from "../src/worker/write-coalescing.js";

const BURST = 8;

interface ServerOptions {
  coalesce: boolean;
  batch?: boolean;
  recovery?: boolean;
  /** Told when the direct write's private fields are missing. */
  onNoDirectWrite?: (problem: string) => void;
}

/** A real socket.io server in this process, optionally with the worker's write hooks. */
async function serve(opts: ServerOptions) {
  const http = createServer();
  const io = new Server(http, {
    serveClient: false,
    ...(opts.recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 60_000 } } : {}),
  });
  if (opts.coalesce) coalesceFlushedWrites(io.engine);
  if (opts.batch) {
    const batching = new BroadcastBatching(opts.onNoDirectWrite);
    io.on("connection", (socket) => batching.attach(socket.client));
  }
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => io.close());
  return { io, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}` };
}

/**
 * A real socket.io client of `server`. The server-side connection comes back with a count of the
 * write calls its TCP socket makes: each `_write`/`_writev` is one system call.
 */
async function join(server: { io: Server; url: string }, transport: "websocket" | "polling") {
  const { io } = server;
  const arrived = new Promise<Socket>((resolve) => io.once("connection", resolve));
  const client: ClientSocket = connect(server.url, { transports: [transport], reconnection: false });
  onTestFinished(() => {
    client.close();
  });
  const socket = await arrived;
  socket.on("ping!", (ack: () => void) => ack());
  // One round trip first, so no write of the handshake is still in flight when the burst starts.
  await client.emitWithAck("ping!");
  const tcp = tcpSocketOf(socket.conn);
  const writes = { count: 0 };
  if (tcp) {
    // Counting the real socket's calls: the writes still happen.
    const { _write, _writev } = tcp as unknown as Record<"_write" | "_writev", (...args: unknown[]) => void>;
    Object.assign(tcp, {
      _write: (...args: unknown[]) => (writes.count++, _write.apply(tcp, args)),
      _writev: (...args: unknown[]) => (writes.count++, _writev.apply(tcp, args)),
    });
  }
  return { io, socket, client, tcp, writes };
}

async function connected(coalesce: boolean, transport: "websocket" | "polling") {
  return join(await serve({ coalesce }), transport);
}

function received(client: ClientSocket, event: string, count: number): Promise<number[]> {
  return new Promise((resolve) => {
    const got: number[] = [];
    client.on(event, (n: number) => {
      got.push(n);
      if (got.length === count) resolve(got);
    });
  });
}

describe("write coalescing", () => {
  it("finds the TCP socket under a websocket transport and none under polling", async () => {
    const ws = await connected(true, "websocket");
    expect(ws.tcp).toBeDefined();
    expect(ws.tcp).toBe(ws.socket.conn.request.socket);
    const polling = await connected(true, "polling");
    expect(polling.tcp).toBeUndefined();
  });

  it.each([
    ["emits to one socket", (s: Socket, n: number) => s.emit("n", n)],
    ["broadcasts to a room (pre-encoded frames)", (s: Socket, n: number) => s.nsp.to("room").emit("n", n)],
  ])("sends a burst that %s in two writes, in order", async (_name, send) => {
    const { socket, client, writes } = await connected(true, "websocket");
    socket.join("room");
    const got = received(client, "n", BURST);
    for (let n = 0; n < BURST; n++) send(socket, n);
    expect(await got).toEqual([...Array(BURST).keys()]);
    // The first packet goes out at once; Engine.IO holds the rest until it is written, then
    // flushes them together: one call for all of them.
    expect(writes.count).toBe(2);
  });

  it("without it, the same burst takes one write per packet (the measurement can fail)", async () => {
    const { socket, client, writes } = await connected(false, "websocket");
    const got = received(client, "n", BURST);
    for (let n = 0; n < BURST; n++) socket.emit("n", n);
    expect(await got).toEqual([...Array(BURST).keys()]);
    expect(writes.count).toBe(BURST);
  });

  it("uncorks within the tick when a flush's send threw and no drain came", async () => {
    const { io, socket, tcp } = await connected(true, "websocket");
    // Only the flush event, as Engine.IO emits it before a send that then throws.
    io.engine.emit("flush", socket.conn, [{ type: "message" }, { type: "message" }]);
    expect(tcp!.writableCorked).toBe(1);
    await Promise.resolve();
    expect(tcp!.writableCorked).toBe(0);
  });

  it("leaves a single packet alone, and polling clients get every packet in order", async () => {
    const ws = await connected(true, "websocket");
    const one = received(ws.client, "n", 1);
    ws.socket.emit("n", 42);
    expect(await one).toEqual([42]);
    expect(ws.writes.count).toBe(1);
    expect(ws.tcp!.writableCorked).toBe(0);

    const polling = await connected(true, "polling");
    const got = received(polling.client, "n", BURST);
    for (let n = 0; n < BURST; n++) polling.socket.emit("n", n);
    expect(await got).toEqual([...Array(BURST).keys()]);
  });
});

describe("broadcast batching", () => {
  const all = [...Array(BURST).keys()];

  it("in a burst, sends each websocket recipient a tick's broadcasts in one write from one shared buffer", async () => {
    const server = await serve({ coalesce: true, batch: true });
    const a = await join(server, "websocket");
    const b = await join(server, "websocket");
    const frames: unknown[] = [];
    for (const { socket, tcp } of [a, b]) {
      socket.join("room");
      recordWrites(tcp!, frames);
    }
    const burst = async (from: number) => {
      const got = [received(a.client, "n", BURST), received(b.client, "n", BURST)];
      for (let n = from; n < from + BURST; n++) server.io.to("room").emit("n", n);
      const sent = [a.writes.count, b.writes.count];
      expect(await Promise.all(got)).toEqual([0, 1].map(() => [...Array(BURST).keys()].map((n) => n + from)));
      return sent;
    };
    // The first burst after a quiet spell: the first broadcast goes out at once, the other seven
    // are held to the end of the tick and go out together.
    expect(await burst(0)).toEqual([1, 1]);
    expect([a.writes.count, b.writes.count]).toEqual([2, 2]);
    // The next tick follows a burst: all of it is held, one write per recipient.
    frames.length = 0;
    a.writes.count = b.writes.count = 0;
    expect(await burst(100)).toEqual([0, 0]);
    expect([a.writes.count, b.writes.count]).toEqual([1, 1]);
    // One write per recipient, and both write the same concatenated frame.
    expect(frames).toHaveLength(2);
    expect(frames[0]).toBeInstanceOf(Buffer);
    expect(frames[1]).toBe(frames[0]);
  });

  it("holds nothing at one broadcast per tick, except in the tick right after a burst", async () => {
    const server = await serve({ coalesce: true, batch: true });
    const { socket, client, writes } = await join(server, "websocket");
    socket.join("room");
    const lone = async (n: number) => {
      const got = received(client, "n", 1);
      server.io.to("room").emit("n", n);
      const sent = writes.count;
      expect(await got).toEqual([n]);
      writes.count = 0;
      return sent;
    };
    expect(await lone(1)).toBe(1); // written during the emit
    expect(await lone(2)).toBe(1);
    const got = received(client, "n", 2);
    server.io.to("room").emit("n", 3);
    server.io.to("room").emit("n", 4);
    expect(await got).toEqual([3, 4]);
    writes.count = 0;
    expect(await lone(5)).toBe(0); // right after a burst: held to the end of the tick
    expect(await lone(6)).toBe(1);
  });

  it("keeps each client's order around the packets it does not hold (own emits, binary)", async () => {
    const server = await serve({ coalesce: true, batch: true });
    const { socket, client } = await join(server, "websocket");
    socket.join("room");
    const got = received(client, "n", BURST);
    const room = server.io.to("room");
    room.emit("n", 0);
    room.emit("n", 1);
    socket.emit("n", 2); // its own emit: no pre-encoded frame
    room.emit("n", 3);
    room.emit("n", 4, Buffer.from([4])); // binary: no pre-encoded frame
    room.emit("n", 5);
    room.emit("n", 6);
    socket.emit("n", 7);
    expect(await got).toEqual(all);
  });

  it("writes a broadcast's frame straight to an idle websocket's TCP socket, one buffer for every recipient", async () => {
    const server = await serve({ coalesce: true, batch: true });
    const a = await join(server, "websocket");
    const b = await join(server, "websocket");
    const viaEngine: unknown[] = [];
    const frames: unknown[] = [];
    for (const { socket, tcp } of [a, b]) {
      socket.join("room");
      socket.conn.on("packetCreate", (packet: unknown) => viaEngine.push(packet));
      recordWrites(tcp!, frames);
    }
    const got = [received(a.client, "n", 1), received(b.client, "n", 1)];
    server.io.to("room").emit("n", 7);
    expect(await Promise.all(got)).toEqual([[7], [7]]);
    expect(viaEngine).toEqual([]);
    expect(frames).toHaveLength(2);
    expect(frames[0]).toBeInstanceOf(Buffer);
    expect(frames[1]).toBe(frames[0]);
    // What Engine.IO itself sends still goes through it: the client's own emits.
    const own = received(a.client, "own", 1);
    a.socket.emit("own", 1);
    expect(await own).toEqual([1]);
    expect(viaEngine).toHaveLength(1);
  });

  it("sends a broadcast through Engine.IO behind a packet of the client's that Engine.IO still holds", async () => {
    const server = await serve({ coalesce: true, batch: true });
    const { socket, client } = await join(server, "websocket");
    socket.join("room");
    const got = received(client, "n", 4);
    // The first own emit is written at once; Engine.IO holds the second until that write is done.
    // A broadcast written straight to the TCP socket now would overtake the second.
    socket.emit("n", 0);
    socket.emit("n", 1);
    server.io.to("room").emit("n", 2);
    socket.emit("n", 3);
    expect(await got).toEqual([0, 1, 2, 3]);
  });

  it("falls back to Engine.IO for good, and says so once, when ws no longer keeps its TCP socket where it did", async () => {
    const problems: string[] = [];
    const server = await serve({ coalesce: true, batch: true, onNoDirectWrite: (p) => problems.push(p) });
    const { socket, client } = await join(server, "websocket");
    socket.join("room");
    const viaEngine: unknown[] = [];
    socket.conn.on("packetCreate", (packet: unknown) => viaEngine.push(packet));
    // As if an upgrade of ws renamed the field: the check on first use finds it missing.
    const ws = (socket.conn as unknown as { transport: { socket: Record<string, unknown> } }).transport.socket;
    const tcp = ws._socket;
    delete ws._socket;
    const got = received(client, "n", 2);
    server.io.to("room").emit("n", 1);
    ws._socket = tcp;
    await nextTurn();
    server.io.to("room").emit("n", 2);
    expect(await got).toEqual([1, 2]);
    expect(viaEngine).toHaveLength(2);
    expect(problems).toEqual(["ws keeps no TCP socket in _socket"]);
  });

  it("leaves a connection to Engine.IO once it or its websocket is closing", async () => {
    const server = await serve({ coalesce: true, batch: true });
    const { socket, tcp } = await join(server, "websocket");
    socket.join("room");
    const viaEngine: unknown[] = [];
    socket.conn.on("packetCreate", (packet: unknown) => viaEngine.push(packet));
    const frames: unknown[] = [];
    recordWrites(tcp!, frames);
    const conn = socket.conn as unknown as { readyState: string; transport: { socket: { _readyState: number } } };
    // Engine.IO closing (it flushes what it holds first): Engine.IO decides what still goes out.
    conn.readyState = "closing";
    server.io.to("room").emit("n", 1);
    expect(viaEngine).toHaveLength(0); // Engine.IO drops packets once closing
    expect(frames).toHaveLength(0);
    conn.readyState = "open";
    await nextTurn(); // one broadcast per tick: none is held for batching
    // The websocket closing (the client's close frame came first): no data frame after it from here.
    conn.transport.socket._readyState = 2; // ws's CLOSING
    server.io.to("room").emit("n", 2);
    expect(viaEngine).toHaveLength(1);
    expect(frames).toHaveLength(2); // ws writes the frame's header and payload
    conn.transport.socket._readyState = 1;
    await nextTurn();
    // Open again: straight to the socket, one buffer.
    server.io.to("room").emit("n", 3);
    expect(viaEngine).toHaveLength(1);
    expect(frames).toHaveLength(3);
  });

  it("does not hold polling clients, which get every broadcast in order beside websocket ones", async () => {
    const server = await serve({ coalesce: true, batch: true });
    const ws = await join(server, "websocket");
    const polling = await join(server, "polling");
    ws.socket.join("room");
    polling.socket.join("room");
    const got = [received(ws.client, "n", BURST), received(polling.client, "n", BURST)];
    for (let n = 0; n < BURST; n++) server.io.to("room").emit("n", n);
    expect(await Promise.all(got)).toEqual([all, all]);
    expect(ws.writes.count).toBe(2); // a first burst: the first at once, the rest together
  });

  it("keeps every packet's recovery offset: a recovered client gets exactly what it missed", async () => {
    const server = await serve({ coalesce: true, batch: true, recovery: true });
    const { socket, client } = await join(server, "websocket");
    socket.join("room");
    const got: number[] = [];
    client.on("n", (n: number) => got.push(n));
    for (let n = 0; n < BURST; n++) server.io.to("room").emit("n", n);
    await until(() => got.length === BURST);
    // Drop the connection (not a clean disconnect, so the session is kept), miss two, come back.
    const gone = new Promise((resolve) => socket.once("disconnect", resolve));
    client.io.engine.close();
    await gone;
    server.io.to("room").emit("n", BURST);
    server.io.to("room").emit("n", BURST + 1);
    const back = new Promise<Socket>((resolve) => server.io.once("connection", resolve));
    client.connect();
    expect((await back).recovered).toBe(true);
    await until(() => got.length >= BURST + 2);
    expect(got).toEqual([...Array(BURST + 2).keys()]);
  });
});

/** Records what is written to a TCP socket (the writes still happen). */
function recordWrites(tcp: TcpSocket, into: unknown[]): void {
  const write = tcp.write.bind(tcp) as (...args: unknown[]) => boolean;
  tcp.write = ((...args: unknown[]) => (into.push(args[0]), write(...args))) as TcpSocket["write"];
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 5));
}
