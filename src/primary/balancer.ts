import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../shared/logger.js";
import type { Admission } from "./admission.js";
import { isApiPath, pathOf } from "../shared/http-api-paths.js";

/** Largest request head the balancer reads before routing; larger heads get 431. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** Something a connection can be handed to (a cluster worker). */
export interface Target {
  readonly id: number;
  send(message: unknown, handle: Socket, options: { keepOpen: boolean }, callback: (err: Error | null) => void): boolean;
}

export interface BalancerOptions {
  /** The ready worker with this id, if any. */
  byId(id: number): Target | undefined;
  /** Ready workers, for round-robin. */
  ready(): readonly Target[];
  /** Builds the message that carries the connection's already-read bytes. */
  message(head: Buffer): unknown;
  headerTimeoutMs: number;
  /** Connect-rate and per-worker limits on new sessions; none: every new session is let in. */
  admission?: Admission;
  log: Logger;
}

/** How often at most the balancer logs the new sessions it refused meanwhile. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * The primary's sticky balancer. It reads a connection's request head, stops reading *before*
 * the hand-over (stock @socket.io/sticky keeps reading, so bytes that arrive meanwhile are lost),
 * and hands the socket with every byte it read to a worker. A request that names an Engine.IO
 * session goes to the worker whose id prefixes the session id (see worker/socket-server.ts), so
 * routing needs no table and cannot race the handshake reply; a new session goes round-robin.
 */
export class Balancer {
  private readonly server: Server;
  private cursor = 0;
  /** New sessions refused since the last log line, by cause. */
  private readonly refused = { rate: 0, full: 0 };
  private refusalLog: NodeJS.Timeout | undefined;
  /** New sessions refused since start, by cause (tests, metrics). */
  readonly refusedTotal = { rate: 0, full: 0 };

  constructor(private readonly options: BalancerOptions) {
    // TCP_NODELAY, as Node's own HTTP server sets it: the option lives on the socket, so it holds
    // in the worker after the hand-over. Without it Nagle holds a small frame while an earlier
    // one is unacknowledged, and a subscriber's delayed ACK can stall its next message by 40 ms.
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.on("error", (err) => options.log.error({ err }, "balancer error"));
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ port, host, backlog: 2048 }, () => {
        this.server.off("error", reject);
        const address = this.server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  }

  /**
   * Stops accepting; connections already handed over live on in their workers. It does not wait
   * for them: Node counts sockets sent to a child as the server's connections, so the server's
   * 'close' would only come once the workers closed them, and they drain only after this returns.
   */
  close(): Promise<void> {
    // The listening handle closes synchronously; the callback-less close cannot fail.
    if (this.server.listening) this.server.close();
    return Promise.resolve();
  }

