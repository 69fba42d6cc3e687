/**
 * What a scenario needs from a connection, whichever engine speaks for it: the raw engine
 * (Engine.IO 4 / Socket.IO 5 framing over `ws`) or socket.io-client.
 */

/** The fields every published message carries in its content: publisher, sequence number, send time. */
export interface Probe {
  /** Publisher number (0..P-1). */
  p: number;
  /** Sequence number of the message from that publisher, from 1. */
  s: number;
  /** Wall-clock send time in ms (see clock.ts). */
  t: number;
}

export interface ClientHandlers {
  /** A `message:receive:*` whose content is a probe. */
  probe(probe: Probe): void;
  /** Any other event (welcome, presence events, foreign messages). */
  event(name: string, args: unknown[]): void;
  /** The connection closed without being asked to (server close, network error). */
  closed(reason: string): void;
}

export type ConnectResult =
  | { ok: true; ms: number; sid: string; recovered: boolean }
  | { ok: false; ms: number; hung: boolean; error: string };

/** The code with which the server refuses work because it is at a bound (a full queue): a capacity limit. */
export const OVERLOADED = "OVERLOADED";

/** A failed or refused ack: the server's `{success: false, error}` or a timeout. */
export interface AckOutcome {
  ok: boolean;
  /** The error code (`OVERLOADED`, `TIMEOUT`, `DISCONNECTED`...) when not ok. */
  error?: string;
  /** The ack's first argument. */
  value?: unknown;
}

export interface LoadClient {
  readonly connected: boolean;
  /** Socket.IO socket id once connected. */
  readonly sid: string | undefined;
  /**
   * Opens the connection and sends CONNECT with `token`. With `recover`, CONNECT also carries the
   * previous session's pid and last offset (connection state recovery).
   */
  connect(token: string | undefined, recover: boolean, timeoutMs: number): Promise<ConnectResult>;
  /** Emits an event and waits for its ack. */
  request(event: string, args: unknown[], timeoutMs: number): Promise<AckOutcome>;
  /** Emits an event without an ack. */
  emit(event: string, args: unknown[]): void;
  /** Publishes a probe with `padding` as its filler; with `ack`, resolves on the server's ack. */
  publish(channel: string, probe: Probe, padding: string, ack: boolean, timeoutMs: number): Promise<AckOutcome> | undefined;
  /** Cuts the connection as a network failure would (no close handshake); the session stays recoverable. */
  drop(): void;
  /** Leaves cleanly (namespace disconnect, then close): the server forgets the session. */
  close(): void;
}

/** Interprets an ack's first argument the contract's way: `{success: false, error}` is a refusal. */
export function ackOutcome(value: unknown): AckOutcome {
  if (typeof value === "object" && value !== null && (value as { success?: unknown }).success === false) {
    const error = (value as { error?: unknown }).error;
    return { ok: false, error: typeof error === "string" ? error : "REFUSED", value };
  }
  return { ok: true, value };
}

/** Reads a probe out of a delivered message's payload, if its content is one. */
export function probeOf(payload: unknown): Probe | undefined {
  if (typeof payload !== "object" || payload === null) return undefined;
  const content = (payload as { content?: unknown }).content;
  if (typeof content !== "object" || content === null) return undefined;
  const { p, s, t } = content as { p?: unknown; s?: unknown; t?: unknown };
  if (typeof p !== "number" || typeof s !== "number" || typeof t !== "number") return undefined;
  return { p, s, t };
}

/** The content JSON of a probe (key order p, s, t, x: the raw engine's fast path relies on it). */
export function probeJson(probe: Probe, padding: string): string {
  return `{"p":${probe.p},"s":${probe.s},"t":${probe.t.toFixed(3)},"x":"${padding}"}`;
}

/** Filler so that a probe's content JSON is about `bytes` long. */
export function paddingFor(bytes: number): string {
  const overhead = probeJson({ p: 0, s: 1, t: 1_700_000_000_000.123 }, "").length + 4;
  return "x".repeat(Math.max(0, bytes - overhead));
}
