import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { io as connectClient, type Socket as ClientSocket } from "socket.io-client";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import type { RunData } from "../scripts/loadtest/coordinator.js";
import { paddingFor, probeJson } from "../scripts/loadtest/engines/client.js";
import { decodeSocketPacket, encodeEvent, readProbe, trailingOffset } from "../scripts/loadtest/engines/framing.js";
import { encodeHistogram, logBuckets, mergeEncoded, newHistogram, recordMs, summarize } from "../scripts/loadtest/hdr.js";
import { ShardMetrics } from "../scripts/loadtest/metrics.js";
import { judgeStage, objectivesOf, type StageVerdict } from "../scripts/loadtest/limits.js";
import { fitLine } from "../scripts/loadtest/linear-fit.js";
import { OptionsError, buildOptions, defaultOutDir, resolveOptions } from "../scripts/loadtest/options.js";
import { renderHtml } from "../scripts/loadtest/report-html.js";
import { buildResult, type LoadtestResult } from "../scripts/loadtest/result.js";
import { stagePlan } from "../scripts/loadtest/runtime.js";
import { PublisherTrack, tallyDeliveries, type ReceivedTally } from "../scripts/loadtest/sequence.js";
import { parseStat, parseStatusRss } from "../harness/procfs.js";
import { decodeProcAddress, parseMeminfo, parseSchedstat, parseTcpLine, processTree } from "../scripts/loadtest/server-stats.js";
import { formatBench, median, summarizeBench, type TargetRun } from "../scripts/bench/report.js";
import { freePort } from "./helpers/ports.js";
import { startRedis, type RedisInstance } from "./helpers/redis.js";
import { startServer, stopAllServers } from "./helpers/server.js";

const CLI = resolve(__dirname, "../dist/scripts/loadtest/cli.js");
const BASELINE_CLUSTER = resolve(__dirname, "../dist/scripts/bench/baseline-cluster.js");

describe("loadtest options", () => {
  const noFile = () => {
    throw new Error("no config file expected");
  };

  it("applies the scenario's defaults", () => {
    const fan = resolveOptions([], {}, noFile);
    expect(fan).toMatchObject({ url: "http://127.0.0.1:8001", scenario: "fan-out", engine: "raw", transport: "websocket", connections: 1000, channels: 1, publishers: 1, rates: [10], durationS: 30, warmupS: 2, procs: 1 });
    expect(resolveOptions(["--scenario", "chat", "--connections", "500"], {}, noFile)).toMatchObject({ channels: 50, publishers: 50 });
    expect(resolveOptions(["--scenario", "connect-storm"], {}, noFile)).toMatchObject({ warmupS: 0, rates: [200] });
    expect(resolveOptions(["--scenario", "persistence-throughput"], {}, noFile)).toMatchObject({ rates: "max", inflight: 64 });
    expect(Object.isFrozen(fan)).toBe(true);
  });

  it("reads rates as one number, a ramp of stages, or max", () => {
    expect(resolveOptions(["--rate", "250"], {}, noFile).rates).toEqual([250]);
    expect(resolveOptions(["--rate", "100, 200,400.5"], {}, noFile).rates).toEqual([100, 200, 400.5]);
    expect(resolveOptions(["--rate", "max"], {}, noFile).rates).toBe("max");
    expect(() => resolveOptions(["--rate", "fast"], {}, noFile)).toThrow(OptionsError);
    expect(() => resolveOptions(["--rate", "-5"], {}, noFile)).toThrow(/--rate/);
  });

  it("layers the config file under the flags, in camelCase or kebab-case keys", () => {
    const file = { scenario: "chat", connections: 40, "connect-rate": 50, rate: [5, 10], html: false, url: "http://example.test:9000/" };
    const o = resolveOptions(["--config", "x.json", "--connections", "60", "--html"], {}, () => file);
    expect(o).toMatchObject({ scenario: "chat", connections: 60, connectRate: 50, rates: [5, 10], url: "http://example.test:9000" });
    expect(resolveOptions(["--no-html", "--no-ack"], {}, noFile)).toMatchObject({ html: false, ack: false });
  });

  it("names the bad option in its error", () => {
    expect(() => resolveOptions(["--conections", "5"], {}, noFile)).toThrow(OptionsError);
    expect(() => resolveOptions(["--config", "c.json"], {}, () => ({ bogus: 1 }))).toThrow("--bogus: unknown option");
    expect(() => resolveOptions(["--engine", "raw", "--transport", "polling"], {}, noFile)).toThrow(/--transport: the raw engine/);
    expect(() => resolveOptions(["--window-by", "delivery", "--procs", "2"], {}, noFile)).toThrow(/--window-by/);
    expect(() => resolveOptions(["--url", "ftp://x"], {}, noFile)).toThrow(/--url/);
    expect(() => resolveOptions(["--duration", "0"], {}, noFile)).toThrow(/--duration/);
  });

  it("reads the connections scenario's ramp as levels, or N in equal steps", () => {
    expect(resolveOptions(["--scenario", "connections"], {}, noFile)).toMatchObject({ connections: 2000, connectionLevels: [500, 1000, 1500, 2000], channels: 200, publishers: 10, rates: [10], warmupS: 5, sloConnectP99Ms: 5000 });
    expect(resolveOptions(["--scenario", "connections", "--slo-connect-p99", "800"], {}, noFile).sloConnectP99Ms).toBe(800);
    expect(resolveOptions([], {}, noFile)).toMatchObject({ sloAckP99Ms: 1000, sloConnectP99Ms: 1000, maxRssBytes: undefined });
    expect(resolveOptions(["--scenario", "connections", "--connections", "1000,3000,9000"], {}, noFile)).toMatchObject({ connections: 9000, connectionLevels: [1000, 3000, 9000], channels: 900 });
    expect(() => resolveOptions(["--scenario", "connections", "--connections", "3000,1000"], {}, noFile)).toThrow(/--connections: the levels must rise/);
    expect(() => resolveOptions(["--scenario", "connections", "--rate", "10,20"], {}, noFile)).toThrow(/--rate: the connections scenario ramps connections/);
    expect(() => resolveOptions(["--connections", "100,200"], {}, noFile)).toThrow(/--connections: a list of levels is for --scenario connections/);
    // Each stage's warm-up is stretched by the time its new connections take at --connect-rate.
    const o = resolveOptions(["--scenario", "connections", "--connections", "100,300", "--connect-rate", "100", "--warmup", "1", "--duration", "5"], {}, noFile);
    expect(stagePlan(o, 0)).toEqual([
      { index: 0, rate: 10, level: 100, warmupAt: 0, measureAt: 2000, endAt: 7000 },
      { index: 1, rate: 10, level: 300, warmupAt: 7000, measureAt: 10_000, endAt: 15_000 },
    ]);
  });

  it("writes results into the project's loadtest-results, whatever the current directory", () => {
    expect(resolveOptions([], {}, noFile).outDir).toBe(resolve(__dirname, "../loadtest-results"));
    expect(defaultOutDir(resolve(__dirname, "../scripts/loadtest"))).toBe(resolve(__dirname, "../loadtest-results"));
    expect(resolveOptions(["--out", "elsewhere"], {}, noFile).outDir).toBe("elsewhere");
  });

  it("takes the key from API_KEY unless a key or a token is given", () => {
    expect(resolveOptions([], { API_KEY: "k".repeat(20) }, noFile).apiKey).toBe("k".repeat(20));
    expect(resolveOptions(["--api-key", "mine"], { API_KEY: "env" }, noFile).apiKey).toBe("mine");
    const withToken = resolveOptions(["--token", "a.b.c"], { API_KEY: "env" }, noFile);
    expect(withToken).toMatchObject({ token: "a.b.c", apiKey: undefined });
  });
});

