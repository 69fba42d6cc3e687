import type { AdminChannel, AdminRequest, AdminResult } from "../shared/ipc.js";
import type { HandlerContext } from "./handlers/context.js";
import { channelRoom } from "./rooms.js";

const CHANNEL_PREFIX = channelRoom("");

/**
 * What the admin page (src/primary/admin.ts) asks this worker over IPC: its busiest channels
 * (the page's view of this host when the server API cannot answer), and presence counts. The
 * page's actions and its cluster-wide view go through the server API instead.
 */
export async function answerAdmin(ctx: HandlerContext, request: AdminRequest): Promise<AdminResult> {
  switch (request.op) {
    case "channels":
      return { op: "channels", ...(await busiestChannels(ctx, request.limit, request.presenceOf)) };
    case "presence":
      return { op: "presence", counts: await presenceCounts(ctx, request.channels) };
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
  const counts = await presenceCounts(ctx, channels.slice(0, presenceOf).map((c) => c.channel));
  for (const entry of channels) if (counts[entry.channel] !== undefined) entry.presence = counts[entry.channel];
  return { channels, total };
}

/** Presence is shared by the host (embedded) or the cluster (Redis): one worker's read suffices. */
async function presenceCounts(ctx: HandlerContext, channels: string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  await Promise.all(
    channels.map(async (channel) => {
      try {
        counts[channel] = (await ctx.presence.members(channel)).length;
      } catch {
        // Unreadable (the store is down): left out, the page shows a dash.
      }
    }),
  );
  return counts;
}
