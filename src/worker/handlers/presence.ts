import { ErrorCode } from "../../shared/errors.js";
import { presenceEvent, presenceRoom } from "../../shared/rooms.js";
import type { AppSocket, HandlerContext } from "./context.js";
import { fail, guard } from "./reply.js";

/**
 * presenceSet:enter, presenceSet:leave, presence:update and presence:members:get.
 * Only members of a set receive its events; the joiner sees its own join.
 */
export function registerPresenceHandlers(socket: AppSocket, ctx: HandlerContext): void {
  const { io, schemas, log, presence } = ctx;

  const parseChannel = (name: unknown) => schemas.channelName.safeParse(name);

  socket.on(
    "presenceSet:enter",
    guard(log, "presenceSet:enter", async ([name, info], reply) => {
      const channel = parseChannel(name);
      if (!channel.success) return reply(fail(ErrorCode.INVALID_CHANNEL, channel.error.issues[0]?.message));
      const parsed = schemas.presenceInfo.safeParse(info ?? {});
      if (!parsed.success) return reply(fail(ErrorCode.INVALID_ARGUMENT, parsed.error.issues[0]?.message));
      const state = await presence.add(channel.data, socket.id, parsed.data);
      if (!socket.connected) {
        // The socket went away while the store answered; do not leave it behind.
        await presence.remove(channel.data, socket.id);
        return;
      }
      void socket.join(presenceRoom(channel.data));
      io.to(presenceRoom(channel.data)).emit(presenceEvent(channel.data, "join"), state);
      reply({ success: true });
    }),
  );

  socket.on(
    "presence:update",
    guard(log, "presence:update", async ([name, partial], reply) => {
      const channel = parseChannel(name);
      if (!channel.success) return reply(fail(ErrorCode.INVALID_CHANNEL, channel.error.issues[0]?.message));
      const parsed = schemas.presenceInfo.safeParse(partial);
      if (!parsed.success) return reply(fail(ErrorCode.INVALID_ARGUMENT, parsed.error.issues[0]?.message));
      const state = await presence.update(channel.data, socket.id, parsed.data);
      if (!state) return reply(fail(ErrorCode.NOT_A_MEMBER, "enter the presence set before updating"));
      io.to(presenceRoom(channel.data)).emit(presenceEvent(channel.data, "update"), state);
      reply({ success: true });
    }),
  );

  socket.on(
    "presenceSet:leave",
    guard(log, "presenceSet:leave", async ([name], reply) => {
      const channel = parseChannel(name);
      if (!channel.success) return reply(fail(ErrorCode.INVALID_CHANNEL, channel.error.issues[0]?.message));
      const removed = await presence.remove(channel.data, socket.id);
      if (!removed) return reply(fail(ErrorCode.NOT_A_MEMBER, "not in this presence set"));
      void socket.leave(presenceRoom(channel.data));
      io.to(presenceRoom(channel.data)).emit(presenceEvent(channel.data, "leave"), { socketId: socket.id });
      reply({ success: true });
    }),
  );

  socket.on(
    "presence:members:get",
    guard(log, "presence:members:get", async ([name], reply) => {
      const channel = parseChannel(name);
      if (!channel.success) return reply(fail(ErrorCode.INVALID_CHANNEL, channel.error.issues[0]?.message));
      try {
        reply({ success: true, users: await presence.members(channel.data) });
      } catch (err) {
        log.warn({ err }, "presence members read failed");
        reply(fail(ErrorCode.STORE_UNAVAILABLE, "presence is unavailable"));
      }
    }),
  );

  socket.on("disconnect", () => {
    if (ctx.evictions.has(socket.id)) return; // the session lives on in a newer connection
    void presence.removeAll(socket.id).then(
      (channels) => {
        for (const channel of channels) {
          io.to(presenceRoom(channel)).emit(presenceEvent(channel, "leave"), { socketId: socket.id });
        }
      },
      (err: unknown) => log.warn({ err }, "presence cleanup failed"),
    );
  });
}
