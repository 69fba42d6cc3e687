import { ErrorCode } from "../../shared/errors.js";
import { channelRoom } from "../rooms.js";
import { publishMessage } from "./publish.js";
import type { AppSocket, HandlerContext } from "./context.js";
import { fail, type Handler } from "./reply.js";

/** Subscriptions one connection may hold; the next subscribe is refused with LIMIT_EXCEEDED. */
export const MAX_CHANNELS_PER_CONNECTION = 1000;

/** The channels a socket is subscribed to, counted from its rooms (so a recovered socket's count is right). */
function subscriptionCount(socket: AppSocket): number {
  let count = 0;
  for (const room of socket.rooms) if (room.startsWith(CHANNEL_PREFIX)) count++;
  return count;
}
const CHANNEL_PREFIX = channelRoom("");

/** channel:subscribe, channel:unsubscribe and message:queue (docs/protocol.md, "Client → server events"). */
export function channelHandlers(ctx: HandlerContext): Record<string, Handler> {
  const { schemas, sink } = ctx;
  return {

    "channel:subscribe": async (socket, [name], reply) => {
      const parsed = schemas.channelName.safeParse(name);
      if (!parsed.success) return reply(fail(ErrorCode.INVALID_CHANNEL, parsed.error.issues[0]?.message));
      const room = channelRoom(parsed.data);
      const fresh = !socket.rooms.has(room);
      if (fresh && subscriptionCount(socket) >= MAX_CHANNELS_PER_CONNECTION) {
        return reply(fail(ErrorCode.LIMIT_EXCEEDED, `at most ${MAX_CHANNELS_PER_CONNECTION} channels per connection`));
      }
      // The ack waits until broadcasts to the room are routed to this worker (a room new here is
      // announced to the primary first), so every message published after it arrives. A repeated
      // subscribe waits too: the first one's announcement may still be on its way.
      await socket.join(room);
      if (fresh) sink.noteChannel(parsed.data);
      reply({ success: true });
    },

    "channel:unsubscribe": (socket, [name], reply) => {
      const parsed = schemas.channelName.safeParse(name);
      if (!parsed.success) return reply(fail(ErrorCode.INVALID_CHANNEL, parsed.error.issues[0]?.message));
      const room = channelRoom(parsed.data);
      if (socket.rooms.has(room)) void socket.leave(room);
      reply({ success: true });
    },

    "message:queue": (socket, data, reply, acked) => {
      const [name, content] = data;
      publishMessage(ctx, name, data.length < 2 ? undefined : { value: content }, socket.id, acked, (outcome) =>
        reply(outcome.success ? { success: true, messageId: outcome.messageId } : outcome),
      );
    },
  };
}
