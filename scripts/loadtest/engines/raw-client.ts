import WebSocket from "ws";
import { wallMs } from "../clock.js";
import { ackOutcome, probeJson, probeOf, type AckOutcome, type ClientHandlers, type ConnectResult, type LoadClient, type Probe } from "./client.js";
import {
  EIO_CLOSE,
  EIO_MESSAGE,
  EIO_OPEN,
  EIO_PING,
  SIO_ACK,
  SIO_CONNECT,
  SIO_CONNECT_ERROR,
  SIO_DISCONNECT,
  SIO_EVENT,
  decodeSocketPacket,
  encodeConnect,
  encodeEvent,
  isReceiveFrame,
  readProbe,
  trailingOffset,
} from "./framing.js";

/** Acks one connection may wait on at once; past it a request fails at once with TOO_MANY_ACKS. */
const MAX_PENDING_ACKS = 10_000;

type State = "idle" | "connecting" | "open" | "closed";

interface PendingAck {
  resolve: (outcome: AckOutcome) => void;
  timer: NodeJS.Timeout;
}

/** The websocket URL of a server URL: `http://h:p` → `ws://h:p/socket.io/?EIO=4&transport=websocket`. */
export function websocketUrl(url: string, path: string): string {
  const u = new URL(url);
  u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
  u.pathname = path;
  u.search = "?EIO=4&transport=websocket";
  return u.toString();
}

/**
 * A Socket.IO client that speaks the framing itself over `ws` (websocket transport only). It
 * decodes deliveries of probes from the frame bytes without JSON parsing, which is what lets one
 * generator core drive several hundred thousand deliveries per second.
 */
export class RawClient implements LoadClient {
  private ws: WebSocket | undefined;
  private state: State = "idle";
  private nextAckId = 0;
  private readonly acks = new Map<number, PendingAck>();
  private pid: string | undefined;
  private lastOffset: string | undefined;
  sid: string | undefined;

  constructor(
    private readonly wsUrl: string,
    private readonly handlers: ClientHandlers,
  ) {}

  get connected(): boolean {
    return this.state === "open";
  }

  connect(token: string | undefined, recover: boolean, timeoutMs: number): Promise<ConnectResult> {
    if (this.state === "connecting" || this.state === "open") throw new Error("already connected");
    this.state = "connecting";
    const started = wallMs();
    const previousSid = this.sid;
    const auth: Record<string, unknown> = token === undefined ? {} : { token };
    if (recover && this.pid !== undefined) {
      auth.pid = this.pid;
      if (this.lastOffset !== undefined) auth.offset = this.lastOffset;
    }
    return new Promise<ConnectResult>((resolve) => {
      let settled = false;
      const finish = (result: ConnectResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const fail = (error: string, hung = false) => {
        this.teardown();
        finish({ ok: false, ms: wallMs() - started, hung, error });
      };
      // How far a connect got, so a hang says where it stalled (the upgrade, Engine.IO's open, or CONNECT).
      let phase = "no websocket upgrade answer";
      const timer = setTimeout(() => fail(`${phase} before the timeout`, true), timeoutMs);
      const ws = new WebSocket(this.wsUrl, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        handshakeTimeout: timeoutMs,
      });
      this.ws = ws;
      ws.on("upgrade", () => (phase = "no Engine.IO open packet"));
      ws.on("error", (err) => {
        if (!settled) fail(`websocket error: ${err.message}`);
      });
      ws.on("close", (code) => {
        if (!settled) return fail(`closed during connect (code ${code})`);
        if (this.ws === ws && this.state === "open") {
          this.teardown();
          this.handlers.closed(`websocket closed (code ${code})`);
        }
      });
      ws.on("message", (data: Buffer) => {
        if (this.ws !== ws) return;
        const kind = data[0];
        if (kind === EIO_MESSAGE) return this.onSocketPacket(data, (sid, pid) => {
          if (pid !== undefined && pid !== this.pid) this.lastOffset = undefined;
          const recovered = recover && pid !== undefined && pid === this.pid && sid === previousSid;
          this.sid = sid;
          this.pid = pid;
          this.state = "open";
          finish({ ok: true, ms: wallMs() - started, sid, recovered });
        }, (error) => fail(error));
        if (kind === EIO_PING) return void ws.send("3");
        if (kind === EIO_OPEN) {
          phase = "no CONNECT answer";
          return void ws.send(encodeConnect(auth));
        }
        if (kind === EIO_CLOSE) return void ws.terminate();
        // noop (6) and anything else: nothing to do
      });
    });
  }

