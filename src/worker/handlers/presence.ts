import { ErrorCode } from "../../shared/errors.js";
import { presenceEvent, presenceRoom } from "../rooms.js";
import type { Removal } from "../../shared/presence-limits.js";
import { stringifyInfo } from "../presence/store.js";
import type { AppServer, AppSocket, HandlerContext } from "./context.js";
import { fail, type Handler } from "./reply.js";

/** Disconnect reasons after which the client comes back and recovers: no `leave` for those, yet. */
const RECOVERABLE = new Set(["transport error", "transport close", "forced close", "ping timeout", "server shutting down", "forced server close"]);

/**
 * presenceSet:enter, presenceSet:leave, presence:update and presence:members:get.
 * Only members of a set receive its events; the joiner sees its own join.
 */
/**
 * The sockets of this worker that may be in a presence set: those that entered one, and every
 * recovered one (its sets came back with it). Only their disconnects reach the presence store;
 * most connections never enter one, and a disconnect then costs no store round trip.
 */
const mayBeMembers = new WeakSet<AppSocket>();

export function presenceHandlers(ctx: HandlerContext): Record<string, Handler> {
  const { io, schemas, log, presence, config } = ctx;
  const limits = config.presence;

  /** Parses and bounds presence info; undefined plus a failure reply when it is refused. */
  const parseInfo = (raw: unknown, reply: (r: unknown) => void): Record<string, string> | undefined => {
    const parsed = schemas.presenceInfo.safeParse(raw);
    if (!parsed.success) {
      reply(fail(ErrorCode.INVALID_ARGUMENT, `info: ${parsed.error.issues[0]?.message}`));
      return undefined;
    }
    if (Object.keys(parsed.data).length > limits.infoMaxFields) {
      reply(fail(ErrorCode.LIMIT_EXCEEDED, `info has more than ${limits.infoMaxFields} fields`));
      return undefined;
    }
    const info = stringifyInfo(parsed.data);
    if (Buffer.byteLength(JSON.stringify(info), "utf8") > limits.infoMaxBytes) {
      reply(fail(ErrorCode.PAYLOAD_TOO_LARGE, `info is larger than ${limits.infoMaxBytes} bytes`));
      return undefined;
    }
    return info;
  };

  return {
    "presenceSet:enter": async (socket, [name, info], reply) => {
      const channel = schemas.channelName.safeParse(name);
      if (!channel.success) return reply(fail(ErrorCode.INVALID_CHANNEL, channel.error.issues[0]?.message));
      const fields = parseInfo(info ?? {}, reply);
      if (!fields) return;
      mayBeMembers.add(socket);
      const state = await presence.add(channel.data, socket.id, fields);
      if (state === "members") return reply(fail(ErrorCode.LIMIT_EXCEEDED, `at most ${limits.maxMembers} members per channel`));
      if (state === "channels") {
        return reply(fail(ErrorCode.LIMIT_EXCEEDED, `at most ${limits.maxChannelsPerMember} presence channels per member`));
      }
      if (!socket.connected) {
        // The socket went away while the store answered; do not leave it behind.
        await presence.remove(channel.data, socket.id);
        return;
      }
      const joined = socket.join(presenceRoom(channel.data));
      io.to(presenceRoom(channel.data)).emit(presenceEvent(channel.data, "join"), state);
      // Acknowledged once the set's events are routed to this worker (see channel:subscribe).
      await joined;
      reply({ success: true });
    },

    "presence:update": async (socket, [name, partial], reply) => {
      const channel = schemas.channelName.safeParse(name);
      if (!channel.success) return reply(fail(ErrorCode.INVALID_CHANNEL, channel.error.issues[0]?.message));
      const fields = parseInfo(partial, reply);
      if (!fields) return;
      const state = await presence.update(channel.data, socket.id, fields);
      if (!state) return reply(fail(ErrorCode.NOT_A_MEMBER, "enter the presence set before updating"));
      if (Buffer.byteLength(JSON.stringify(state), "utf8") > limits.infoMaxBytes * 2) {
        // Merged state grew past the bound over many updates: keep serving, but say so.
        log.warn({ channel: channel.data }, "presence state is large");
      }
      io.to(presenceRoom(channel.data)).emit(presenceEvent(channel.data, "update"), state);
      reply({ success: true });
    },

    "presenceSet:leave": async (socket, [name], reply) => {
      const channel = schemas.channelName.safeParse(name);
      if (!channel.success) return reply(fail(ErrorCode.INVALID_CHANNEL, channel.error.issues[0]?.message));
      const removed = await presence.remove(channel.data, socket.id);
      if (!removed) return reply(fail(ErrorCode.NOT_A_MEMBER, "not in this presence set"));
      void socket.leave(presenceRoom(channel.data));
      io.to(presenceRoom(channel.data)).emit(presenceEvent(channel.data, "leave"), { socketId: socket.id });
      reply({ success: true });
    },

    "presence:members:get": async (socket, [name], reply) => {
      const channel = schemas.channelName.safeParse(name);
      if (!channel.success) return reply(fail(ErrorCode.INVALID_CHANNEL, channel.error.issues[0]?.message));
      try {
        reply({ success: true, users: await presence.members(channel.data) });
      } catch (err) {
        log.warn({ err }, "presence members read failed");
        reply(fail(ErrorCode.STORE_UNAVAILABLE, "presence is unavailable"));
      }
    },
  };
}

