import { io, type Socket } from "socket.io-client";
import type { ClientOptions } from "./client.js";

const open = new Set<Socket>();

/** What a recovering client saw on one channel: payload contents in order, and argument shapes. */
export interface Received {
  contents: unknown[];
  /** Every delivery's argument count beyond the payload, and whether that extra was a non-empty string offset. */
  extras: Array<{ count: number; offsetOk: boolean }>;
}

/**
 * A client like an app's: automatic reconnection on (fast, for tests), so Socket.IO recovers
 * its session by itself after a drop.
 */
export async function recoveringClient(url: string, token: string, options: ClientOptions = {}): Promise<Socket> {
  const socket = io(url, {
    auth: { token },
    transports: ["websocket"],
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    randomizationFactor: 0,
    ...options,
  });
  open.add(socket);
  // Ready once the welcome event arrived: from then on the client holds a recovery offset.
  await new Promise<void>((resolve, reject) => {
    socket.once("cerebellum:welcome", () => resolve());
    socket.once("connect_error", reject);
  });
  return socket;
}

/** Records a channel's deliveries on a socket. */
export function record(socket: Socket, channel: string): Received {
  const received: Received = { contents: [], extras: [] };
  socket.on(`message:receive:${channel}`, (...args: unknown[]) => {
    received.contents.push((args[0] as { content: unknown }).content);
    const extra = args.slice(1);
    received.extras.push({ count: extra.length, offsetOk: typeof extra[0] === "string" && extra[0] !== "" });
  });
  return received;
}

/** Resolves on the socket's next (re)connect with whether it was recovered. */
export function nextConnect(socket: Socket, timeoutMs = 20_000): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no reconnect in time")), timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket.recovered);
    });
  });
}

export function closeAllRecoveringClients(): void {
  for (const socket of open) socket.close();
  open.clear();
}
