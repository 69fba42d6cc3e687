import { Socket as TcpSocket } from "node:net";
import type { Server, Socket } from "socket.io";

// Engine.IO's types, reached through socket.io's own (engine.io is socket.io's dependency, not ours).
type EngineServer = Server["engine"];
type EngineSocket = Socket["conn"];

/**
 * Sends every packet an Engine.IO websocket flush carries in one `writev` instead of one per
 * packet.
 *
 * Engine.IO holds a socket's packets while its previous write is in flight and sends them
 * together on the next flush. Its websocket transport still writes each packet as a frame of its
 * own, one system call per packet. Under load that is the hot path: with several broadcasts
 * going out per tick, each subscriber gets the first at once and the rest in one flush. On
 * loopback the kernel's send path costs more than everything socket.io does per delivery
 * (docs/benchmarks.md). So the TCP socket is corked for the length of a flush of two or more
 * packets.
 *
 * The packets are already due to go out together, so no packet waits longer. A single packet
 * is not touched, so latency at low load does not change.
 *
 * The flush and drain events are Engine.IO's public API. The server emits them synchronously
 * around `transport.send`, so at most one socket is corked at a time.
 */
export function coalesceFlushedWrites(engine: EngineServer): void {
  let corked: TcpSocket | undefined;
  const release = () => {
    const socket = corked;
    corked = undefined;
    socket?.uncork();
  };
  engine.on("flush", (conn: EngineSocket, buffer: readonly unknown[]) => {
    // Normally nothing is corked here. After a send that threw, another flush can come before
    // the microtask below runs; releasing first keeps that socket from being forgotten.
    release();
    if (buffer.length < 2) return;
    corked = tcpSocketOf(conn);
    if (!corked) return;
    corked.cork();
    // The drain follows synchronously. Should the send throw instead, this microtask uncorks the
    // socket, so its packets never wait for some later flush.
    queueMicrotask(release);
  });
  engine.on("drain", release);
}

/**
 * The TCP socket under a websocket transport. ws keeps it as `_socket`, a private field;
 * engine.io reaches into ws the same way for its pre-encoded frames (`_sender`). Undefined for
 * polling, or if a ws upgrade ever moves it (a test pins this).
 */
export function tcpSocketOf(conn: EngineSocket): TcpSocket | undefined {
  const transport = conn.transport as unknown as { name: string; socket?: { _socket?: unknown } };
  if (transport.name !== "websocket") return undefined;
  const raw = transport.socket?._socket;
  return raw instanceof TcpSocket ? raw : undefined;
}

/** The options Socket.IO passes with an encoded packet (`wsPreEncodedFrame`: set on broadcasts). */
interface PacketOptions {
  preEncoded?: boolean;
  volatile?: boolean;
  compress?: boolean;
  wsPreEncodedFrame?: readonly Buffer[];
}

/**
 * Socket.IO's `Client`, reached as `socket.client`. Every packet to a socket goes through its
 * `writeToEngine`: the adapter calls it for each recipient of a broadcast, the socket for its
 * own emits. The method is private in the typings, public in use (`socket.io-adapter` calls it).
 */
interface EngineClient {
  readonly conn: EngineSocket;
  writeToEngine(encoded: unknown, opts: PacketOptions): void;
}

/** One client's broadcast packets of this tick, not yet handed to Engine.IO. */
interface Held {
  readonly client: EngineClient;
  /** The client's own `writeToEngine` (Socket.IO's), which the hook stands in front of. */
  readonly write: EngineClient["writeToEngine"];
  /** Engine.IO sends this client pre-encoded frames as they are. Once true it stays true: a
   * connection on websocket never goes back to polling. */
  framed: boolean;
  encoded: unknown[];
  opts: PacketOptions[];
}

/** Where an attached client keeps its `Held`. */
const HELD = Symbol("cerebellum.broadcastBatching");
type AttachedClient = EngineClient & { [HELD]?: Held };

/** Per flush: the combined frame for each sequence of broadcasts, so recipients share one buffer. */
interface Combined {
  next?: Map<readonly Buffer[], Combined>;
  opts?: PacketOptions;
}

