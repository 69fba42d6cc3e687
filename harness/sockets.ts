import type { Socket } from "socket.io-client";

/** The worker id a connection landed on (Engine.IO session ids start with it); NaN before it has one. */
export function workerOf(socket: Socket): number {
  const id = (socket.io.engine as { id?: string } | undefined)?.id;
  return id ? Number(id.split(".")[0]) : Number.NaN;
}