describe("raw engine framing", () => {
  const delivered = (content: string, offset?: string) =>
    Buffer.from(`42["message:receive:room:1",{"createdAt":"2026-01-01T00:00:00.000Z","content":${content},"socketId":"abc","messageId":"m-1"}${offset === undefined ? "" : `,"${offset}"`}]`);

  it("reads the probe of a delivered message without parsing JSON", () => {
    const probe = { p: 12, s: 345, t: 1_764_000_000_123.456 };
    const frame = delivered(probeJson(probe, paddingFor(100)), "e1-77");
    expect(readProbe(frame)).toEqual(probe);
    expect(trailingOffset(frame)).toBe("e1-77");
    // The same frame through JSON agrees.
    const packet = decodeSocketPacket(frame.toString("utf8", 1));
    expect((packet.data as unknown[])[1]).toMatchObject({ content: { p: 12, s: 345, t: probe.t } });
  });

  it("falls back (undefined) when the content is not a probe in the generator's key order", () => {
    expect(readProbe(delivered(`{"s":1,"p":2,"t":3}`))).toBeUndefined();
    expect(readProbe(delivered(`"text"`))).toBeUndefined();
    expect(trailingOffset(delivered(`"text"`))).toBeUndefined();
  });

  it("encodes events with and without ack ids and decodes acks", () => {
    expect(encodeEvent("channel:subscribe", ["a"])).toBe('42["channel:subscribe","a"]');
    expect(encodeEvent("channel:subscribe", ["a"], 17)).toBe('4217["channel:subscribe","a"]');
    expect(decodeSocketPacket('317[{"success":true}]')).toEqual({ type: 0x33, id: 17, data: [{ success: true }] });
    expect(decodeSocketPacket('0{"sid":"x","pid":"y"}')).toEqual({ type: 0x30, id: undefined, data: { sid: "x", pid: "y" } });
  });

  it("pads probes to about the requested size", () => {
    const json = probeJson({ p: 3, s: 10_000, t: Date.now() + 0.5 }, paddingFor(100));
    expect(Math.abs(json.length - 100)).toBeLessThanOrEqual(8);
  });
});

describe("HDR latency summaries", () => {
  it("reports percentiles within the histogram's precision", () => {
    const h = newHistogram();
    for (let ms = 1; ms <= 1000; ms++) recordMs(h, ms);
    const s = summarize(h);
    expect(s.count).toBe(1000);
    expect(s.p50).toBeCloseTo(500, -0.3);
    expect(s.p90).toBeCloseTo(900, -0.5);
    expect(s.p99).toBeCloseTo(990, -0.5);
    expect(s.max).toBeCloseTo(1000, -0.5);
    expect(s.min).toBe(1);
    expect(s.mean).toBeCloseTo(500.5, 0);
  });

  it("keeps sub-millisecond resolution and clamps clock skew to zero", () => {
    const h = newHistogram();
    recordMs(h, 0.25);
    recordMs(h, -3);
    expect(summarize(h)).toMatchObject({ count: 2, min: 0, max: 0.25 });
  });

  it("merges histograms from other processes exactly", () => {
    const a = newHistogram();
    const b = newHistogram();
    for (let i = 0; i < 900; i++) recordMs(a, 2);
    for (let i = 0; i < 100; i++) recordMs(b, 50);
    const merged = newHistogram();
    mergeEncoded(merged, encodeHistogram(a));
    mergeEncoded(merged, encodeHistogram(b));
    mergeEncoded(merged, encodeHistogram(newHistogram())); // an empty one adds nothing
    const s = summarize(merged);
    expect(s.count).toBe(1000);
    expect(s.p50).toBeCloseTo(2, 1);
    expect(s.p99).toBeCloseTo(50, 0);
    expect(logBuckets(merged).reduce((n, bucket) => n + bucket.count, 0)).toBe(1000);
  });

  it("summarises an empty histogram as zeros", () => {
    expect(summarize(newHistogram())).toEqual({ count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 });
    expect(logBuckets(newHistogram())).toEqual([]);
  });
});