/**
 * Sends each websocket client the broadcasts of one tick as one write, once broadcasts come in
 * bursts.
 *
 * Under load a worker delivers several broadcasts per tick to the same sockets (a burst of
 * publishes read together, or a batch of relays). Engine.IO sends the first packet at once and
 * holds the rest until that write completes, so even with `coalesceFlushedWrites` a socket takes
 * two system calls per tick. Here a client's broadcast packets are held to the end of the tick
 * (`process.nextTick`, after the microtasks that deliver them) and go to Engine.IO as one packet
 * whose pre-encoded websocket frame is the concatenation of theirs: the client reads the same
 * frames in the same order. Recipients of the same broadcasts share one concatenated buffer.
 *
 * Holding costs the first recipients of a lone broadcast the time the worker takes to reach the
 * last, so it is done only in a burst: from the second broadcast of a tick on, and for the whole
 * tick after one that had several. At one broadcast per tick nothing is held.
 *
 * Only what Engine.IO would send as a pre-encoded frame anyway is held: a broadcast's text packet
 * (Socket.IO pre-computes its frame) on a websocket without per-message deflate. Anything else to
 * the client (its own emits, acks, binary, volatile, polling) first releases what is held, so
 * order is kept per client.
 *
 * A broadcast that goes to Engine.IO now (a lone one, or a client's held ones at the end of the
 * tick) is written straight to the client's TCP socket when Engine.IO holds nothing for it
 * (`writeDirect`).
 *
 * Every attached client gets the same hook function (its state hangs off the client), so the
 * adapter's per-recipient call has one target, which V8 can inline, and a client costs no
 * closure or bound function of its own.
 */
export class BroadcastBatching {
  private held: Held[] = [];
  /** Broadcasts written this tick (distinct packet options; recipients of one share them). The
   * first schedules the end of the tick. */
  private broadcasts = 0;
  private last: PacketOptions | undefined;
  /** The previous tick had several broadcasts: hold this whole tick. */
  private bursting = false;
  private readonly hook: EngineClient["writeToEngine"];
  /** Whether Engine.IO's and ws's private fields `writeDirect` reads are there: checked on first use. */
  private direct: boolean | undefined;

  /**
   * `onNoDirectWrite` is told, once, when those fields are missing (an upgrade of engine.io or ws).
   * `afterWrite` is told of each client a packet was written to (the outbound cap).
   */
  constructor(
    private readonly onNoDirectWrite: (problem: string) => void = () => undefined,
    readonly afterWrite: (conn: EngineSocket) => void = () => undefined,
  ) {
    const batching = this;
    this.hook = function writeToEngine(this: AttachedClient, encoded, opts) {
      const held = this[HELD]!;
      // A broadcast's frame that Engine.IO would send as it is: held in a burst, else maybe written directly.
      const framed = opts.wsPreEncodedFrame !== undefined && !opts.volatile && (held.framed ||= sendsFramesAsIs(this.conn));
      if (framed) {
        if (opts !== batching.last) batching.count(opts);
        if (batching.bursting || batching.broadcasts > 1) {
          if (held.opts.length === 0) batching.held.push(held);
          held.encoded.push(encoded);
          held.opts.push(opts);
          return;
        }
      }
      if (held.opts.length > 0) release(held, {}, batching);
      if (!framed || !batching.writeDirect(this.conn, opts)) held.write.call(this, encoded, opts);
      batching.afterWrite(this.conn);
    };
  }

  /** Holds this client's broadcasts from now on. Once per client: a client can open the namespace
   * again on the same connection. */
  attach(target: unknown): void {
    const client = target as AttachedClient;
    if (client[HELD]) return;
    client[HELD] = { client, write: client.writeToEngine, framed: false, encoded: [], opts: [] };
    client.writeToEngine = this.hook;
  }

  /** The last broadcast written straight to a socket, and its frame as one buffer. */
  private directOpts: PacketOptions | undefined;
  private directFrame: Buffer | undefined;

