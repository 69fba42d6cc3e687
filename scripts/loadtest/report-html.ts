import { stageName } from "./capacity.js";
import type { LoadtestResult } from "./result-schema.js";
import type { TimelinePoint } from "./run-data.js";
import { throughputOf, type StageResult } from "./stage-result.js";

/**
 * The self-contained HTML report: inline SVG charts drawn here, inline CSS, no script and nothing
 * fetched, so it opens anywhere (and can be attached to a ticket as one file). It leads with the
 * headline numbers and the verdict; every chart over time shares one time axis, with the stages
 * marked on it.
 */

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });

interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
  dashed?: boolean;
}

/** A horizontal line across a chart: an objective or a bound. */
interface Level {
  y: number;
  label: string;
  color: string;
}

/** The stages on a time axis: where each starts, where its measured window starts, where it ends. */
interface StageMark {
  label: string;
  startS: number;
  measureS: number;
  endS: number;
  held: boolean;
}

interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** x axis in log10 with custom labels (the percentile plot). */
  xTicks?: Array<{ at: number; label: string }>;
  /** A fixed x range, so that every chart over time lines up. */
  xDomain?: [number, number];
  stages?: readonly StageMark[];
  levels?: readonly Level[];
  width?: number;
  height?: number;
}

const STAGE_COLORS = ["#2d6cdf", "#e08a1e", "#2d9d5a", "#7b4bc2", "#c2410c", "#0f766e", "#b42318", "#57606a"];

/** Round tick values covering [0, max]. */
function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 0.001; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
  if (ticks[ticks.length - 1]! < max) ticks.push(ticks[ticks.length - 1]! + step);
  return ticks;
}

/** Ticks covering [min, max] for a time axis that may start below zero (the setup). */
function spanTicks(min: number, max: number, count = 8): number[] {
  const steps = niceTicks(max - min, count);
  const step = steps[1]! - steps[0]!;
  const ticks: number[] = [];
  // `|| 0`: no "-0" label where the axis crosses zero.
  for (let v = Math.ceil(min / step) * step; v <= max + step * 0.001; v += step) ticks.push(Math.round(v * 1e6) / 1e6 || 0);
  return ticks;
}

const short = (v: number) =>
  Math.abs(v) >= 1e6 ? `${fmt(v / 1e6, 1)}M` : Math.abs(v) >= 1e4 ? `${fmt(v / 1e3, 0)}k` : Math.abs(v) >= 1000 ? `${fmt(v / 1e3, 1)}k` : fmt(v, 2);

const figure = (title: string, body: string) => `<figure><figcaption>${esc(title)}</figcaption>${body}</figure>`;

