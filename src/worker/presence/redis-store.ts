import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Redis } from "ioredis";
import type { PresenceState } from "../../shared/contract.js";
import type { Logger } from "../../shared/logger.js";
import type { PresenceLimits, PresenceRefusal, Reentry, Removal } from "../../shared/presence-limits.js";
import * as lua from "./redis-scripts.js";
import type { PresenceStore } from "./store.js";

/** Backstop TTL of channel and socket keys, refreshed by their owner (see redis-scripts.ts). */
const KEY_TTL_MS = 60 * 60 * 1000;
/** How often the backstop TTLs are refreshed (one heartbeat in this many also refreshes keys). */
const KEY_REFRESH_EVERY = 60;
/** Most sockets one reap removes from the pending set; the rest go on the next round. */
const REAP_BATCH = 500;

type Script = (...args: Array<string | number>) => Promise<unknown>;

export interface RedisPresenceOptions {
  redis: Redis;
  prefix: string;
  limits: PresenceLimits;
  /** A host whose lease is older than this is dead. */
  staleMs: number;
  /** How long a reaped socket's states are kept for re-entry (the recovery window). */
  ghostTtlMs: number;
  log: Logger;
}

/**
 * Clustered presence in Redis: atomic Lua writes, per-server leases renewed every third of
 * PRESENCE_STALE_MS. Any server's reaper removes a dead server's members and sends `leave`.
 */
export class RedisPresenceStore implements PresenceStore {
  /** This server's id in the lease registry. */
  readonly uid = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  private readonly scripts: Record<keyof typeof lua, Script>;
  private readonly timer: NodeJS.Timeout;
  private beats = 0;
  private closed = false;
  /** The presence data's epoch as last seen (HEARTBEAT); a new one means Redis lost the data. */
  private epoch: string | undefined;
  /**
   * The states of this worker's connected members as written (socket → channel → state): what it
   * writes back when Redis lost the data (`rebuild`). Only a socket's own worker writes its
   * states, so this copy is exact; a socket leaves it when its connection drops (`suspend`).
   */
  private readonly mine = new Map<string, Map<string, PresenceState>>();
  /** Whether a socket is connected to this worker (set once the Socket.IO server exists). */
  connectedHere: (socketId: string) => boolean = () => true;

  constructor(private readonly opts: RedisPresenceOptions) {
    const client = opts.redis as unknown as Record<string, Script>;
    const names = Object.keys(lua) as Array<keyof typeof lua>;
    for (const name of names) opts.redis.defineCommand(`cbPresence${name}`, { numberOfKeys: 0, lua: lua[name] });
    this.scripts = Object.fromEntries(
      names.map((name) => [name, (...args: Array<string | number>) => client[`cbPresence${name}`]!.call(opts.redis, ...args)]),
    ) as Record<keyof typeof lua, Script>;
    this.timer = setInterval(() => void this.heartbeat(), Math.max(250, Math.floor(opts.staleMs / 3)));
    this.timer.unref();
    void this.heartbeat();
  }

  private heartbeat(): Promise<void> {
    const refreshKeys = this.beats++ % KEY_REFRESH_EVERY === 0 ? "1" : "0";
    if (refreshKeys === "1") for (const socketId of this.mine.keys()) if (!this.connectedHere(socketId)) this.mine.delete(socketId);
    const now = Date.now();
    const candidate = randomBytes(8).toString("hex");
    return this.scripts
      .HEARTBEAT(this.opts.prefix, this.uid, now + this.opts.staleMs, this.opts.staleMs * 10, KEY_TTL_MS, refreshKeys, candidate)
      .then(
        async (epoch) => {
          const known = this.epoch;
          this.epoch = String(epoch);
          if (known !== undefined && known !== this.epoch) await this.rebuild();
        },
        (err: unknown) => this.opts.log.warn({ err }, "presence lease renewal failed"),
      );
  }

  /**
   * Redis lost the presence data (restarted empty, or a failover to a node without it): writes
   * this worker's connected members back as they were, without `join` or `leave` for anyone.
   * Within a heartbeat (PRESENCE_STALE_MS / 3) of the loss, every worker has written its own
   * back. Members whose connection was down at that moment are not (their state is lost with it).
   */
  private async rebuild(): Promise<void> {
    const { maxMembers, maxChannelsPerMember } = this.opts.limits;
    let members = 0;
    for (const [socketId, channels] of this.mine) {
      // A connection that left without a word to the store (evicted: it lives on elsewhere).
      if (!this.connectedHere(socketId)) {
        this.mine.delete(socketId);
        continue;
      }
      for (const [channel, state] of channels) {
        await this.scripts.ADD(this.opts.prefix, channel, socketId, JSON.stringify(state), this.uid, maxMembers, maxChannelsPerMember, KEY_TTL_MS);
        members++;
      }
    }
    this.opts.log.warn({ sockets: this.mine.size, members, epoch: this.epoch }, "Redis lost the presence data: wrote this worker's members back");
  }

