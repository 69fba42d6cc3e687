/**
 * GET /metrics on the side port (docs/metrics.md): one Prometheus scrape for the whole host,
 * summed over the workers and the primary, moved by real traffic.
 */
import { Registry } from "prom-client";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { aggregateMetrics, collectProcessMetrics } from "../src/shared/metrics.js";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { MODES, modeServers } from "./helpers/modes.js";
import { closeAllRecoveringClients, nextConnect, recoveringClient } from "./helpers/recovering-client.js";
import { stopAllServers, type RunningServer } from "./helpers/server.js";
import { latch, waitFor } from "./helpers/wait.js";

const METRICS_TOKEN = "metrics-token-0123456789";

interface Scrape {
  /** Sample value by `name{labels}` exactly as printed. */
  samples: Map<string, number>;
  /** Metric family name -> its TYPE. */
  types: Map<string, string>;
  /** Every label value printed, to check that none names a channel or a client. */
  labelValues: Set<string>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses Prometheus text format strictly enough to catch a malformed line. */
function parse(text: string): Scrape {
  const scrape: Scrape = { samples: new Map(), types: new Map(), labelValues: new Set() };
  const helps = new Set<string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("# HELP ")) {
      helps.add(line.split(" ")[2]!);
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      expect(["counter", "gauge", "histogram", "summary", "untyped"]).toContain(type);
      scrape.types.set(name!, type!);
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const [, name, , labels] = match;
    const family = [...scrape.types.keys()].find((f) => name === f || (name!.startsWith(`${f}_`) && /_(bucket|sum|count)$/.test(name!)));
    if (!family) throw new Error(`sample before its TYPE line: ${line}`);
    for (const [, , value] of (labels ?? "").matchAll(LABEL)) scrape.labelValues.add(value!);
    scrape.samples.set(`${name}${match[2] ?? ""}`, Number(match[4]));
  }
  for (const family of scrape.types.keys()) expect(helps, `HELP for ${family}`).toContain(family);
  return scrape;
}

