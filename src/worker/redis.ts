import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../shared/logger.js";

/**
 * An ioredis client that never gives up: unlimited retries with capped backoff and an offline
 * queue. A fail-fast client would drop broadcasts and session writes during a Redis blip (and
 * froze the former Redis Streams adapter's poll loop at 100% CPU).
 */
export function createRedis(url: string, log: Logger, name: string, extra: RedisOptions = {}): Redis {
  const client = new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
    ...extra,
  });
  let wasReady = false;
  client.on("ready", () => {
    if (wasReady) log.info({ client: name }, "redis reconnected");
    wasReady = true;
  });
  client.on("error", (err: Error) => log.warn({ client: name, err: err.message }, "redis error"));
  return client;
}

/** Resolves once the client is ready (it keeps retrying in the background until then). */
export function whenReady(client: Redis): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve) => client.once("ready", () => resolve()));
}