  private remember(socketId: string, channel: string, state: PresenceState): void {
    let channels = this.mine.get(socketId);
    if (!channels) this.mine.set(socketId, (channels = new Map()));
    channels.set(channel, state);
  }

  private forget(socketId: string, channel?: string): void {
    const channels = this.mine.get(socketId);
    if (!channels) return;
    if (channel !== undefined) channels.delete(channel);
    if (channel === undefined || channels.size === 0) this.mine.delete(socketId);
  }

  async add(channel: string, socketId: string, info: Record<string, string>): Promise<PresenceState | PresenceRefusal> {
    const { maxMembers, maxChannelsPerMember } = this.opts.limits;
    const out = (await this.scripts.ADD(
      this.opts.prefix, channel, socketId, JSON.stringify(info), this.uid, maxMembers, maxChannelsPerMember, KEY_TTL_MS,
    )) as string;
    if (out === "E:members") return "members";
    if (out === "E:channels") return "channels";
    const state = JSON.parse(out) as PresenceState;
    this.remember(socketId, channel, state);
    return state;
  }

  async update(channel: string, socketId: string, partial: Record<string, string>): Promise<PresenceState | undefined> {
    const out = (await this.scripts.UPDATE(this.opts.prefix, channel, socketId, JSON.stringify(partial))) as string | null;
    if (!out) return undefined;
    const state = JSON.parse(out) as PresenceState;
    this.remember(socketId, channel, state);
    return state;
  }

  async remove(channel: string, socketId: string): Promise<boolean> {
    this.forget(socketId, channel);
    return (await this.scripts.REMOVE(this.opts.prefix, channel, socketId)) === 1;
  }

  async members(channel: string): Promise<PresenceState[]> {
    const all = await this.opts.redis.hvals(`${this.opts.prefix}presence:ch:${channel}`);
    return all.map((json) => JSON.parse(json) as PresenceState);
  }

  async channelsOf(socketId: string): Promise<string[]> {
    const fields = await this.opts.redis.hkeys(`${this.opts.prefix}presence:sock:${socketId}`);
    return fields.filter((f) => f !== "@owner");
  }

  async removeAll(socketId: string): Promise<string[]> {
    this.forget(socketId);
    return (await this.scripts.REMOVE_ALL(this.opts.prefix, socketId, this.uid)) as string[];
  }

  async suspend(socketId: string, graceMs: number): Promise<boolean> {
    // No longer connected here: if it recovers (here or elsewhere), `resume` learns its states again.
    this.forget(socketId);
    return (await this.scripts.SUSPEND(this.opts.prefix, socketId, Date.now() + graceMs, this.opts.ghostTtlMs + graceMs, this.uid)) === 1;
  }

  async resume(socketId: string): Promise<Reentry[]> {
    const { maxMembers, maxChannelsPerMember } = this.opts.limits;
    const flat = (await this.scripts.RESUME(
      this.opts.prefix, socketId, this.uid, maxMembers, maxChannelsPerMember, KEY_TTL_MS,
    )) as string[];
    const back: Reentry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      back.push({ channel: flat[i]!, state: JSON.parse(flat[i + 1]!) as Record<string, string> });
    }
    // Its memberships, as this worker must write them back should Redis lose them.
    for (const channel of await this.channelsOf(socketId)) {
      const json = await this.opts.redis.hget(`${this.opts.prefix}presence:ch:${channel}`, socketId);
      if (json) this.remember(socketId, channel, JSON.parse(json) as PresenceState);
    }
    return back;
  }

  async reap(): Promise<Removal[]> {
    if (this.closed) return [];
    const flat = (await this.scripts.REAP(this.opts.prefix, Date.now(), this.opts.ghostTtlMs, REAP_BATCH)) as string[];
    const removed: Removal[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) removed.push({ channel: flat[i]!, socketId: flat[i + 1]! });
    return removed;
  }

  /** Another server (a dead worker of this host) loses its lease `afterMs` from now. */
  async endLease(owner: string, afterMs: number): Promise<void> {
    await this.scripts.END_LEASE(this.opts.prefix, owner, Date.now() + afterMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    // Our lease simply runs out; a stopped server's suspended members are reaped by the others.
  }
}
