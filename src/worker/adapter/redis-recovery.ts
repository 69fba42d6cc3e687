import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import type { BroadcastOptions, Session } from "socket.io-adapter";
import type { SessionRecord } from "../../shared/adapter-ipc.js";
import type { Logger } from "../../shared/logger.js";
import type { Evictions } from "./evictions.js";
import { entryJson, parseLoggedBroadcast } from "./broadcast-log.js";
import type { EventPacket } from "./own-deliveries.js";
import { PendingRestores, restoreStage, writeEventPacket } from "./pending-restores.js";
import { sessionRecordOf, type RecoverableSocket } from "./session-record.js";
import {
  compareStreamIds,
  formatStreamPosition,
  parseStreamPosition,
  StreamBroadcasts,
  UNNUMBERED_OWN,
  type BroadcastLog,
  type StreamPosition,
} from "./stream-broadcasts.js";
import type { BroadcastReceipt } from "./broadcast-receipt.js";

/** Stream entries read per XRANGE call while restoring (a restore never reads the stream unbounded). */
const RESTORE_PAGE = 500;
/** Longest a restore waits for broadcasts its offset counts that are not in the stream yet. */
const IN_FLIGHT_WAIT_MS = 2_000;
const IN_FLIGHT_POLL_MS = 20;
/** Live sessions' keys are refreshed this often; their TTL covers the window plus one period. */
const REFRESH_MS = 30_000;

/** What is stored per session: the record plus the adapter uid that holds it live ("" once closed). */
interface StoredSession extends SessionRecord {
  live: string;
}

