/**
 * `npm run loadtest -- [flags]`: capacity planning for a Cerebellum (or any Socket.IO server
 * speaking the same channel contract). docs/loadtest.md explains the scenarios and the output.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { runLoadtest } from "./coordinator.js";
import { OptionsError, USAGE, resolveOptions, stageRates, type LoadtestOptions } from "./options.js";
import { renderHtml } from "./report-html.js";
import { buildResult, type LoadtestResult } from "./result.js";
import type { TimelinePoint } from "./run-data.js";
import type { StageTimes } from "./runtime.js";

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });

function progressLine(o: LoadtestOptions, p: TimelinePoint, stages: readonly StageTimes[]): string {
  const total = stages.length > 0 ? Math.round((stages[stages.length - 1]!.endAt - stages[0]!.warmupAt) / 1000) : 0;
  const where = p.phase === "setup" ? `setup ${fmt(-p.t, 0)}s` : `${p.phase} ${fmt(Math.max(0, p.t), 0)}/${total}s${p.stage !== undefined && stages.length > 1 ? ` stage ${p.stage + 1}/${stages.length}` : ""}`;
  const c = p.counters;
  const main =
    o.scenario === "connect-storm"
      ? `connects ${fmt(c.connects)}/s`
      : o.scenario === "presence-churn"
        ? `ops ${fmt(c.presenceOps)}/s events ${fmt(c.presenceEvents)}/s`
        : `pub ${fmt(c.published)}/s deliv ${fmt(c.deliveries)}/s acks ${fmt(c.acked)}/s${c.overloaded > 0 ? ` refused ${fmt(c.overloaded)}/s` : ""}`;
  const server = p.serverCores !== undefined ? ` | server ${fmt(p.serverCores * 100)}% cpu ${fmt((p.serverRssBytes ?? 0) / 2 ** 20)} MiB` : "";
  const problems = c.errors + c.hung + c.connectErrors + c.disconnects > 0 ? ` err ${c.errors} connect failures ${c.hung + c.connectErrors + c.disconnects}` : "";
  const ack = p.ackP99 !== undefined ? ` ack p99 ${fmt(p.ackP99, 0)}ms` : "";
  return `[${where}] conns ${fmt(p.open)} ${main} p50 ${fmt(p.p50, 1)}ms p99 ${fmt(p.p99, 1)}ms${ack}${problems}${server}`;
}

/** The verdict (each stage's figures are in it: no whole-run latency that would mix held and missed stages). */
function printSummary(r: LoadtestResult, files: string[]): void {
  const out = process.stdout;
  out.write(`\n${r.capacity.lines.join("\n")}\n\n`);
  if (r.failures.length > 0) out.write(`Problems:\n  ${r.failures.join("\n  ")}\n`);
  for (const f of files) out.write(`wrote ${f}\n`);
}

async function main(): Promise<number> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  let options: LoadtestOptions;
  try {
    options = resolveOptions(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof OptionsError) {
      process.stderr.write(`${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (!options.apiKey && !options.token) {
    process.stderr.write("note: no --api-key, --token or $API_KEY: connecting without a token (a Cerebellum server will refuse)\n");
  }
  const abort = new AbortController();
  let interrupts = 0;
  process.on("SIGINT", () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write("\nstopping: finishing up and reporting what was measured (Ctrl-C again to quit at once)\n");
      abort.abort();
    } else process.exit(130);
  });
  const tty = process.stderr.isTTY;
  let lastPrinted = 0;
  const rates = stageRates(options);
  const load =
    options.scenario === "connections"
      ? `connections ${options.connectionLevels.join(",")}, publishing ${rates[0]}/s`
      : `rate ${rates.join(",")}${rates[0] === "max" ? ` inflight ${options.inflight}` : "/s"}`;
  process.stderr.write(`loadtest ${options.scenario} → ${options.url} (${options.engine}, ${options.procs} process${options.procs > 1 ? "es" : ""}, ${load})\n`);
  const run = await runLoadtest(options, {
    signal: abort.signal,
    onTick: (point, stages) => {
      if (!options.progress) return;
      const line = progressLine(options, point, stages);
      if (tty) process.stderr.write(`\r\x1b[2K${line}`);
      else if (Date.now() - lastPrinted >= 5000) {
        lastPrinted = Date.now();
        process.stderr.write(`${line}\n`);
      }
    },
  });
  if (tty && options.progress) process.stderr.write("\n");
  const result = buildResult(run);
  const dir = resolve(options.outDir);
  mkdirSync(dir, { recursive: true });
  const base = options.name ?? `${options.scenario}-${result.startedAt.replace(/[:.]/g, "-")}`;
  const files = [join(dir, `${base}.json`)];
  writeFileSync(files[0]!, JSON.stringify(result, null, 2));
  if (options.html) {
    files.push(join(dir, `${base}.html`));
    writeFileSync(files[1]!, renderHtml(result));
  }
  printSummary(result, files);
  if (!result.outcome.ok) {
    process.stderr.write(`loadtest failed: ${result.outcome.cause}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error("loadtest failed:", err);
    process.exit(1);
  },
);
