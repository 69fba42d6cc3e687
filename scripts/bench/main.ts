/**
 * `npm run bench`: the fixed performance suite against plain socket.io, on localhost, in one run.
 *
 * Targets, alternated round by round: the baseline (one plain socket.io process, see
 * baseline-server.ts), the product at its defaults (embedded mode, persistence on) with WORKERS=1
 * and WORKERS=2, the product clustered over a private redis-server, and a reference that is
 * not judged: plain socket.io in two processes (baseline-cluster.ts). Each round of each
 * target starts it fresh and runs three load tests with the raw engine (the cheap one: the
 * generator shares this machine's cores with the server):
 *   1. memory: the fresh server's RSS (all its processes summed), then 10,000 idle subscribed
 *      connections and a second reading: (connected − idle) ÷ connections. Many connections,
 *      because each server process also grows by a fixed amount (V8's young generation sizes
 *      itself to the load, up to 2 × 16 MiB per process), which must not dominate a
 *      per-connection figure (docs/benchmarks.md has the figures at 3,000 and 10,000);
 *   2. fan-out: 1000 subscribers on one channel, one publisher keeping 8 messages outstanding,
 *      each complete when every subscriber has it (window by delivery): deliveries/s;
 *   3. latency: 500 subscribers, one broadcast in flight at a time: p50/p99 publish → deliver.
 * It prints every run, the medians and the ratios against the baseline with the bar, and writes
 * the lot to loadtest-results/bench-<time>.json. docs/benchmarks.md explains the method.
 *
 * `--suite scaling` runs the scaling suite instead (scaling.ts): CPU per broadcast by part as
 * workers are added, with many small rooms.
 *
 * Usage: npm run bench [-- flags]; `npm run bench -- --help` lists the flags and their defaults.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { sleep } from "../loadtest/clock.js";
import { readOwnSchedstat, readProcess, type Schedstat } from "../loadtest/server-stats.js";
import { runLoadtest, type RunHooks } from "../loadtest/coordinator.js";
import { buildOptions } from "../loadtest/options.js";
import { buildResult, type LoadtestResult } from "../loadtest/result.js";
import { parseBenchArgs, usage, type BenchArgs, type MainArgs, type MetricsArgs, type ScalingArgs } from "./cli.js";
import { runMetricsBench } from "./metrics-scrape.js";
import { formatBench, summarizeBench, type TargetRun } from "./report.js";
import { DEADLINE_MIN_MS as SCALING_DEADLINE_MIN_MS, DEADLINE_PER_UNIT_MS as SCALING_DEADLINE_PER_UNIT_MS, runScaling, scalingUnits } from "./scaling.js";
import { TARGETS, TARGET_LABELS, startRedis, startTarget, untilSettled, type RunningTarget } from "./targets.js";

/**
 * The whole suite must end by itself; past this it stops and reports what it has. A round of one
 * target takes 45–60 s on the slowest machine seen here, so each gets 2 minutes (20 at least).
 */
const DEADLINE_MIN_MS = 20 * 60_000;
const DEADLINE_PER_TARGET_ROUND_MS = 120_000;

