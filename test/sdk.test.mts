import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The published client SDK, unchanged: the drop-in promise is tested against it.
import { Cerebellum } from "@cerebellum/sdk/dist/cerebellum.js";
import { MODES, startInMode } from "./helpers/modes.js";
import type { RedisInstance } from "./helpers/redis.js";
import { stopAllServers, type RunningServer } from "./helpers/server.js";

type Sdk = Awaited<ReturnType<typeof Cerebellum>>;

function connected(sdk: Sdk): Promise<void> {
  const socket = sdk.getSocket();
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", (err: Error) => reject(err));
  });
}

describe.each(MODES)("@cerebellum/sdk 2.0.2 (%s)", (mode) => {
  let server: RunningServer;
  let redis: RedisInstance | undefined;
  const sdks: Sdk[] = [];

  beforeAll(async () => {
    ({ server, redis } = await startInMode(mode, { workers: 2, env: { NODE_ENV: "development", LOGIN_ROUTE: "loopback" } }));
  });
  afterAll(async () => {
    for (const sdk of sdks) sdk.disconnect();
    await stopAllServers();
    await redis?.stop();
  });

  /** The demo chat app's way in: API key, autoConnect off, polling first (the SDK default). */
  async function app(): Promise<Sdk> {
    const sdk = await Cerebellum(server.url, { API_KEY: server.apiKey, autoConnect: false, reconnection: false });
    sdks.push(sdk);
    sdk.connect();
    await connected(sdk);
    return sdk;
  }

  it("runs the reference chat session", async () => {
    const alice = await app();
    const bob = await app();
    const channel = `room:${mode}`;

    expect(await alice.getPresenceSetMembers(channel)).toEqual([]);
    const aliceSeesHerself = new Promise((resolve) => alice.subscribeToPresenceJoins(channel, resolve));
    alice.enterPresenceSet(channel, { user: "alice" });
    expect(await aliceSeesHerself).toEqual({ user: "alice", socketId: alice.getSocket().id });

    const aliceGot: unknown[] = [];
    const firstMessage = new Promise((resolve) =>
      alice.subscribeChannel(channel, (m: { content: unknown }) => {
        aliceGot.push(m.content);
        resolve(m);
      }),
    );
    const history = await alice.getPastMessages(channel, { limit: 50 });
    expect(Array.isArray(history.messages)).toBe(true);

    const aliceSeesBob = new Promise((resolve) => alice.subscribeToPresenceJoins(channel, resolve));
    bob.enterPresenceSet(channel, { user: "bob" });
    await aliceSeesBob;
    const members = await bob.getPresenceSetMembers(channel);
    expect(members.map((m) => (m as Record<string, string>).user).sort()).toEqual(["alice", "bob"]);

    // The SDK attaches its listener only after the subscribe ack; wait until it has.
    await new Promise<void>((resolve) => {
      const check = () => (alice.getSocket().hasListeners(`message:receive:${channel}`) ? resolve() : setImmediate(check));
      check();
    });
    bob.publish(channel, "hi alice");
    expect(await firstMessage).toMatchObject({ content: "hi alice", socketId: bob.getSocket().id });

    const typing = new Promise((resolve) => alice.subscribeToPresenceUpdates(channel, resolve));
    // The demo app passes a boolean; the SDK's type says string, the wire carries whatever is given.
    bob.updatePresenceInfo(channel, { typing: true } as unknown as Record<string, string>);
    expect(await typing).toEqual({ user: "bob", typing: "true", socketId: bob.getSocket().id });

    const left = new Promise((resolve) => alice.subscribeToPresenceLeaves(channel, resolve));
    bob.leavePresenceSet(channel);
    expect(await left).toEqual({ socketId: bob.getSocket().id });
  });

  it("signs in through the authRoute (POST /login, LOGIN_ROUTE=loopback)", async () => {
    const sdk = await Cerebellum(server.url, {
      autoConnect: true,
      reconnection: false,
      authRoute: { endpoint: `${server.healthUrl}/login`, method: "POST", payload: { username: "demo" } },
    });
    sdks.push(sdk);
    await connected(sdk);
    expect(sdk.getSocket().connected).toBe(true);
  });

  it("gets exactly 'Authentication error' for a bad key, as the SDK expects", async () => {
    const sdk = await Cerebellum(server.url, { API_KEY: "not-the-key-at-all-0000", autoConnect: false, reconnection: false });
    sdks.push(sdk);
    const authFailed = new Promise<void>((resolve) => sdk.authErrorCallback(resolve));
    sdk.connect();
    await authFailed;
    expect(sdk.getSocket().connected).toBe(false);
  });
});