export function lineChart(series: Series[], o: ChartOptions): string {
  const width = o.width ?? 720;
  const height = o.height ?? 260;
  const m = { l: 64, r: 16, t: 28, b: 40 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return figure(o.title, `<p class="empty">no data</p>`);
  const xs = all.map((p) => p[0]);
  const xMin = o.xTicks ? Math.min(...o.xTicks.map((t) => t.at)) : (o.xDomain?.[0] ?? Math.min(...xs));
  const xMax = o.xTicks ? Math.max(...o.xTicks.map((t) => t.at)) : (o.xDomain?.[1] ?? Math.max(...xs, xMin + 1));
  const yTicks = niceTicks(Math.max(...all.map((p) => p[1]), ...(o.levels ?? []).map((l) => l.y)));
  const yMax = yTicks[yTicks.length - 1]!;
  const X = (x: number) => m.l + ((x - xMin) / (xMax - xMin || 1)) * (width - m.l - m.r);
  const Y = (y: number) => height - m.b - (y / (yMax || 1)) * (height - m.t - m.b);
  const parts: string[] = [];
  for (const stage of o.stages ?? []) {
    // Warm-up shaded, the measured window plain, a line at each stage's start.
    const x0 = X(Math.max(xMin, stage.startS));
    const x1 = X(Math.min(xMax, stage.measureS));
    if (x1 > x0) parts.push(`<rect x="${x0.toFixed(1)}" y="${m.t}" width="${(x1 - x0).toFixed(1)}" height="${height - m.t - m.b}" class="warmup"/>`);
    parts.push(`<line x1="${x0.toFixed(1)}" x2="${x0.toFixed(1)}" y1="${m.t}" y2="${height - m.b}" class="stage"/>`);
    parts.push(`<text x="${(x0 + 3).toFixed(1)}" y="${m.t + 11}" class="${stage.held ? "held" : "missed"}">${esc(stage.label)}</text>`);
  }
  for (const t of yTicks) {
    parts.push(`<line x1="${m.l}" x2="${width - m.r}" y1="${Y(t)}" y2="${Y(t)}" class="grid"/>`);
    parts.push(`<text x="${m.l - 6}" y="${Y(t) + 4}" text-anchor="end">${short(t)}</text>`);
  }
  const xTicks = o.xTicks ?? spanTicks(xMin, xMax).map((v) => ({ at: v, label: short(v) })).filter((t) => t.at >= xMin && t.at <= xMax);
  for (const t of xTicks) parts.push(`<text x="${X(t.at)}" y="${height - m.b + 16}" text-anchor="middle">${esc(t.label)}</text>`);
  parts.push(`<text x="${(m.l + width - m.r) / 2}" y="${height - 6}" text-anchor="middle" class="label">${esc(o.xLabel)}</text>`);
  parts.push(`<text x="14" y="${(m.t + height - m.b) / 2}" transform="rotate(-90 14 ${(m.t + height - m.b) / 2})" text-anchor="middle" class="label">${esc(o.yLabel)}</text>`);
  for (const level of o.levels ?? []) {
    parts.push(`<line x1="${m.l}" x2="${width - m.r}" y1="${Y(level.y)}" y2="${Y(level.y)}" stroke="${level.color}" stroke-width="1.2" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${width - m.r - 4}" y="${Y(level.y) - 4}" text-anchor="end" fill="${level.color}">${esc(level.label)}</text>`);
  }
  let legend = 0;
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p, j) => `${j === 0 ? "M" : "L"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="3 3"' : ""}/>`);
    parts.push(`<rect x="${m.l + 8 + legend * 130}" y="8" width="12" height="4" fill="${s.color}"/><text x="${m.l + 24 + legend * 130}" y="14">${esc(s.name)}</text>`);
    legend++;
  }
  return figure(o.title, `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">${parts.join("")}</svg>`);
}

export function barChart(bars: Array<{ label: string; value: number }>, title: string, yLabel: string): string {
  const width = 720;
  const height = 260;
  const m = { l: 64, r: 16, t: 20, b: 56 };
  if (bars.length === 0) return figure(title, `<p class="empty">no data</p>`);
  const yTicks = niceTicks(Math.max(...bars.map((b) => b.value)));
  const yMax = yTicks[yTicks.length - 1]!;
  const slot = (width - m.l - m.r) / bars.length;
  const Y = (y: number) => height - m.b - (y / (yMax || 1)) * (height - m.t - m.b);
  const parts: string[] = [];
  for (const t of yTicks) {
    parts.push(`<line x1="${m.l}" x2="${width - m.r}" y1="${Y(t)}" y2="${Y(t)}" class="grid"/>`);
    parts.push(`<text x="${m.l - 6}" y="${Y(t) + 4}" text-anchor="end">${short(t)}</text>`);
  }
  bars.forEach((b, i) => {
    const x = m.l + i * slot;
    parts.push(`<rect x="${(x + 1).toFixed(1)}" y="${Y(b.value).toFixed(1)}" width="${Math.max(1, slot - 2).toFixed(1)}" height="${(height - m.b - Y(b.value)).toFixed(1)}" fill="#4a78c2"><title>${esc(b.label)}: ${fmt(b.value)}</title></rect>`);
    if (bars.length <= 16 || i % Math.ceil(bars.length / 16) === 0) {
      parts.push(`<text x="${x + slot / 2}" y="${height - m.b + 14}" text-anchor="end" transform="rotate(-40 ${x + slot / 2} ${height - m.b + 14})">${esc(b.label)}</text>`);
    }
  });
  parts.push(`<text x="14" y="${(m.t + height - m.b) / 2}" transform="rotate(-90 14 ${(m.t + height - m.b) / 2})" text-anchor="middle" class="label">${esc(yLabel)}</text>`);
  return figure(title, `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">${parts.join("")}</svg>`);
}

type Cell = string | number | { html: string };

