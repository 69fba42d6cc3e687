import type { Logger } from "../../shared/logger.js";
import { ErrorCode } from "../../shared/errors.js";

export type AckFn = (response: unknown) => void;

/** A failure ack: a machine code in `error` (the contract's field), a human sentence in `message`. */
export const fail = (error: ErrorCode, message?: string) =>
  message === undefined ? { success: false as const, error } : { success: false as const, error, message };

/**
 * Splits a client event's raw arguments into its data and the optional trailing ack callback.
 * Socket.IO puts the callback last; anything else in that position is data.
 */
export function splitAck(args: unknown[]): { data: unknown[]; ack: AckFn | undefined } {
  const last = args[args.length - 1];
  if (typeof last === "function") return { data: args.slice(0, -1), ack: last as AckFn };
  return { data: args, ack: undefined };
}

/**
 * Wraps a handler so that nothing it throws or rejects escapes into Socket.IO: the client gets
 * an INTERNAL failure (when it passed an ack) and the error is logged once.
 */
export function guard(
  log: Logger,
  event: string,
  handler: (data: unknown[], reply: AckFn) => void | Promise<void>,
): (...args: unknown[]) => void {
  return (...args: unknown[]) => {
    const { data, ack } = splitAck(args);
    let replied = false;
    const reply: AckFn = (response) => {
      if (replied || !ack) return;
      replied = true;
      ack(response);
    };
    const onError = (err: unknown) => {
      log.error({ err, event }, "handler failed");
      reply(fail(ErrorCode.INTERNAL, "internal error"));
    };
    try {
      const result = handler(data, reply);
      if (result instanceof Promise) result.catch(onError);
    } catch (err) {
      onError(err);
    }
  };
}
