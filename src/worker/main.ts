import cluster from "node:cluster";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket as NetSocket } from "node:net";
import type { Redis } from "ioredis";
import { workerConfigFrom, workerIndexFrom } from "../shared/config.js";
import { WELCOME_EVENT } from "../shared/contract.js";
import { IPC_SOURCE, assertNever, isPrimaryMessage, type PrimaryMessage, type WorkerMessage } from "../shared/ipc.js";
import { createLogger } from "../shared/logger.js";
import { createRedis, whenReady } from "./redis.js";
import { buildSchemas } from "./schemas.js";
import { installAuth } from "./auth.js";
import { channelHandlers } from "./handlers/channels.js";
import type { AppSocket, HandlerContext } from "./handlers/context.js";
import { historyHandlers } from "./handlers/history.js";
import { presenceHandlers, presenceTracker, startPresenceReaper } from "./handlers/presence.js";
import { OwedAcks } from "./handlers/owed-acks.js";
import { rateLimitGate } from "./handlers/rate-gate.js";
import { dispatcher } from "./handlers/reply.js";
import { adoptConnection } from "./handoff.js";
import { handedToTransports } from "./handed-to-transports.js";
import { JwtVerifier } from "./jwt-verifier.js";
import { createPersistence } from "./persistence.js";
import { EmbeddedPresenceStore } from "./presence/embedded-store.js";
import { RedisPresenceStore } from "./presence/redis-store.js";
import type { PresenceStore } from "./presence/store.js";
import { createSocketServer } from "./socket-server.js";
import { createHttpApi } from "./http-api/index.js";
import { Evictions } from "./adapter/evictions.js";
import { reportConnections } from "./connection-report.js";
import { boundPrimaryBacklog, sendToPrimary } from "./primary-channel.js";
import { observeWorker, workerMetrics, workerSnapshot } from "./metrics.js";
import { answerAdmin } from "./admin.js";