function table(head: string[], rows: Cell[][]): string {
  const cell = (c: Cell) => (typeof c === "object" ? c.html : esc(typeof c === "number" ? fmt(c, 2) : c));
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${cell(c)}</td>`).join("")}</tr>`)
    .join("")}</tbody></table>`;
}

const verdictCell = (s: StageResult): Cell => ({ html: `<span class="${s.verdict.status === "held" ? "held" : "missed"}">${esc(s.verdict.text)}</span>` });

/** The main figure of each second for the scenario. */
function counterFor(scenario: string, p: TimelinePoint): number {
  switch (scenario) {
    case "connect-storm":
      return p.counters.connects;
    case "presence-churn":
      return p.counters.presenceOps;
    case "persistence-throughput":
      return p.counters.acked;
    default:
      return p.counters.deliveries;
  }
}

function charts(r: LoadtestResult): string[] {
  const scenario = String(r.options.scenario);
  const points = r.timeline;
  const out: string[] = [];
  if (points.length === 0) return out;
  const domain: [number, number] = [Math.min(0, ...points.map((p) => p.t)), Math.max(...points.map((p) => p.t), ...r.stages.map((s) => s.endS))];
  const stages: StageMark[] = r.stages.map((s) => ({ label: `${s.index + 1}`, startS: s.startS, measureS: s.measureS, endS: s.endS, held: s.verdict.status === "held" }));
  const time = { xLabel: "seconds since the first stage (negative: setting up; shaded: warm-up)", xDomain: domain, stages };
  const kind = r.charts.kind;
  const slo = Number(r.options.sloP99Ms);
  const xy = (pick: (p: TimelinePoint) => number | undefined) => points.flatMap((p) => (pick(p) === undefined ? [] : [[p.t, pick(p)!] as [number, number]]));

  const main = scenario === "connections" ? "deliveries/s" : r.capacity.unit;
  out.push(lineChart([{ name: main, color: "#2d6cdf", points: xy((p) => counterFor(scenario, p)) }], { title: `Throughput (${main})`, yLabel: "per second", ...time }));
  out.push(lineChart([{ name: "open connections", color: "#0f766e", points: xy((p) => p.open) }], { title: "Open connections", yLabel: "connections", height: 200, ...time }));
  if (scenario !== "connect-storm" && scenario !== "presence-churn") {
    out.push(
      lineChart(
        [
          { name: "publishes/s", color: "#e08a1e", points: xy((p) => p.counters.published) },
          { name: "acks/s", color: "#8a5a00", points: xy((p) => p.counters.acked) },
          { name: "refused/s", color: "#b42318", points: xy((p) => p.counters.overloaded) },
        ],
        { title: "Publishes, acks and OVERLOADED refusals", yLabel: "per second", height: 200, ...time },
      ),
    );
  }
  const measured = points.filter((p) => p.max > 0);
  out.push(
    lineChart(
      [
        { name: "p50", color: "#2d9d5a", points: measured.map((p) => [p.t, p.p50]) },
        { name: "p99", color: "#d0433a", points: measured.map((p) => [p.t, p.p99]) },
      ],
      { title: `${kind} latency, each second`, yLabel: "ms", levels: [{ y: slo, label: `objective p99 ≤ ${fmt(slo)} ms`, color: "#b42318" }], ...time },
    ),
  );
  if (kind !== "ack" && points.some((p) => p.ackP99 !== undefined)) {
    const ackSlo = Number(r.options.sloAckP99Ms);
    out.push(
      lineChart([{ name: "ack p99", color: "#8a5a00", points: xy((p) => p.ackP99) }], {
        title: "Ack latency p99, each second",
        yLabel: "ms",
        height: 200,
        levels: [{ y: ackSlo, label: `objective p99 ≤ ${fmt(ackSlo)} ms`, color: "#b42318" }],
        ...time,
      }),
    );
  }
  if (r.server) {
    const series: Series[] = [{ name: "server (all processes)", color: "#c2410c", points: xy((p) => p.serverCores) }];
    if (points.some((p) => p.peerCores !== undefined)) series.push({ name: "Redis", color: "#7b4bc2", points: xy((p) => p.peerCores), dashed: true });
    out.push(lineChart(series, { title: "CPU", yLabel: "cores", height: 200, ...time }));
    const maxRss = r.options.maxRssBytes === undefined ? [] : [{ y: Number(r.options.maxRssBytes) / 2 ** 20, label: "--max-rss", color: "#b42318" }];
    out.push(lineChart([{ name: "server RSS", color: "#0f766e", points: xy((p) => (p.serverRssBytes === undefined ? undefined : p.serverRssBytes / 2 ** 20)) }], { title: "Server memory (RSS summed over its processes)", yLabel: "MiB", height: 200, levels: maxRss, ...time }));
  }

  const nines = (p: number) => (p >= 100 ? 6 : Math.min(6, -Math.log10(1 - p / 100)));
  out.push(
    lineChart(
      r.charts.stages.map((c) => ({ name: `stage ${c.index + 1}`, color: STAGE_COLORS[c.index % STAGE_COLORS.length]!, points: c.percentiles.map((p) => [nines(p.percentile), p.ms] as [number, number]) })),
      {
        title: `${kind} latency by percentile, each stage's measured window`,
        xLabel: "percentile",
        yLabel: "ms",
        levels: [{ y: slo, label: `objective p99 ≤ ${fmt(slo)} ms`, color: "#b42318" }],
        xTicks: [
          { at: 0, label: "0%" },
          { at: 1, label: "90%" },
          { at: 2, label: "99%" },
          { at: 3, label: "99.9%" },
          { at: 4, label: "99.99%" },
          { at: 5, label: "99.999%" },
          { at: 6, label: "max" },
        ],
      },
    ),
  );
  const shown = r.capacity.sustainedStage ?? r.capacity.firstLimit?.stage ?? 0;
  const buckets = r.charts.stages[shown]?.buckets ?? [];
  const stage = r.stages[shown];
  out.push(
    barChart(
      buckets.map((b) => ({ label: `≤${b.toMs < 1 ? fmt(b.toMs, 3) : fmt(b.toMs, 1)} ms`, value: b.count })),
      `${kind} latency histogram, ${stage ? stageName(scenario, stage) : "no stage"}${r.capacity.sustainedStage === shown && stage ? " (sustained)" : ""}`,
      "count",
    ),
  );
  return out;
}

