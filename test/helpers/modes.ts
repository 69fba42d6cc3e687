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
