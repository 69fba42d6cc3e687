import type { Socket } from "socket.io";
import { tcpSocketOf } from "./write-coalescing.js";

type EngineSocket = Socket["conn"];

/** Engine.IO's packets waiting for a connection's transport (a private field, checked by `writeDirect`'s start-up check). */
interface EngineQueue {
  writeBuffer: readonly { data?: unknown; options?: { wsPreEncodedFrame?: readonly Buffer[] } }[];
}

/** Engine.IO's queue is summed only once it is this long, then each time its length doubles. */
const SUM_FROM = 32;

/**
 * CLIENT_QUEUE_MAX_BYTES: what the server may hold for one client that does not read. Checked
 * after each packet written to it (broadcasts, emits, acks): the bytes in the TCP socket's send
 * buffer in this process (a websocket's backlog, where broadcasts are written directly) plus, once
 * Engine.IO queues packets for it (a polling client between polls, or a websocket whose previous
 * write is still out), the size of that queue. Past the cap the connection is closed at once and
 * its buffers are dropped: the client sees its transport close and reconnects, and its session
 * recovers what it missed from the replay log.
 */
export class ClientQueueCap {
  /** Per connection: the Engine.IO queue length at which it is summed next. */
  private readonly nextSum = new WeakMap<EngineSocket, number>();
  private readonly closed = new WeakSet<EngineSocket>();
  /** Connections closed at the cap since start. */
  closedTotal = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly onClose: (conn: EngineSocket, heldBytes: number) => void,
  ) {}

  /** After a write to `conn`: closes it when what is held for it passes the cap. */
  check(conn: EngineSocket): void {
    if (this.maxBytes === 0) return;
    let held = tcpSocketOf(conn)?.writableLength ?? 0;
    const queue = (conn as unknown as EngineQueue).writeBuffer;
    if (queue.length < SUM_FROM) {
      if (this.nextSum.has(conn)) this.nextSum.delete(conn);
    } else if (queue.length >= (this.nextSum.get(conn) ?? SUM_FROM)) {
      this.nextSum.set(conn, queue.length * 2);
      held += queuedBytes(queue);
    }
    if (held > this.maxBytes) this.close(conn, held);
  }

  private close(conn: EngineSocket, held: number): void {
    if (this.closed.has(conn)) return;
    this.closed.add(conn);
    this.closedTotal++;
    this.onClose(conn, held);
    const tcp = tcpSocketOf(conn);
    // A websocket: drop the backlog now (a close frame would wait behind it). Polling: Engine.IO
    // discards its queue and closes ("forced close", which Socket.IO recovers).
    if (tcp) tcp.destroy();
    else conn.close(true);
  }
}

function queuedBytes(queue: EngineQueue["writeBuffer"]): number {
  let bytes = 0;
  for (const packet of queue) {
    const frame = packet.options?.wsPreEncodedFrame;
    if (frame) for (const part of frame) bytes += part.length;
    else if (typeof packet.data === "string") bytes += packet.data.length;
    else if (Buffer.isBuffer(packet.data)) bytes += packet.data.length;
  }
  return bytes;
}
