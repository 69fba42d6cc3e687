export { startRedis, type RedisInstance } from "../../harness/redis.js";
