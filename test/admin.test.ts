/**
 * The admin page's server side (README, "Admin page"): off without ADMIN_PASSWORD, the login and
 * what it refuses, GET /admin/state from real traffic in both modes, and the two actions.
 * test/admin-browser.test.ts drives the page itself in Chromium.
 */
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_PASSWORD, adminLogin, type AdminSession } from "./helpers/admin.js";
import { closeAllClients, connect, nextEvent, request } from "./helpers/client.js";
import { MODES, modeServers } from "./helpers/modes.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";

describe("admin page without ADMIN_PASSWORD", () => {
  afterAll(stopAllServers);

  it("is off: every /admin route is 404", async () => {
    const server = await startServer({ workers: 1 });
    for (const path of ["/admin", "/admin/state"]) expect((await fetch(`${server.healthUrl}${path}`)).status).toBe(404);
    const login = await fetch(`${server.healthUrl}/admin/login`, { method: "POST", body: "password=" });
    expect(login.status).toBe(404);
    // The rest of the side port is unchanged.
    expect((await fetch(`${server.healthUrl}/healthz`)).status).toBe(200);
  });
});

describe.each(MODES)("admin page (%s mode)", (mode) => {
  const servers = modeServers(mode);
  let server: RunningServer;
  let admin: AdminSession;

  beforeAll(async () => {
    // One key prefix, so that a second host (clustered mode) joins this one's cluster.
    server = await servers.start({ env: { ADMIN_PASSWORD, REDIS_KEY_PREFIX: `admin-${mode}:` } });
    admin = await adminLogin(server);
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
    await servers.stop();
  });

  async function subscriber(channel: string): Promise<Socket> {
    const socket = await connect(server.url, server.token());
    expect(await request(socket, "channel:subscribe", channel)).toEqual({ success: true });
    return socket;
  }

  it("refuses a wrong password, and shows only the login form without a session", async () => {
    const wrong = await fetch(`${server.healthUrl}/admin/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "password=not-the-password",
      redirect: "manual",
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    const page = await fetch(`${server.healthUrl}/admin`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('name="password"');
    expect(html).not.toContain("csrf-token");
    expect(html).not.toContain(ADMIN_PASSWORD);
    expect((await fetch(`${server.healthUrl}/admin/state`)).status).toBe(401);
    // A made-up session is no session.
    expect((await fetch(`${server.healthUrl}/admin/state`, { headers: { cookie: "cerebellum_admin=made-up" } })).status).toBe(401);
  });

  it("refuses actions without the session, the CSRF token, or from another origin", async () => {
    const channel = `admin-refused-${mode}`;
    const socket = await subscriber(channel);
    const received: unknown[] = [];
    socket.on(`message:receive:${channel}`, (m: { content: unknown }) => received.push(m.content));
    const body = JSON.stringify({ channel, data: "must not arrive" });
    const post = (headers: Record<string, string>) =>
      fetch(`${server.healthUrl}/admin/publish`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    expect((await post({})).status).toBe(401);
    expect((await post({ "x-csrf-token": admin.csrf })).status).toBe(401);
    expect((await post({ cookie: admin.cookie })).status).toBe(403);
    expect((await post({ cookie: admin.cookie, "x-csrf-token": "wrong" })).status).toBe(403);
    expect((await post({ cookie: admin.cookie, "x-csrf-token": admin.csrf, origin: "http://evil.example" })).status).toBe(403);
    expect((await post({ cookie: admin.cookie, "x-csrf-token": admin.csrf, "sec-fetch-site": "cross-site" })).status).toBe(403);
    const disconnect = await fetch(`${server.healthUrl}/admin/disconnect`, {
      method: "POST",
      headers: { cookie: admin.cookie, "content-type": "application/json" },
      body: JSON.stringify({ socketId: socket.id }),
    });
    expect(disconnect.status).toBe(403);
    // The one accepted publish is the first thing the subscriber sees, and it is still connected.
    const next = nextEvent<{ content: unknown }>(socket, `message:receive:${channel}`);
    expect((await admin.action("/admin/publish", { channel, data: "accepted" })).status).toBe(200);
    expect((await next).content).toBe("accepted");
    expect(received).toEqual(["accepted"]);
    expect(socket.connected).toBe(true);
  });

  it("shows the workers, connections, channels with presence, and counters that move", async () => {
    const channel = `admin-state-${mode}`;
    const a = await subscriber(channel);
    const b = await subscriber(channel);
    for (const s of [a, b]) expect(await request(s, "presenceSet:enter", channel, { name: s.id })).toMatchObject({ success: true });

    const state = await waitFor(
      async () => {
        const s = await admin.state();
        return s.channels.top.find((c) => c.channel === channel)?.presence === 2 && s;
      },
      { what: "the channel with its presence on the admin state" },
    );
    expect(state.mode).toBe(mode);
    expect(state.channels.scope).toBe("cluster");
    expect(state.cluster).toMatchObject({ available: true, missing: [] });
    expect(state.cluster.nodes!.map((n) => n.pid).sort()).toEqual(server.liveWorkerPids().sort());
    expect(state.channels.top.find((c) => c.channel === channel)).toEqual({ channel, subscribers: 2, presence: 2 });
    expect(state.workers.map((w) => w.pid).sort()).toEqual(server.liveWorkerPids().sort());
    for (const w of state.workers) {
      expect(w).toMatchObject({ state: "ready", answered: true, restarts: 0 });
      expect(w.rssBytes).toBeGreaterThan(0);
      expect(w.connections).not.toBeNull();
    }
    expect(state.totals.connections).toBeGreaterThanOrEqual(2);
    expect(state.workers.reduce((n, w) => n + (w.connections ?? 0), 0)).toBe(state.totals.connections);
    expect(state.persistence.sink).toBe("embedded");

    // The members behind the count, for picking one to disconnect; a read that needs the session.
    const presenceUrl = `${server.healthUrl}/admin/presence?channel=${channel}`;
    expect((await fetch(presenceUrl)).status).toBe(401);
    const members = (await (await fetch(presenceUrl, { headers: { cookie: admin.cookie } })).json()) as {
      result: { total: number; members: { client: string; info: Record<string, string> }[] };
    };
    expect(members.result.total).toBe(2);
    expect(members.result.members.map((m) => m.client).sort()).toEqual([a.id, b.id].sort());
    expect(members.result.members.find((m) => m.client === a.id)?.info).toMatchObject({ name: a.id });

    const before = state.totals.published;
    expect(await request(a, "message:queue", channel, { n: 1 })).toMatchObject({ success: true });
    await waitFor(async () => (await admin.state()).totals.published > before, { what: "the published counter to move" });
  });

  it("disconnects a socket, and publishes a test message that a subscriber receives", async () => {
    const channel = `admin-actions-${mode}`;
    const target = await connect(server.url, server.token());
    const id = target.id!;
    const closed = nextEvent<string>(target, "disconnect");
    const done = await admin.action("/admin/disconnect", { socketId: id });
    expect(done).toEqual({ status: 200, body: { result: { disconnected: id } } });
    expect(await closed).toBe("io server disconnect");
    expect(await admin.action("/admin/disconnect", { socketId: id })).toMatchObject({ status: 404, body: { error: { code: "NOT_FOUND" } } });

    const listener = await subscriber(channel);
    const received = nextEvent<{ content: unknown; messageId: string }>(listener, `message:receive:${channel}`);
    const published = await admin.action("/admin/publish", { channel, data: { test: true } });
    expect(published.status).toBe(200);
    const message = await received;
    expect(message.content).toEqual({ test: true });
    expect(message.messageId).toBe(published.body.result?.messageId);
    expect((await admin.action("/admin/publish", { channel: "", data: 1 })).body.error?.code).toBe("INVALID_CHANNEL");
  });

  if (mode === "clustered") {
    it("sees the other host's workers and subscribers, publishes to it and disconnects its sockets", async () => {
      const channel = "admin-other-host";
      const other = await servers.start({ env: { REDIS_KEY_PREFIX: `admin-${mode}:` } });
      const listener = await connect(other.url, other.token());
      const id = listener.id!;
      expect(await request(listener, "channel:subscribe", channel)).toEqual({ success: true });

      const state = await waitFor(
        async () => {
          const s = await admin.state();
          return s.cluster.nodes?.length === 4 && s.channels.top.some((c) => c.channel === channel) && s;
        },
        { what: "the other host in the admin state" },
      );
      expect(state.cluster.nodes!.map((n) => n.pid).sort()).toEqual([...server.liveWorkerPids(), ...other.liveWorkerPids()].sort());
      expect(state.channels.top.find((c) => c.channel === channel)?.subscribers).toBe(1);
      // This host's own processes stay this host's.
      expect(state.workers.map((w) => w.pid).sort()).toEqual(server.liveWorkerPids().sort());

      const received = nextEvent<{ content: unknown }>(listener, `message:receive:${channel}`);
      expect((await admin.action("/admin/publish", { channel, data: "across hosts" })).status).toBe(200);
      expect((await received).content).toBe("across hosts");

      const closed = nextEvent<string>(listener, "disconnect");
      expect(await admin.action("/admin/disconnect", { socketId: id })).toEqual({ status: 200, body: { result: { disconnected: id } } });
      expect(await closed).toBe("io server disconnect");
      await other.stop();
    });
  }

  it("shows workers that stopped answering and the server API unavailable, then both back", async () => {
    const pids = server.liveWorkerPids();
    for (const pid of pids) process.kill(pid, "SIGSTOP");
    try {
      const stuck = await waitFor(
        async () => {
          const s = await admin.state();
          return s.workers.every((w) => !w.answered) && !s.cluster.available && s;
        },
        { what: "the stopped workers and the API unavailable", timeoutMs: 30_000 },
      );
      expect(stuck.cluster.error).toMatch(/UNAVAILABLE/);
      expect(stuck.channels.scope).toBe("host");
      // The actions say why they cannot act.
      const refused = await admin.action("/admin/publish", { channel: "admin-stuck", data: 1 });
      expect(refused).toMatchObject({ status: 503, body: { error: { code: "UNAVAILABLE" } } });
    } finally {
      for (const pid of pids) process.kill(pid, "SIGCONT");
    }
    await waitFor(
      async () => {
        const s = await admin.state();
        return s.workers.every((w) => w.answered) && s.cluster.available;
      },
      { what: "the workers and the API back", timeoutMs: 30_000 },
    );
  });

  it("shows a killed worker as restarting, answers meanwhile, and shows it back with its restart", async () => {
    const [victim] = server.liveWorkerPids();
    process.kill(victim!, "SIGKILL");
    const gone = await waitFor(
      async () => {
        const s = await admin.state();
        return !s.workers.some((w) => w.pid === victim && w.state === "ready") && s;
      },
      { what: "the killed worker to leave the state" },
    );
    expect(gone.workers).toHaveLength(2);
    const back = await waitFor(
      async () => {
        const s = await admin.state();
        return s.workers.every((w) => w.state === "ready" && w.answered) && s.workers.some((w) => w.restarts === 1) && s;
      },
      { what: "the worker back", timeoutMs: 30_000 },
    );
    expect(back.workers.map((w) => w.pid)).not.toContain(victim);
  });
});
