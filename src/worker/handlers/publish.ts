import { randomUUID } from "node:crypto";
import { ErrorCode } from "../../shared/errors.js";
import type { ChannelMessage } from "../../shared/contract.js";
import { channelRoom, messageEvent } from "../rooms.js";
import { measureContent } from "../schemas.js";
import { BroadcastDropped } from "../adapter/broadcast-receipt.js";
import { workerMetrics } from "../metrics.js";
import type { HandlerContext } from "./context.js";
import { fail } from "./reply.js";

/** What became of a publish: durable and handed on, or refused (nothing broadcast nor stored) or failed, with a code. */
export type PublishOutcome =
  | { success: true; messageId: string; createdAt: string; channel: string }
  | ReturnType<typeof fail>;

/**
 * The one publish path: a client's `message:queue` and the HTTP API (`POST /data`, `publish`,
 * `broadcast`) all come here. Validates the channel and content, bounds its size, refuses it whole
 * when the store's queue or the broadcast path cannot take it, broadcasts it and queues it for
 * storage, and calls `done` once — when it is durable (stored or spilled) and handed on to every
 * worker that needs it, or with the failure. `socketId` is the publisher's; a server-side publish
 * has none, and its broadcast carries none (docs/protocol.md). `waited`: someone waits for `done`
 * (a client ack, an HTTP answer), so a draining worker refuses it rather than risk never answering.
 */
export function publishMessage(
  ctx: HandlerContext,
  name: unknown,
  content: { value: unknown } | undefined,
  socketId: string | undefined,
  waited: boolean,
  done: (outcome: PublishOutcome) => void,
): void {
  const { schemas, log, sink, owedAcks } = ctx;
  const parsed = schemas.channelName.safeParse(name);
  if (!parsed.success) return done(fail(ErrorCode.INVALID_CHANNEL, parsed.error.issues[0]?.message));
  if (!content) return done(fail(ErrorCode.INVALID_ARGUMENT, "content is missing"));
  const size = measureContent(content.value);
  if ("error" in size) return done(fail(ErrorCode.INVALID_ARGUMENT, size.error));
  if (size.bytes > ctx.config.limits.messageMaxBytes) {
    return done(fail(ErrorCode.PAYLOAD_TOO_LARGE, `content is larger than ${ctx.config.limits.messageMaxBytes} bytes`));
  }
  const channel = parsed.data;
  const message: ChannelMessage = { createdAt: new Date().toISOString(), content: content.value, messageId: randomUUID() };
  if (socketId !== undefined) message.socketId = socketId;
  // Draining: the answers owed are being sent before the sockets close, and a new one might not
  // make it; the publisher sends it again on another worker. (One nobody waits for is taken: it
  // loses nothing, and the drain stores it.)
  if (waited && !owedAcks.open) return done(fail(ErrorCode.OVERLOADED, "this worker is shutting down, retry"));
  // A message that the store's queue or the broadcast path cannot take is refused whole,
  // neither broadcast nor stored, so that the publisher may retry it without subscribers
  // seeing it twice: both are asked before either gets it (nothing runs in between).
  if (!sink.hasRoom()) return done(fail(ErrorCode.OVERLOADED, "persistence queue is full, retry later"));
  const sent = ctx.publish(channelRoom(channel), messageEvent(channel), message);
  if (sent.refused) return done(fail(sent.refused.code, sent.refused.message));
  workerMetrics.published.inc();
  const queued = sink.enqueue(channel, message);
  if (!queued.accepted) {
    // Cannot happen (the queue had room a moment ago); said loudly if it ever does.
    log.error({ channel }, "message broadcast but refused by the persistence queue");
    return done(fail(ErrorCode.INTERNAL, "message was delivered but not queued for storage"));
  }
  // The answer waits until the message is durable (stored or spilled) and handed on to every
  // worker that needs it; it says so when either failed.
  const paid = waited ? owedAcks.owe() : undefined;
  Promise.all([sent.handedOn, queued.durable])
    .then(
      () => done({ success: true, messageId: message.messageId, createdAt: message.createdAt, channel }),
      (err: unknown) => {
        if (err instanceof BroadcastDropped) {
          log.warn({ err, channel }, "message was not handed on to every subscriber");
          return done(fail(err.code, err.message));
        }
        log.error({ err, channel }, "message could not be made durable");
        done(fail(ErrorCode.STORE_UNAVAILABLE, "message was delivered but could not be stored"));
      },
    )
    .finally(paid);
}