describe("lost and duplicate detection", () => {
  const feed = (seqs: number[]) => {
    const t = new PublisherTrack();
    for (const s of seqs) t.see(s);
    return t;
  };

  it("counts in-order, duplicated and overtaken messages", () => {
    expect(feed([1, 2, 3, 4])).toMatchObject({ distinct: 4, duplicates: 0, reordered: 0, next: 5 });
    expect(feed([1, 2, 2, 3, 1])).toMatchObject({ distinct: 3, duplicates: 2, reordered: 0 });
    expect(feed([1, 3, 2, 4])).toMatchObject({ distinct: 4, duplicates: 0, reordered: 1, next: 5 });
    expect(feed([1, 3, 3, 5])).toMatchObject({ distinct: 3, duplicates: 1, next: 2 });
  });

  it("tallies losses across processes, not counting what the server refused", () => {
    // Publisher 0 sent 10 (1 refused, so 9 broadcast) to a channel with 3 subscribers in two processes.
    const sent = new Map([
      [0, { sent: 10, refused: 1 }],
      [1, { sent: 5, refused: 0 }],
    ]);
    const processA = new Map<number, ReceivedTally>([[0, { receivers: 2, distinct: 18, duplicates: 1, reordered: 0 }]]);
    const processB = new Map<number, ReceivedTally>([
      [0, { receivers: 1, distinct: 7, duplicates: 0, reordered: 2 }],
      [1, { receivers: 4, distinct: 20, duplicates: 0, reordered: 0 }],
    ]);
    expect(tallyDeliveries(sent, [processA, processB])).toEqual({
      expected: 27 + 20,
      delivered: 25 + 20,
      lost: 2,
      duplicated: 1,
      reordered: 2,
      unexpected: 0,
    });
  });

  it("reports receivers of a publisher that never reported as losing everything", () => {
    const tally = tallyDeliveries(new Map([[3, { sent: 4, refused: 0 }]]), [new Map([[3, { receivers: 2, distinct: 0, duplicates: 0, reordered: 0 }]])]);
    expect(tally).toMatchObject({ expected: 8, lost: 8 });
  });
});

describe("measured windows", () => {
  afterEach(() => vi.useRealTimers());

  it("puts each event in the window of the moment it happens", () => {
    vi.useFakeTimers({ now: 10_000 });
    const m = new ShardMetrics();
    m.count("connects"); // setup
    m.plan([
      { index: 0, measureAt: 11_000, endAt: 12_000 },
      { index: 1, measureAt: 13_000, endAt: 14_000 },
    ]);
    m.count("connects"); // before the first measured window: warm-up, not counted in a stage
    vi.setSystemTime(11_500);
    m.delivery(3);
    m.count("published");
    vi.setSystemTime(12_500); // the second stage's warm-up
    m.delivery(3);
    vi.setSystemTime(13_000);
    m.latency("connect", 7);
    vi.setSystemTime(14_000); // drain
    m.delivery(3);
    expect(m.setup.counters.connects).toBe(1);
    expect(m.stages[0]!.counters).toMatchObject({ deliveries: 1, published: 1 });
    expect(m.stages[1]!.latency.connect.totalCount).toBe(1);
    expect(m.stages[1]!.counters.deliveries).toBe(0);
    expect(m.total.counters).toMatchObject({ deliveries: 3, connects: 2, published: 1 });
  });
});

describe("server readings from /proc", () => {
  it("parses stat lines whose command holds spaces and parentheses", () => {
    const line = "4242 (cerebellum (w) 1) S 4200 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 100 1000 2000";
    expect(parseStat(line)).toEqual({ name: "cerebellum (w) 1", ppid: 4200, ticks: 300 });
    expect(parseStatusRss("Name:\tnode\nVmRSS:\t  123456 kB\nThreads: 7\n")).toBe(123456 * 1024);
    expect(parseSchedstat("24912389 9203745 27\n")).toEqual({ runNs: 24912389, waitNs: 9203745, slices: 27 });
    expect(parseSchedstat("24912389 9203745\n")).toBeUndefined();
    expect(parseSchedstat("a b c")).toBeUndefined();
  });

  it("reads TCP sockets and the host's memory", () => {
    const line = "   3: 0100007F:A1B2 0100007F:18EB 01 00000000:00000000 00:00000000 00000000  1000        0 424242 1 0000000000000000 20 4 30 10 -1";
    expect(parseTcpLine(line)).toEqual({ localPort: 0xa1b2, remoteAddress: "127.0.0.1", remotePort: 6379, state: "01", inode: "424242" });
    expect(parseTcpLine("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode")).toBeUndefined();
    expect(decodeProcAddress("00000000000000000000000001000000")).toBe("::1");
    expect(decodeProcAddress("0000000000000000FFFF00000100007F")).toBe("127.0.0.1");
    expect(parseMeminfo("MemTotal:       16000000 kB\nMemFree:  1 kB\nMemAvailable:    8000000 kB\n")).toEqual({ totalBytes: 16_000_000 * 1024, availableBytes: 8_000_000 * 1024 });
    expect(parseMeminfo("MemTotal: 1 kB\n")).toBeUndefined();
  });
});

describe("costs per connection", () => {
  it("fits a line through the levels, the fixed part in the intercept", () => {
    const fit = fitLine([
      [1000, 300e6 + 1000 * 20_000],
      [2000, 300e6 + 2000 * 20_000],
      [4000, 300e6 + 4000 * 20_000],
    ])!;
    expect(fit.slope).toBeCloseTo(20_000, 6);
    expect(fit.intercept).toBeCloseTo(300e6, 0);
    expect(fit.r2).toBeCloseTo(1, 9);
    expect(fitLine([[1000, 5]])).toBeUndefined();
    expect(fitLine([[1000, 5], [1000, 6]])).toBeUndefined();
  });
});

