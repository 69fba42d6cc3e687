import { startRedis, type RedisInstance } from "./redis.js";
import { startServer, type RunningServer, type ServerOptions } from "./server.js";

export type ModeName = "embedded" | "clustered";
export const MODES: ModeName[] = ["embedded", "clustered"];

/** Starts a server in the given mode; clustered mode gets its own redis-server. */
export async function startInMode(
  mode: ModeName,
  options: ServerOptions = {},
): Promise<{ server: RunningServer; redis: RedisInstance | undefined }> {
  const redis = mode === "clustered" ? await startRedis() : undefined;
  const server = await startServer({ ...options, redisUrl: redis?.url });
  return { server, redis };
}

/**
 * Starts servers in one mode for a test file: clustered mode shares one redis-server across the
 * servers of a test (two hosts) and `stop()` ends it with them.
 */
export function modeServers(mode: ModeName) {
  let redis: RedisInstance | undefined;
  return {
    async start(options: ServerOptions = {}): Promise<RunningServer> {
      if (mode === "clustered" && !redis) redis = await startRedis();
      return startServer({ workers: 2, ...options, redisUrl: redis?.url });
    },
    async stop(): Promise<void> {
      await redis?.stop();
      redis = undefined;
    },
  };
}
