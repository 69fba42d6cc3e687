import { randomUUID } from "node:crypto";
import type { ChannelMessage } from "../shared/contract.js";
import { ErrorCode } from "../shared/errors.js";
import type { AdminChannel, AdminRequest, AdminResult } from "../shared/ipc.js";
import { BroadcastDropped } from "./adapter/broadcast-receipt.js";
import type { HandlerContext } from "./handlers/context.js";
import { workerMetrics } from "./metrics.js";
import { channelRoom, messageEvent } from "./rooms.js";
import { measureContent } from "./schemas.js";

const CHANNEL_PREFIX = channelRoom("");

/**
 * What the admin page (src/primary/admin.ts) asks this worker over IPC: its busiest channels, to
 * close one of its sockets, to publish a test message. A publish takes the same path as a
 * client's `message:queue` (the adapter's broadcast to every worker and host, then the store),
 * with no publishing socket; its answer waits until the message is durable and handed on.
 */
export async function answerAdmin(ctx: HandlerContext, request: AdminRequest): Promise<AdminResult> {
  switch (request.op) {
    case "channels":
      return { op: "channels", ...(await busiestChannels(ctx, request.limit, request.presenceOf)) };
    case "disconnect": {
      const socket = ctx.io.of("/").sockets.get(request.socketId);
      socket?.disconnect(true);
      return { op: "disconnect", found: socket !== undefined };
    }
    case "publish":
      return publish(ctx, request.channel, request.data);
  }
}

async function busiestChannels(ctx: HandlerContext, limit: number, presenceOf: number): Promise<{ channels: AdminChannel[]; total: number }> {
  const channels: AdminChannel[] = [];
  for (const [room, sockets] of ctx.io.of("/").adapter.rooms) {
    if (room.startsWith(CHANNEL_PREFIX)) channels.push({ channel: room.slice(CHANNEL_PREFIX.length), subscribers: sockets.size });
  }
  const total = channels.length;
  channels.sort((a, b) => b.subscribers - a.subscribers || (a.channel < b.channel ? -1 : 1));
  channels.length = Math.min(channels.length, limit);
  await Promise.all(
    channels.slice(0, presenceOf).map(async (entry) => {
      // Presence is shared by the host (embedded) or the cluster (Redis): one read suffices.
      entry.presence = await ctx.presence.members(entry.channel).then(
        (members) => members.length,
        () => undefined,
      );
    }),
  );
  return { channels, total };
}

async function publish(ctx: HandlerContext, name: string, data: unknown): Promise<AdminResult> {
  const refuse = (code: string, message: string): AdminResult => ({ op: "publish", ok: false, code, message });
  const parsed = ctx.schemas.channelName.safeParse(name);
  if (!parsed.success) return refuse(ErrorCode.INVALID_CHANNEL, parsed.error.issues[0]?.message ?? "invalid channel");
  const size = measureContent(data);
  if ("error" in size) return refuse(ErrorCode.INVALID_ARGUMENT, size.error);
  if (size.bytes > ctx.config.limits.messageMaxBytes) {
    return refuse(ErrorCode.PAYLOAD_TOO_LARGE, `content is larger than ${ctx.config.limits.messageMaxBytes} bytes`);
  }
  if (!ctx.owedAcks.open) return refuse(ErrorCode.OVERLOADED, "this worker is shutting down, retry");
  if (!ctx.sink.hasRoom()) return refuse(ErrorCode.OVERLOADED, "persistence queue is full, retry later");
  const message: ChannelMessage = { createdAt: new Date().toISOString(), content: data, messageId: randomUUID() };
  const sent = ctx.publish(channelRoom(parsed.data), messageEvent(parsed.data), message);
  if (sent.refused) return refuse(sent.refused.code, sent.refused.message);
  workerMetrics.published.inc();
  const queued = ctx.sink.enqueue(parsed.data, message);
  if (!queued.accepted) return refuse(ErrorCode.INTERNAL, "message was delivered but not queued for storage");
  try {
    await Promise.all([sent.handedOn, queued.durable]);
    return { op: "publish", ok: true, messageId: message.messageId };
  } catch (err) {
    if (err instanceof BroadcastDropped) return refuse(err.code, err.message);
    return refuse(ErrorCode.STORE_UNAVAILABLE, "message was delivered but could not be stored");
  }
}
