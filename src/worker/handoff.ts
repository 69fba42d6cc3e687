import type { Server as HttpServer } from "node:http";
import type { Socket } from "node:net";

/**
 * Adopts a client connection handed over by the primary's balancer. The bytes the balancer
 * already read (the request head, and anything after it) are replayed into the HTTP parser
 * before the socket resumes reading, so nothing the client sent is lost.
 */
export function adoptConnection(httpServer: HttpServer, socket: Socket, head: Uint8Array): void {
  httpServer.emit("connection", socket);
  socket.emit("data", Buffer.from(head.buffer, head.byteOffset, head.byteLength));
  socket.resume();
}