async function scrape(server: RunningServer, token: string | undefined = METRICS_TOKEN): Promise<Scrape> {
  const res = await fetch(`${server.healthUrl}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

const value = (s: Scrape, key: string) => s.samples.get(key) ?? 0;

describe.each(MODES)("GET /metrics (%s mode)", (mode) => {
  const servers = modeServers(mode);
  let server: RunningServer;

  beforeAll(async () => {
    server = await servers.start({ env: { METRICS_TOKEN } });
  });
  afterAll(async () => {
    closeAllClients();
    closeAllRecoveringClients();
    await stopAllServers();
    await servers.stop();
  });

  it("asks for the bearer token when METRICS_TOKEN is set", async () => {
    expect((await fetch(`${server.healthUrl}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${server.healthUrl}/metrics`, { headers: { authorization: "Bearer metrics-token-9876543210" } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toMatch(/^Bearer/);
  });

  it("is valid Prometheus text, every name prefixed, with the host's processes in it", async () => {
    const s = await scrape(server);
    for (const family of s.types.keys()) expect(family).toMatch(/^cerebellum_/);
    for (const name of [
      "cerebellum_connections",
      "cerebellum_messages_published_total",
      "cerebellum_messages_delivered_total",
      "cerebellum_command_duration_seconds",
      "cerebellum_persistence_queue_depth",
      "cerebellum_worker_restarts_total",
      "cerebellum_nodejs_eventloop_lag_seconds",
    ]) {
      expect(s.types.has(name), name).toBe(true);
    }
    expect(value(s, "cerebellum_workers_ready")).toBe(2);
    expect(value(s, "cerebellum_metrics_workers_missing")).toBe(0);
    // Process metrics: the primary on its own, the workers summed.
    expect(value(s, 'cerebellum_process_resident_memory_bytes{process="primary"}')).toBeGreaterThan(0);
    expect(value(s, 'cerebellum_process_resident_memory_bytes{process="worker"}')).toBeGreaterThan(0);
  });

  it("counts connects, subscriptions, publishes, deliveries, recoveries and disconnects", async () => {
    const channel = `metrics-${mode}`;
    const before = await scrape(server);

    const subscribers: Socket[] = [];
    for (let i = 0; i < 3; i++) subscribers.push(await connect(server.url, server.token(), { transports: ["websocket"] }));
    const publisher = await connect(server.url, server.token(), { transports: ["websocket"] });
    const received = latch(15, 15_000, "15 deliveries");
    for (const socket of subscribers) {
      socket.on(`message:receive:${channel}`, () => received.hit());
      expect(await request(socket, "channel:subscribe", channel)).toEqual({ success: true });
    }
    for (let i = 0; i < 5; i++) expect(await request(publisher, "message:queue", channel, { i })).toMatchObject({ success: true });
    expect(await request(publisher, "channel:subscribe", "")).toMatchObject({ success: false, error: "INVALID_CHANNEL" });
    await received.done;

    // A connection that drops and comes back with its session.
    const recovering = await recoveringClient(server.url, server.token());
    const back = nextConnect(recovering);
    recovering.io.engine.close();
    expect(await back).toBe(true);
    // One subscriber leaves.
    subscribers.pop()!.disconnect();

    const after = await waitFor(
      async () => {
        const s = await scrape(server);
        const left = value(s, 'cerebellum_disconnects_total{reason="client namespace disconnect"}') - value(before, 'cerebellum_disconnects_total{reason="client namespace disconnect"}');
        return left === 1 && value(s, "cerebellum_connections") === 4 ? s : undefined;
      },
      { what: "the disconnect in the metrics" },
    );
    const delta = (key: string) => value(after, key) - value(before, key);

    // 3 subscribers, the publisher, the recovering client and its recovered connection.
    expect(delta("cerebellum_connects_total")).toBe(6);
    expect(delta('cerebellum_recoveries_total{recovered="true"}')).toBe(1);
    expect(delta('cerebellum_disconnects_total{reason="transport close"}')).toBe(1);
    expect(delta("cerebellum_messages_published_total")).toBe(5);
    expect(delta("cerebellum_messages_delivered_total")).toBe(15);
    expect(delta('cerebellum_command_duration_seconds_count{event="message:queue"}')).toBe(5);
    expect(delta('cerebellum_command_duration_seconds_count{event="channel:subscribe"}')).toBe(4);
    expect(delta('cerebellum_command_failures_total{event="channel:subscribe",code="INVALID_CHANNEL"}')).toBe(1);
    expect(value(after, "cerebellum_subscriptions")).toBe(2);
    // Counted per worker: the two subscribers left may sit on one worker or on both.
    expect(value(after, "cerebellum_channels")).toBeGreaterThanOrEqual(1);
    expect(value(after, "cerebellum_channels")).toBeLessThanOrEqual(2);

    // Never a label per channel or per client.
    const ids = [...subscribers, publisher, recovering].map((s) => s.id!);
    for (const label of after.labelValues) {
      expect(label).not.toContain(channel);
      for (const id of ids) expect(label).not.toContain(id);
    }
  });
});

describe("aggregateMetrics", () => {
  it("leaves out an event-loop lag window with no samples instead of printing NaN", async () => {
    const registry = new Registry();
    collectProcessMetrics(registry, "worker");
    await new Promise((resolve) => setTimeout(resolve, 50));
    const full = await registry.getMetricsAsJSON();
    // prom-client resets the delay histogram at each read: read at once again, the window is empty.
    const empty = await registry.getMetricsAsJSON();
    const mean = (snapshot: typeof full) => snapshot.find((m) => m.name === "cerebellum_nodejs_eventloop_lag_mean_seconds")!.values[0]?.value;
    expect(mean(full)).toBeGreaterThan(0);
    expect(mean(empty)).toBeNaN();

    const emptyOnly = parse(await aggregateMetrics([empty]));
    expect([...emptyOnly.samples.keys()].filter((k) => k.includes("eventloop_lag_mean"))).toEqual([]);
    expect([...emptyOnly.samples.values()].some((v) => Number.isNaN(v))).toBe(false);

    const both = parse(await aggregateMetrics([full, empty]));
    expect(both.samples.get('cerebellum_nodejs_eventloop_lag_mean_seconds{process="worker"}')).toBe(mean(full));
    expect(both.samples.get('cerebellum_nodejs_eventloop_lag_min_seconds{process="worker"}')).toBeLessThan(1);
  });
});
