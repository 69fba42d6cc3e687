import { ErrorCode } from "../../shared/errors.js";
import { HistoryRequestError } from "../../persistence/history-reader.js";
import type { HandlerContext } from "./context.js";
import { fail, type Handler } from "./reply.js";

/** channel:history(channelName, limit, sortDirection, lastEvaluatedKey, ack). */
export function historyHandlers(ctx: HandlerContext): Record<string, Handler> {
  const { schemas, log, history } = ctx;
  return {
    "channel:history": async (_socket, [name, limit, sortDirection, lastEvaluatedKey], reply) => {
      const channel = schemas.channelName.safeParse(name);
      if (!channel.success) return reply(fail(ErrorCode.INVALID_CHANNEL, channel.error.issues[0]?.message));
      const args = schemas.historyArgs.safeParse({ limit, sortDirection, lastEvaluatedKey });
      if (!args.success) {
        const issue = args.error.issues[0];
        return reply(fail(ErrorCode.INVALID_ARGUMENT, `${issue?.path.join(".")}: ${issue?.message}`));
      }
      try {
        const page = await history.page(channel.data, args.data);
        reply({ success: true, ...page });
      } catch (err) {
        // A bad cursor, or too many reads at once: the client's to fix or retry, not a store failure.
        if (err instanceof HistoryRequestError) return reply(fail(err.code, err.message));
        log.warn({ err, channel: channel.data }, "history read failed");
        reply(fail(ErrorCode.STORE_UNAVAILABLE, "history is unavailable"));
      }
    },
  };
}
