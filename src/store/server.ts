import { timingSafeEqual } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import type { Logger } from "../shared/logger.js";
import type { MessageDb, MessageRecord } from "./message-db.js";
import { FRAME_MAX_BYTES, FrameDecoder, FrameError, FrameReader, FrameWriter, Op, PAGE_ASCENDING, PAGE_CURSOR, PROTOCOL_VERSION, Status } from "../persistence/wire.js";

/** A client must say hello (the shared secret) this soon after connecting, in ms. */
const HELLO_TIMEOUT_MS = 5_000;
/** Largest frame before the hello is accepted: a stranger cannot make the store buffer 64 MiB. */
const HELLO_MAX_BYTES = 4096;
/** Requests one connection may have in progress; past it the store stops reading that socket. */
const IN_FLIGHT_PER_CONNECTION = 64;
/** Records in one write request (a worker sends at most PERSISTENCE_BATCH_SIZE, ≤ 1,000). */
const WRITE_MAX_RECORDS = 10_000;

export interface StoreServerOptions {
  db: MessageDb;
  /** Every client proves it was started by this server's primary with this secret. */
  secret: string;
  log: Logger;
}

/**
 * The embedded store's loopback endpoint: one TCP connection per client (a worker), frames as
 * in wire.ts, each request run against the MessageDb and answered with its id, in any order.
 */
export class StoreServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly secret: Buffer;
  private inFlight = 0;
  private idle: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: StoreServerOptions) {
    this.secret = Buffer.from(options.secret, "utf8");
    this.server = createServer((socket) => this.accept(socket));
  }

  /** Listens on loopback; resolves with the port (a free one for port 0). */
  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => {
        this.server.off("error", reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops accepting, lets requests in progress finish (at most `deadlineMs`), closes every connection. Idempotent. */
  close(deadlineMs: number): Promise<void> {
    return (this.closing ??= this.shutdown(deadlineMs));
  }

  private async shutdown(deadlineMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.idle = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs))),
      ]);
      clearTimeout(timer);
      if (this.inFlight > 0) this.options.log.warn({ inFlight: this.inFlight }, "closing with requests still in progress");
    }
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private accept(socket: Socket): void {
    const { log } = this.options;
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const decoder = new FrameDecoder(HELLO_MAX_BYTES);
    const state = { authenticated: false, refused: false, inFlight: 0, paused: false };
    const hello = setTimeout(() => {
      log.warn({ remotePort: socket.remotePort }, "a client did not say hello in time: closed");
      socket.destroy();
    }, HELLO_TIMEOUT_MS);
    socket.on("data", (chunk: Buffer) => {
      try {
        decoder.push(chunk, (body) => {
          if (socket.destroyed || state.refused) return;
          if (!state.authenticated) {
            state.authenticated = this.hello(socket, body);
            state.refused = !state.authenticated;
            if (state.authenticated) decoder.maxBytes = FRAME_MAX_BYTES;
            clearTimeout(hello);
            return;
          }
          state.inFlight++;
          this.inFlight++;
          if (state.inFlight >= IN_FLIGHT_PER_CONNECTION && !state.paused) {
            state.paused = true;
            socket.pause();
          }
          void this.handle(body).then((reply) => {
            state.inFlight--;
            this.inFlight--;
            if (!socket.destroyed) socket.write(reply);
            if (state.paused && state.inFlight < IN_FLIGHT_PER_CONNECTION / 2) {
              state.paused = false;
              socket.resume();
            }
            if (this.inFlight === 0) this.idle?.();
          });
        });
      } catch (err) {
        // Not our protocol (or a frame past the bound): nothing more from this peer can be trusted.
        log.warn({ err: (err as Error).message }, "bad frame from a client: connection closed");
        socket.destroy();
      }
    });
    // A client gone mid-request (a worker killed): its replies are dropped, the writes stand.
    socket.on("error", (err) => log.debug({ err: err.message }, "client connection error"));
    socket.on("close", () => {
      clearTimeout(hello);
      this.sockets.delete(socket);
    });
  }

  /** Checks the first frame; answers it; false (and the connection closed) when it is not our hello. */
  private hello(socket: Socket, body: Buffer): boolean {
    let id = 0;
    try {
      const r = new FrameReader(body);
      const op = r.u8();
      id = r.u32();
      if (op !== Op.HELLO) throw new FrameError("the first request must be HELLO");
      const secret = r.bytes();
      const version = r.u32();
      if (secret.length !== this.secret.length || !timingSafeEqual(secret, this.secret)) throw new FrameError("wrong secret");
      if (version !== PROTOCOL_VERSION) throw new FrameError(`protocol version ${version}, expected ${PROTOCOL_VERSION}`);
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, "refused a client");
      socket.end(errorReply(id, (err as Error).message));
      return false;
    }
    socket.write(new FrameWriter(16).u8(Status.OK).u32(id).finish());
    return true;
  }

  /** Runs one request; always resolves with the reply frame (an ERROR reply when it failed). */
  private async handle(body: Buffer): Promise<Buffer> {
    let id = 0;
    try {
      const r = new FrameReader(body);
      const op = r.u8();
      id = r.u32();
      switch (op) {
        case Op.WRITE:
          return await this.write(id, r);
        case Op.CHANNELS:
          return await this.channels(id, r);
        case Op.PAGE:
          return await this.page(id, r);
        default:
          return errorReply(id, `unknown op ${op}`);
      }
    } catch (err) {
      return errorReply(id, err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    }
  }

  private async write(id: number, r: FrameReader): Promise<Buffer> {
    const n = r.u32();
    if (n > WRITE_MAX_RECORDS) return errorReply(id, `a write holds at most ${WRITE_MAX_RECORDS} records`);
    const records: MessageRecord[] = new Array(n);
    for (let i = 0; i < n; i++) records[i] = { channel: r.bytes(), createdAt: r.bytes(), messageId: r.bytes(), content: r.bytes() };
    const refusals = await this.options.db.write(records);
    const reply = new FrameWriter(16 + refusals.length * 64).u8(Status.OK).u32(id).u32(refusals.length);
    for (const refusal of refusals) reply.u32(refusal.index).string(refusal.reason);
    return reply.finish();
  }

  private async channels(id: number, r: FrameReader): Promise<Buffer> {
    const n = r.u32();
    if (n > WRITE_MAX_RECORDS) return errorReply(id, `a request holds at most ${WRITE_MAX_RECORDS} channels`);
    const names: Buffer[] = new Array(n);
    for (let i = 0; i < n; i++) names[i] = r.bytes();
    await this.options.db.noteChannels(names);
    return new FrameWriter(16).u8(Status.OK).u32(id).finish();
  }

  private async page(id: number, r: FrameReader): Promise<Buffer> {
    const flags = r.u8();
    const limit = r.u32();
    const channel = r.bytes();
    const after = flags & PAGE_CURSOR ? { createdAt: r.bytes(), messageId: r.bytes() } : undefined;
    const page = await this.options.db.page({ channel, limit, ascending: (flags & PAGE_ASCENDING) !== 0, after });
    const reply = new FrameWriter(page.itemsJson.length + 128).u8(Status.OK).u32(id).bytes(page.itemsJson);
    if (page.next) reply.u8(1).bytes(page.next.createdAt).bytes(page.next.messageId);
    else reply.u8(0);
    return reply.finish();
  }
}

function errorReply(id: number, reason: string): Buffer {
  return new FrameWriter(64 + reason.length * 3).u8(Status.ERROR).u32(id).string(reason).finish();
}
