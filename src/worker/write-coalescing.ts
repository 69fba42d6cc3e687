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
