import type { Redis } from "ioredis";
import type { PresenceState } from "../../shared/contract.js";
import type { PresenceInfo } from "../../shared/schemas.js";
import { toState, type PresenceStore } from "./store.js";

/**
 * Merges fields into a member's JSON state. KEYS[1] channel hash, KEYS[2] the socket's channel set;
 * ARGV[1] socket id, ARGV[2] fields JSON, ARGV[3] channel name, ARGV[4] "1" to create when absent.
 * Returns the merged JSON, or false when the member is absent and creation was not asked for.
 */
const MERGE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur and ARGV[4] ~= '1' then return false end
local state = cur and cjson.decode(cur) or {}
for k, v in pairs(cjson.decode(ARGV[2])) do state[k] = v end
local out = cjson.encode(state)
redis.call('HSET', KEYS[1], ARGV[1], out)
redis.call('SADD', KEYS[2], ARGV[3])
return out`;

/** Clustered presence: one hash per channel (socket id → state JSON), one set per socket. */
export class RedisPresenceStore implements PresenceStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    redis.defineCommand("cerebellumPresenceMerge", { numberOfKeys: 2, lua: MERGE });
  }

  private channelKey(channel: string): string {
    return `${this.prefix}presence:ch:${channel}`;
  }
  private socketKey(socketId: string): string {
    return `${this.prefix}presence:sock:${socketId}`;
  }

  private async merge(channel: string, socketId: string, info: PresenceInfo, create: boolean) {
    const fields = JSON.stringify(toState(info, socketId));
    const merge = (this.redis as unknown as Record<string, (...a: string[]) => Promise<string | null>>)
      .cerebellumPresenceMerge!;
    const out = await merge.call(
      this.redis,
      this.channelKey(channel),
      this.socketKey(socketId),
      socketId,
      fields,
      channel,
      create ? "1" : "0",
    );
    return out ? (JSON.parse(out) as PresenceState) : undefined;
  }

  async add(channel: string, socketId: string, info: PresenceInfo): Promise<PresenceState> {
    return (await this.merge(channel, socketId, info, true))!;
  }
  update(channel: string, socketId: string, partial: PresenceInfo): Promise<PresenceState | undefined> {
    return this.merge(channel, socketId, partial, false);
  }
  async remove(channel: string, socketId: string): Promise<boolean> {
    const [[, removed] = []] = (await this.redis
      .multi()
      .hdel(this.channelKey(channel), socketId)
      .srem(this.socketKey(socketId), channel)
      .exec()) ?? [[]];
    return removed === 1;
  }
  async members(channel: string): Promise<PresenceState[]> {
    const all = await this.redis.hvals(this.channelKey(channel));
    return all.map((json) => JSON.parse(json) as PresenceState);
  }
  channelsOf(socketId: string): Promise<string[]> {
    return this.redis.smembers(this.socketKey(socketId));
  }
  async removeAll(socketId: string): Promise<string[]> {
    const channels = await this.channelsOf(socketId);
    const tx = this.redis.multi();
    for (const channel of channels) tx.hdel(this.channelKey(channel), socketId);
    tx.del(this.socketKey(socketId));
    await tx.exec();
    return channels;
  }
  async close(): Promise<void> {
    // The Redis connection is owned by the worker and closed there.
  }
}