  private onSocketPacket(frame: Buffer, onConnect: (sid: string, pid: string | undefined) => void, onConnectError: (error: string) => void): void {
    const type = frame[1];
    if (type === SIO_EVENT && isReceiveFrame(frame)) {
      const probe = readProbe(frame);
      if (this.pid !== undefined) {
        const offset = trailingOffset(frame);
        if (offset !== undefined) this.lastOffset = offset;
      }
      if (probe) return this.handlers.probe(probe);
    }
    const packet = decodeSocketPacket(frame.toString("utf8", 1));
    switch (packet.type) {
      case SIO_EVENT: {
        const args = Array.isArray(packet.data) ? (packet.data as unknown[]) : [];
        const name = typeof args[0] === "string" ? args[0] : "";
        const rest = args.slice(1);
        if (this.pid !== undefined && rest.length > 0 && typeof rest[rest.length - 1] === "string") {
          this.lastOffset = rest[rest.length - 1] as string;
        }
        const probe = name.startsWith("message:receive:") ? probeOf(rest[0]) : undefined;
        if (probe) this.handlers.probe(probe);
        else this.handlers.event(name, rest);
        break;
      }
      case SIO_ACK: {
        if (packet.id === undefined) break;
        const pending = this.acks.get(packet.id);
        if (!pending) break;
        this.acks.delete(packet.id);
        clearTimeout(pending.timer);
        pending.resolve(ackOutcome(Array.isArray(packet.data) ? packet.data[0] : undefined));
        break;
      }
      case SIO_CONNECT: {
        const data = packet.data as { sid?: unknown; pid?: unknown } | undefined;
        if (typeof data?.sid !== "string") return onConnectError("CONNECT answer without a sid");
        onConnect(data.sid, typeof data.pid === "string" ? data.pid : undefined);
        break;
      }
      case SIO_CONNECT_ERROR: {
        const data = packet.data as { message?: unknown; data?: { code?: unknown } } | undefined;
        const code = typeof data?.data?.code === "string" ? ` (${data.data.code})` : "";
        onConnectError(`${typeof data?.message === "string" ? data.message : "connect error"}${code}`);
        break;
      }
      case SIO_DISCONNECT:
        this.ws?.terminate();
        break;
      default:
        break; // binary packets are never sent to the generator
    }
  }

  private send(text: string): boolean {
    if (this.state !== "open" || !this.ws) return false;
    this.ws.send(text);
    return true;
  }

  private withAck(frame: (id: number) => string, timeoutMs: number): Promise<AckOutcome> {
    if (this.state !== "open") return Promise.resolve({ ok: false, error: "DISCONNECTED" });
    if (this.acks.size >= MAX_PENDING_ACKS) return Promise.resolve({ ok: false, error: "TOO_MANY_ACKS" });
    const id = this.nextAckId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.acks.delete(id);
        resolve({ ok: false, error: "TIMEOUT" });
      }, timeoutMs);
      this.acks.set(id, { resolve, timer });
      this.send(frame(id));
    });
  }

  request(event: string, args: unknown[], timeoutMs: number): Promise<AckOutcome> {
    return this.withAck((id) => encodeEvent(event, args, id), timeoutMs);
  }

  emit(event: string, args: unknown[]): void {
    this.send(encodeEvent(event, args));
  }

  publish(channel: string, probe: Probe, padding: string, ack: boolean, timeoutMs: number): Promise<AckOutcome> | undefined {
    const body = `["message:queue",${JSON.stringify(channel)},${probeJson(probe, padding)}]`;
    if (!ack) {
      this.send(`42${body}`);
      return undefined;
    }
    return this.withAck((id) => `42${id}${body}`, timeoutMs);
  }

  drop(): void {
    const ws = this.ws;
    this.teardown();
    ws?.terminate();
  }

  close(): void {
    const ws = this.ws;
    if (this.state === "open") ws?.send("41");
    this.teardown();
    ws?.close();
    this.pid = undefined;
  }

  /** Forgets the connection (keeping pid and offset for a recovery) and fails the acks in flight. */
  private teardown(): void {
    this.state = "closed";
    this.ws = undefined;
    for (const pending of this.acks.values()) {
      clearTimeout(pending.timer);
      pending.resolve({ ok: false, error: "DISCONNECTED" });
    }
    this.acks.clear();
  }
}
