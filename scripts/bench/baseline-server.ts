/**
 * The benchmark's baseline: one plain socket.io process (no authentication, the default
 * in-memory adapter, no connection state recovery) doing only the channel part of the contract:
 * `channel:subscribe`, `channel:unsubscribe` and `message:queue` (broadcast to the channel, ack
 * with the message id). It is what a team would write in an afternoon; the product is held to a
 * ratio of it (docs/benchmarks.md).
 *
 * Usage: node dist/scripts/bench/baseline-server.js [--port 0] [--host 127.0.0.1]
 * Prints one JSON line `{"port": N}` once listening; stops on SIGTERM/SIGINT.
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";

const { values } = parseArgs({ options: { port: { type: "string", default: "0" }, host: { type: "string", default: "127.0.0.1" } } });

const httpServer = createServer((_req, res) => res.writeHead(404).end());
// The same engine settings as the product's defaults, so that only the product's extras differ.
const io = new Server(httpServer, {
  serveClient: false,
  pingInterval: 25_000,
  pingTimeout: 20_000,
  maxHttpBufferSize: 1_000_000,
  cors: { origin: "*", methods: ["GET", "POST"] },
});

type Ack = (response: unknown) => void;
const ackOf = (args: unknown[]): Ack | undefined => (typeof args[args.length - 1] === "function" ? (args.pop() as Ack) : undefined);
const room = (channel: string) => `ch:${channel}`;

io.on("connection", (socket) => {
  socket.on("channel:subscribe", (...args: unknown[]) => {
    const ack = ackOf(args);
    const [name] = args;
    if (typeof name !== "string" || name.length === 0) return ack?.({ success: false, error: "INVALID_CHANNEL" });
    void socket.join(room(name));
    ack?.({ success: true });
  });
  socket.on("channel:unsubscribe", (...args: unknown[]) => {
    const ack = ackOf(args);
    const [name] = args;
    if (typeof name !== "string") return ack?.({ success: false, error: "INVALID_CHANNEL" });
    void socket.leave(room(name));
    ack?.({ success: true });
  });
  socket.on("message:queue", (...args: unknown[]) => {
    const ack = ackOf(args);
    const [name, content] = args;
    if (typeof name !== "string" || name.length === 0) return ack?.({ success: false, error: "INVALID_CHANNEL" });
    const message = { createdAt: new Date().toISOString(), content, socketId: socket.id, messageId: randomUUID() };
    io.to(room(name)).emit(`message:receive:${name}`, message);
    ack?.({ success: true, messageId: message.messageId });
  });
});

httpServer.listen(Number(values.port), values.host, () => {
  const address = httpServer.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 })}\n`);
});

const stop = () => io.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
