import type { Logger } from "../../shared/logger.js";
import { ErrorCode } from "../../shared/errors.js";
import type { AppSocket } from "./context.js";
import type { Admission } from "../rate-limit.js";
import { workerMetrics } from "../metrics.js";

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
 * One client event's handler; built once per worker, called with the socket it came from.
 * `reply` sends the ack when the client asked for one (`acked`) and does nothing otherwise.
 */
export type Handler = (socket: AppSocket, data: unknown[], reply: AckFn, acked: boolean) => void | Promise<void>;

/** Admits each client event (the rate limit) and deals with a connection that kept exceeding it. */
export interface EventGate {
  admit(socket: AppSocket): Admission;
  /** What a refused event's ack says. */
  readonly refusal: ReturnType<typeof fail>;
  /** The connection ran out of refusals: close it, telling it why. */
  exceeded(socket: AppSocket): void;
}

/**
 * Builds the worker's single event dispatcher from its handler table. Each socket gets one
 * listener (`onAny`) that calls it, instead of a closure per event per socket (measured: ~2 KiB
 * per connection). Every event passes the gate first (unknown ones too: they cost the worker as
 * well); a refused one gets RATE_LIMITED when it has an ack. Unknown events are dropped. Nothing
 * a handler throws or rejects escapes into Socket.IO: the client gets an INTERNAL failure (when
 * it passed an ack) and the error is logged.
 */
export function dispatcher(
  log: Logger,
  table: Record<string, Handler>,
  gate?: EventGate,
): (socket: AppSocket, event: unknown, args: unknown[]) => void {
  const handlers = new Map(Object.entries(table));
  return (socket, event, args) => {
    // Events read in the same batch as the one that closed the connection (rate limit) are dropped.
    if (!socket.connected) return;
    const admission = gate ? gate.admit(socket) : "admitted";
    if (admission !== "admitted") {
      workerMetrics.rateLimitedEvents.inc();
      splitAck(args).ack?.(gate!.refusal);
      if (admission === "disconnect") gate!.exceeded(socket);
      return;
    }
    const handler = typeof event === "string" ? handlers.get(event) : undefined;
    if (!handler) return;
    const { data, ack } = splitAck(args);
    const started = performance.now();
    let replied = false;
    // Every handler replies once (a no-op without an ack): that moment ends the command's timing.
    const reply: AckFn = (response) => {
      if (replied) return;
      replied = true;
      observe(event as string, started, response);
      ack?.(response);
    };
    const onError = (err: unknown) => {
      log.error({ err, event }, "handler failed");
      reply(fail(ErrorCode.INTERNAL, "internal error"));
    };
    try {
      const result = handler(socket, data, reply, ack !== undefined);
      if (result instanceof Promise) result.catch(onError);
    } catch (err) {
      onError(err);
    }
  };
}

/** A command's duration and, when it failed, its error code (a closed catalogue: a bounded label). */
function observe(event: string, started: number, response: unknown): void {
  workerMetrics.commandDuration.observe({ event }, (performance.now() - started) / 1000);
  const outcome = response as { success?: unknown; error?: unknown } | null;
  if (outcome?.success === false && typeof outcome.error === "string") workerMetrics.commandFailures.inc({ event, code: outcome.error });
}
