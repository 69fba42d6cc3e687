import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { sleep } from "./clock.js";
import { mergeEncoded, newHistogram, summarize } from "./hdr.js";
import { addCounters, zeroCounters, type EncodedWindow } from "./metrics.js";
import type { LoadtestOptions } from "./options.js";
import type { RunData, ServerReadings, TimelinePoint } from "./run-data.js";
import { phaseAt, stagePlan, type Phase, type StageTimes } from "./runtime.js";
import { ServerMonitor, peerCpuBetween } from "./server-stats.js";
import { Shard, TICK_MS, type ParentCommand, type ShardFinal, type ShardReport } from "./shard.js";
import { mergeWindows, primaryLatencyOf, shapeStage } from "./stage-result.js";

export type { RunData, ServerReadings, TimelinePoint } from "./run-data.js";

export interface RunHooks {
  /** Every second, with the latest point (the live progress line). */
  onTick?(point: TimelinePoint, stages: readonly StageTimes[]): void;
  /** Aborting stops the run early; what was measured is still returned. */
  signal?: AbortSignal;
}

interface ShardHandle {
  send(command: ParentCommand): void;
  kill(): void;
  /** Settles when the process (or the in-process share) has closed its connections. */
  finished: Promise<void>;
}

const SHARD_MAIN = resolve(__dirname, "shard-main.js");

/**
 * Runs a load test: starts the generator processes (in this process when `--procs 1`), walks them
 * through setup → stages → drain in step, samples the server, and gathers what they measured.
 * Every wait is bounded, so the run ends by itself even when a process or the server hangs.
 */
