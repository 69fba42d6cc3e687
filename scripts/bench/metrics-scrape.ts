import type { LoadtestResult } from "../loadtest/result.js";
import type { MetricsArgs } from "./cli.js";
import { median } from "./report.js";
import type { RunningTarget } from "./targets.js";

/**
 * `--suite metrics`: what scraping GET /metrics costs delivery. For each target and round the
 * product is started fresh twice, scraped every `scrapeEveryS` and not scraped, in an order that
 * alternates round by round; both run main's fan-out and latency tests. The result is a ratio
 * measured in the same run, so the machine's load (shared with other work) weighs on both arms.
 */

export type Arm = "none" | "scraped";

export interface MetricsRun {
  target: string;
  arm: Arm;
  run: number;
  fanoutPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Scrapes answered during the run, and the median time one took (null when none ran). */
  scrapes: number;
  scrapeMedianMs: number | null;
  scrapeBytes: number | null;
  lost: number;
}

/** How the suite reaches a target: start it, and run one load test against it (main.ts's `measure`). */
export interface MetricsBenchHooks {
  start(target: MetricsArgs["targets"][number]): Promise<RunningTarget>;
  measure(target: RunningTarget, options: Record<string, unknown>): Promise<LoadtestResult>;
  signal: AbortSignal;
  write(text: string): void;
}

/** Scrapes `healthUrl`/metrics every `everyS` until stopped; counts and times each scrape. */
function scraper(healthUrl: string, everyS: number): { stop(): Promise<{ count: number; medianMs: number | null; bytes: number | null }> } {
  const times: number[] = [];
  let bytes: number | null = null;
  let busy: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    busy = (async () => {
      const t0 = performance.now();
      const res = await fetch(`${healthUrl}/metrics`);
      const body = await res.text();
      if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
      times.push(performance.now() - t0);
      bytes = body.length;
    })();
    busy.catch((err: unknown) => process.stderr.write(`scrape failed: ${(err as Error).message}\n`));
  }, everyS * 1000);
  return {
    async stop() {
      clearInterval(timer);
      await busy.catch(() => undefined); // reported above
      return { count: times.length, medianMs: times.length > 0 ? median(times) : null, bytes };
    },
  };
}

/** Runs the suite; returns every run and a printable summary with the ratios. */
export async function runMetricsBench(a: MetricsArgs, hooks: MetricsBenchHooks): Promise<{ runs: MetricsRun[]; report: string; ratios: Record<string, { fanout: number; p50: number; p99: number }> }> {
  const runs: MetricsRun[] = [];
  for (let run = 1; run <= a.runs && !hooks.signal.aborted; run++) {
    const arms: Arm[] = run % 2 === 1 ? ["none", "scraped"] : ["scraped", "none"];
    for (const name of a.targets) {
      for (const arm of arms) {
        if (hooks.signal.aborted) break;
        const target = await hooks.start(name);
        try {
          const scraping = arm === "scraped" ? scraper(target.healthUrl!, a.scrapeEveryS) : undefined;
          let fan: LoadtestResult;
          let lat: LoadtestResult;
          try {
            fan = await hooks.measure(target, { connections: a.connections, rate: "max", windowBy: "delivery", inflight: 8, duration: a.durationS, warmup: 2 });
            lat = await hooks.measure(target, { connections: a.latencySubscribers, rate: "max", windowBy: "delivery", inflight: 1, duration: Math.max(3, Math.round(a.durationS * 0.6)), warmup: 1 });
          } catch (err) {
            await scraping?.stop(); // no scrape outlives its target
            throw err;
          }
          const scraped = await scraping?.stop();
          const result: MetricsRun = {
            target: name,
            arm,
            run,
            fanoutPerSec: fan.stages[0]?.perSecond.deliveries ?? 0,
            latencyP50Ms: lat.latencyMs.delivery.p50,
            latencyP99Ms: lat.latencyMs.delivery.p99,
            scrapes: scraped?.count ?? 0,
            scrapeMedianMs: scraped?.medianMs ?? null,
            scrapeBytes: scraped?.bytes ?? null,
            lost: fan.delivery.lost + lat.delivery.lost,
          };
          if (!hooks.signal.aborted) runs.push(result);
          hooks.write(
            `  round ${run} ${name.padEnd(13)} ${arm.padEnd(8)} ${Math.round(result.fanoutPerSec).toLocaleString("en-US").padStart(8)} deliv/s  p50 ${result.latencyP50Ms.toFixed(2)} ms  p99 ${result.latencyP99Ms.toFixed(2)} ms` +
              (scraped ? `  ${scraped.count} scrapes, median ${scraped.medianMs?.toFixed(1) ?? "—"} ms, ${scraped.bytes ?? "—"} B` : "") +
              "\n",
          );
        } finally {
          await target.stop();
        }
      }
    }
  }
  const ratios: Record<string, { fanout: number; p50: number; p99: number }> = {};
  const lines = ["", `Medians (scraped every ${a.scrapeEveryS} s vs not scraped), ratio scraped ÷ none:`];
  for (const name of a.targets) {
    const of = (arm: Arm) => runs.filter((r) => r.target === name && r.arm === arm);
    const none = of("none");
    const scraped = of("scraped");
    if (none.length === 0 || scraped.length === 0) continue;
    const m = (rs: MetricsRun[], key: "fanoutPerSec" | "latencyP50Ms" | "latencyP99Ms") => median(rs.map((r) => r[key]));
    ratios[name] = {
      fanout: m(scraped, "fanoutPerSec") / m(none, "fanoutPerSec"),
      p50: m(scraped, "latencyP50Ms") / m(none, "latencyP50Ms"),
      p99: m(scraped, "latencyP99Ms") / m(none, "latencyP99Ms"),
    };
    const r = ratios[name];
    lines.push(
      `  ${name.padEnd(13)} fan-out ${Math.round(m(none, "fanoutPerSec")).toLocaleString("en-US")} → ${Math.round(m(scraped, "fanoutPerSec")).toLocaleString("en-US")} deliv/s (×${r.fanout.toFixed(3)})` +
        `  p50 ${m(none, "latencyP50Ms").toFixed(2)} → ${m(scraped, "latencyP50Ms").toFixed(2)} ms (×${r.p50.toFixed(3)})` +
        `  p99 ${m(none, "latencyP99Ms").toFixed(2)} → ${m(scraped, "latencyP99Ms").toFixed(2)} ms (×${r.p99.toFixed(3)})`,
    );
  }
  return { runs, report: lines.join("\n"), ratios };
}
