/**
 * The balancer's admission: a connect storm above CONNECT_RATE_LIMIT, or connects to a host whose
 * workers are all at MAX_CONNECTIONS_PER_WORKER, get 503 with Retry-After before any hand-over or
 * token check, and the clients already connected keep being served.
 */
import { afterEach, describe, expect, it } from "vitest";
import { closeAllClients, connect, nextEvent, request } from "./helpers/client.js";
import { startServer, stopAllServers } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";
import { request as httpRequest } from "node:http";

/** One HTTP API call on a connection of its own (no pooling), as a backend without keep-alive makes it. */
function apiCall(url: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/data?channelName=none`, { agent: false, headers: { "x-api-key": key } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

/** An Engine.IO handshake (a new session) over plain HTTP: its status and Retry-After. */
async function handshake(url: string): Promise<{ status: number; retryAfter: string | null }> {
  const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
  await res.arrayBuffer();
  return { status: res.status, retryAfter: res.headers.get("retry-after") };
}

describe("connection limits at the balancer", () => {
  afterEach(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("answers a connect storm above CONNECT_RATE_LIMIT with 503 and Retry-After, and keeps serving its clients", async () => {
    const server = await startServer({ workers: 1, env: { CONNECT_RATE_LIMIT: "5", PERSISTENCE: "off" } });
    const client = await connect(server.url, server.token(), { transports: ["websocket"] });
    expect((await request(client, "channel:subscribe", "calm")).success).toBe(true);

    const answers = await Promise.all(Array.from({ length: 60 }, () => handshake(server.url)));
    const refused = answers.filter((a) => a.status === 503);
    // A second's worth (5) gets through, a few more as the bucket refills during the storm.
    expect(refused.length).toBeGreaterThanOrEqual(40);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
    expect(answers.every((a) => a.status === 200 || a.status === 503)).toBe(true);
    expect(refused.every((a) => a.retryAfter === "1")).toBe(true);

    // The client that was in keeps publishing and receiving.
    const got = nextEvent<{ content: unknown }>(client, "message:receive:calm");
    expect((await request(client, "message:queue", "calm", "still here")).success).toBe(true);
    expect((await got).content).toBe("still here");
    await waitFor(() => server.output.some((l) => l.includes("refused new connections")), { what: "the refusal summary in the log" });
  });

  it("refuses new sessions while every worker is at MAX_CONNECTIONS_PER_WORKER, never an existing session's requests", async () => {
    const server = await startServer({ workers: 1, env: { MAX_CONNECTIONS_PER_WORKER: "3", CONNECT_RATE_LIMIT: "0", PERSISTENCE: "off" } });
    const clients = [];
    for (let i = 0; i < 3; i++) clients.push(await connect(server.url, server.token(), { transports: ["websocket"] }));
    // The worker reports its count within 100 ms; from then on a new session is refused.
    await waitFor(async () => (await handshake(server.url)).status === 503, { what: "a 503 for a fourth session" });
    await expect(connect(server.url, server.token(), { transports: ["websocket"] })).rejects.toThrow();
    // A polling client's session, opened before the cap: its requests still reach its worker.
    // (the three websocket clients fill the cap; close one to make room for it first)
    clients.pop()!.close();
    const polling = await waitFor(() => connect(server.url, server.token(), { transports: ["polling"] }).catch(() => undefined), { what: "room for a polling client" });
    const echo = nextEvent<{ content: unknown }>(polling, "message:receive:p");
    expect((await request(polling, "channel:subscribe", "p")).success).toBe(true);
    expect((await request(polling, "message:queue", "p", 1)).success).toBe(true);
    expect((await echo).content).toBe(1);
    expect((await handshake(server.url)).status).toBe(503);
  });

  it("does not count the HTTP API's requests as new sessions (CONNECT_RATE_LIMIT, MAX_CONNECTIONS_PER_WORKER)", async () => {
    const server = await startServer({ workers: 1, env: { CONNECT_RATE_LIMIT: "1", MAX_CONNECTIONS_PER_WORKER: "1", PERSISTENCE: "off" } });
    // 30 calls on 30 new connections: a storm of connects, none of them a session.
    const statuses = await Promise.all(Array.from({ length: 30 }, () => apiCall(server.url, server.apiKey)));
    expect(statuses.every((s) => s === 404)).toBe(true); // "Channel none does not exist": answered, not refused
    // The rate's one token is still there for a real session.
    expect((await handshake(server.url)).status).toBe(200);
    // The worker is now full (that session), and backends are still answered.
    await waitFor(async () => (await handshake(server.url)).status === 503, { what: "the worker full" });
    expect(await apiCall(server.url, server.apiKey)).toBe(404);
  });
});
