import { randomUUID } from "node:crypto";
import type { Server, ServerOptions } from "socket.io";

/** The product's engine defaults, so that only the product's extras differ from the baselines. */
export const BASELINE_ENGINE_OPTIONS: Partial<ServerOptions> = {
  serveClient: false,
  pingInterval: 25_000,
  pingTimeout: 20_000,
  maxHttpBufferSize: 1_000_000,
  cors: { origin: "*", methods: ["GET", "POST"] },
};

type Ack = (response: unknown) => void;
const ackOf = (args: unknown[]): Ack | undefined => (typeof args[args.length - 1] === "function" ? (args.pop() as Ack) : undefined);
const room = (channel: string) => `ch:${channel}`;

/**
 * The channel part of the contract, as a team would write it in an afternoon:
 * `channel:subscribe`/`unsubscribe`, and `message:queue` broadcast to the channel with
 * `{createdAt, content, socketId, messageId}` and acked with the message id.
 */
export function serveChannels(io: Server): void {
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
}
