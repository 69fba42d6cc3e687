import type { Config } from "../../shared/config.js";
import { DISCONNECTING_EVENT } from "../../shared/contract.js";
import { ErrorCode } from "../../shared/errors.js";
import type { Logger } from "../../shared/logger.js";
import { writeEventPacket } from "../adapter/pending-restores.js";
import { EventRateLimiter, REFUSAL_WINDOW_MS } from "../rate-limit.js";
import { workerMetrics } from "../metrics.js";
import type { AppSocket } from "./context.js";
import { fail, type EventGate } from "./reply.js";

/**
 * The per-connection rate limit on client events (CLIENT_RATE_*), as the dispatcher's gate;
 * undefined when CLIENT_RATE_LIMIT_PER_SEC is 0. A connection that keeps sending past it is told
 * why (`cerebellum:disconnecting` with RATE_LIMITED) and disconnected; the worker logs each.
 */
export function rateLimitGate(config: Config, log: Logger): EventGate | undefined {
  const { perSec, burst, maxRefusals } = config.clientRate;
  if (perSec === 0) return undefined;
  const limiter = new EventRateLimiter(config.clientRate);
  const message = `more than ${perSec} events per second (bursts of ${burst}): event dropped, slow down`;
  let disconnected = 0;
  return {
    admit: (socket) => limiter.admit(socket),
    refusal: fail(ErrorCode.RATE_LIMITED, message),
    exceeded(socket: AppSocket) {
      disconnected++;
      workerMetrics.rateLimitedDisconnects.inc();
      log.warn(
        { socketId: socket.id, address: socket.handshake.address, disconnected },
        `disconnected a client that kept exceeding its event rate (more than ${maxRefusals} refusals in ${REFUSAL_WINDOW_MS / 1000} s)`,
      );
      // Written straight to this connection (not a broadcast to its room, which would reach it
      // only after the disconnect): Engine.IO sends what it queued before it closes.
      writeEventPacket(socket, [DISCONNECTING_EVENT, { code: ErrorCode.RATE_LIMITED, message: `disconnected: ${message}` }]);
      socket.disconnect(true);
    },
  };
}