/** A synthetic run: two processes, one stage, known counts and latencies. */
function syntheticRun(raw: Parameters<typeof buildOptions>[0] = {}): RunData {
  const options = buildOptions({ scenario: "fan-out", connections: 1000, rate: 20, duration: 10, warmup: 1, sloP99: 50, url: "http://127.0.0.1:1", ...raw });
  const stages = stagePlan(options, 1_000_000);
  const finals = [0, 1].map((shard) => {
    const m = new ShardMetrics();
    m.count("connects", 500);
    m.latency("connect", 5);
    m.plan([{ index: 0, measureAt: Date.now() - 1000, endAt: Date.now() + 60_000 }]);
    for (let i = 0; i < 100_000; i++) m.delivery(shard === 0 ? 2 : 20);
    m.count("published", 200);
    return {
      sent: shard === 0 ? ([[0, { sent: 220, refused: 0 }]] as Array<[number, { sent: number; refused: number }]>) : [],
      received: [[0, { receivers: 500, distinct: 110_000 - shard, duplicates: shard, reordered: 0 }]] as Array<[number, ReceivedTally]>,
      total: m.total.encode(),
      setup: m.setup.encode(),
      stages: m.stages.map((w) => w.encode()),
      errors: [...m.errors],
    };
  });
  const sample = (rss: number, cpuS: number, at: number) => ({ at, cpuS, rssBytes: rss, processes: [{ pid: 7, ppid: 1, name: "srv", cpuS, rssBytes: rss }], peers: [], host: { totalBytes: 16 * 2 ** 30, availableBytes: 8 * 2 ** 30 } });
  return {
    options,
    runId: "abcd",
    startedAt: 999_000,
    endedAt: 1_020_000,
    interrupted: false,
    failures: [],
    stages,
    finals,
    timeline: [{ at: 1_002_000, t: 2, phase: "measure", stage: 0, open: 1001, counters: { ...finals[0]!.total.counters }, p50: 2, p99: 20, max: 21, serverCores: 0.5, serverRssBytes: 80e6 }],
    server: {
      rootPid: 7,
      peers: [],
      idle: sample(50e6, 1, 999_000),
      connected: sample(50e6 + 1001 * 30_000, 2, 1_000_000),
      ran: sample(90e6, 12, 1_012_000),
      stages: [{ start: sample(60e6, 2, stages[0]!.measureAt), end: sample(60e6, 6, stages[0]!.endAt) }],
      peakRssBytes: 95e6,
    },
    openAtReady: 1001,
    openAtRan: 1001,
  };
}

describe("result file", () => {
  const result: LoadtestResult = buildResult(syntheticRun());

  it("has the documented shape", () => {
    expect(Object.keys(result)).toEqual(
      expect.arrayContaining(["tool", "schema", "runId", "startedAt", "endedAt", "interrupted", "failures", "options", "host", "connections", "stages", "totals", "delivery", "latencyMs", "errors", "server", "charts", "timeline", "capacity"]),
    );
    expect(result.tool).toBe("cerebellum-loadtest");
    expect(result.options.apiKey).toBeUndefined();
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  });

  it("computes per-stage rates and merges both processes' latencies", () => {
    const [stage] = result.stages;
    expect(stage!.durationS).toBe(10);
    expect(stage!.warmupS).toBe(1);
    expect(stage!.counters.deliveries).toBe(200_000);
    expect(stage!.perSecond.deliveries).toBe(20_000);
    expect(stage!.latencyMs.delivery.p50).toBeCloseTo(2, 1);
    expect(stage!.latencyMs.delivery.p99).toBeCloseTo(20, 0);
    // RSS at the end of the window, and its lowest, mean and peak over the timeline's points in it.
    expect(stage!.server).toEqual({ cpuS: 4, cores: 0.4, cpuUsPerDelivery: 20, cpuUsPerUnit: 20, rssBytes: 60e6, minRssBytes: 80e6, meanRssBytes: 80e6, peakRssBytes: 80e6 });
    expect(stage!.verdict).toEqual({ status: "held", limits: [], text: "held" });
    expect(result.connections).toMatchObject({ connects: 1000, hung: 0 });
    expect(result.connections.latencyMs.p50).toBeCloseTo(5, 1);
  });

  it("measures an interrupted stage only up to the interruption", () => {
    const run = syntheticRun();
    const cut = buildResult({ ...run, interrupted: true, interruptedAt: run.stages[0]!.measureAt + 5000 });
    expect(cut.stages[0]).toMatchObject({ durationS: 5, perSecond: { deliveries: 40_000 } });
    expect(cut.capacity.lines.join("\n")).toMatch(/Interrupted/);
  });

  it("counts losses and duplicates from the sequence tallies", () => {
    expect(result.delivery).toEqual({ expected: 220_000, delivered: 219_999, lost: 1, duplicated: 1, reordered: 0, unexpected: 0 });
  });

  it("measures memory per connection from the idle and connected readings, and reports it only for large runs", () => {
    expect(result.server!.rssPerConnectionBytes).toBe(30_000);
    // 1,001 connections: each process's own growth dominates, so the summary sends to the connections scenario.
    expect(result.capacity.rssPerConnectionBytes).toBeNull();
    expect(result.capacity.lines.join("\n")).toMatch(/memory per connection: not measured with 1,001 connections.*--scenario connections/);
  });

  it("writes a verdict against the objective", () => {
    expect(result.capacity).toMatchObject({ sloP99Ms: 50, sustainedStage: 0, sustainedPerSec: 20_000, unit: "deliveries/s", serverCores: 0.4, perCore: 50_000, firstLimit: null });
    expect(result.capacity.lines.join("\n")).toMatch(/Verdict: sustained 20,000 deliveries\/s with 1,001 connections in stage 1 \(20\/s\)/);
    const strict = buildResult(syntheticRun({ sloP99: 10 }));
    expect(strict.capacity.sustainedStage).toBeNull();
    expect(strict.capacity.firstLimit).toMatchObject({ stage: 0, limit: "delivery" });
    expect(strict.capacity.lines.join("\n")).toMatch(/no stage held every objective; the first limit reached was delivery, in stage 1 \(20\/s\): delivery p99 20 ms > 10 ms/);
  });

  it("renders a self-contained HTML report", () => {
    const html = renderHtml(result);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html.match(/<svg /g)?.length).toBeGreaterThanOrEqual(4);
    expect(html).not.toMatch(/<script|<link|src="http/);
  });
});

/** What happens in one stage of a synthetic ramp. */
interface StageEvents {
  published?: number;
  deliveries?: number;
  deliveryMs?: number;
  ackMs?: number;
  overloaded?: number;
  ackTimeouts?: number;
  hung?: number;
  connectErrors?: number;
  connectMs?: number;
  errors?: number;
}

/**
 * A synthetic chat ramp, one stage per entry, each at 100/s more than the last. Every event is
 * recorded into its stage explicitly, so the clock plays no part.
 */
