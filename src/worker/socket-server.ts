import { randomBytes } from "node:crypto";
import type { Server as HttpServer } from "node:http";
import { Server, type ServerOptions } from "socket.io";
import { createAdapter as createClusterAdapter } from "@socket.io/cluster-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import type { Redis } from "ioredis";
import type { Config } from "../shared/config.js";
import type { AppServer } from "./handlers/context.js";

/** Engine.IO session ids start with the owning worker's id, so the balancer routes them without state. */
export function sessionIdFor(workerId: number): string {
  return `${workerId}.${randomBytes(15).toString("base64url")}`;
}

/** Builds the worker's Socket.IO server with the adapter of the configured mode. */
export function createSocketServer(
  httpServer: HttpServer,
  config: Config,
  workerId: number,
  redis: Redis | undefined,
): AppServer {
  const options: Partial<ServerOptions> = {
    serveClient: false,
    pingInterval: config.engine.pingIntervalMs,
    pingTimeout: config.engine.pingTimeoutMs,
    maxHttpBufferSize: config.engine.maxHttpBufferSize,
    cors: { origin: config.engine.corsOrigin, methods: ["GET", "POST"] },
  };
  if (redis && config.redis) {
    options.adapter = createStreamsAdapter(redis, {
      streamName: `${config.redis.keyPrefix}stream`,
      channelPrefix: `${config.redis.keyPrefix}adapter`,
      sessionKeyPrefix: `${config.redis.keyPrefix}session:`,
    });
    options.connectionStateRecovery = {
      maxDisconnectionDuration: config.recovery.maxDisconnectionMs,
      skipMiddlewares: true,
    };
  } else {
    // The stock cluster adapter cannot recover sessions and pads events with ""/null when
    // recovery is on (DESIGN.md), so embedded mode runs without it for now.
    options.adapter = createClusterAdapter();
  }
  const io: AppServer = new Server(httpServer, options);
  io.engine.generateId = () => sessionIdFor(workerId);
  // Every polling response closes its TCP connection: a pooled keep-alive connection could
  // otherwise carry another session's request to a worker that does not own it.
  httpServer.prependListener("request", (_req, res) => res.setHeader("Connection", "close"));
  return io;
}