/**
 * What each connection gets: a dropped member is suspended (not announced), a recovered one
 * resumed. One disconnect listener for every socket of the worker (Socket.IO calls it with the
 * socket as `this`), so a connection costs no closure; `alsoOnDisconnect` (the metrics) runs in
 * that same listener rather than as a second one, which would cost every connection an array.
 */
export function presenceTracker(ctx: HandlerContext, alsoOnDisconnect?: (reason: string) => void): (socket: AppSocket) => void {
  const { io, log, presence } = ctx;
  const limits = ctx.config.presence;
  const onDisconnect = function (this: AppSocket, reason: string) {
    alsoOnDisconnect?.(reason);
    const id = this.id;
    if (ctx.evictions.has(id)) return; // the session lives on in a newer connection
    if (!mayBeMembers.has(this)) return; // in no presence set: nothing to suspend or remove
    if (RECOVERABLE.has(reason) && limits.graceMs > 0) {
      // The client will most likely come back and recover: no event now; the reaper sends
      // `leave` if the grace ends first.
      presence.suspend(id, limits.graceMs).catch((err: unknown) => log.warn({ err }, "presence suspend failed"));
      return;
    }
    presence.removeAll(id).then(
      (channels) => announceLeaves(io, channels.map((channel) => ({ channel, socketId: id }))),
      (err: unknown) => log.warn({ err }, "presence cleanup failed"),
    );
  };

  return (socket) => {
    socket.on("disconnect", onDisconnect);
    if (socket.recovered) {
      mayBeMembers.add(socket);
      // Back within the window: cancel the pending leave, or re-enter what the reaper removed.
      presence.resume(socket.id).then(
        (reentered) => {
          for (const { channel, state } of reentered) io.to(presenceRoom(channel)).emit(presenceEvent(channel, "join"), state as never);
        },
        (err: unknown) => log.warn({ err }, "presence resume failed"),
      );
    }
  };
}

export function announceLeaves(io: AppServer, removed: readonly Removal[]): void {
  for (const { channel, socketId } of removed) {
    io.to(presenceRoom(channel)).emit(presenceEvent(channel, "leave"), { socketId });
  }
}

/** Periodically removes members past their grace or lease and announces them. Returns a stop function. */
export function startPresenceReaper(ctx: HandlerContext): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return; // a slow store: skip a round rather than pile up
    running = true;
    ctx.presence
      .reap()
      .then(
        (removed) => announceLeaves(ctx.io, removed),
        (err: unknown) => ctx.log.warn({ err }, "presence reap failed"),
      )
      .finally(() => (running = false));
  }, ctx.config.presence.reapIntervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