function rampRun(events: StageEvents[], raw: Parameters<typeof buildOptions>[0] = {}): RunData {
  const options = buildOptions({ scenario: "chat", connections: 100, rate: events.map((_, i) => 100 * (i + 1)), duration: 10, warmup: 1, url: "http://127.0.0.1:1", ...raw });
  const stages = stagePlan(options, 1_000_000);
  const m = new ShardMetrics();
  m.count("connects", 100);
  m.latency("connect", 5);
  m.plan(stages);
  events.forEach((e, i) => {
    const published = e.published ?? 1000;
    const overloaded = e.overloaded ?? 0;
    m.count("published", published, i);
    m.count("acked", published - overloaded - (e.ackTimeouts ?? 0), i);
    m.count("refused", overloaded, i);
    m.count("overloaded", overloaded, i);
    m.count("ackTimeouts", e.ackTimeouts ?? 0, i);
    m.count("deliveries", e.deliveries ?? 10_000, i);
    m.count("hung", e.hung ?? 0, i);
    m.count("connectErrors", e.connectErrors ?? 0, i);
    for (let k = 0; k < (e.errors ?? 0); k++) m.error("publish: DISCONNECTED", i);
    for (let k = 0; k < 100; k++) {
      if ((e.deliveries ?? 10_000) > 0) m.latency("delivery", e.deliveryMs ?? 5, i);
      m.latency("ack", e.ackMs ?? 40, i);
      if (e.connectMs !== undefined) m.latency("connect", e.connectMs, i);
    }
    if (overloaded > 0) m.note("publish refused: OVERLOADED");
  });
  const final = { sent: [], received: [], total: m.total.encode(), setup: m.setup.encode(), stages: m.stages.map((w) => w.encode()), errors: [...m.errors] };
  return { options, runId: "ramp", startedAt: 999_000, endedAt: 1_100_000, interrupted: false, failures: [], stages, finals: [final], timeline: [], server: undefined, openAtReady: 100, openAtRan: 100 };
}

const limitsOf = (v: StageVerdict) => v.limits.map((l) => l.limit);

describe("the verdict names the first limit reached", () => {
  it("blames refusals, not delivery, in a stage limited by persistence (refused OVERLOADED, slow acks)", () => {
    const r = buildResult(rampRun([{}, { overloaded: 250, ackMs: 5400, deliveryMs: 300 }]));
    expect(r.stages[0]!.verdict.status).toBe("held");
    expect(r.stages[1]!.verdict.status).toBe("missed");
    expect(limitsOf(r.stages[1]!.verdict)).toEqual(["refusals", "ack", "delivery"]);
    expect(r.stages[1]!.verdict.text).toMatch(/^missed: refusals — 250 of 1,000 publishes \(25%\) refused OVERLOADED; also ack: ack p99 5,40\d ms > 1,000 ms/);
    expect(r.capacity).toMatchObject({ sustainedStage: 0, firstLimit: { stage: 1, limit: "refusals" } });
    const text = r.capacity.lines.join("\n");
    expect(text).toMatch(/the first limit reached was refusals, in stage 2 \(200\/s\): 250 of 1,000 publishes \(25%\) refused OVERLOADED/);
    // Refusals are not errors, nor anything of the connections.
    expect(r.totals.errors).toBe(0);
    expect(text).toMatch(/Connections: 100 connects for 100 planned; 0 hung, 0 failed, 0 dropped by the server/);
    expect(text).toMatch(/250 refused OVERLOADED/);
    expect(text).toMatch(/^Other errors: 0\.$/m);
  });

  it("judges ack latency: slow or unanswered acks are the limit before delivery", () => {
    const slow = buildResult(rampRun([{ ackMs: 1500, deliveryMs: 300 }]));
    expect(limitsOf(slow.stages[0]!.verdict)).toEqual(["ack", "delivery"]);
    const unanswered = buildResult(rampRun([{ ackTimeouts: 7 }]));
    expect(unanswered.stages[0]!.verdict.limits).toEqual([{ limit: "ack", detail: "7 acks never answered" }]);
    // Its own objective: the same acks hold under a looser one.
    expect(buildResult(rampRun([{ ackMs: 1500 }], { sloAckP99: 2000 })).stages[0]!.verdict.status).toBe("held");
  });

  it("blames delivery when delivery alone is slow", () => {
    const r = buildResult(rampRun([{}, { deliveryMs: 300 }]));
    expect(r.stages[1]!.verdict.limits).toEqual([{ limit: "delivery", detail: "delivery p99 300 ms > 100 ms" }]);
    expect(r.capacity.firstLimit).toEqual({ stage: 1, limit: "delivery", detail: "delivery p99 300 ms > 100 ms" });
  });

  it("blames connects before the latencies they cause", () => {
    const r = buildResult(rampRun([{}, { hung: 3, connectErrors: 2, connectMs: 2500, deliveryMs: 300 }]));
    expect(limitsOf(r.stages[1]!.verdict)).toEqual(["connects", "delivery"]);
    expect(r.stages[1]!.verdict.limits[0]!.detail).toMatch(/^3 connects hung, 2 connects failed, connect p99 2,5\d\d ms > 1,000 ms$/);
    expect(r.capacity.firstLimit).toMatchObject({ stage: 1, limit: "connects" });
  });

  it("names the limit of the first stage that missed, not of a later one", () => {
    const r = buildResult(rampRun([{}, { deliveryMs: 300 }, { overloaded: 10, deliveryMs: 500 }]));
    expect(r.capacity.firstLimit).toMatchObject({ stage: 1, limit: "delivery" });
    expect(r.stages[2]!.verdict.limits[0]!.limit).toBe("refusals");
  });

  it("counts other errors last, and a stage with nothing in it as empty", () => {
    expect(buildResult(rampRun([{ errors: 4 }])).stages[0]!.verdict.limits).toEqual([{ limit: "errors", detail: "4 errors" }]);
    const empty = buildResult(rampRun([{ deliveries: 0 }]));
    expect(empty.stages[0]!.verdict.status).toBe("empty");
    expect(empty.outcome).toEqual({ ok: false, cause: expect.stringMatching(/nothing was measured/) });
  });

  it("judges memory against --max-rss and the host's available memory first", () => {
    const o = objectivesOf(buildOptions({ maxRss: 100 }), "delivery");
    const quiet = buildResult(rampRun([{}])).stages[0]!;
    const judged = (server: { peakRssBytes: number }, host: { totalBytes: number; minAvailableBytes: number }) =>
      judgeStage({ counters: { ...quiet.counters, hung: 1 }, latencyMs: quiet.latencyMs, server, host }, o, 1);
    expect(limitsOf(judged({ peakRssBytes: 101 * 2 ** 20 }, { totalBytes: 2 ** 34, minAvailableBytes: 2 ** 33 }))).toEqual(["memory", "connects"]);
    expect(judged({ peakRssBytes: 50 * 2 ** 20 }, { totalBytes: 2 ** 34, minAvailableBytes: 2 ** 30 }).limits[0]).toEqual({ limit: "memory", detail: "the host had 1,024 MiB of 16,384 MiB available" });
    expect(limitsOf(judged({ peakRssBytes: 50 * 2 ** 20 }, { totalBytes: 2 ** 34, minAvailableBytes: 2 ** 33 }))).toEqual(["connects"]);
  });

  it("marks each stage held or missed in the report, with the objective on the latency charts", () => {
    const run = rampRun([{}, { overloaded: 250, ackMs: 5400, deliveryMs: 300 }]);
    run.timeline = [-1, 0.5, 1.5, 2.5, 11.5, 12.5, 13.5, 22].map((t, i) => ({
      at: 1_000_000 + t * 1000,
      t,
      phase: "measure" as const,
      stage: t < 11 ? 0 : 1,
      open: 100,
      counters: { ...run.finals[0]!.total.counters },
      p50: 2,
      p99: i > 4 ? 300 : 20,
      // Latency only in some seconds: its chart still spans the whole run, like the others.
      max: i % 2 === 0 ? 0 : 30,
      ackP99: 50,
    }));
    const html = renderHtml(buildResult(run));
    expect(html).toContain("First limit reached");
    expect(html).toMatch(/<td><span class="held">held<\/span><\/td>/);
    expect(html).toMatch(/<td><span class="missed">missed: refusals — 250 of 1,000 publishes/);
    expect(html).toContain("objective p99 ≤ 100 ms");
    expect(html).toContain("objective p99 ≤ 1,000 ms");
    expect(html).toContain("OVERLOADED refusals");
    expect(html).toContain("Open connections");
    // Every chart over time has the same time axis.
    const axes = [...html.matchAll(/<figcaption>([^<]*)<\/figcaption><svg[^>]*>(.*?)<\/svg>/g)]
      .filter((m) => m[2]!.includes("seconds since the first stage"))
      .map((m) => [...m[2]!.matchAll(/<text x="([\d.]+)" y="[\d.]+" text-anchor="middle">([^<]*)<\/text>/g)].map((t) => `${t[1]}:${t[2]}`).join(" "));
    expect(axes.length).toBeGreaterThanOrEqual(4);
    expect(new Set(axes).size).toBe(1);
    expect(axes[0]).toMatch(/:0 /);
    // No whole-run latency that mixes the held stage with the missed one.
    expect(html).not.toContain("Latency (measured windows)");
  });
});

