/**
 * The side HTTP port (docs/protocol.md, "HTTP on the side port"): the load balancer's `GET /`,
 * liveness and readiness probes, and `POST /login` where LOGIN_ROUTE enables it.
 */
import { networkInterfaces } from "node:os";
import jwt from "jsonwebtoken";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { TEST_API_KEY, startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { isAlive, waitFor } from "./helpers/wait.js";
import { logLines } from "./helpers/workers.js";

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

function login(server: RunningServer, body: unknown, host = "127.0.0.1"): Promise<Response> {
  return fetch(`http://${host}:${server.healthPort}/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

describe("health endpoints", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("GET / answers 200 'Server is healthy' (the reference load balancer's check)", async () => {
    expect(await get(`${server.healthUrl}/`)).toEqual({ status: 200, body: "Server is healthy" });
  });

  it("/healthz and /readyz answer 200 once every worker is ready", async () => {
    expect((await get(`${server.healthUrl}/healthz`)).status).toBe(200);
    expect((await get(`${server.healthUrl}/readyz`)).status).toBe(200);
    // A query string does not change the route.
    expect((await get(`${server.healthUrl}/readyz?probe=1`)).status).toBe(200);
  });

  it("answers 404 to unknown paths and methods", async () => {
    expect((await get(`${server.healthUrl}/nope`)).status).toBe(404);
    expect((await get(`${server.healthUrl}/healthz/extra`)).status).toBe(404);
    expect((await fetch(`${server.healthUrl}/`, { method: "DELETE" })).status).toBe(404);
  });

  it("serves GET /metrics without a token when METRICS_TOKEN is unset", async () => {
    const res = await get(`${server.healthUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/^# HELP cerebellum_/m);
  });

  it("has no /login unless LOGIN_ROUTE enables it", async () => {
    expect((await login(server, { username: "alice" })).status).toBe(404);
  });
});

const nonEmpty = <T>(list: T[]): T[] | undefined => (list.length > 0 ? list : undefined);

/** This host's first address that is not loopback (a client on it is not local to the server). */
const EXTERNAL_ADDRESS = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === "IPv4" && !a.internal)?.address;

describe("POST /login by default, in development", () => {
  let server: RunningServer;
  beforeAll(async () => {
    // What `npm start` gives a newcomer: NODE_ENV unset means development, on every interface.
    server = await startServer({ env: { NODE_ENV: "development", HOST: "0.0.0.0" } });
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("does not exist (404) and the start says it is off", async () => {
    const res = await login(server, { username: "alice" });
    expect(res.status).toBe(404);
    expect(await res.text()).not.toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect((await fetch(`${server.healthUrl}/login`, { method: "OPTIONS" })).status).toBe(404);
    // The primary logs it before it serves a request; this process may read the line a moment later.
    const lines = await waitFor(() => nonEmpty(logLines(server, "POST /login is off (LOGIN_ROUTE)")), { what: "the login line" });
    expect(lines).toEqual([expect.objectContaining({ loginRoute: "off" })]);
  });

  it.runIf(EXTERNAL_ADDRESS)("does not exist for a client on another address either", async () => {
    expect((await login(server, { username: "alice" }, EXTERNAL_ADDRESS)).status).toBe(404);
  });
});

describe("POST /login with LOGIN_ROUTE=loopback", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ env: { NODE_ENV: "development", HOST: "0.0.0.0", LOGIN_ROUTE: "loopback" } });
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("returns a bare 1-minute JWT signed with API_KEY that the socket server accepts", async () => {
    const res = await login(server, { username: "alice" });
    expect(res.status).toBe(200);
    const token = await res.text();
    // A bare token: the whole body, three base64url parts, no JSON, no quotes.
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);

    const decoded = jwt.decode(token, { complete: true });
    expect(decoded?.header.alg).toBe("HS256");
    const payload = decoded!.payload as jwt.JwtPayload;
    expect(payload.username).toBe("alice");
    expect(payload.exp! - payload.iat!).toBe(60);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(30);
    expect(() => jwt.verify(token, Buffer.from(TEST_API_KEY, "utf8"), { algorithms: ["HS256"] })).not.toThrow();

    // The SDK's authRoute flow: the body goes straight into auth.token.
    const socket = await connect(server.url, token);
    expect(await request(socket, "channel:subscribe", "login:room")).toEqual({ success: true });
  });

  it("answers 400 without a username and never issues a token for it", async () => {
    for (const body of [{}, { username: "" }, { username: 42 }, "not json", { username: "u".repeat(300) }]) {
      const res = await login(server, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(await res.text()).not.toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    }
  });

  it("answers the CORS preflight the browser SDK sends", async () => {
    const res = await fetch(`${server.healthUrl}/login`, { method: "OPTIONS" });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("says at start that it is on, for clients on this host only", async () => {
    const msg = "POST /login is on: it mints a token for clients on this host only (loopback)";
    const [line] = await waitFor(() => nonEmpty(logLines<{ loginRoute: string; url: string }>(server, msg)), { what: "the login line" });
    expect(line).toMatchObject({ loginRoute: "loopback", url: `http://0.0.0.0:${server.healthPort}/login` });
  });

  it.runIf(EXTERNAL_ADDRESS)("refuses (403) a client that is not on this host, and issues it no token", async () => {
    const res = await login(server, { username: "alice" }, EXTERNAL_ADDRESS);
    expect(res.status).toBe(403);
    expect(await res.text()).not.toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect((await fetch(`http://${EXTERNAL_ADDRESS}:${server.healthPort}/login`, { method: "OPTIONS" })).status).toBe(403);
    // The rest of the side port still answers there.
    expect(await get(`http://${EXTERNAL_ADDRESS}:${server.healthPort}/`)).toEqual({ status: 200, body: "Server is healthy" });
  });
});

describe.runIf(EXTERNAL_ADDRESS)("POST /login with LOGIN_ROUTE=on", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ env: { NODE_ENV: "development", HOST: "0.0.0.0", LOGIN_ROUTE: "on" } });
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("issues a token to a client on another address, and says so at start with a warning", async () => {
    const res = await login(server, { username: "alice" }, EXTERNAL_ADDRESS);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const msg = "POST /login is on: it mints a token for anyone who reaches the side port";
    const [line] = await waitFor(() => nonEmpty(logLines<{ level: number }>(server, msg)), { what: "the login line" });
    expect(line?.level).toBe(40); // pino's warn
  });
});

