/**
 * The admin page in a real browser (Debian's chromium, driven by playwright-core): it loads with
 * no console errors, its numbers and charts move while a client publishes, its two actions take
 * effect, and a worker killed under it is shown and then back, still without console errors.
 *
 * Without chromium this file is skipped with a message, except in CI (CI=true), where it fails:
 * .ci/run installs chromium when it is missing.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_PASSWORD } from "./helpers/admin.js";
import { closeAllClients, connect, nextEvent, request } from "./helpers/client.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";

/** CHROMIUM_PATH, else Debian's chromium on the PATH. */
function findChromium(): string | undefined {
  if (process.env.CHROMIUM_PATH) return existsSync(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : undefined;
  for (const name of ["chromium", "chromium-browser"]) {
    try {
      return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim() || undefined;
    } catch {
      // not this one
    }
  }
  return undefined;
}

const executablePath = findChromium();
const inCi = process.env.CI === "true" || process.env.CI === "1";
if (!executablePath && !inCi) {
  console.warn("admin-browser.test.ts skipped: no chromium found (apt-get install chromium, or set CHROMIUM_PATH); CI=true makes this a failure");
}

describe.skipIf(!executablePath && !inCi)("admin page in a browser", () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    if (!executablePath) throw new Error("CI=true and no chromium: install Debian's chromium (.ci/run does) or set CHROMIUM_PATH");
    // A killed worker stays down 3 s before its restart: long enough for the page's 1 s polls to see it.
    server = await startServer({ workers: 2, env: { ADMIN_PASSWORD, WORKER_RESTART_DELAY_MS: "3000" } });
    // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
    browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
    page = await browser.newPage();
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    page.on("requestfailed", (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ""}`));
  });
  afterAll(async () => {
    closeAllClients();
    await browser?.close();
    await stopAllServers();
  });

  const number = async (selector: string) => Number(((await page.textContent(selector)) ?? "").replace(/[^0-9.]/g, "") || "NaN");

  it("asks for the password, refuses a wrong one, and logs in", async () => {
    await page.goto(`${server.healthUrl}/admin`);
    await page.fill("#password", "not-the-password");
    await page.click("button[type=submit]");
    await page.waitForSelector("#login-problem");
    expect(await page.textContent("#login-problem")).toContain("Wrong password");
    // The 401 of the refused login is the one error the browser reports; nothing else may be.
    expect(problems.splice(0).every((p) => p.includes("401"))).toBe(true);

    await page.fill("#password", ADMIN_PASSWORD);
    await page.click("button[type=submit]");
    await page.waitForSelector("#workers tbody tr[data-pid]");
    await waitFor(async () => (await page.textContent("#connections-now")) !== "–", { what: "the first numbers" });
    const pids = await page.$$eval("#workers tbody tr[data-pid]", (rows) => rows.map((r) => Number(r.getAttribute("data-pid"))));
    expect(pids.sort()).toEqual(server.liveWorkerPids().sort());
    expect(problems).toEqual([]);
  });

  it("moves its numbers and charts while a client publishes", async () => {
    const channel = "browser-busy";
    const publisher = await connect(server.url, server.token());
    const listener = await connect(server.url, server.token());
    for (const s of [publisher, listener]) expect(await request(s, "channel:subscribe", channel)).toEqual({ success: true });
    const pointsBefore = await page.getAttribute("#chart-messages polyline.s0", "points");
    let publishing = true;
    const loop = (async () => {
      while (publishing) {
        await request(publisher, "message:queue", channel, { at: Date.now() });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await waitFor(async () => (await number("#published-rate")) > 0 && (await number("#delivered-rate")) > 0, {
        what: "published and delivered rates above 0 on the page",
      });
      await waitFor(async () => Number(await page.getAttribute("#chart-messages", "data-max")) > 0, { what: "the messages chart to rise" });
      expect(await page.getAttribute("#chart-messages polyline.s0", "points")).not.toBe(pointsBefore);
      expect(await number("#connections-now")).toBeGreaterThanOrEqual(2);
      await waitFor(async () => (await page.textContent("#channels tbody"))?.includes(channel), { what: "the busy channel in the table" });
    } finally {
      publishing = false;
      await loop;
    }
    expect(problems).toEqual([]);
  });

  it("disconnects a socket from the page", async () => {
    const target = await connect(server.url, server.token());
    const id = target.id!;
    const closed = nextEvent<string>(target, "disconnect");
    await page.fill("#disconnect-socket", id);
    await page.click("#disconnect-form button");
    expect(await closed).toBe("io server disconnect");
    await waitFor(async () => (await page.textContent("#action-result"))?.includes(`Disconnected ${id}`), { what: "the page to say so" });
    expect(problems).toEqual([]);
  });

  it("lists a channel's presence members and disconnects one from the list", async () => {
    const channel = "browser-members";
    const member = await connect(server.url, server.token());
    const id = member.id!;
    expect(await request(member, "channel:subscribe", channel)).toEqual({ success: true });
    expect(await request(member, "presenceSet:enter", channel, { name: "Ada" })).toMatchObject({ success: true });
    const row = `#channels tr[data-channel="${channel}"] button.members`;
    await page.waitForSelector(row);
    await page.click(row);
    await page.waitForSelector(`#members-table tr[data-socket="${id}"]`);
    expect(await page.textContent(`#members-table tr[data-socket="${id}"]`)).toContain("Ada");
    const closed = nextEvent<string>(member, "disconnect");
    await page.click(`#members-table tr[data-socket="${id}"] button`);
    expect(await closed).toBe("io server disconnect");
    expect(problems).toEqual([]);
  });

  it("publishes a test message from the page that a subscriber receives", async () => {
    const channel = "browser-test-message";
    const listener: Socket = await connect(server.url, server.token());
    expect(await request(listener, "channel:subscribe", channel)).toEqual({ success: true });
    const received = nextEvent<{ content: unknown }>(listener, `message:receive:${channel}`);
    await page.fill("#publish-channel", channel);
    await page.fill("#publish-data", '{"from": "the admin page"}');
    await page.click("#publish-form button");
    expect((await received).content).toEqual({ from: "the admin page" });
    await waitFor(async () => (await page.textContent("#action-result"))?.startsWith("Published"), { what: "the page to say so" });
    expect(problems).toEqual([]);
  });

  it("shows the workers stuck and the server API unavailable, then back, without console errors", async () => {
    const pids = server.liveWorkerPids();
    for (const pid of pids) process.kill(pid, "SIGSTOP");
    try {
      await waitFor(async () => (await page.textContent("#banner"))?.includes("cluster view is unavailable"), {
        what: "the page to say the server API is unavailable",
        timeoutMs: 30_000,
      });
      expect(await page.textContent("#banner")).toContain("not answering");
    } finally {
      for (const pid of pids) process.kill(pid, "SIGCONT");
    }
    await waitFor(async () => await page.isHidden("#banner"), { what: "the banner to go", timeoutMs: 30_000 });
    expect(problems).toEqual([]);
  });

  it("shows a worker that died, then shows it back, without console errors", async () => {
    const [victim] = server.liveWorkerPids();
    process.kill(victim!, "SIGKILL");
    await waitFor(async () => (await page.textContent("#banner"))?.includes("is restarting"), { what: "the page to show the worker restarting" });
    await waitFor(async () => server.liveWorkerPids().length === 2, { what: "the worker restarted", timeoutMs: 30_000 });
    await waitFor(async () => (await page.isHidden("#banner")), { what: "the banner to go", timeoutMs: 30_000 });
    const pids = await page.$$eval("#workers tbody tr[data-pid]", (rows) => rows.map((r) => Number(r.getAttribute("data-pid"))));
    expect(pids).not.toContain(victim);
    expect(problems).toEqual([]);
  });
});
