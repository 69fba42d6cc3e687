import { Redis } from "ioredis";
import { MessageType } from "socket.io-adapter";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  encodeLoggedBroadcast,
  entryJson,
  LogChannels,
  ownPrefix,
  parseLoggedBroadcast,
  PUBLISH_SCRIPT,
  type LoggedBroadcast,
} from "../src/worker/adapter/broadcast-log.js";
import { startRedis, type RedisInstance } from "./helpers/redis.js";

const broadcast = (uid: string, rooms: string[], n?: number): LoggedBroadcast => ({
  uid,
  nsp: "/",
  type: MessageType.BROADCAST,
  data: { packet: { type: 2, data: ["ev", { x: 1 }] }, opts: { rooms, except: [] }, n },
});

describe("the broadcast log's format", () => {
  it("round-trips, and tells an own entry by its prefix alone", () => {
    const json = encodeLoggedBroadcast(broadcast("c0ffee", ["ch:a"], 3));
    expect(parseLoggedBroadcast(json)).toEqual(broadcast("c0ffee", ["ch:a"], 3));
    expect(json.startsWith(ownPrefix("c0ffee"))).toBe(true);
    expect(json.startsWith(ownPrefix("c0ffe"))).toBe(false);
    expect(parseLoggedBroadcast('{"uid":"x","type":9}')).toBeUndefined();
  });
});

describe("the publish script (real Redis)", () => {
  let redis: RedisInstance;
  let client: Redis;
  const subscribers: Redis[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    for (const s of subscribers) s.disconnect();
    client.disconnect();
    await redis.stop();
  });

  async function subscriber(...channels: string[]): Promise<string[]> {
    const s = new Redis(redis.url);
    subscribers.push(s);
    const seen: string[] = [];
    s.on("message", (channel: string, message: string) => seen.push(`${channel} ${message}`));
    await s.subscribe(...channels);
    return seen;
  }

  it("appends the entry and publishes it with its id to each room's channel, then the count to the own channel", async () => {
    const channels = new LogChannels("t:", "/");
    const onA = await subscriber(channels.room("ch:a"));
    const onBoth = await subscriber(channels.room("ch:a"), channels.room("ch:b"));
    const own = await subscriber(channels.own("c0ffee"));
    const nobody = await subscriber(channels.room("ch:c"));
    const entry = encodeLoggedBroadcast(broadcast("c0ffee", ["ch:a", "ch:b"], 7));
    const id = (await client.eval(PUBLISH_SCRIPT, 1, "t:stream", 100, entry, channels.own("c0ffee"), "7", channels.room("ch:a"), channels.room("ch:b"))) as string;
    const [[loggedId, fields]] = (await client.xrange("t:stream", "-", "+")) as [[string, string[]]];
    expect(loggedId).toBe(id);
    expect(entryJson(fields)).toBe(entry);
    // A sentinel through every subscriber's connection: once it is in, so is all of the first script's output.
    const sentinel = (await client.eval(PUBLISH_SCRIPT, 1, "t:stream", 100, "{}", channels.own("c0ffee"), "0", channels.room("ch:a"), channels.room("ch:c"))) as string;
    await expect.poll(() => [onA, onBoth, own, nobody].every((seen) => seen.some((m) => m.includes(` ${sentinel} `)))).toBe(true);
    const of = (seen: string[]) => seen.filter((m) => m.includes(` ${id} `));
    expect(of(onA)).toEqual([`${channels.room("ch:a")} ${id} ${entry}`]);
    // A worker with members in both rooms gets the entry twice, back to back, with one id.
    expect(of(onBoth)).toEqual([`${channels.room("ch:a")} ${id} ${entry}`, `${channels.room("ch:b")} ${id} ${entry}`]);
    expect(of(own)).toEqual([`${channels.own("c0ffee")} ${id} 7`]);
    expect(of(nobody)).toEqual([]);
  });
});