describe("POST /login in production", () => {
  let server: RunningServer;
  beforeAll(async () => {
    // startServer always sets API_KEY, which production requires.
    server = await startServer({ env: { NODE_ENV: "production" } });
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("does not exist (404), while GET / still answers", async () => {
    const res = await login(server, { username: "alice" });
    expect(res.status).toBe(404);
    expect(await res.text()).not.toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(await get(`${server.healthUrl}/`)).toEqual({ status: 200, body: "Server is healthy" });
  });
});

describe("/readyz while a worker is down", () => {
  afterEach(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("turns 503 when a worker dies, while / and /healthz stay 200, and 200 again after the restart", async () => {
    // A slow restart keeps the 503 window wide enough to observe.
    const server = await startServer({ env: { WORKER_RESTART_DELAY_MS: "3000" } });
    const [victim, survivor] = await waitFor(() => server.workerPids().length === 2 && server.workerPids(), {
      what: "both workers ready",
    });
    expect((await get(`${server.healthUrl}/readyz`)).status).toBe(200);

    process.kill(victim!, "SIGKILL");
    await waitFor(async () => (await get(`${server.healthUrl}/readyz`)).status === 503, {
      what: "/readyz 503",
      timeoutMs: 2500,
    });
    // Still inside the restart delay: the process is alive, it is just not fully ready.
    expect(server.workerPids()).toHaveLength(2);
    expect(await get(`${server.healthUrl}/`)).toEqual({ status: 200, body: "Server is healthy" });
    expect((await get(`${server.healthUrl}/healthz`)).status).toBe(200);
    // The surviving worker still takes connections meanwhile.
    const socket = await connect(server.url, server.token());
    expect(await request(socket, "channel:subscribe", "readyz:room")).toEqual({ success: true });

    await waitFor(async () => (await get(`${server.healthUrl}/readyz`)).status === 200, {
      what: "/readyz 200 after the restart",
      timeoutMs: 15_000,
    });
    await waitFor(() => server.workerPids().length === 3, { what: "the replacement's ready line" });
    const replacement = server.workerPids()[2]!;
    expect([victim, survivor]).not.toContain(replacement);
    expect(isAlive(victim!)).toBe(false);
    expect(server.liveWorkerPids().sort()).toEqual([survivor!, replacement].sort());
  });
});
