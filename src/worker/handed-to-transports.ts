import type { AppServer } from "./handlers/context.js";

/** Engine.IO's queue of packets not yet given to a connection's transport (private in its typings). */
type Queued = { writeBuffer?: readonly unknown[] };

/**
 * Resolves once Engine.IO has handed every connection's queued packets to its transport (a
 * polling client's go out on its next poll), or after `timeoutMs`; true when nothing was left.
 *
 * A draining worker waits for this before it closes the server: Engine.IO's close discards what a
 * connection still queues (it holds a socket's packets while an earlier write is in flight), so
 * acks sent a moment before would be lost. What the transport has is sent before its close frame.
 */
export function handedToTransports(io: AppServer, timeoutMs: number): Promise<boolean> {
  const waits: Array<Promise<void>> = [];
  for (const socket of io.of("/").sockets.values()) {
    const conn = socket.conn;
    // Should Engine.IO ever move the field, this finds nothing queued and waits for nothing.
    if (((conn as unknown as Queued).writeBuffer?.length ?? 0) === 0) continue;
    waits.push(
      new Promise<void>((resolve) => {
        const done = () => {
          conn.off("drain", done);
          conn.off("close", done);
          resolve();
        };
        conn.on("drain", done);
        conn.on("close", done);
      }),
    );
  }
  if (waits.length === 0) return Promise.resolve(true);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  return Promise.race([Promise.all(waits).then(() => true), late]).finally(() => clearTimeout(timer));
}
