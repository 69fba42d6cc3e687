import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server, type Socket } from "socket.io";
import { io as connect, type Socket as ClientSocket } from "socket.io-client";
import { describe, expect, it, onTestFinished } from "vitest";
import { coalesceFlushedWrites, tcpSocketOf } from "../src/worker/write-coalescing.js";

const BURST = 8;

/**
 * A real socket.io server and client in this process. The server-side connection comes back with a
 * count of the write calls its TCP socket makes: each `_write`/`_writev` is one system call.
 */
async function connected(coalesce: boolean, transport: "websocket" | "polling") {
  const http = createServer();
  const io = new Server(http, { serveClient: false });
  if (coalesce) coalesceFlushedWrites(io.engine);
  const arrived = new Promise<Socket>((resolve) => io.once("connection", resolve));
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const client: ClientSocket = connect(`http://127.0.0.1:${(http.address() as AddressInfo).port}`, {
    transports: [transport],
    reconnection: false,
  });
  onTestFinished(async () => {
    client.close();
    await io.close();
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