/** Writes only when the key is absent, closed (""), or already ours: a replaced holder cannot win. */
const SAVE_IF_OWNER = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local live = cjson.decode(cur).live
  if live ~= '' and live ~= ARGV[1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;

const DELETE_IF_OWNER = `
local cur = redis.call('GET', KEYS[1])
if cur and cjson.decode(cur).live == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0`;

/** Hands the session to a new holder and returns it as it was (with the previous holder). */
const TAKE = `
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
local s = cjson.decode(cur)
s.live = ARGV[1]
redis.call('SET', KEYS[1], cjson.encode(s), 'PX', ARGV[2])
return cur`;

type Scripted = Redis & {
  cbSaveIfOwner(key: string, owner: string, json: string, ttl: number): Promise<number>;
  cbDeleteIfOwner(key: string, owner: string): Promise<number>;
  cbTake(key: string, owner: string, ttl: number): Promise<string | null>;
};

export interface RedisRecoveryOptions {
  redis: Redis;
  streamName: string;
  sessionKeyPrefix: string;
  maxDisconnectionMs: number;
  /** Most stream entries a restore reads (the stream's maxLen). */
  maxReplay: number;
  /** Own broadcasts held for Redis beyond this are refused (BROADCAST_MAX_PENDING). */
  maxHeld: number;
  evictions: Evictions;
  log: Logger;
}

/** What RedisRecovery needs from the adapter it serves (RedisAdapter). */
export interface RecoveryHost extends BroadcastLog {
  readonly nsp: { name: string; sockets: Map<string, RecoverableSocket>; server: { serverSideEmit(ev: string, ...a: unknown[]): void } };
  readonly sids: Map<string, Set<string>>;
  /**
   * Routes a session's rooms to this worker before a restore reads the log: settles once Redis
   * has confirmed the subscriptions, so every entry after the read's end reaches this worker.
   */
  reserve(rooms: string[]): Promise<void>;
}

/** Internal event: close a half-open socket whose session a newer connection took. */
export const EVICT_EVENT = "cerebellum:evict";

/**
 * Recovery for clustered mode, for RedisAdapter (which calls it at each of its hooks): sessions
 * are saved eagerly (on connect and room changes, refreshed while live) so a crashed worker's
 * clients recover; a half-open connection is closed at once when its
 * client comes back; restore reads are paged and bounded; volatile packets are not replayed;
 * packets that arrive while the new socket is being built are not lost. Own broadcasts reach
 * own sockets without waiting for Redis (StreamBroadcasts), except while a restore is under way.
 */
export class RedisRecovery {
  private readonly redis: Scripted;
  private readonly tracked = new Map<string, string>(); // sid → pid
  private readonly dirty = new Set<string>();
  private readonly persisted = new Set<string>();
  /** True while the subscription delivers a packet (as opposed to one of this worker's own broadcasts). */
  private receiving = false;
  private readonly pending = new PendingRestores((sid) => restoreStage(this.adapter.sids, this.adapter.nsp.sockets, sid), {
    // The subscription delivers the stream in order: once it delivers past the restore's read,
    // nothing the restore read can come again. (Own broadcasts wait for Redis while a restore
    // reads, and one delivered on its append's answer is not `receiving`: it never ends the watch.)
    isCaughtUp: (entry, isNewer) => this.receiving && isNewer(entry),
  });
  /** Restores reading the stream on this worker: own broadcasts wait for Redis meanwhile. */
  private restoring = 0;
  private broadcasts!: StreamBroadcasts;
  private flushScheduled = false;
  private streamTtlSet = false;
  private readonly refreshTimer: NodeJS.Timeout;
  private adapter!: RecoveryHost;

  constructor(private readonly opts: RedisRecoveryOptions) {
    this.redis = opts.redis as Scripted;
    this.redis.defineCommand("cbSaveIfOwner", { numberOfKeys: 1, lua: SAVE_IF_OWNER });
    this.redis.defineCommand("cbDeleteIfOwner", { numberOfKeys: 1, lua: DELETE_IF_OWNER });
    this.redis.defineCommand("cbTake", { numberOfKeys: 1, lua: TAKE });
    this.refreshTimer = setInterval(() => this.refresh(), REFRESH_MS);
    this.refreshTimer.unref();
    this.refresh();
  }

  private get liveTtl(): number {
    return this.opts.maxDisconnectionMs + REFRESH_MS * 2;
  }

  private key(pid: string): string {
    return this.opts.sessionKeyPrefix + pid;
  }

  /** Serves `adapter` from now on (called once, by its constructor). */
  attach(adapter: RecoveryHost): void {
    // Sessions, tracking and positions are one namespace's: the server uses only "/".
    if (this.broadcasts) throw new Error(`RedisRecovery serves one namespace; "${adapter.nsp.name}" would share it`);
    this.adapter = adapter;
    this.broadcasts = new StreamBroadcasts(
      adapter,
      () => this.restoring === 0 && this.opts.redis.status === "ready" && !this.pending.unsettled(Date.now()),
      this.opts.log,
      this.opts.maxHeld,
    );
  }

  /** A broadcast of this worker (not a local-only one): logged, published, delivered here. */
  broadcast(packet: EventPacket, opts: BroadcastOptions): Promise<void> {
    return this.broadcasts.broadcast(packet, opts);
  }

  /** `broadcast` for a publisher that waits on the outcome (see BroadcastReceipt). */
  broadcastWithReceipt(packet: EventPacket, opts: BroadcastOptions): BroadcastReceipt {
    return this.broadcasts.broadcastWithReceipt(packet, opts);
  }

  /** An entry the subscription brought, in stream order: delivered through `deliver` with this worker's position. */
  received(message: unknown, id: string, deliver: (message: unknown, offset: string) => void): void {
    this.receiving = true;
    try {
      this.broadcasts.received(message, id, deliver);
    } finally {
      this.receiving = false;
    }
  }

  /**
   * Every local delivery with an offset passes here right before it goes out (the offset is on
   * the packet already): restores compare entries, not the positions stamped on them, and the
   * entry going out is known here. May add the restored socket to `opts.except`.
   */
  beforeLocalDelivery(packet: EventPacket, opts: BroadcastOptions): void {
    this.pending.catchUp(packet, opts, this.broadcasts.deliveringEntry);
  }

  /** A socket's rooms changed: its saved session follows. */
  roomsChanged(sid: string): void {
    if (this.tracked.has(sid)) this.markDirty(sid);
  }

  /** The adapter closes. */
  close(): void {
    clearInterval(this.refreshTimer);
  }

  /** Starts tracking a connected socket: its session is saved now, not only when it closes. */
  track(socket: RecoverableSocket): void {
    const record = sessionRecordOf(socket);
    this.tracked.set(socket.id, record.pid);
    this.pending.settle(socket.id, (data) => writeEventPacket(socket, data));
    this.markDirty(socket.id);
  }

  /** Closes a local socket whose session a newer connection took. */
  evictLocal(sid: string): void {
    const socket = this.adapter.nsp.sockets.get(sid);
    this.tracked.delete(sid);
    this.dirty.delete(sid);
    if (socket) this.opts.evictions.run(sid, () => socket.disconnect(true));
  }

  private markDirty(sid: string): void {
    this.dirty.add(sid);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Room changes in one tick (a restore joins many) cost one write per socket.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (!this.streamTtlSet) {
      // The stream exists once the first broadcast (a welcome) went out: give it its TTL now.
      this.redis.pexpire(this.opts.streamName, this.liveTtl).then(
        (set) => (this.streamTtlSet ||= set === 1),
        (err: unknown) => this.opts.log.warn({ err }, "stream TTL refresh failed"),
      );
    }
    for (const sid of this.dirty) {
      const socket = this.adapter.nsp.sockets.get(sid);
      if (!socket || !this.tracked.has(sid)) continue;
      const stored: StoredSession = { ...sessionRecordOf(socket), live: this.adapter.uid };
      this.write(stored);
    }
    this.dirty.clear();
  }

  private write(stored: StoredSession): void {
    let json: string;
    try {
      json = JSON.stringify(stored);
    } catch (err) {
      // socket.data must stay plain JSON (a BigInt would throw): skip the save, keep serving.
      this.opts.log.error({ err, sid: stored.sid }, "session not saved: socket.data is not JSON");
      return;
    }
    const ttl = stored.live ? this.liveTtl : this.opts.maxDisconnectionMs;
    this.redis
      .cbSaveIfOwner(this.key(stored.pid), this.adapter.uid, json, ttl)
      .catch((err: unknown) => this.opts.log.warn({ err, sid: stored.sid }, "session save failed"));
  }

  /**
   * Keeps live sessions' keys alive while their sockets are connected, and the stream itself
   * while any server runs (it is capped by MAXLEN; the TTL is for when every server is gone).
   */
  private refresh(): void {
    this.redis
      .pexpire(this.opts.streamName, this.liveTtl)
      .catch((err: unknown) => this.opts.log.warn({ err }, "stream TTL refresh failed"));
    const pids = [...this.tracked.values()];
    for (let i = 0; i < pids.length; i += 1000) {
      const pipeline = this.redis.pipeline();
      for (const pid of pids.slice(i, i + 1000)) pipeline.pexpire(this.key(pid), this.liveTtl);
      pipeline.exec().catch((err: unknown) => this.opts.log.warn({ err }, "session refresh failed"));
    }
  }

  /** A recoverable close: the session stays for the recovery window, marked closed. */
  closed(session: SessionRecord): void {
    if (!this.tracked.has(session.sid)) return; // evicted or never tracked: its session lives elsewhere
    this.persisted.add(session.sid);
    this.write({ ...session, live: "" });
  }

  /** The socket left its rooms for good (delAll); forget its session unless it was just persisted. */
  released(sid: string): void {
    const pid = this.tracked.get(sid);
    this.tracked.delete(sid);
    this.dirty.delete(sid);
    if (pid === undefined || this.persisted.delete(sid)) return;
    this.redis
      .cbDeleteIfOwner(this.key(pid), this.adapter.uid)
      .catch((err: unknown) => this.opts.log.warn({ err, sid }, "session delete failed"));
  }

  /** Restores a session from Redis with the broadcasts it missed, or null when it cannot be whole. */
  async restore(pid: string, offset: string): Promise<Session | null> {
    const from = parseStreamPosition(offset);
    if (!from) return null;
    // Packets delivered here while the stream is read must not slip between the read and the
    // moment the new socket joins its rooms: record them from now on. Own broadcasts wait for
    // Redis meanwhile, so every delivery here has an entry id to compare with the read's end;
    // those already sent go out first (their entries precede the read).
    this.broadcasts.flush();
    const collector = this.pending.collect();
    this.restoring++;
    try {
      const raw = await this.redis.cbTake(this.key(pid), this.adapter.uid, this.liveTtl);
      if (!raw) return (collector.abort(), null);
      const stored = JSON.parse(raw) as StoredSession;
      // Routed here first: what the stream gets after the read below comes by subscription.
      await this.adapter.reserve(stored.rooms);
      const missed = await this.readSince(from, stored.rooms);
      if (!missed) {
        collector.abort();
        this.opts.log.info({ sid: stored.sid }, "recovery failed: the stream no longer reaches the client's offset");
        await this.redis.cbDeleteIfOwner(this.key(pid), this.adapter.uid);
        return null;
      }
      if (stored.live && stored.live !== this.adapter.uid) {
        // Half-open elsewhere: the holder closes it now instead of after the ping timeout.
        this.adapter.nsp.server.serverSideEmit(EVICT_EVENT, stored.sid);
      } else if (this.adapter.nsp.sockets.has(stored.sid)) {
        this.evictLocal(stored.sid); // half-open on this very worker: close it before the new one exists
      }
      const session: Session = { sid: stored.sid, pid: stored.pid, rooms: stored.rooms, data: stored.data, missedPackets: missed.packets };
      const last = missed.lastId;
      this.broadcasts.restored(last);
      collector.finish(session, (entry) => entry === UNNUMBERED_OWN || compareStreamIds(entry, last) > 0);
      return session;
    } catch (err) {
      collector.abort();
      throw err;
    } finally {
      this.restoring--;
    }
  }

  /**
   * Reads the stream after `from` up to its end at the time of the call, in pages, bounded by
   * the stream's length, leaving out the own broadcasts of `from.origin` the client already has.
   * Undefined when the position is no longer in the stream (trimmed).
   */
  private async readSince(from: StreamPosition, rooms: string[]): Promise<{ packets: unknown[][]; lastId: string } | undefined> {
    const { redis, streamName, maxReplay } = this.opts;
    const offset = from.id;
    const [exists, tail] = await Promise.all([
      redis.xrange(streamName, offset, offset),
      redis.xrevrange(streamName, "+", "-", "COUNT", 1),
    ]);
    if (exists.length === 0) return undefined;
    const lastId = tail[0]?.[0] ?? offset;
    const packets: unknown[][] = [];
    const roomSet = new Set(rooms);
    // Until the last own broadcast the client has is passed, its replayed packets keep saying
    // they have it (a restore from one of them must leave it out again).
    let skipping = from.origin !== undefined;
    let cursor = offset;
    let read = 0;
    const take = (page: Array<[id: string, fields: string[]]>) => {
      for (const [id, fields] of page) {
        cursor = id;
        read++;
        const packet = decodeBroadcast(fields, this.adapter.nsp.name);
        if (!packet) continue;
        const { data, rooms: to, except, volatile, uid, n } = packet;
        if (skipping && uid === from.origin && n !== undefined) {
          skipping = n < from.n!;
          if (n <= from.n!) continue;
        }
        if (volatile) continue;
        const included = to.length === 0 || to.some((r) => roomSet.has(r));
        if (included && !except.some((r) => roomSet.has(r))) {
          packets.push([...data, formatStreamPosition(skipping ? { ...from, id } : { id })]);
        }
      }
    };
    while (compareStreamIds(cursor, lastId) < 0 && read < maxReplay) {
      const page = await redis.xrange(streamName, `(${cursor}`, lastId, "COUNT", RESTORE_PAGE);
      if (page.length === 0) break;
      take(page);
    }
    // Never a partial replay: past the bound the client starts afresh instead.
    if (compareStreamIds(cursor, lastId) < 0) return undefined;
    // The client has broadcasts of another worker that are not in the stream yet (delivered
    // there before its XADD reached Redis): wait for them a moment, so they are left out here
    // and not delivered twice later. Past the wait the restore goes ahead (a client may then get
    // them twice, never loses one). This worker's own were sent before this read: nothing to wait for.
    const deadline = Date.now() + IN_FLIGHT_WAIT_MS;
    while (skipping && from.origin !== this.adapter.uid && read < maxReplay && Date.now() < deadline) {
      const page = await redis.xrange(streamName, `(${cursor}`, "+", "COUNT", RESTORE_PAGE);
      if (page.length === 0) await sleep(IN_FLIGHT_POLL_MS);
      else take(page);
    }
    return { packets, lastId: cursor };
  }
}

/** A stream entry's broadcast, when it is an event packet without ack for this namespace. */
function decodeBroadcast(
  fields: string[],
  nsp: string,
): { data: unknown[]; rooms: string[]; except: string[]; volatile: boolean; uid: string | undefined; n: number | undefined } | undefined {
  const json = entryJson(fields);
  const entry = json === undefined ? undefined : parseLoggedBroadcast(json);
  if (!entry || entry.nsp !== nsp) return undefined;
  const { packet, opts, n } = entry.data;
  if (packet.type !== 2 || packet.id !== undefined || !Array.isArray(packet.data)) return undefined;
  return {
    data: packet.data,
    rooms: opts.rooms,
    except: opts.except,
    volatile: Boolean(opts.flags?.volatile),
    uid: entry.uid,
    n: typeof n === "number" ? n : undefined,
  };
}
