import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Socket } from "socket.io-client";
import { closeAllClients, connect, nextEvent, request } from "./helpers/client.js";
import { MODES, startInMode } from "./helpers/modes.js";
import type { RedisInstance } from "./helpers/redis.js";
import { stopAllServers, type RunningServer } from "./helpers/server.js";
import { latch } from "./helpers/wait.js";
import { WELCOME_EVENT } from "../src/shared/contract.js";
import { workerOf } from "./helpers/workers.js";

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;


describe.each(MODES)("channels (%s)", (mode) => {
  let server: RunningServer;
  let redis: RedisInstance | undefined;
  let seq = 0;
  const fresh = (prefix: string) => `${prefix}:${mode}:${++seq}`;
  const client = (transports = ["websocket"]) => connect(server.url, server.token(), { transports });

  /** Clients until both workers are covered, so every test crosses workers. */
  async function clientsOnBothWorkers(count: number): Promise<Socket[]> {
    const sockets: Socket[] = [];
    while (sockets.length < count || new Set(sockets.map(workerOf)).size < 2) sockets.push(await client());
    return sockets;
  }

  beforeAll(async () => {
    // One test publishes 300 messages per connection at once, past the default burst of client
    // events (200); it is about order, so the bucket is made big enough to hold them.
    ({ server, redis } = await startInMode(mode, { workers: 2, env: { CLIENT_RATE_BURST: "1000" } }));
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
    await redis?.stop();
  });

  it("acks a subscribe and delivers the contract's message shape to subscribers on every worker", async () => {
    const channel = fresh("chat");
    const subscribers = await clientsOnBothWorkers(4);
    for (const s of subscribers) expect(await request(s, "channel:subscribe", channel)).toEqual({ success: true });
    const publisher = await client();
    const received = subscribers.map((s) => nextEvent<Record<string, unknown>>(s, `message:receive:${channel}`));
    const ack = await request<{ success: boolean; messageId: string }>(publisher, "message:queue", channel, "hello");
    expect(ack.success).toBe(true);
    for (const message of await Promise.all(received)) {
      expect(message).toEqual({
        createdAt: expect.stringMatching(ISO_MS),
        content: "hello",
        socketId: publisher.id,
        messageId: ack.messageId,
      });
      expect(message.messageId).toMatch(UUID);
    }
  });

  it("delivers the first message published right after the subscribe ack", async () => {
    const channel = fresh("first");
    const [subscriber, publisher] = await clientsOnBothWorkers(2);
    const got = new Promise<unknown>((resolve) => {
      subscriber!.emit("channel:subscribe", channel, () => {
        // What the SDK does: attach the listener in the ack, then the app publishes at once.
        subscriber!.on(`message:receive:${channel}`, (m: { content: unknown }) => resolve(m.content));
        publisher!.emit("message:queue", channel, "right away");
      });
    });
    expect(await got).toBe("right away");
  });

  it("round-trips every JSON shape of content exactly", async () => {
    const channel = fresh("shapes");
    const [subscriber, publisher] = await clientsOnBothWorkers(2);
    await request(subscriber!, "channel:subscribe", channel);
    const contents = ["", "text", 0, -1.5, 1e21, true, false, null, [], {}, { a: { b: [1, "2", null, { c: false }] } }, [[["deep"]]]];
    const seen: unknown[] = [];
    const all = latch(contents.length, 10_000, "contents");
    subscriber!.on(`message:receive:${channel}`, (m: { content: unknown }) => {
      seen.push(m.content);
      all.hit();
    });
    for (const content of contents) publisher!.emit("message:queue", channel, content);
    await all.done;
    expect(seen).toEqual(contents);
  });

  it("keeps each publisher's order for subscribers on every worker", async () => {
    const channel = fresh("order");
    const sockets = await clientsOnBothWorkers(4);
    const publishers = sockets.slice(0, 2);
    const subscribers = sockets.slice(2);
    for (const s of subscribers) await request(s, "channel:subscribe", channel);
    const perPublisher = 300;
    const total = perPublisher * publishers.length;
    const logs = subscribers.map(() => new Map<string, number[]>());
    const all = latch(total * subscribers.length, 30_000, "ordered messages");
    subscribers.forEach((s, i) =>
      s.on(`message:receive:${channel}`, (m: { socketId: string; content: number }) => {
        const log = logs[i]!;
        if (!log.has(m.socketId)) log.set(m.socketId, []);
        log.get(m.socketId)!.push(m.content);
        all.hit();
      }),
    );
    for (let n = 0; n < perPublisher; n++) for (const p of publishers) p.emit("message:queue", channel, n);
    await all.done;
    const expected = Array.from({ length: perPublisher }, (_, n) => n);
    for (const log of logs) for (const p of publishers) expect(log.get(p.id!)).toEqual(expected);
  });

  it("sends a publisher its own message only when it is subscribed, and stops after unsubscribe", async () => {
    const channel = fresh("self");
    const marker = fresh("marker");
    const [a, b] = await clientsOnBothWorkers(2);
    const aGot: unknown[] = [];
    a!.on(`message:receive:${channel}`, (m: { content: unknown }) => aGot.push(m.content));
    await request(b!, "channel:subscribe", channel);
    await request(a!, "channel:subscribe", marker);
    // a is not subscribed: it publishes, b receives, a gets nothing; the marker (published
    // after, by the same publisher) proves a would have seen it by then.
    const bGot = nextEvent(b!, `message:receive:${channel}`);
    const markerGot = nextEvent(a!, `message:receive:${marker}`);
    a!.emit("message:queue", channel, "one");
    a!.emit("message:queue", marker, "done");
    await Promise.all([bGot, markerGot]);
    expect(aGot).toEqual([]);

    await request(a!, "channel:subscribe", channel);
    const own = nextEvent<{ content: unknown }>(a!, `message:receive:${channel}`);
    a!.emit("message:queue", channel, "two");
    expect((await own).content).toBe("two");

    expect(await request(a!, "channel:unsubscribe", channel)).toEqual({ success: true });
    const bThree = nextEvent(b!, `message:receive:${channel}`);
    const markerAgain = nextEvent(a!, `message:receive:${marker}`);
    a!.emit("message:queue", channel, "three");
    a!.emit("message:queue", marker, "done");
    await Promise.all([bThree, markerAgain]);
    expect(aGot).toEqual(["two"]);
  });

  it("keeps channel names out of presence rooms and sockets' own rooms", async () => {
    const [member, outsider] = await clientsOnBothWorkers(2);
    const name = fresh("shared");
    // The outsider subscribes to the channel "name" and to a channel named like the member's id;
    // neither may leak the member's presence events or direct emits.
    await request(outsider!, "channel:subscribe", name);
    await request(outsider!, "channel:subscribe", member!.id);
    await request(outsider!, "channel:subscribe", `pr:${name}`);
    const stray: string[] = [];
    // The connection's own welcome may still be on its way (it waits for the primary's offset,
    // the acks above do not): it is not a leak.
    outsider!.onAny((event: string) => {
      if (event !== WELCOME_EVENT) stray.push(event);
    });
    const joined = nextEvent(member!, `presence:${name}:join`);
    member!.emit("presenceSet:enter", name, { user: "m" });
    await joined;
    const barrier = nextEvent(outsider!, `message:receive:${name}`);
    member!.emit("message:queue", name, "after");
    await barrier;
    expect(stray).toEqual([`message:receive:${name}`]);
  });

  it("accepts a publish without an ack and channel names with colons and unicode", async () => {
    const channel = `text-change:${fresh("doc")}:ünï 😀`;
    const [a, b] = await clientsOnBothWorkers(2);
    await request(a!, "channel:subscribe", channel);
    const got = nextEvent<{ content: unknown }>(a!, `message:receive:${channel}`);
    b!.emit("message:queue", channel, { ops: [1] });
    expect((await got).content).toEqual({ ops: [1] });
  });

  it("works over long-polling", async () => {
    const channel = fresh("polling");
    const a = await client(["polling"]);
    const b = await client(["polling"]);
    await request(a, "channel:subscribe", channel);
    const got = nextEvent<{ content: unknown }>(a, `message:receive:${channel}`);
    b.emit("message:queue", channel, "over polling");
    expect((await got).content).toBe("over polling");
  });
});