describe("bench summary", () => {
  const run = (target: TargetRun["target"], n: number, fanout: number, p50: number, rss: number, hung = 0): TargetRun => ({
    target, run: n, fanoutPerSec: fanout, serverUsPerDelivery: 9, serverCores: 1, primaryUsPerBroadcast: null, redisUsPerBroadcast: null, latencyServerUsPerBroadcast: null, generatorRunUsPerBroadcast: null, generatorWaitUsPerBroadcast: null, latencyP50Ms: p50, latencyP99Ms: p50 * 3, rssPerConnectionBytes: rss, idleRssBytes: 50e6, hung, lost: 0, duplicated: 0, errors: 0,
  });

  it("takes medians and judges the ratios against the bar", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    const summary = summarizeBench([
      run("baseline", 1, 100_000, 4, 30_000),
      run("baseline", 2, 90_000, 5, 28_000),
      run("baseline", 3, 110_000, 6, 29_000),
      run("embedded-w1", 1, 85_000, 6, 36_000),
      run("embedded-w1", 2, 70_000, 7, 35_000),
      run("embedded-w1", 3, 95_000, 8, 34_000),
      run("embedded-w2", 1, 60_000, 9, 40_000, 1),
    ]);
    expect(summary.medians.baseline).toMatchObject({ fanoutPerSec: 100_000, latencyP50Ms: 5, rssPerConnectionBytes: 29_000 });
    const w1 = summary.verdicts["embedded-w1"]!;
    expect(w1.map((v) => v.pass)).toEqual([true, true, true, true]);
    expect(w1[0]!.ratio).toBeCloseTo(0.85);
    const w2 = summary.verdicts["embedded-w2"]!;
    expect(w2.map((v) => v.pass)).toEqual([false, false, false, false]);
    expect(summary.pass).toBe(false);
  });

  it("compares the two-worker shapes with plain socket.io in two processes, without judging the reference", () => {
    const summary = summarizeBench([
      run("baseline", 1, 100_000, 4, 30_000),
      run("baseline-w2", 1, 80_000, 5, 40_000, 2),
      run("embedded-w1", 1, 90_000, 4, 30_000),
      run("embedded-w2", 1, 84_000, 6, 30_000),
    ]);
    // The reference's hung connects and ratios are reported, never held to the bar.
    expect(summary.verdicts["baseline-w2"]).toBeUndefined();
    expect(summary.pass).toBe(true);
    expect(summary.twoProcess).toEqual([
      { target: "baseline-w2", fanout: 0.8, latencyP50: 1.25 },
      { target: "embedded-w2", fanout: 84_000 / 80_000, latencyP50: 6 / 5 },
    ]);
    const text = formatBench([], summary);
    expect(text).toMatch(/plain socket\.io, 2 processes \(reference\) against the baseline +fan-out 0\.80× {2}p50 1\.25×/);
    expect(text).toMatch(/product, embedded, WORKERS=2 against plain socket\.io, 2 processes +fan-out 1\.05× {2}p50 1\.20×/);
    expect(text).toContain("The product meets the bar in every mode.");
  });

  it("reports the latency test's CPU and the generator's wait per broadcast where they were measured", () => {
    const measured = (cpu: number, run: number, wait: number) => ({ latencyServerUsPerBroadcast: cpu, generatorRunUsPerBroadcast: run, generatorWaitUsPerBroadcast: wait });
    const summary = summarizeBench([
      { ...run("baseline", 1, 100_000, 4, 30_000), ...measured(6_000, 6_400, 400) },
      { ...run("baseline", 2, 100_000, 4, 30_000), ...measured(7_000, 6_600, 600) },
      { ...run("embedded-w2", 1, 90_000, 6, 30_000), ...measured(9_700, 7_200, 2_900) },
      run("embedded-w1", 1, 90_000, 5, 30_000),
    ]);
    expect(summary.medians.baseline).toMatchObject(measured(6_500, 6_500, 500));
    expect(summary.medians["embedded-w1"]).toMatchObject({ latencyServerUsPerBroadcast: null, generatorRunUsPerBroadcast: null, generatorWaitUsPerBroadcast: null });
    const lines = formatBench([], summary).split("\n");
    const at = lines.findIndex((l) => l.startsWith("Latency test, µs per broadcast"));
    expect(at).toBeGreaterThan(-1);
    const section = lines.slice(at + 1, lines.indexOf("", at));
    // A header, then only the targets where something was measured.
    expect(section.map((l) => l.trim().replace(/ {2,}/g, " | "))).toEqual([
      "target | server CPU | generator CPU | generator waits | p50 ms",
      "baseline (plain socket.io, 1 process) | 6,500 | 6,500 | 500 | 4.00",
      "product, embedded, WORKERS=2 | 9,700 | 7,200 | 2,900 | 6.00",
    ]);
  });

  it("never passes a run of the references alone", () => {
    const summary = summarizeBench([run("baseline", 1, 100_000, 4, 30_000), run("baseline-w2", 1, 80_000, 5, 40_000)]);
    expect(summary.verdicts).toEqual({});
    expect(summary.pass).toBe(false);
    expect(formatBench([], summary)).toContain("No product target in this run: the bar is not judged.");
  });

  it("never passes a run without the baseline", () => {
    const summary = summarizeBench([run("embedded-w2", 1, 100_000, 4, 30_000)]);
    expect(summary.verdicts).toEqual({});
    expect(summary.pass).toBe(false);
    expect(formatBench([], summary)).toContain("No baseline in this run");
  });
});

