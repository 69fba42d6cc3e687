/**
 * The wire contract (docs/protocol.md) as types, declared once and passed to `new Server<...>()`.
 * Client-to-server arguments are `unknown` on purpose: they are untrusted until a schema in
 * `schemas.ts` has parsed them.
 */

export type Ack<T> = (response: T) => void;
export type Failure = { success: false; error: string };
export type Result<T extends object = object> = ({ success: true } & T) | Failure;

/** A message as subscribers receive it on `message:receive:<channel>`. */
export interface ChannelMessage {
  createdAt: string;
  content: unknown;
  socketId?: string;
  messageId: string;
}

/** A presence member's state: every info value stringified, plus the member's socket id. */
export type PresenceState = Record<string, string> & { socketId: string };

export interface HistoryPage {
  pastMessages: Array<{ content: unknown; createdAt: string }>;
  lastEvaluatedKey?: unknown;
}

type Untrusted = (...args: unknown[]) => void;

export interface ClientToServerEvents {
  "channel:subscribe": Untrusted;
  "channel:unsubscribe": Untrusted;
  "channel:history": Untrusted;
  "message:queue": Untrusted;
  "presenceSet:enter": Untrusted;
  "presenceSet:leave": Untrusted;
  "presence:update": Untrusted;
  "presence:members:get": Untrusted;
}

/** Sent to every new connection right after connect so that it holds a recovery offset at once. */
export const WELCOME_EVENT = "cerebellum:welcome";

/** Sent right before the server closes a connection on purpose, with why (an ErrorCode). */
export const DISCONNECTING_EVENT = "cerebellum:disconnecting";

export interface ServerToClientEvents {
  [event: `message:receive:${string}`]: (message: ChannelMessage) => void;
  [event: `presence:${string}:join`]: (state: PresenceState) => void;
  [event: `presence:${string}:update`]: (state: PresenceState) => void;
  [event: `presence:${string}:leave`]: (who: { socketId: string }) => void;
  [WELCOME_EVENT]: (info: { socketId: string; serverTime: string }) => void;
  [DISCONNECTING_EVENT]: (why: { code: string; message: string }) => void;
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface InterServerEvents {}

/** Kept plain JSON: clustered mode saves it in Redis as JSON for recovery. */
export interface SocketData {
  /** JWT `sub` claim, when the token had one. */
  subject?: string;
}
