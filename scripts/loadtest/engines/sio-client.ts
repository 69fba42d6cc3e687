import { io, type Socket } from "socket.io-client";
import { wallMs } from "../clock.js";
import type { TransportName } from "../options.js";
import { ackOutcome, probeOf, type AckOutcome, type ClientHandlers, type ConnectResult, type LoadClient, type Probe } from "./client.js";

const TRANSPORTS: Record<TransportName, ("polling" | "websocket")[]> = {
  websocket: ["websocket"],
  polling: ["polling"],
  upgrade: ["polling", "websocket"],
};

/**
 * A connection through socket.io-client, as apps (and the SDK) make them: realistic, and about
 * ten times the generator CPU of the raw engine per delivery.
 */
export class SioClient implements LoadClient {
  private socket: Socket | undefined;
  private expectingClose = false;
  /** The socket id of the last connection, to tell a recovered session from a new one. */
  private lastSid: string | undefined;

  constructor(
    private readonly url: string,
    private readonly path: string,
    private readonly transport: TransportName,
    private readonly handlers: ClientHandlers,
  ) {}

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  get sid(): string | undefined {
    return this.socket?.id;
  }

  connect(token: string | undefined, recover: boolean, timeoutMs: number): Promise<ConnectResult> {
    const started = wallMs();
    const auth = token === undefined ? {} : { token };
    let socket = this.socket;
    const previousSid = this.lastSid;
    if (!socket || !recover) {
      socket?.removeAllListeners();
      socket?.close();
      socket = io(this.url, {
        path: this.path,
        transports: TRANSPORTS[this.transport],
        auth,
        forceNew: true,
        reconnection: false,
        timeout: timeoutMs,
      });
      this.socket = socket;
      socket.onAny((event: string, ...args: unknown[]) => {
        const probe = event.startsWith("message:receive:") ? probeOf(args[0]) : undefined;
        if (probe) this.handlers.probe(probe);
        else this.handlers.event(event, args);
      });
      socket.on("disconnect", (reason) => {
        if (!this.expectingClose && reason !== "io client disconnect") this.handlers.closed(reason);
        this.expectingClose = false;
      });
    } else {
      // Reconnect the same Socket: socket.io-client sends its pid and last offset in CONNECT.
      socket.auth = auth;
    }
    const s = socket;
    return new Promise<ConnectResult>((resolve) => {
      let settled = false;
      const finish = (result: ConnectResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        s.off("connect", onConnect);
        s.off("connect_error", onError);
        resolve(result);
      };
      const onConnect = () => {
        this.lastSid = s.id;
        finish({ ok: true, ms: wallMs() - started, sid: s.id ?? "", recovered: recover && s.recovered && s.id === previousSid });
      };
      const onError = (err: Error) => {
        // The server's reason code rides in `data.code` (the raw engine reports it the same way).
        const code = (err as Error & { data?: { code?: unknown } }).data?.code;
        finish({ ok: false, ms: wallMs() - started, hung: false, error: typeof code === "string" ? `${err.message} (${code})` : err.message });
      };
      // socket.io-client's own `timeout` reports as a connect_error; this one catches anything else.
      const timer = setTimeout(() => {
        s.close();
        finish({ ok: false, ms: wallMs() - started, hung: true, error: "no CONNECT answer before the timeout" });
      }, timeoutMs + 1000);
      s.once("connect", onConnect);
      s.once("connect_error", onError);
      s.connect();
    });
  }

  async request(event: string, args: unknown[], timeoutMs: number): Promise<AckOutcome> {
    const socket = this.socket;
    if (!socket?.connected) return { ok: false, error: "DISCONNECTED" };
    try {
      return ackOutcome(await socket.timeout(timeoutMs).emitWithAck(event, ...args));
    } catch {
      // emitWithAck rejects only on the timeout (or a disconnect before the answer)
      return { ok: false, error: socket.connected ? "TIMEOUT" : "DISCONNECTED" };
    }
  }

  emit(event: string, args: unknown[]): void {
    if (this.socket?.connected) this.socket.emit(event, ...args);
  }

  publish(channel: string, probe: Probe, padding: string, ack: boolean, timeoutMs: number): Promise<AckOutcome> | undefined {
    const content = { p: probe.p, s: probe.s, t: Math.round(probe.t * 1000) / 1000, x: padding };
    if (!ack) {
      this.emit("message:queue", [channel, content]);
      return undefined;
    }
    return this.request("message:queue", [channel, content], timeoutMs);
  }

  drop(): void {
    // Close the transport under the socket: the server sees "transport close" (recoverable).
    this.expectingClose = true;
    this.socket?.io.engine?.close();
  }

  close(): void {
    this.expectingClose = true;
    this.socket?.disconnect();
    this.socket?.removeAllListeners();
    this.socket = undefined;
  }
}