/** Runs the CLI as a user would; resolves with its exit code and everything it printed. */
function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args, "--no-progress"], { env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => {
    output += c.toString();
    stderr += c.toString();
  });
  return new Promise((r) => child.once("exit", (code) => r({ code, output, stderr })));
}

const readResult = (dir: string, name: string) => JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8")) as LoadtestResult;

describe("a run that measures nothing exits non-zero with the cause", () => {
  const dir = mkdtempSync(join(tmpdir(), "loadtest-test-"));
  afterAll(async () => {
    await stopAllServers();
    rmSync(dir, { recursive: true, force: true });
  });

  it("against a port nothing listens on", async () => {
    const port = await freePort();
    const { code, output, stderr } = await runCli(["--url", `http://127.0.0.1:${port}`, "--scenario", "chat", "--connections", "6", "--duration", "1", "--api-key", "k", "--out", dir, "--name", "dead"]);
    expect(code, output).toBe(1);
    expect(stderr).toMatch(new RegExp(`loadtest failed: no connection could be opened to http://127.0.0.1:${port} \\(6 × connect failed: .*ECONNREFUSED.*\\); nothing is listening there`));
    expect(output).not.toMatch(/lower rates/);
    const result = readResult(dir, "dead");
    expect(result.outcome).toMatchObject({ ok: false });
    expect(result.stages).toEqual([]);
  });

  it("with a key the server does not accept", async () => {
    const server = await startServer({ workers: 1 });
    const { code, output, stderr } = await runCli(["--url", server.url, "--connections", "4", "--duration", "1", "--api-key", "not-the-server-key", "--out", dir, "--name", "wrong-key"]);
    expect(code, output).toBe(1);
    expect(stderr).toMatch(/loadtest failed: no connection could be opened .*Authentication error \(TOKEN_INVALID_SIGNATURE\).*the server refused the token/);
    expect(readResult(dir, "wrong-key").connections).toMatchObject({ connects: 0, errors: 5 });
  });

  it("when connected but nothing is delivered in any stage (every publish refused)", async () => {
    const server = await startServer({ workers: 1, env: { MESSAGE_MAX_BYTES: "64" } });
    const args = ["--url", server.url, "--connections", "4", "--rate", "20", "--duration", "1", "--warmup", "0.2", "--drain", "1", "--payload", "200"];
    const { code, output, stderr } = await runCli([...args, "--out", dir, "--name", "empty"], { API_KEY: server.apiKey });
    expect(code, output).toBe(1);
    expect(stderr).toMatch(/loadtest failed: nothing was measured in any stage; most frequent problem: publish refused: PAYLOAD_TOO_LARGE \(\d+×\); the server refused the messages as too large/);
    const result = readResult(dir, "empty");
    expect(result.connections.connects).toBe(5);
    expect(result.stages[0]!.counters.deliveries).toBe(0);
  });
});