function headline(r: LoadtestResult): string {
  return `<div class="cards">${r.capacity.headline
    .map((h) => `<div class="card ${h.tone}"><div class="k">${esc(h.label)}</div><div class="v">${esc(h.value)}</div><div class="n">${esc(h.note)}</div></div>`)
    .join("")}</div>`;
}

export function renderHtml(r: LoadtestResult): string {
  const scenario = String(r.options.scenario);
  const kind = r.charts.kind;
  // The connections ramp's figure is its open connections (a column already): its rate is the deliveries.
  const ramp = scenario === "connections";
  const unit = ramp ? "deliveries/s" : r.capacity.unit;
  const single = ramp ? "delivery" : r.stages[0] ? throughputOf(scenario, r.stages[0]).single : "unit";
  const stageRows = r.stages.map((s) => [
    stageName(scenario, s),
    s.open?.mean ?? "—",
    ramp ? s.perSecond.deliveries : throughputOf(scenario, s).perSec,
    s.latencyMs[kind].p50,
    s.latencyMs[kind].p99,
    s.latencyMs.ack.count > 0 && kind !== "ack" ? s.latencyMs.ack.p99 : "—",
    s.counters.overloaded,
    s.counters.hung + s.counters.connectErrors + s.counters.disconnects,
    s.counters.errors,
    s.server?.cores ?? "—",
    (ramp ? s.server?.cpuUsPerDelivery : s.server?.cpuUsPerUnit) ?? "—",
    s.server?.meanRssBytes !== undefined ? s.server.meanRssBytes / 2 ** 20 : "—",
    verdictCell(s),
  ]);
  const latencyRows = r.stages.flatMap((s) =>
    (["delivery", "ack", "connect", "presence", "recovery"] as const)
      .filter((k) => s.latencyMs[k].count > 0)
      .map((k) => [stageName(scenario, s), k, s.latencyMs[k].count, s.latencyMs[k].p50, s.latencyMs[k].p90, s.latencyMs[k].p99, s.latencyMs[k].p999, s.latencyMs[k].max] as Cell[]),
  );
  const kinds = Object.entries(r.errors).sort((a, b) => b[1] - a[1]);
  const server = r.server;
  const mode = server ? `${server.mode} mode${server.peers.length > 0 ? `, connected to ${server.peers.map((p) => `${p.name || "?"} at ${p.address}:${p.port}${p.pid !== undefined ? ` (pid ${p.pid})` : " (not on this host)"}`).join(", ")}` : ""}` : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Load test ${esc(scenario)} ${esc(r.startedAt)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:980px;color:#1f2328;padding:0 16px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:right}th{background:#f6f8fa}
td:first-child,th:first-child,td:last-child{text-align:left}pre{background:#f6f8fa;padding:12px;white-space:pre-wrap}
figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}svg{max-width:100%;height:auto;font-size:11px}
svg text{fill:#57606a}svg .label{font-size:12px;fill:#1f2328}.grid{stroke:#eaeef2}.empty{color:#57606a}
svg .warmup{fill:#f3f4f6}svg .stage{stroke:#8c959f;stroke-dasharray:2 3}svg text.held{fill:#1a7f37}svg text.missed{fill:#b42318}
.bad,.missed{color:#b42318;font-weight:600}.held{color:#1a7f37;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:170px;flex:1}
.card .k{font-size:12px;color:#57606a}.card .v{font-size:22px;font-weight:600}.card .n{font-size:12px;color:#57606a}
.card.good{border-left:4px solid #1a7f37}.card.bad{border-left:4px solid #b42318}.card.plain{border-left:4px solid #8c959f}
</style></head><body>
<h1>Load test: ${esc(scenario)}</h1>
<p>${esc(String(r.options.url))} · ${esc(String(r.options.engine))} engine over ${esc(String(r.options.transport))}${mode ? ` · ${esc(mode)}` : ""} · ${esc(r.startedAt)} → ${esc(r.endedAt)} · run ${esc(r.runId)}${r.interrupted ? ' · <span class="bad">interrupted</span>' : ""}</p>
${r.outcome.ok ? "" : `<p class="bad">Run failed: ${esc(r.outcome.cause)}</p>`}
${r.failures.length > 0 ? `<p class="bad">${r.failures.map(esc).join("<br>")}</p>` : ""}
${headline(r)}
<h2>Stages</h2>${table(["stage", "open conns", unit, `${kind} p50 ms`, `${kind} p99 ms`, "ack p99 ms", "refused", "connect failures", "errors", "server cores", `server CPU µs per ${single}`, "server RSS MiB (mean)", "verdict"], stageRows)}
<h2>Verdict</h2><pre>${esc(r.capacity.lines.join("\n"))}</pre>
<h2>Charts</h2>${charts(r).join("\n")}
<h2>Latency by stage (measured windows)</h2>${table(["stage", "kind", "count", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"], latencyRows)}
<h2>Messages and connections (whole run)</h2>${table(["measure", "value"], [
    ["deliveries owed", r.delivery.expected],
    ["delivered (distinct)", r.delivery.delivered],
    ["lost", r.delivery.lost],
    ["duplicated", r.delivery.duplicated],
    ["reordered", r.delivery.reordered],
    ["published", r.totals.published],
    ["acked", r.totals.acked],
    ["refused OVERLOADED (the server at a bound)", r.totals.overloaded],
    ["refused otherwise (invalid publishes)", r.totals.refused - r.totals.overloaded],
    ["acks never answered", r.totals.ackTimeouts],
    ["skipped by the generator", r.totals.skipped],
    ["connects", r.connections.connects],
    ["connect failures", r.connections.errors],
    ["hung connects", r.connections.hung],
    ["dropped by the server", r.connections.disconnects],
    ["other errors", r.totals.errors],
    ...(r.recovery ? ([["recoveries attempted", r.recovery.attempts], ["recovered", r.recovery.recovered], ["not recovered", r.recovery.notRecovered]] as Cell[][]) : []),
    ...(r.presence ? ([["presence ops", r.presence.ops], ["presence events", r.presence.events], ["ghost members", r.presence.ghosts], ["missing members", r.presence.missing]] as Cell[][]) : []),
  ])}
${server ? `<h2>Server</h2><p>${esc(mode)}.</p>${table(["measure", "value"], [
    ["idle RSS before the connections (MiB)", (server.idleRssBytes ?? 0) / 2 ** 20],
    ["peak RSS (MiB)", server.peakRssBytes / 2 ** 20],
  ])}${table(["process", "pid", "RSS MiB", "share of server CPU in the stages"], server.processes.map((p) => [p.name, String(p.pid), p.rssBytes / 2 ** 20, `${fmt((server.cpuShare.find((c) => c.pid === p.pid)?.share ?? 0) * 100, 1)}%`]))}` : ""}
<h2>Refusals, timeouts, failed connects and errors by kind</h2>${kinds.length > 0 ? table(["kind", "count"], kinds) : "<p>none</p>"}
<h2>Options</h2><pre>${esc(JSON.stringify(r.options, null, 2))}</pre>
<p>Host: ${esc(r.host.hostname)}, ${r.host.cpus} × ${esc(r.host.cpuModel)}${r.host.memoryBytes ? `, ${fmt(r.host.memoryBytes / 2 ** 30, 1)} GiB` : ""}, Node ${esc(r.host.node)}.</p>
</body></html>
`;
}
