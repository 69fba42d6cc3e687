import { randomBytes } from "node:crypto";
import type { Server as HttpServer } from "node:http";
import { Server, type ServerOptions } from "socket.io";
import type { Redis } from "ioredis";
import type { Config } from "../shared/config.js";
import type { Logger } from "../shared/logger.js";
import type { AppServer, AppSocket, ChannelPublisher } from "./handlers/context.js";
import { EmbeddedAdapter } from "./adapter/embedded-adapter.js";
import type { ReportingAdapter } from "./adapter/broadcast-receipt.js";
import type { Evictions } from "./adapter/evictions.js";
import { RedisAdapter } from "./adapter/redis-adapter.js";
import { EVICT_EVENT, RedisRecovery } from "./adapter/redis-recovery.js";
import { createRedis } from "./redis.js";
import { isSocketRoom } from "./rooms.js";
import { isApiPath, pathOf } from "../shared/http-api-paths.js";
import { BroadcastBatching, coalesceFlushedWrites } from "./write-coalescing.js";
import { ClientQueueCap } from "./client-queue.js";
import { workerMetrics } from "./metrics.js";

/** Engine.IO session ids start with the owning worker's id, so the balancer routes them without state. */
export function sessionIdFor(workerId: number): string {
  return `${workerId}.${randomBytes(15).toString("base64url")}`;
}

export interface SocketServer {
  io: AppServer;
  /** Saves a new connection's session at once (not only when it closes), so a crash loses nothing. */
  track(socket: AppSocket): void;
  /** `io.to(room).emit(event, data)` that says what became of the broadcast (see BroadcastReceipt). */
  publish: ChannelPublisher;
}

/** Socket.IO's packet type of an event (socket.io-parser's PacketType.EVENT). */
const EVENT_PACKET = 2;

/** Builds the worker's Socket.IO server with the adapter of the configured mode. */
export function createSocketServer(
  httpServer: HttpServer,
  config: Config,
  workerId: number,
  redis: Redis | undefined,
  evictions: Evictions,
  log: Logger,
): SocketServer {
  const options: Partial<ServerOptions> = {
    serveClient: false,
    pingInterval: config.engine.pingIntervalMs,
    pingTimeout: config.engine.pingTimeoutMs,
    maxHttpBufferSize: config.engine.maxHttpBufferSize,
    cors: { origin: config.engine.corsOrigin, methods: ["GET", "POST"] },
    connectionStateRecovery: {
      maxDisconnectionDuration: config.recovery.maxDisconnectionMs,
      // A recovered connection is not re-authenticated (docs/protocol.md, "Authentication").
      skipMiddlewares: true,
    },
  };
  const adapterLog = log.child({ component: "adapter" });
  let track: (socket: AppSocket) => void;
  let redisRecovery: RedisRecovery | undefined;
  if (redis && config.redis) {
    const streamName = `${config.redis.keyPrefix}stream`;
    const recovery = new RedisRecovery({
      redis,
      streamName,
      sessionKeyPrefix: `${config.redis.keyPrefix}session:`,
      maxDisconnectionMs: config.recovery.maxDisconnectionMs,
      maxReplay: config.recovery.logMaxEntries,
      maxHeld: config.limits.broadcastMaxPending,
      evictions,
      log: adapterLog,
    });
    const redisConfig = config.redis;
    options.adapter = function (nsp: unknown) {
      return new RedisAdapter(nsp, {
        redis,
        // Pub/sub needs a connection of its own; the adapter subscribes again (and catches up) itself.
        subscriber: createRedis(redisConfig.url, log, `cerebellum-sub-${process.pid}`, { autoResubscribe: false }),
        keyPrefix: redisConfig.keyPrefix,
        streamName,
        // The stream is the replay log: sized from configuration so the recovery window holds
        // for up to RECOVERY_LOG_MAX_ENTRIES broadcasts per window across all hosts.
        maxLogEntries: config.recovery.logMaxEntries,
        recovery,
        isSocketRoom,
        log: adapterLog,
      });
    } as unknown as ServerOptions["adapter"];
    track = (socket) => recovery.track(socket);
    redisRecovery = recovery;
  } else {
    // The stock cluster adapter cannot recover sessions (Socket.IO's docs say so): ours sequences through the primary.
    options.adapter = function (nsp: unknown) {
      return new EmbeddedAdapter(nsp, { log: adapterLog, evictions, maxPending: config.limits.broadcastMaxPending });
    } as unknown as ServerOptions["adapter"];
    track = (socket) => (io.of("/").adapter as EmbeddedAdapter).track(socket);
  }
  const io: AppServer = new Server(httpServer, options);
  io.engine.generateId = () => sessionIdFor(workerId);
  coalesceFlushedWrites(io.engine);
  const queueCap = new ClientQueueCap(config.limits.clientQueueMaxBytes, (conn, heldBytes) => {
    workerMetrics.slowConsumerDisconnects.inc();
    // Engine.IO's typings mark the session id private; it is the `sid` every request carries.
    log.warn({ sid: (conn as unknown as { id: string }).id, heldBytes, cap: config.limits.clientQueueMaxBytes }, "closed a client that does not read: over CLIENT_QUEUE_MAX_BYTES");
  });
  const batching = new BroadcastBatching(
    (problem) => log.error({ problem }, "broadcasts go through Engine.IO's send path: the direct write's private fields are missing (engine.io or ws changed)"),
    (conn) => queueCap.check(conn),
  );
  io.on("connection", (socket) => batching.attach(socket.client));
  if (redisRecovery) {
    const recovery = redisRecovery;
    io.on(EVICT_EVENT as never, (sid: unknown) => {
      if (typeof sid === "string") recovery.evictLocal(sid);
    });
  }
  // Every polling response closes its TCP connection: a pooled keep-alive connection could
  // otherwise carry another session's request to a worker that does not own it. The HTTP API's
  // requests are stateless: a backend keeps its connection (it stays on this worker).
  httpServer.prependListener("request", (req, res) => {
    if (!isApiPath(pathOf(req.url))) res.setHeader("Connection", "close");
  });
  // What BroadcastOperator.emit hands the adapter for `io.to(room).emit(event, data)`, to the
  // adapter's reporting twin of `broadcast`.
  const publish: ChannelPublisher = (room, event, data) =>
    (io.of("/").adapter as unknown as ReportingAdapter).broadcastWithReceipt(
      { type: EVENT_PACKET, data: [event, data] },
      { rooms: new Set([room]), except: new Set(), flags: {} },
    );
  return { io, track, publish };
}
