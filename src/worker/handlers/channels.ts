import { randomUUID } from "node:crypto";
import { ErrorCode } from "../../shared/errors.js";
import { channelRoom, messageEvent } from "../rooms.js";
import { measureContent } from "../schemas.js";
import type { ChannelMessage } from "../../shared/contract.js";
import { BroadcastDropped } from "../adapter/broadcast-receipt.js";
import { workerMetrics } from "../metrics.js";
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
  const { schemas, log, sink, owedAcks } = ctx;
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
      const parsed = schemas.channelName.safeParse(name);
      if (!parsed.success) return reply(fail(ErrorCode.INVALID_CHANNEL, parsed.error.issues[0]?.message));
      if (data.length < 2) return reply(fail(ErrorCode.INVALID_ARGUMENT, "content is missing"));
      const size = measureContent(content);
      if ("error" in size) return reply(fail(ErrorCode.INVALID_ARGUMENT, size.error));
      if (size.bytes > ctx.config.limits.messageMaxBytes) {
        return reply(fail(ErrorCode.PAYLOAD_TOO_LARGE, `content is larger than ${ctx.config.limits.messageMaxBytes} bytes`));
      }
      const message: ChannelMessage = {
        createdAt: new Date().toISOString(),
        content,
        socketId: socket.id,
        messageId: randomUUID(),
      };
      // Draining: the acks owed are being sent before the sockets close, and a new one might not
      // make it; the client sends it again on another worker. (One without an ack is taken: it
      // loses nothing, and the drain stores it.)
      if (acked && !owedAcks.open) return reply(fail(ErrorCode.OVERLOADED, "this worker is shutting down, retry"));
      // A message that the store's queue or the broadcast path cannot take is refused whole,
      // neither broadcast nor stored, so that the publisher may retry it without subscribers
      // seeing it twice: both are asked before either gets it (nothing runs in between).
      if (!sink.hasRoom()) return reply(fail(ErrorCode.OVERLOADED, "persistence queue is full, retry later"));
      const sent = ctx.publish(channelRoom(parsed.data), messageEvent(parsed.data), message);
      if (sent.refused) return reply(fail(sent.refused.code, sent.refused.message));
      workerMetrics.published.inc();
      const queued = sink.enqueue(parsed.data, message);
      if (!queued.accepted) {
        // Cannot happen (the queue had room a moment ago); said loudly if it ever does.
        log.error({ channel: parsed.data }, "message broadcast but refused by the persistence queue");
        return reply(fail(ErrorCode.INTERNAL, "message was delivered but not queued for storage"));
      }
      // The ack waits until the message is durable (stored or spilled) and handed on to every
      // worker that needs it; it says so when either failed.
      const paid = acked ? owedAcks.owe() : undefined;
      Promise.all([sent.handedOn, queued.durable])
        .then(
          () => reply({ success: true, messageId: message.messageId }),
          (err: unknown) => {
            if (err instanceof BroadcastDropped) {
              log.warn({ err, channel: parsed.data }, "message was not handed on to every subscriber");
              return reply(fail(err.code, err.message));
            }
            log.error({ err, channel: parsed.data }, "message could not be made durable");
            reply(fail(ErrorCode.STORE_UNAVAILABLE, "message was delivered but could not be stored"));
          },
        )
        .finally(paid);
    },
  };
}