async function main(): Promise<void> {
  process.title = "cerebellum-worker";
  const workerId = cluster.worker?.id;
  const config = workerConfigFrom();
  if (workerId === undefined || !config) {
    console.error("cerebellum-worker must be started by the primary (npm start)");
    process.exit(1);
  }
  const log = createLogger(config.logLevel, { role: "worker", worker: workerId }, config.logFormat);
  const send = (message: WorkerMessage) => void sendToPrimary(message);
  // A primary that stops reading (stopped, stuck) would make this worker buffer for it without
  // end: past the bound its publishes are refused (OVERLOADED) until the primary catches up.
  boundPrimaryBacklog(
    config.ipcQueueMaxBytes,
    (bytes) => log.error({ backlogBytes: bytes, cap: config.ipcQueueMaxBytes }, "the primary is behind on this worker's IPC channel (IPC_QUEUE_MAX_BYTES): refusing publishes"),
    () => log.info("the primary caught up on this worker's IPC channel"),
  );

  // Requests Socket.IO does not take: the HTTP API's (`/data`, `/api/<method>`, set up below), else 404.
  let httpApi: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  const httpServer = createServer((req, res) => {
    if (httpApi?.(req, res)) return;
    res.writeHead(404, { "content-type": "text/plain" }).end("Not found");
  });
  httpServer.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    log.debug({ err: err.message }, "bad HTTP request");
    if (socket.writable) {
      const status = err.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : "400 Bad Request";
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else socket.destroy();
  });

  let redis: Redis | undefined;
  let presenceRedis: Redis | undefined;
  let presence: PresenceStore;
  let redisPresence: RedisPresenceStore | undefined;
  let embeddedPresence: EmbeddedPresenceStore | undefined;
  if (config.redis) {
    redis = createRedis(config.redis.url, log, `cerebellum-adapter-${process.pid}`);
    // Presence and session traffic get their own connection so the adapter's traffic never queues behind it.
    presenceRedis = createRedis(config.redis.url, log, `cerebellum-presence-${process.pid}`);
    redisPresence = new RedisPresenceStore({
      redis: presenceRedis,
      prefix: config.redis.keyPrefix,
      limits: { maxMembers: config.presence.maxMembers, maxChannelsPerMember: config.presence.maxChannelsPerMember },
      staleMs: config.presence.staleMs,
      ghostTtlMs: config.recovery.maxDisconnectionMs,
      log: log.child({ component: "presence" }),
    });
    presence = redisPresence;
    await Promise.all([whenReady(redis), whenReady(presenceRedis)]);
  } else {
    embeddedPresence = new EmbeddedPresenceStore(send);
    presence = embeddedPresence;
  }

  const evictions = new Evictions();
  const { io, track, publish } = createSocketServer(httpServer, config, workerId, redis, evictions, log);
  reportConnections(io.engine, send);
  if (redisPresence) redisPresence.connectedHere = (socketId) => io.of("/").sockets.has(socketId);
  const verifier = new JwtVerifier(config);
  installAuth(io, verifier, log.child({ component: "auth" }));
  const { sink, history, warmed } = createPersistence(config, log.child({ component: "persistence" }), workerIndexFrom());
  const ctx: HandlerContext = {
    io,
    config,
    log: log.child({ component: "handlers" }),
    schemas: buildSchemas(config.limits),
    presence,
    evictions,
    sink,
    history,
    publish,
    owedAcks: new OwedAcks(),
  };

  // One handler table per worker; each socket gets a single listener that dispatches into it.
  const dispatch = dispatcher(
    ctx.log,
    { ...channelHandlers(ctx), ...presenceHandlers(ctx), ...historyHandlers(ctx) },
    rateLimitGate(config, log.child({ component: "rate-limit" })),
  );
  // Listeners shared by every socket (Socket.IO calls them with the socket as `this`): a
  // per-socket closure would cost ~100 B for each of them on every connection.
  const onAnyEvent = function (this: AppSocket, event: unknown, ...args: unknown[]) {
    dispatch(this, event, args);
  };
  httpApi = createHttpApi(ctx, workerId);
  const trackPresence = presenceTracker(ctx, (reason) => workerMetrics.disconnects.inc({ reason }));
  const nsp = io.of("/");
  observeWorker({
    connections: () => nsp.sockets.size,
    rooms: () => nsp.adapter.rooms,
    persistenceQueueDepth: () => sink.pending,
  });
  io.on("connection", (socket) => {
    workerMetrics.connects.inc();
    // A client that asks to recover sends its previous session id (Socket.IO's `pid`).
    if (socket.recovered) workerMetrics.recoveries.inc({ recovered: "true" });
    else if (typeof (socket.handshake.auth as { pid?: unknown }).pid === "string") workerMetrics.recoveries.inc({ recovered: "false" });
    // The token has done its job (a recovered connection skipped it): not kept for the
    // connection's life, for memory and one secret fewer in a heap dump. Assigned rather than
    // deleted, so the object keeps its shape (a delete can turn it into a slower dictionary).
    (socket.handshake.auth as { token?: unknown }).token = undefined;
    track(socket);
    socket.onAny(onAnyEvent);
    trackPresence(socket);
    socket.emit(WELCOME_EVENT, { socketId: socket.id, serverTime: new Date().toISOString() });
  });

  const stopReaper = startPresenceReaper(ctx);

  let draining = false;
  const shutdown = async (reason: string) => {
    if (draining) return;
    draining = true;
    stopReaper();
    log.info({ reason }, "worker draining");
    send({ source: IPC_SOURCE, type: "draining" });
    const deadline = setTimeout(() => {
      log.error("worker shutdown deadline passed, exiting");
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    // Publishers' acks first, while their sockets are open: a message stored during the drain
    // whose ack never arrives is sent again, and stored twice. A quarter of the budget; the
    // sink's own flush below has half, the rest is for the sockets and the pool.
    sink.flush();
    const owed = ctx.owedAcks.count;
    const acksBy = Date.now() + Math.floor(config.shutdownTimeoutMs / 4);
    if (!(await ctx.owedAcks.drain(acksBy - Date.now()))) {
      log.warn({ owed, left: ctx.owedAcks.count }, "draining: some publish acks were not ready in time");
    } else if (!(await handedToTransports(io, Math.max(0, acksBy - Date.now())))) {
      log.warn("draining: some connections still held packets when the server closed");
    }
    // Closing the Socket.IO server (not killing it) lets the adapter save recovery sessions.
    await new Promise<void>((resolve) => io.close(() => resolve()));
    await sink.close();
    await verifier.close();
    await presence.close();
    await Promise.all([redis?.quit(), presenceRedis?.quit()]);
    log.info("worker stopped");
    process.exit(0);
  };

  process.on("message", (message: unknown, handle: unknown) => {
    if (!isPrimaryMessage(message)) return; // adapter traffic, handled by the adapter itself
    const msg: PrimaryMessage = message;
    switch (msg.type) {
      case "connection":
        if (draining || !handle) (handle as NetSocket | undefined)?.destroy();
        else {
          // Node tracks each socket handed over from a net.Server for that server's close() in
          // the primary (a 'close' listener, ~240 B per connection); the balancer never waits
          // for it, so the tracking goes before anything else listens.
          (handle as NetSocket).removeAllListeners("close");
          adoptConnection(httpServer, handle as NetSocket, msg.head);
        }
        break;
      case "shutdown":
        void shutdown("primary asked");
        break;
      case "presence:result":
        embeddedPresence?.settle(msg.id, msg.result);
        break;
      case "presence:owner-died":
        redisPresence
          ?.endLease(msg.owner, config.presence.crashGraceMs)
          .catch((err: unknown) => log.warn({ err }, "could not end a dead worker's presence lease"));
        break;
      case "metrics:collect":
        workerSnapshot().then(
          (metrics) => send({ source: IPC_SOURCE, type: "metrics", id: msg.id, metrics }),
          // The primary stops waiting for this worker after its timeout and says so in the scrape.
          (err: unknown) => log.warn({ err }, "could not collect metrics"),
        );
        break;
      case "admin:request":
        answerAdmin(ctx, msg.request).then(
          (result) => send({ source: IPC_SOURCE, type: "admin:result", id: msg.id, result }),
          // The primary stops waiting after its timeout and tells the page.
          (err: unknown) => log.warn({ err, op: msg.request.op }, "could not answer the admin page"),
        );
        break;
      default:
        assertNever(msg);
    }
  });
  // A library promise nobody awaits (ioredis rejects every queued command with "Connection is
  // closed" when a connection drops, e.g. during shutdown) must not take the worker and all its
  // clients down: log it loudly and keep serving.
  process.on("unhandledRejection", (reason) => log.error({ err: reason }, "unhandled promise rejection"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  // The primary is gone (killed): nothing can route to us any more, so drain and exit. Node's
  // cluster code would otherwise exit this process at once on disconnect, before the drain
  // (flush of queued messages, session saves) could run; this flag is what it checks.
  (cluster.worker as unknown as { exitedAfterDisconnect: boolean }).exitedAfterDisconnect = true;
  process.on("disconnect", () => void shutdown("primary disconnected"));

  await warmed;
  send({ source: IPC_SOURCE, type: "ready", presenceOwner: redisPresence?.uid });
  log.info({ mode: config.mode }, "worker ready");
}

main().catch((err: unknown) => {
  console.error("worker failed to start", err);
  process.exit(1);
});
