import type { Socket } from "socket.io";
import { tcpSocketOf } from "./write-coalescing.js";

type EngineSocket = Socket["conn"];

/** Engine.IO's packets waiting for a connection's transport (a private field, checked by `writeDirect`'s start-up check). */
interface EngineQueue {
  writeBuffer: readonly { data?: unknown; options?: { wsPreEncodedFrame?: readonly Buffer[] } }[];
}

/** What has been counted of one connection's Engine.IO queue (Engine.IO swaps in a new array at each flush). */
interface Counted {
  queue: EngineQueue["writeBuffer"];
  packets: number;
  bytes: number;
}

/**
 * CLIENT_QUEUE_MAX_BYTES: what the server may hold for one client that does not read. Checked
 * after each packet written to it (broadcasts, emits, acks): the bytes in the TCP socket's send
 * buffer in this process (a websocket's backlog, where broadcasts are written directly) plus the
 * packets Engine.IO queues for it (a polling client between polls, or a websocket whose previous
 * write is still out). The queue is counted as it grows, each packet once, so a few large
 * packets (history pages) count as much as many small ones. Past the cap the connection is
 * closed at once and its buffers are dropped: the client sees its transport close and
 * reconnects, and its session recovers what it missed from the replay log.
 */
export class ClientQueueCap {
  private readonly counted = new WeakMap<EngineSocket, Counted>();
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
    const held = (tcpSocketOf(conn)?.writableLength ?? 0) + this.queued(conn);
    if (held > this.maxBytes) this.close(conn, held);
  }

  /** Bytes in `conn`'s Engine.IO queue, counting only the packets added since the last check. */
  private queued(conn: EngineSocket): number {
    const queue = (conn as unknown as EngineQueue).writeBuffer;
    if (queue.length === 0) {
      this.counted.delete(conn);
      return 0;
    }
    let counted = this.counted.get(conn);
    if (!counted || counted.queue !== queue || counted.packets > queue.length) {
      counted = { queue, packets: 0, bytes: 0 };
      this.counted.set(conn, counted);
    }
    for (; counted.packets < queue.length; counted.packets++) counted.bytes += packetBytes(queue[counted.packets]!);
    return counted.bytes;
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

function packetBytes(packet: EngineQueue["writeBuffer"][number]): number {
  const frame = packet.options?.wsPreEncodedFrame;
  if (frame) {
    let bytes = 0;
    for (const part of frame) bytes += part.length;
    return bytes;
  }
  if (typeof packet.data === "string") return packet.data.length;
  if (Buffer.isBuffer(packet.data)) return packet.data.length;
  return 0;
}
