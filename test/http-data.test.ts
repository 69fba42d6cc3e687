import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Socket } from "socket.io-client";
import { closeAllClients, connect, nextEvent, request } from "./helpers/client.js";
import { http } from "./helpers/http-api.js";
import { MODES, startInMode } from "./helpers/modes.js";
import type { RedisInstance } from "./helpers/redis.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Collects every message a socket receives on a channel. */
function collect(socket: Socket, channel: string): Array<Record<string, unknown>> {
  const seen: Array<Record<string, unknown>> = [];
  socket.on(`message:receive:${channel}`, (m: Record<string, unknown>) => seen.push(m));
  return seen;
}
const settle = (ms = 600) => new Promise((r) => setTimeout(r, ms));

/** The original server's `/data` routes, spoken exactly as a backend written for it speaks them. */
describe.each(MODES)("HTTP API /data (%s)", (mode) => {
  let server: RunningServer;
  let redis: RedisInstance | undefined;
  let seq = 0;
  const fresh = (prefix: string) => `${prefix}:${mode}:${++seq}`;
  const post = (body: unknown, key?: string | null, path = "/data") =>
    http(server, path, { body: typeof body === "string" ? body : JSON.stringify(body), key });
  const get = (query: string, key?: string | null, path = "/data") => http(server, `${path}?${query}`, { key });

  beforeAll(async () => {
    ({ server, redis } = await startInMode(mode, { workers: 2, env: { MESSAGE_MAX_BYTES: "1024" } }));
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
    await redis?.stop();
  });

  it("publishes every JSON value (0, false, '' and objects too) to subscribers and to history, with the broadcast's createdAt", async () => {
    const channel = fresh("data");
    const subscriber = await connect(server.url, server.token(), { transports: ["websocket"] });
    await request(subscriber, "channel:subscribe", channel);
    const seen = collect(subscriber, channel);
    const contents = [0, false, "", null, { nested: { a: [1, 2] } }, "hello"];
    for (const content of contents) {
      const res = await post({ channelName: channel, content });
      expect({ status: res.status, text: res.text }).toEqual({ status: 200, text: "Message processing completed" });
      expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    }
    await settle(300);
    expect(seen.map((m) => m.content)).toEqual(contents);
    for (const m of seen) {
      // A server-side publish has no publisher socket: no socketId (docs/protocol.md).
      expect(m).toEqual({ createdAt: expect.stringMatching(ISO_MS), content: m.content, messageId: expect.stringMatching(UUID) });
    }
    const history = await get(`channelName=${encodeURIComponent(channel)}`);
    expect(history.status).toBe(200);
    expect(history.json).toEqual({ messages: seen.map((m) => ({ content: m.content, createdAt: m.createdAt })) });
  });

  it("answers 401 without the key, or with a wrong one, and then broadcasts and stores nothing", async () => {
    const channel = fresh("nokey");
    const subscriber = await connect(server.url, server.token(), { transports: ["websocket"] });
    await request(subscriber, "channel:subscribe", channel);
    const seen = collect(subscriber, channel);
    for (const key of [null, "wrong-key-0123456789abcdef", ""]) {
      const res = await post({ channelName: channel, content: "sneaky" }, key);
      expect(res.status).toBe(401);
      expect(res.text).toBe("Unauthorized: an API key is required (X-API-Key, or Authorization: Bearer)");
      expect((await get(`channelName=${encodeURIComponent(channel)}`, key)).status).toBe(401);
    }
    const bearer = await http(server, `/data?channelName=${encodeURIComponent(channel)}`, { key: null, headers: { authorization: "Bearer nope-nope-nope-nope" } });
    expect(bearer.status).toBe(401);
    await settle();
    expect(seen).toEqual([]);
    expect(await get(`channelName=${encodeURIComponent(channel)}`)).toMatchObject({ status: 404, json: { error: `Channel ${channel} does not exist` } });
    // The same request with the key, as a Bearer token, goes through.
    const ok = await http(server, "/prod/data", { body: JSON.stringify({ channelName: channel, content: "ok" }), key: null, headers: { authorization: `Bearer ${server.apiKey}` } });
    expect(ok.status).toBe(200);
  });

  it("refuses bad input with the original's bodies and changes nothing", async () => {
    const channel = fresh("bad");
    const subscriber = await connect(server.url, server.token(), { transports: ["websocket"] });
    await request(subscriber, "channel:subscribe", channel);
    const seen = collect(subscriber, channel);
    const invalid = { status: 400, text: "Invalid input: channelName and content are required" };
    for (const body of [{ channelName: channel }, { content: 1 }, { channelName: "", content: 1 }, { channelName: 5, content: 1 }, "not json", "[1,2]", "null"]) {
      const res = await post(body);
      expect({ status: res.status, text: res.text }).toEqual(invalid);
    }
    const tooBig = await post({ channelName: channel, content: "x".repeat(2000) });
    expect({ status: tooBig.status, text: tooBig.text }).toEqual({ status: 413, text: "Invalid input: content is larger than 1024 bytes" });
    // A body past HTTP_API_BODY_MAX_BYTES (default MESSAGE_MAX_BYTES + 64 KiB) is refused before it is read whole.
    const huge = await post({ channelName: channel, content: "x".repeat(70_000) });
    expect(huge.status).toBe(413);
    expect(huge.text).toBe(`Invalid input: request body is larger than ${1024 + 65536} bytes`);
    await settle();
    expect(seen).toEqual([]);

    expect(await get("")).toMatchObject({ status: 400, json: { error: "Invalid input: channelName query parameter is required" } });
    expect(await get("channelName=")).toMatchObject({ status: 400, json: { error: "Invalid input: channelName query parameter is required" } });
    const unknown = await get(`channelName=${encodeURIComponent(channel)}`, undefined, "/prod/data");
    expect({ status: unknown.status, text: unknown.text }).toEqual({ status: 404, text: JSON.stringify({ error: `Channel ${channel} does not exist` }) });
    expect((await get(`channelName=x&limit=500`)).status).toBe(400);
    expect((await get(`channelName=x&sortDirection=sideways`)).status).toBe(400);
    expect(await get(`channelName=x&lastEvaluatedKey=%7B%22bogus%22%3A1%7D`)).toMatchObject({ status: 400, json: { error: "Invalid input: lastEvaluatedKey is not a cursor this server handed out" } });
    expect((await http(server, "/data", { method: "DELETE" })).status).toBe(405);
  });

  it("reads history in order, a page at a time, in either direction", async () => {
    const channel = fresh("pages");
    for (let i = 0; i < 5; i++) expect((await post({ channelName: channel, content: i })).status).toBe(200);
    type Page = { messages: Array<{ content: number; createdAt: string }>; lastEvaluatedKey?: unknown };
    const all: number[] = [];
    let key: unknown;
    do {
      const res = await get(`channelName=${encodeURIComponent(channel)}&limit=2${key ? `&lastEvaluatedKey=${encodeURIComponent(JSON.stringify(key))}` : ""}`);
      expect(res.status).toBe(200);
      const page = res.json as Page;
      expect(page.messages.length).toBeLessThanOrEqual(2);
      all.push(...page.messages.map((m) => m.content));
      key = page.lastEvaluatedKey;
    } while (key !== undefined);
    expect(all).toEqual([0, 1, 2, 3, 4]);
    const newest = (await get(`channelName=${encodeURIComponent(channel)}&limit=3&sortDirection=descending`)).json as Page;
    expect(newest.messages.map((m) => m.content)).toEqual([4, 3, 2]);
    expect(newest.lastEvaluatedKey).toBeDefined();
    // Default page: 50 messages at most, all five here, oldest first.
    expect(((await get(`channelName=${encodeURIComponent(channel)}`)).json as Page).messages.map((m) => m.content)).toEqual([0, 1, 2, 3, 4]);
  });

  it("keeps a backend's connection alive, and leaves Socket.IO's own paths as they were", async () => {
    const res = await get("channelName=none");
    expect(res.headers.get("connection")).toBe("keep-alive");
    const polling = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`);
    expect(polling.status).toBe(200);
    expect(polling.headers.get("connection")).toBe("close");
    await polling.text();
    expect((await http(server, "/elsewhere")).status).toBe(404);
  });

  it("counts its requests by route and status in /metrics", async () => {
    const channel = fresh("metered");
    expect((await post({ channelName: channel, content: 1 })).status).toBe(200);
    expect((await post({ channelName: channel, content: 1 }, null)).status).toBe(401);
    const text = await (await fetch(`${server.healthUrl}/metrics`)).text();
    const count = (labels: string) => Number(new RegExp(`^cerebellum_http_api_requests_total\\{${labels}\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
    expect(count('route="POST /data",status="200"')).toBeGreaterThanOrEqual(1);
    expect(count('route="POST /data",status="401"')).toBeGreaterThanOrEqual(1);
    expect(count('route="GET /data",status="404"')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^cerebellum_http_api_duration_seconds_count\{route="POST \/data"\} \d+/m);
  });
});

describe("HTTP API /data with HTTP_API_AUTH=off and its own HTTP_API_KEY", () => {
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("asks no key when HTTP_API_AUTH=off", async () => {
    const server = await startServer({ workers: 1, env: { HTTP_API_AUTH: "off" } });
    const res = await http(server, "/data", { body: JSON.stringify({ channelName: "open", content: 1 }), key: null });
    expect({ status: res.status, text: res.text }).toEqual({ status: 200, text: "Message processing completed" });
  });

  it("takes HTTP_API_KEY, not API_KEY, when it is set", async () => {
    const server = await startServer({ workers: 1, env: { HTTP_API_KEY: "backend-key-0123456789abcdef" } });
    expect((await http(server, "/data?channelName=x")).status).toBe(401); // API_KEY
    expect((await http(server, "/data?channelName=x", { key: "backend-key-0123456789abcdef" })).status).toBe(404);
  });
});