export async function runLoadtest(options: LoadtestOptions, hooks: RunHooks = {}): Promise<RunData> {
  const runId = randomBytes(4).toString("hex");
  const startedAt = Date.now();
  const failures: string[] = [];
  const monitor = options.serverStats ? ServerMonitor.locate(options.url, options.serverPid) : undefined;
  const server: ServerReadings | undefined = monitor
    ? { rootPid: monitor.rootPid, peers: [], idle: monitor.sample(), connected: undefined, ran: undefined, stages: [], peakRssBytes: 0 }
    : undefined;

  const reports: Array<{ ready?: number; ran?: boolean; final?: ShardFinal; failed?: string }> = [];
  /** Each stage's window from each process, as it ends (the ramp's live verdict). */
  const stageWindows: Array<Array<EncodedWindow | undefined>> = [];
  let onStageWindow: ((index: number) => void) | undefined;
  let pending: EncodedWindow[] = [];
  const opens = new Array<number>(options.procs).fill(0);
  let wake: (() => void) | undefined;
  const onReport = (report: ShardReport) => {
    const slot = (reports[report.shard] ??= {});
    switch (report.type) {
      case "ready":
        slot.ready = report.open;
        break;
      case "tick":
        opens[report.shard] = report.open;
        pending.push(report.interval);
        break;
      case "ran":
        slot.ran = true;
        break;
      case "stage":
        (stageWindows[report.index] ??= [])[report.shard] = report.window;
        onStageWindow?.(report.index);
        break;
      case "done":
        slot.final = report.final;
        break;
      case "failed":
        slot.failed = report.message;
        failures.push(`generator ${report.shard}: ${report.message}`);
        break;
    }
    wake?.();
  };

  const shards: ShardHandle[] = [];
  for (let shard = 0; shard < options.procs; shard++) {
    reports[shard] = {};
    const init = { options, shard, shards: options.procs, runId };
    if (options.procs === 1) {
      const local = new Shard(init, (report) => queueMicrotask(() => onReport(report)));
      const finished = local.start();
      shards.push({ send: (c) => local.handle(c), kill: () => local.handle({ type: "stop" }), finished });
    } else {
      const child: ChildProcess = fork(SHARD_MAIN, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
      child.on("message", (m) => onReport(m as ShardReport));
      const finished = new Promise<void>((r) => child.once("exit", () => r()));
      child.on("exit", (code, signal) => {
        const slot = reports[shard]!;
        if (!slot.final && !slot.failed) onReport({ type: "failed", shard, message: `exited (code ${code}, signal ${signal}) before reporting` });
      });
      child.send({ type: "init", init });
      shards.push({
        send: (c) => {
          if (child.connected) child.send(c);
        },
        kill: () => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        },
        finished,
      });
    }
  }
  const broadcast = (command: ParentCommand) => shards.forEach((s) => s.send(command));

  let interrupted = false;
  let interruptedAt: number | undefined;
  const onAbort = () => {
    interrupted = true;
    interruptedAt = Date.now();
    broadcast({ type: "stop" });
    wake?.();
  };
  hooks.signal?.addEventListener("abort", onAbort, { once: true });
  if (hooks.signal?.aborted) onAbort();

  /** Waits until every process reached `what`, one failed, or the deadline passed. */
  const allReached = async (what: (r: (typeof reports)[number]) => boolean, timeoutMs: number, label: string) => {
    const deadline = Date.now() + timeoutMs;
    while (!reports.every((r) => what(r) || r.failed !== undefined)) {
      if (Date.now() > deadline) {
        failures.push(`timed out waiting for the generators to ${label}`);
        return false;
      }
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 200);
      });
    }
    return true;
  };

  // The timeline: one point a second from the processes' ticks, with the server's reading.
  let stages: StageTimes[] = [];
  const timeline: TimelinePoint[] = [];
  let lastSample = server?.idle;
  const primary = primaryLatencyOf(options.scenario);
  const ticker = setInterval(() => {
    const counters = zeroCounters();
    const latency = newHistogram();
    const ack = newHistogram();
    for (const w of pending) {
      addCounters(counters, w.counters);
      mergeEncoded(latency, w.latency[primary]);
      if (primary !== "ack") mergeEncoded(ack, w.latency.ack);
    }
    pending = [];
    const now = Date.now();
    const { phase, stage } = stages.length > 0 ? phaseAt(stages, now) : { phase: "setup" as Phase, stage: undefined };
    const summary = summarize(latency);
    const point: TimelinePoint = {
      at: now,
      t: stages.length > 0 ? Math.round((now - stages[0]!.warmupAt) / 100) / 10 : 0, // setup points are fixed up once the start is known
      phase,
      stage: stage?.index,
      open: opens.reduce((a, b) => a + b, 0),
      counters,
      p50: summary.p50,
      p99: summary.p99,
      max: summary.max,
      ...(ack.totalCount > 0 ? { ackP99: summarize(ack).p99 } : {}),
    };
    ack.destroy();
    latency.destroy();
    if (monitor && server) {
      const sample = monitor.sample();
      if (sample && lastSample) {
        const seconds = (sample.at - lastSample.at) / 1000;
        point.serverCores = Math.max(0, (sample.cpuS - lastSample.cpuS) / seconds);
        if (sample.peers.length > 0 && lastSample.peers.length > 0) point.peerCores = peerCpuBetween(lastSample, sample) / seconds;
      }
      if (sample) {
        point.serverRssBytes = sample.rssBytes;
        if (sample.host) point.hostAvailableBytes = sample.host.availableBytes;
        server.peakRssBytes = Math.max(server.peakRssBytes, sample.rssBytes);
        lastSample = sample;
      }
    }
    timeline.push(point);
    hooks.onTick?.(point, stages);
  }, TICK_MS);

  let stoppedAfter: RunData["stoppedAfter"];
  const runData = (ran: StageTimes[], openAtReady: number, openAtRan: number): RunData => ({
    options,
    runId,
    startedAt,
    endedAt: Date.now(),
    interrupted,
    ...(interruptedAt !== undefined ? { interruptedAt } : {}),
    failures,
    stages: ran,
    finals: reports.flatMap((r) => (r.final ? [r.final] : [])),
    timeline,
    server,
    openAtReady,
    openAtRan,
  });

  const setupBudgetMs =
    ((options.connections + options.publishers) / options.connectRate) * 1000 + options.connectTimeoutMs + options.ackTimeoutMs + 60_000;
  try {
    await allReached((r) => r.ready !== undefined, setupBudgetMs, "connect");
    const openAtReady = reports.reduce((sum, r) => sum + (r.ready ?? 0), 0);
    // A connect storm opens its connections in its stages; every other scenario needs some by now.
    const abandoned = openAtReady === 0 && options.scenario !== "connect-storm" && !interrupted ? "no connection could be opened" : undefined;
    if (monitor && server && !interrupted && !abandoned) {
      // Let the server settle (buffers, timers of the connects) before reading idle connections.
      await sleep(1500, hooks.signal);
      server.peers = monitor.discoverPeers();
      server.connected = monitor.sample();
    }
    if (abandoned) {
      // Nothing to load the server with: the processes stop at once and report their errors.
      broadcast({ type: "stop" });
      await allReached((r) => r.ran === true, options.connectTimeoutMs + 30_000, "stop");
      broadcast({ type: "finish" });
      await allReached((r) => r.final !== undefined, options.ackTimeoutMs + 30_000, "report");
      return { ...runData([], openAtReady, 0), abandoned };
    }
    const at = Date.now() + 300;
    stages = stagePlan(options, at);
    broadcast({ type: "go", at });
    const stageTimers: Array<{ index: number; timer: NodeJS.Timeout }> = [];
    if (monitor && server) {
      for (const stage of stages) {
        const slot: ServerReadings["stages"][number] = { start: undefined, end: undefined };
        server.stages.push(slot);
        stageTimers.push({ index: stage.index, timer: setTimeout(() => (slot.start = monitor.sample()), Math.max(0, stage.measureAt - Date.now())) });
        stageTimers.push({ index: stage.index, timer: setTimeout(() => (slot.end = monitor.sample()), Math.max(0, stage.endAt - Date.now())) });
      }
    }
    // The connections ramp stops at the first level that misses: more connections would only
    // push a server (and a host) already past its limit further.
    if (options.scenario === "connections") {
      onStageWindow = (index) => {
        const windows = stageWindows[index] ?? [];
        const waiting = reports.some((r, shard) => r.failed === undefined && windows[shard] === undefined);
        if (waiting || stoppedAfter || index >= stages.length - 1) return;
        const slot = server?.stages[index];
        if (monitor && slot && !slot.end) slot.end = monitor.sample();
        const shaped = shapeStage({
          options,
          stage: stages[index]!,
          zeroAt: stages[0]!.warmupAt,
          merged: mergeWindows(windows.filter((w): w is EncodedWindow => w !== undefined)),
          readings: slot,
          timeline,
          interruptedAt,
        });
        if (shaped.verdict.status !== "missed") return;
        stoppedAfter = { stage: index, reason: `it reached a limit (${shaped.verdict.limits[0]!.limit})` };
        broadcast({ type: "truncate", stages: index + 1 });
        stages = stages.slice(0, index + 1);
        for (const t of stageTimers) if (t.index > index) clearTimeout(t.timer);
        server?.stages.splice(index + 1);
      };
    }
    const runMs = stages[stages.length - 1]!.endAt - Date.now();
    await allReached((r) => r.ran === true, runMs + options.connectTimeoutMs + options.ackTimeoutMs + 30_000, "finish their stages");
    // The last stage's closing reading may still be due (the processes report as its end passes).
    await sleep(stages[stages.length - 1]!.endAt + 20 - Date.now(), hooks.signal);
    for (const t of stageTimers) clearTimeout(t.timer);
    if (monitor && server) for (const slot of server.stages) slot.end ??= monitor.sample();
    const openAtRan = opens.reduce((a, b) => a + b, 0);
    if (monitor && server) server.ran = monitor.sample();
    broadcast({ type: "finish" });
    await allReached((r) => r.final !== undefined, options.drainS * 1000 + options.ackTimeoutMs * 2 + 30_000, "drain and report");
    for (const point of timeline) point.t = Math.round((point.at - at) / 100) / 10;
    return { ...runData(stages, openAtReady, openAtRan), ...(stoppedAfter ? { stoppedAfter } : {}) };
  } finally {
    clearInterval(ticker);
    onStageWindow = undefined;
    hooks.signal?.removeEventListener("abort", onAbort);
    // Let every share close its connections; one still stuck after that is ended.
    broadcast({ type: "finish" });
    await Promise.race([Promise.all(shards.map((s) => s.finished)), sleep(3000)]);
    for (const s of shards) s.kill();
  }
}