const args: BenchArgs = (() => {
  // Bad flags get one line and a hint, not a stack trace.
  try {
    return parseBenchArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nnpm run bench -- --help lists the flags.\n`);
    process.exit(2);
  }
})();

if (args.help) {
  process.stdout.write(usage(TARGETS));
  process.exit(0);
}

const abort = new AbortController();
process.on("SIGINT", () => {
  if (abort.signal.aborted) process.exit(130);
  process.stderr.write("\nstopping after the current measurement (Ctrl-C again to quit at once)\n");
  abort.abort();
});
const deadlineMs =
  args.suite === "scaling"
    ? Math.max(SCALING_DEADLINE_MIN_MS, args.runs * scalingUnits(args).length * SCALING_DEADLINE_PER_UNIT_MS)
    : Math.max(DEADLINE_MIN_MS, args.runs * args.targets.length * (args.suite === "metrics" ? 2 : 1) * DEADLINE_PER_TARGET_ROUND_MS);
setTimeout(() => {
  process.stderr.write("\nbench deadline reached: stopping\n");
  abort.abort();
}, deadlineMs).unref();

/** The cores this process may use (`nproc`), or os.cpus()'s count. */
function cores(): string {
  try {
    return execFileSync("nproc", { encoding: "utf8" }).trim();
  } catch {
    return String(cpus().length); // nproc missing: os.cpus() stands in
  }
}

function machine(): string {
  const model = cpus()[0]?.model ?? "unknown CPU";
  return `${cores()} cores (${model}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`;
}

/** One load test against a running target, in this process, raw engine. */
async function measure(target: RunningTarget, raw: Record<string, unknown>, onTick?: RunHooks["onTick"]): Promise<LoadtestResult> {
  const options = buildOptions({
    url: target.url,
    engine: "raw",
    scenario: "fan-out",
    publishers: 1,
    channels: 1,
    payload: 100,
    connectRate: 500,
    connectConcurrency: 50,
    drain: 3,
    progress: false,
    html: false,
    serverPid: target.pid,
    ...(target.apiKey ? { apiKey: target.apiKey } : {}),
    ...raw,
  } as Parameters<typeof buildOptions>[0]);
  return buildResult(await runLoadtest(options, { signal: abort.signal, ...(onTick ? { onTick } : {}) }));
}

/**
 * The generator's own scheduler times over a test's measured window: from its first second to its
 * last, with the broadcasts published in between (the first second's are before the window).
 */
function generatorWindow(): { onTick: NonNullable<RunHooks["onTick"]>; perBroadcast(): { runUs: number; waitUs: number } | null } {
  let first: Schedstat | undefined;
  let last: Schedstat | undefined;
  let published = 0;
  return {
    onTick: (point) => {
      if (point.phase !== "measure") return;
      const now = readOwnSchedstat();
      if (!now) return;
      if (!first) {
        first = now;
        return;
      }
      last = now;
      published += point.counters.published;
    },
    perBroadcast: () =>
      first && last && published > 0
        ? { runUs: (last.runNs - first.runNs) / 1e3 / published, waitUs: (last.waitNs - first.waitNs) / 1e3 / published }
        : null,
  };
}

async function roundOf(a: MainArgs, target: RunningTarget, run: number, redisPid: number | undefined): Promise<TargetRun> {
  // Memory: on the fresh server once its memory is steady, the idle reading, then `memoryConnections` idle subscribed
  // connections (a second of light traffic, so the publish path is warm for what follows).
  await untilSettled(target.pid, 15_000, abort.signal);
  const mem = await measure(target, { connections: a.memoryConnections, rate: 10, duration: 1, warmup: 0, drain: 1, connectRate: 1000 });
  await sleep(1000, abort.signal);
  const redisBefore = redisPid === undefined ? undefined : readProcess(redisPid);
  const fan = await measure(target, { connections: a.connections, rate: "max", windowBy: "delivery", inflight: 8, duration: a.durationS, warmup: 2 });
  const redisAfter = redisPid === undefined ? undefined : readProcess(redisPid);
  await sleep(1000, abort.signal);
  const generator = generatorWindow();
  const lat = await measure(
    target,
    {
      connections: a.latencySubscribers,
      rate: "max",
      windowBy: "delivery",
      inflight: 1,
      duration: Math.max(3, Math.round(a.durationS * 0.6)),
      warmup: 1,
    },
    generator.onTick,
  );
  const generatorCpu = generator.perBroadcast();
  const latStage = lat.stages[0];
  const latPublished = latStage?.counters.published ?? 0;
  const all = [mem, fan, lat];
  const stage = fan.stages[0];
  // The primary's CPU per broadcast in the fan-out's measured window: sequencing (embedded mode),
  // relaying to the other workers, answering with the offset.
  const primaryShare = fan.server?.cpuShare.find((c) => c.pid === target.pid)?.share;
  const published = stage?.counters.published ?? 0;
  const primaryUsPerBroadcast =
    target.name !== "baseline" && primaryShare !== undefined && stage?.server && published > 0 ? (stage.server.cpuS * primaryShare * 1e6) / published : null;
  // Redis's CPU per broadcast (clustered): over the whole fan-out run, setup included, so an upper bound.
  const totals = fan.totals.published;
  const redisUsPerBroadcast = redisBefore && redisAfter && totals > 0 ? ((redisAfter.cpuS - redisBefore.cpuS) * 1e6) / totals : null;
  return {
    target: target.name,
    run,
    fanoutPerSec: stage?.perSecond.deliveries ?? 0,
    serverUsPerDelivery: stage?.server?.cpuUsPerDelivery ?? null,
    serverCores: stage?.server?.cores ?? null,
    primaryUsPerBroadcast,
    redisUsPerBroadcast,
    latencyServerUsPerBroadcast: latStage?.server && latPublished > 0 ? (latStage.server.cpuS * 1e6) / latPublished : null,
    generatorRunUsPerBroadcast: generatorCpu?.runUs ?? null,
    generatorWaitUsPerBroadcast: generatorCpu?.waitUs ?? null,
    latencyP50Ms: lat.latencyMs.delivery.p50,
    latencyP99Ms: lat.latencyMs.delivery.p99,
    rssPerConnectionBytes: mem.server?.rssPerConnectionBytes ?? null,
    idleRssBytes: mem.server?.idleRssBytes ?? null,
    hung: all.reduce((s, r) => s + r.connections.hung, 0),
    lost: fan.delivery.lost + lat.delivery.lost,
    duplicated: fan.delivery.duplicated + lat.delivery.duplicated,
    errors: all.reduce((s, r) => s + r.totals.errors + r.failures.length, 0),
    errorKinds: all.reduce<Record<string, number>>((kinds, r) => {
      for (const [kind, n] of Object.entries(r.errors)) kinds[kind] = (kinds[kind] ?? 0) + n;
      return kinds;
    }, {}),
  };
}

/** The main suite (the bar against plain socket.io). */
async function mainSuite(a: MainArgs): Promise<number> {
  const targets = a.targets;
  const cpuProfDir = a.cpuProf ? resolve(a.cpuProf) : undefined;
  const started = Date.now();
  process.stdout.write(`Cerebellum bench on ${machine()}\n`);
  process.stdout.write(
    `${a.runs} rounds × ${targets.length} targets; memory with ${a.memoryConnections} connections, fan-out to ${a.connections} subscribers, latency with ${a.latencySubscribers}; raw engine generator in this process\n`,
  );
  if (cpuProfDir) {
    mkdirSync(cpuProfDir, { recursive: true });
    process.stdout.write(`CPU profiles of the server processes go to ${cpuProfDir}\n`);
  }
  const redis = targets.includes("clustered-w2") ? await startRedis() : undefined;
  const runs: TargetRun[] = [];
  try {
    for (let run = 1; run <= a.runs && !abort.signal.aborted; run++) {
      // Alternate: each round starts with the next target, so no target always runs on a warmer machine.
      const order = targets.map((_, i) => targets[(i + run - 1) % targets.length]!);
      for (const name of order) {
        if (abort.signal.aborted) break;
        const t0 = Date.now();
        const target = await startTarget(name, { redisUrl: redis?.url, cpuProfDir });
        try {
          const result = await roundOf(a, target, run, name === "clustered-w2" ? redis?.pid : undefined);
          if (!abort.signal.aborted) runs.push(result);
          process.stdout.write(
            `  round ${run} ${name.padEnd(13)} ${Math.round(result.fanoutPerSec).toLocaleString("en-US").padStart(8)} deliv/s  p50 ${result.latencyP50Ms.toFixed(2)} ms  ${result.rssPerConnectionBytes === null ? "—" : (result.rssPerConnectionBytes / 1024).toFixed(1)} KiB/conn  hung ${result.hung}  (${((Date.now() - t0) / 1000).toFixed(0)} s)${Object.keys(result.errorKinds ?? {}).length > 0 ? `  errors ${JSON.stringify(result.errorKinds)}` : ""}\n`,
          );
        } finally {
          await target.stop();
        }
      }
    }
  } finally {
    await redis?.stop();
  }
  const summary = summarizeBench(runs);
  process.stdout.write(`\n${formatBench(runs, summary)}\n`);
  process.stdout.write(`\nTotal time ${((Date.now() - started) / 1000).toFixed(0)} s.\n`);
  const dir = resolve(a.out);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${new Date(started).toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(
    file,
    JSON.stringify({ machine: machine(), runs: a.runs, memoryConnections: a.memoryConnections, connections: a.connections, latencySubscribers: a.latencySubscribers, durationS: a.durationS, targets: targets.map((t) => TARGET_LABELS[t]), results: runs, summary }, null, 2),
  );
  process.stdout.write(`wrote ${file}\n`);
  return 0;
}

/** The scaling suite: scaling.ts measures, scaling-report.ts judges. */
async function scalingSuite(a: ScalingArgs): Promise<number> {
  const started = Date.now();
  process.stdout.write(`Cerebellum bench, scaling suite, on ${machine()}\n`);
  const { runs, summary, report } = await runScaling(a, abort.signal, (text) => process.stdout.write(text), `${cores()} cores`);
  process.stdout.write(`${report}\n`);
  process.stdout.write(`\nTotal time ${((Date.now() - started) / 1000).toFixed(0)} s.\n`);
  const dir = resolve(a.out);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-scaling-${new Date(started).toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ machine: machine(), suite: "scaling", settings: { ...a, help: undefined }, results: runs, summary }, null, 2));
  process.stdout.write(`wrote ${file}\n`);
  return 0;
}

/** The metrics suite: delivery with GET /metrics scraped against none (metrics-scrape.ts). */
async function metricsSuite(a: MetricsArgs): Promise<number> {
  const started = Date.now();
  process.stdout.write(`Cerebellum bench, metrics suite, on ${machine()}\n`);
  process.stdout.write(`${a.runs} rounds × ${a.targets.length} targets × (scraped every ${a.scrapeEveryS} s, not scraped); fan-out to ${a.connections}, latency with ${a.latencySubscribers}\n`);
  const redis = a.targets.includes("clustered-w2") ? await startRedis() : undefined;
  try {
    const { runs, report, ratios } = await runMetricsBench(a, {
      start: (name) => startTarget(name, { redisUrl: redis?.url }),
      measure: (target, options) => measure(target, options),
      signal: abort.signal,
      write: (text) => process.stdout.write(text),
    });
    process.stdout.write(`${report}\n`);
    process.stdout.write(`\nTotal time ${((Date.now() - started) / 1000).toFixed(0)} s.\n`);
    const dir = resolve(a.out);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `bench-metrics-${new Date(started).toISOString().replace(/[:.]/g, "-")}.json`);
    writeFileSync(file, JSON.stringify({ machine: machine(), suite: "metrics", settings: { ...a, help: undefined }, results: runs, ratios }, null, 2));
    process.stdout.write(`wrote ${file}\n`);
  } finally {
    await redis?.stop();
  }
  return 0;
}

(args.suite === "scaling" ? scalingSuite(args) : args.suite === "metrics" ? metricsSuite(args) : mainSuite(args)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error("bench failed:", err);
    process.exit(1);
  },
);
