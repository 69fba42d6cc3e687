import { MessageType, type BroadcastFlags } from "socket.io-adapter";
import type { EventPacket } from "./own-deliveries.js";

/**
 * Clustered mode's broadcast log and routing in Redis: one stream (the recovery log) and one
 * pub/sub channel per room, written together by one script.
 *
 * Stream entry: one field `m`, the broadcast as JSON (`LoggedBroadcast`). Pub/sub message on a
 * room's channel: `<entry id> <the same JSON>`; on a publisher's own channel: `<entry id> <n>`.
 */

/** A broadcast as logged: a cluster BROADCAST message plus the publisher's own count `n`. */
export interface LoggedBroadcast {
  uid: string;
  nsp: string;
  type: MessageType.BROADCAST;
  data: {
    packet: EventPacket;
    opts: { rooms: string[]; except: string[]; flags?: BroadcastFlags };
    /** The publisher's count of its logged broadcasts (see StreamPosition); absent when not stamped. */
    n?: number;
  };
}

/**
 * Appends a broadcast to the stream and publishes it, in one atomic step, returning its entry id.
 * KEYS[1]: the stream. ARGV[1]: its approximate MAXLEN; ARGV[2]: the entry; ARGV[3]: the
 * publisher's own channel ("" for none); ARGV[4]: its count n; ARGV[5..]: room channels.
 *
 * Redis' work per broadcast does not depend on how many workers or hosts there are: one XADD
 * (amortised O(1): `MAXLEN ~` trims whole stream nodes), one PUBLISH per room of the broadcast,
 * which costs O(that channel's subscribers) — only the workers with a member in the room, which
 * must receive it anyway — and one O(1) PUBLISH of a few bytes to the publisher's own channel.
 * A worker without a member subscribes to nothing of the room, so neither it nor Redis does
 * anything for it. No client uses pattern subscriptions, which every PUBLISH would have to match.
 * (Broadcasts to every socket go to every worker by nature: the all-sockets channel.)
 *
 * Because the entry and its publishes happen in one step, and one subscriber connection receives
 * messages in the order Redis ran the scripts, each worker sees entry ids in increasing order:
 * the id is both the log position a delivery carries and the key that drops a second copy (a
 * broadcast to two rooms a worker has members in arrives twice, back to back).
 */
export const PUBLISH_SCRIPT = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])
if #ARGV >= 5 then
  local message = id .. ' ' .. ARGV[2]
  for i = 5, #ARGV do redis.call('PUBLISH', ARGV[i], message) end
end
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], id .. ' ' .. ARGV[4]) end
return id`;

/** The pub/sub channels of one namespace (every name starts with the key prefix). */
export class LogChannels {
  private readonly base: string;
  /** Cluster messages that are not logged broadcasts (heartbeats, fetchSockets, serverSideEmit...). */
  readonly node: string;
  /** Broadcasts to every socket, or to another worker's socket by its id. */
  readonly all: string;

  constructor(keyPrefix: string, nsp: string) {
    this.base = `${keyPrefix}adapter#${nsp}#`;
    this.node = `${this.base}node`;
    this.all = `${this.base}all`;
  }

  room(room: string): string {
    return `${this.base}r:${room}`;
  }

  /** Answers to an adapter's requests. */
  response(uid: string): string {
    return `${this.base}res:${uid}`;
  }

  /** The ids of an adapter's own logged broadcasts, so it learns where they are in the log. */
  own(uid: string): string {
    return `${this.base}own:${uid}`;
  }
}

/** The JSON of a logged broadcast (its `uid` first, so that `ownPrefix` can tell an own one unparsed). */
export function encodeLoggedBroadcast(message: LoggedBroadcast): string {
  return JSON.stringify({ uid: message.uid, nsp: message.nsp, type: message.type, data: message.data });
}

/** How the JSON of an adapter's own logged broadcasts starts. */
export function ownPrefix(uid: string): string {
  return `{"uid":${JSON.stringify(uid)},`;
}

/** A logged broadcast from its JSON, or undefined when it is not one (logged by the caller). */
export function parseLoggedBroadcast(json: string): LoggedBroadcast | undefined {
  const value = JSON.parse(json) as Partial<LoggedBroadcast> | null;
  const data = value?.data;
  if (
    !value ||
    value.type !== MessageType.BROADCAST ||
    typeof value.uid !== "string" ||
    typeof value.nsp !== "string" ||
    !data ||
    !Array.isArray(data.opts?.rooms) ||
    !Array.isArray(data.opts?.except) ||
    typeof data.packet !== "object" ||
    data.packet === null
  ) {
    return undefined;
  }
  return value as LoggedBroadcast;
}

/** The JSON of a stream entry's fields ([name, value, ...]), or undefined when it has none. */
export function entryJson(fields: string[]): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === "m") return fields[i + 1];
  return undefined;
}