  private accept(socket: Socket): void {
    const chunks: Buffer[] = [];
    let size = 0;
    socket.setTimeout(this.options.headerTimeoutMs, () => socket.destroy());
    socket.on("error", onError);
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      const head = chunks.length === 1 ? chunk : Buffer.concat(chunks, size);
      const end = head.indexOf("\r\n\r\n");
      if (end === -1 || end > MAX_HEAD_BYTES) {
        if (size > MAX_HEAD_BYTES) {
          socket.off("data", onData);
          this.refuse(socket, 431, "Request Header Fields Too Large");
        }
        return;
      }
      socket.off("data", onData);
      socket.setTimeout(0);
      this.route(socket, head);
    };
    socket.on("data", onData);
  }

  private route(socket: Socket, head: Buffer): void {
    const sid = sessionIdOf(head);
    // A backend's HTTP API call is not a new session: it neither takes from the connect rate nor
    // needs room for a connection (it is key-checked, stateless and cheap), so a connect storm
    // does not refuse a backend's publishes.
    const admission = sid === undefined && isApiPath(pathOf(requestTargetOf(head))) ? undefined : this.options.admission;
    if (sid === undefined && admission && !admission.takeConnect()) return this.refuseNew(socket, "rate");
    const target = this.pick(sid, admission);
    if (!target) {
      if (sid === undefined && admission && this.options.ready().length > 0) return this.refuseNew(socket, "full");
      return this.refuse(socket, 503, "Service Unavailable");
    }
    if (sid === undefined) admission?.handed(target.id);
    socket.off("error", onError);
    stopReading(socket);
    target.send(this.options.message(head), socket, { keepOpen: false }, (err) => {
      if (err) {
        this.options.log.warn({ err: err.message, worker: target.id }, "hand-over failed");
        socket.destroy();
      }
    });
  }

  private pick(sid: string | undefined, admission: Admission | undefined): Target | undefined {
    if (sid !== undefined) {
      const owner = Number.parseInt(sid.slice(0, sid.indexOf(".")), 10);
      const target = Number.isSafeInteger(owner) ? this.options.byId(owner) : undefined;
      // Unknown owner (restarted worker): any worker answers "Session ID unknown" and the client reconnects.
      if (target) return target;
    }
    const ready = this.options.ready();
    for (let tried = 0; tried < ready.length; tried++) {
      this.cursor = (this.cursor + 1) % ready.length;
      const target = ready[this.cursor]!;
      // A request naming a session that was lost goes anywhere to be told so; a new one needs room.
      if (sid !== undefined || !admission || admission.hasRoom(target.id)) return target;
    }
    return undefined;
  }

  /** A new session refused by admission: 503 with Retry-After, counted and logged in summary. */
  private refuseNew(socket: Socket, cause: "rate" | "full"): void {
    this.refused[cause]++;
    this.refusedTotal[cause]++;
    this.refusalLog ??= setTimeout(() => {
      this.refusalLog = undefined;
      this.options.log.warn({ ...this.refused, intervalMs: REFUSAL_LOG_INTERVAL_MS }, "refused new connections (rate: over CONNECT_RATE_LIMIT; full: every worker at MAX_CONNECTIONS_PER_WORKER)");
      this.refused.rate = 0;
      this.refused.full = 0;
    }, REFUSAL_LOG_INTERVAL_MS);
    this.refusalLog.unref();
    this.refuse(socket, 503, "Service Unavailable", "Retry-After: 1\r\n");
  }

  /**
   * Answers and closes. What the client still sends is read and discarded until it closes too:
   * closing with unread bytes would make the kernel reset the connection before the answer is read.
   */
  private refuse(socket: Socket, status: number, text: string, headers = ""): void {
    socket.on("data", discard);
    socket.resume();
    socket.setTimeout(this.options.headerTimeoutMs, () => socket.destroy());
    socket.end(`HTTP/1.1 ${status} ${text}\r\n${headers}Connection: close\r\nContent-Length: 0\r\n\r\n`);
  }
}

function discard(): void {
  // Bytes of a refused request: read only so that the close is orderly.
}

function onError(this: Socket): void {
  // A client that resets before its request head arrived: nothing to route, nothing to log.
  this.destroy();
}

/**
 * Stops the kernel reads of a socket that is leaving for a worker, for good. Until its handle
 * is closed (when the worker acknowledges it), this process shares the connection's file
 * descriptor with the worker, and bytes this process reads are dropped (Node sets the sent
 * handle's read callback to a no-op). So it must not be reading then:
 * - `pause()` alone only stops 'data' events: libuv keeps reading into the stream buffer.
 * - `readStop()` alone does not last: the 'data' event that completed the head scheduled a
 *   read-ahead (Readable's maybeReadMore), which on the next tick calls `_read` and starts
 *   reading again. A hand-over waits in Node's queue while the previous one to the same worker
 *   is unacknowledged, so the handle would go out reading, and a loaded primary could take
 *   the client's next bytes (its Socket.IO CONNECT) before the acknowledgement closes it: the
 *   client's connect hangs. Hence `_read` becomes a no-op as well.
 */
function stopReading(socket: Socket): void {
  socket.pause();
  const internals = socket as unknown as { _read: () => void; _handle?: { readStop?: () => number; reading?: boolean } };
  internals._read = holdReads;
  const handle = internals._handle;
  if (handle?.readStop) {
    handle.reading = false;
    handle.readStop();
  }
}

function holdReads(): void {
  // The connection's reads belong to the worker it was handed to.
}

/** The request target of the request line ("" when there is none). */
function requestTargetOf(head: Buffer): string {
  const lineEnd = head.indexOf("\r\n");
  const line = head.toString("latin1", 0, lineEnd === -1 ? head.length : lineEnd);
  return line.split(" ")[1] ?? "";
}

/** The `sid` query parameter of the request line, if any. */
export function sessionIdOf(head: Buffer): string | undefined {
  const target = requestTargetOf(head);
  const query = target?.indexOf("?") ?? -1;
  if (!target || query === -1) return undefined;
  return new URLSearchParams(target.slice(query + 1)).get("sid") ?? undefined;
}