describe("the connections scenario", () => {
  const dir = mkdtempSync(join(tmpdir(), "loadtest-test-"));
  afterAll(async () => {
    await stopAllServers();
    rmSync(dir, { recursive: true, force: true });
  });
  // Latency objectives out of reach: these runs check the ramp, not this machine's speed.
  const loose = ["--slo-p99", "60000", "--slo-ack-p99", "60000", "--slo-connect-p99", "60000"];
  const ramp = ["--scenario", "connections", "--publishers", "2", "--channels", "2", "--rate", "20", "--duration", "1", "--warmup", "1", "--drain", "1", ...loose];

  it("holds each level in turn and reports the connections, their memory and CPU", async () => {
    const server = await startServer({ workers: 1 });
    const { code, output } = await runCli(["--url", server.url, ...ramp, "--connections", "8,16", "--out", dir, "--name", "ramp"], { API_KEY: server.apiKey });
    expect(code, output).toBe(0);
    const result = readResult(dir, "ramp");
    expect(result.stages.map((s) => [s.level, s.verdict.status])).toEqual([
      [8, "held"],
      [16, "held"],
    ]);
    // The levels' connections, plus the two publishers.
    expect(result.stages.map((s) => s.counters.connects)).toEqual([8, 8]);
    expect(result.stages[1]!.open?.end).toBe(18);
    expect(result.stages.every((s) => s.counters.deliveries > 0)).toBe(true);
    expect(result.stages.every((s) => s.server?.minRssBytes !== undefined)).toBe(true);
    expect(result.capacity.sustainedStage).toBe(1);
    expect(output).toMatch(/Verdict: 18 connections held in stage 2 \(16 connections\)/);
    expect(output).toMatch(/Activity: every connection subscribed to one of 2 channels; 2 publishers send 20 messages\/s/);
  });

  it("stops the ramp at the first level that reaches a limit", async () => {
    const server = await startServer({ workers: 1 });
    // 1 MiB of RSS: every level is past it.
    const { code, output } = await runCli(["--url", server.url, ...ramp, "--connections", "8,16,24", "--max-rss", "1", "--out", dir, "--name", "stop"], { API_KEY: server.apiKey });
    expect(code, output).toBe(0);
    const result = readResult(dir, "stop");
    expect(result.stoppedAfter).toMatchObject({ stage: 0 });
    expect(result.stages).toHaveLength(1);
    expect(result.capacity.firstLimit).toMatchObject({ stage: 0, limit: "memory" });
    expect(result.connections.connects).toBeLessThanOrEqual(2 + 8 + 8); // the third level never started
    expect(output).toMatch(/The ramp stopped after stage 1: it reached a limit \(memory\)/);
  });
});

describe("a short real run", () => {
  const dir = mkdtempSync(join(tmpdir(), "loadtest-test-"));
  let redis: RedisInstance | undefined;
  afterAll(async () => {
    await stopAllServers();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("fans out through the product with nothing lost, duplicated or hung (2 generator processes)", async () => {
    const server = await startServer({ workers: 2 });
    const args = [CLI, "--url", server.url, "--connections", "12", "--publishers", "2", "--rate", "40", "--duration", "2", "--warmup", "0.5", "--drain", "2"];
    args.push("--procs", "2", "--out", dir, "--name", "short", "--no-progress", "--connect-rate", "100");
    const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH, API_KEY: server.apiKey }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    expect(code, output).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["short.html", "short.json"]);
    const result = JSON.parse(readFileSync(join(dir, "short.json"), "utf8")) as LoadtestResult;
    expect(result.failures).toEqual([]);
    expect(result.connections).toMatchObject({ connects: 14, hung: 0, errors: 0 });
    expect(result.totals.deliveries).toBeGreaterThan(0);
    expect(result.stages[0]!.counters.deliveries).toBeGreaterThan(0);
    expect(result.delivery.expected).toBeGreaterThan(0);
    expect(result.delivery).toMatchObject({ lost: 0, duplicated: 0 });
    expect(result.delivery.delivered).toBe(result.delivery.expected);
    expect(result.latencyMs.delivery.count).toBeGreaterThan(0);
    expect(result.server?.processes.length).toBeGreaterThanOrEqual(3); // primary, 2 workers (and the store)
    expect(result.server?.mode).toBe("embedded");
    expect(result.outcome).toEqual({ ok: true });
    expect(result.stages[0]!.verdict.status).not.toBe("empty");
    expect(output).toMatch(/Load test: fan-out .* against embedded mode/);
    expect(output).toMatch(/^Verdict: /m);
  });

  it("records clustered mode and Redis' CPU", async () => {
    redis = await startRedis();
    const server = await startServer({ workers: 2, redisUrl: redis.url });
    const args = ["--url", server.url, "--connections", "6", "--rate", "20", "--duration", "1", "--warmup", "0.3", "--drain", "1", "--out", dir, "--name", "clustered"];
    const { code, output } = await runCli(args, { API_KEY: server.apiKey });
    expect(code, output).toBe(0);
    const result = readResult(dir, "clustered");
    expect(result.server?.mode).toBe("clustered");
    expect(result.server?.peers).toContainEqual(expect.objectContaining({ port: redis.port, name: "redis-server", pid: expect.any(Number) }));
    expect(result.stages[0]!.server?.redisCores).toEqual(expect.any(Number));
    expect(output).toMatch(/against clustered mode \(\d+ processes on this host, with Redis\)/);
  });
});

describe("the bench's two-process reference", () => {
  it("relays a broadcast to subscribers in both processes and stops without leaving one behind", async () => {
    const child = spawn(process.execPath, [BASELINE_CLUSTER, "--port", "0", "--workers", "2"], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const port = await new Promise<number>((res, rej) => {
      child.stdout.on("data", (c: Buffer) => {
        output += c.toString();
        const m = /"port":(\d+)/.exec(output);
        if (m) res(Number(m[1]));
      });
      child.once("exit", (code) => rej(new Error(`exited ${code}: ${output}`)));
    });
    const pids = processTree(child.pid!);
    expect(pids).toHaveLength(3); // the primary and two workers
    const clients: ClientSocket[] = [];
    try {
      // node:cluster hands connections out round-robin: four clients land in both workers.
      for (let i = 0; i < 4; i++) {
        const client = connectClient(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true, reconnection: false });
        clients.push(client);
        await expect(client.timeout(5000).emitWithAck("channel:subscribe", "ref")).resolves.toEqual({ success: true });
      }
      const received = clients.map((c) => new Promise<unknown>((r) => c.once("message:receive:ref", r)));
      const ack = (await clients[0]!.timeout(5000).emitWithAck("message:queue", "ref", { n: 1 })) as { success: boolean; messageId: string };
      expect(ack.success).toBe(true);
      for (const message of await Promise.all(received)) expect(message).toMatchObject({ content: { n: 1 }, messageId: ack.messageId, socketId: clients[0]!.id });
    } finally {
      for (const c of clients) c.close();
    }
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});