  /**
   * Writes a broadcast's pre-encoded frame straight to the client's TCP socket when Engine.IO has
   * nothing of its own waiting or in flight for it: the bytes and their order are what Engine.IO
   * would send, without the per-recipient work of its send path (a packet object, four events, the
   * transport's and ws's write bookkeeping, a corked `writev` of two buffers). That work is most of
   * the user-space CPU per delivery at one broadcast in flight (docs/benchmarks.md). False when
   * it must go through Engine.IO: a packet of its own is buffered or being written (this one would
   * overtake it), or the connection or the websocket is not open.
   */
  writeDirect(conn: EngineSocket, opts: PacketOptions): boolean {
    if (this.direct === false) return false;
    const engine = conn as unknown as EngineInternals;
    if (this.direct === undefined) {
      // Only a websocket connection gets here: its fields are all there, or the versions changed.
      const problem = directWriteProblem(engine, conn);
      this.direct = problem === undefined;
      if (problem !== undefined) {
        this.onNoDirectWrite(problem);
        return false;
      }
    }
    const transport = engine.transport;
    if (engine.readyState !== "open" || !transport.writable || engine.writeBuffer.length > 0) return false;
    if (transport.socket?.readyState !== OPEN) return false;
    const tcp = tcpSocketOf(conn);
    if (!tcp) return false;
    if (opts !== this.directOpts) {
      const frame = opts.wsPreEncodedFrame!;
      this.directFrame = frame.length === 1 ? frame[0]! : Buffer.concat(frame as Buffer[]);
      this.directOpts = opts;
    }
    tcp.write(this.directFrame!);
    return true;
  }

  private count(opts: PacketOptions): void {
    this.last = opts;
    if (this.broadcasts++ === 0) process.nextTick(this.endTick);
  }

  private readonly endTick = () => {
    this.bursting = this.broadcasts > 1;
    this.broadcasts = 0;
    this.last = undefined;
    const held = this.held;
    this.held = [];
    const combined: Combined = {};
    for (const one of held) {
      if (one.opts.length === 0) continue;
      release(one, combined, this);
      this.afterWrite(one.client.conn);
    }
  };
}

const COMBINED = "(pre-encoded frames)";

/** ws's `WebSocket.OPEN`. */
const OPEN = 1;

/** What `writeDirect` reads of Engine.IO's socket: `writeBuffer` is private, the rest public. */
interface EngineInternals {
  readyState: string;
  writeBuffer: readonly unknown[];
  transport: { writable: boolean; socket?: { readyState?: number } };
}

/** What is missing of the private fields `writeDirect` reads, or undefined when all are there. */
function directWriteProblem(engine: EngineInternals, conn: EngineSocket): string | undefined {
  if (!Array.isArray(engine.writeBuffer)) return "Engine.IO's socket has no writeBuffer array";
  if (typeof engine.readyState !== "string" || typeof engine.transport?.writable !== "boolean") return "Engine.IO's socket or transport state is not where it was";
  if (typeof engine.transport.socket?.readyState !== "number") return "the websocket transport has no ws socket with a readyState";
  if (!tcpSocketOf(conn)) return "ws keeps no TCP socket in _socket";
  return undefined;
}

/**
 * Hands a client's held packets to Engine.IO: one packet, or one combined frame for several (only
 * framed clients hold packets, and they stay framed).
 */
function release(held: Held, combined: Combined, batching: BroadcastBatching): void {
  const { encoded, opts } = held;
  held.encoded = [];
  held.opts = [];
  if (opts.length === 1) {
    if (!batching.writeDirect(held.client.conn, opts[0]!)) held.write.call(held.client, encoded[0], opts[0]!);
    return;
  }
  let node = combined;
  for (const o of opts) {
    node.next ??= new Map();
    const frame = o.wsPreEncodedFrame!;
    let next = node.next.get(frame);
    if (!next) node.next.set(frame, (next = {}));
    node = next;
  }
  node.opts ??= { preEncoded: true, wsPreEncodedFrame: [Buffer.concat(opts.flatMap((o) => o.wsPreEncodedFrame!))] };
  // The data only shows in Engine.IO's packetCreate event and debug log; the frame is what it sends.
  if (!batching.writeDirect(held.client.conn, node.opts)) held.client.conn.write(COMBINED, node.opts);
}

/**
 * Whether Engine.IO sends this connection a packet's `wsPreEncodedFrame` as it is (its websocket
 * transport's `_canSendPreEncodedFrame`).
 */
function sendsFramesAsIs(conn: EngineSocket): boolean {
  const transport = conn.transport as unknown as {
    name: string;
    opts?: { perMessageDeflate?: unknown };
    socket?: { _sender?: { sendFrame?: unknown } };
  };
  return (
    transport.name === "websocket" &&
    !transport.opts?.perMessageDeflate &&
    typeof transport.socket?._sender?.sendFrame === "function"
  );
}
