import { throughputOf } from "./capacity.js";
import type { LoadtestResult } from "./result.js";

/**
 * The self-contained HTML report: inline SVG charts drawn here, inline CSS, no script and nothing
 * fetched, so it opens anywhere (and can be attached to a ticket as one file).
 */

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });

interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
}

interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** x axis in log10 with custom labels (the percentile plot). */
  xTicks?: Array<{ at: number; label: string }>;
  width?: number;
  height?: number;
}

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

const short = (v: number) =>
  Math.abs(v) >= 1e6 ? `${fmt(v / 1e6, 1)}M` : Math.abs(v) >= 1e4 ? `${fmt(v / 1e3, 0)}k` : Math.abs(v) >= 1000 ? `${fmt(v / 1e3, 1)}k` : fmt(v, 2);

export function lineChart(series: Series[], o: ChartOptions): string {
  const width = o.width ?? 720;
  const height = o.height ?? 260;
  const m = { l: 64, r: 16, t: 28, b: 40 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return `<figure><figcaption>${esc(o.title)}</figcaption><p class="empty">no data</p></figure>`;
  const xs = all.map((p) => p[0]);
  const xMin = o.xTicks ? Math.min(...o.xTicks.map((t) => t.at)) : Math.min(...xs);
  const xMax = o.xTicks ? Math.max(...o.xTicks.map((t) => t.at)) : Math.max(...xs, xMin + 1);
  const yTicks = niceTicks(Math.max(...all.map((p) => p[1])));
  const yMax = yTicks[yTicks.length - 1]!;
  const X = (x: number) => m.l + ((x - xMin) / (xMax - xMin || 1)) * (width - m.l - m.r);
  const Y = (y: number) => height - m.b - (y / (yMax || 1)) * (height - m.t - m.b);
  const parts: string[] = [];
  for (const t of yTicks) {
    parts.push(`<line x1="${m.l}" x2="${width - m.r}" y1="${Y(t)}" y2="${Y(t)}" class="grid"/>`);
    parts.push(`<text x="${m.l - 6}" y="${Y(t) + 4}" text-anchor="end">${short(t)}</text>`);
  }
  const xTicks = o.xTicks ?? niceTicks(xMax - xMin, 8).map((v) => ({ at: xMin + v, label: short(xMin + v) })).filter((t) => t.at <= xMax);
  for (const t of xTicks) parts.push(`<text x="${X(t.at)}" y="${height - m.b + 16}" text-anchor="middle">${esc(t.label)}</text>`);
  parts.push(`<text x="${(m.l + width - m.r) / 2}" y="${height - 6}" text-anchor="middle" class="label">${esc(o.xLabel)}</text>`);
  parts.push(`<text x="14" y="${(m.t + height - m.b) / 2}" transform="rotate(-90 14 ${(m.t + height - m.b) / 2})" text-anchor="middle" class="label">${esc(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map((p, j) => `${j === 0 ? "M" : "L"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"/>`);
    parts.push(`<rect x="${m.l + 8 + i * 150}" y="8" width="12" height="4" fill="${s.color}"/><text x="${m.l + 24 + i * 150}" y="14">${esc(s.name)}</text>`);
  });
  return `<figure><figcaption>${esc(o.title)}</figcaption><svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">${parts.join("")}</svg></figure>`;
}

export function barChart(bars: Array<{ label: string; value: number }>, title: string, yLabel: string): string {
  const width = 720;
  const height = 260;
  const m = { l: 64, r: 16, t: 20, b: 56 };
  if (bars.length === 0) return `<figure><figcaption>${esc(title)}</figcaption><p class="empty">no data</p></figure>`;
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
  return `<figure><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">${parts.join("")}</svg></figure>`;
}

function table(head: string[], rows: Array<Array<string | number>>): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(typeof c === "number" ? fmt(c, 2) : c)}</td>`).join("")}</tr>`)
    .join("")}</tbody></table>`;
}

export function renderHtml(r: LoadtestResult): string {
  const scenario = String(r.options.scenario);
  const timeline = r.timeline.filter((p) => p.phase !== "setup");
  const unit = r.capacity.unit;
  const counterFor = (p: (typeof timeline)[number]) =>
    scenario === "connect-storm" ? p.counters.connects : scenario === "presence-churn" ? p.counters.presenceOps : scenario === "persistence-throughput" ? p.counters.acked : p.counters.deliveries;
  const charts: string[] = [];
  charts.push(
    lineChart([{ name: unit, color: "#2d6cdf", points: timeline.map((p) => [p.t, counterFor(p)]) }], {
      title: `Throughput over time (${unit})`,
      xLabel: "seconds since the first stage",
      yLabel: "per second",
    }),
  );
  if (scenario !== "connect-storm" && scenario !== "presence-churn") {
    charts.push(
      lineChart(
        [
          { name: "publishes/s", color: "#e08a1e", points: timeline.map((p) => [p.t, p.counters.published]) },
          { name: "acks/s", color: "#8a5a00", points: timeline.map((p) => [p.t, p.counters.acked]) },
        ],
        { title: "Publishes and acks over time", xLabel: "seconds since the first stage", yLabel: "per second", height: 200 },
      ),
    );
  }
  charts.push(
    lineChart(
      [
        { name: "p50", color: "#2d9d5a", points: timeline.filter((p) => p.max > 0).map((p) => [p.t, p.p50]) },
        { name: "p99", color: "#d0433a", points: timeline.filter((p) => p.max > 0).map((p) => [p.t, p.p99]) },
      ],
      { title: `${r.charts.kind} latency over time (each second)`, xLabel: "seconds since the first stage", yLabel: "ms" },
    ),
  );
  const nines = (p: number) => (p >= 100 ? 6 : Math.min(6, -Math.log10(1 - p / 100)));
  charts.push(
    lineChart([{ name: `${r.charts.kind} latency`, color: "#7b4bc2", points: r.charts.percentiles.map((p) => [nines(p.percentile), p.ms]) }], {
      title: "Latency by percentile (HDR histogram, measured windows)",
      xLabel: "percentile",
      yLabel: "ms",
      xTicks: [
        { at: 0, label: "0%" },
        { at: 1, label: "90%" },
        { at: 2, label: "99%" },
        { at: 3, label: "99.9%" },
        { at: 4, label: "99.99%" },
        { at: 5, label: "99.999%" },
        { at: 6, label: "max" },
      ],
    }),
  );
  charts.push(
    barChart(
      r.charts.buckets.map((b) => ({ label: `≤${b.toMs < 1 ? fmt(b.toMs, 3) : fmt(b.toMs, 1)} ms`, value: b.count })),
      "Latency histogram (log-spaced buckets)",
      "count",
    ),
  );
  if (r.server) {
    charts.push(
      lineChart([{ name: "server CPU (cores)", color: "#c2410c", points: r.timeline.filter((p) => p.serverCores !== undefined).map((p) => [p.t, p.serverCores!]) }], {
        title: "Server CPU over time (all server processes)",
        xLabel: "seconds (negative: setup)",
        yLabel: "cores",
      }),
    );
    charts.push(
      lineChart([{ name: "server RSS (MiB)", color: "#0f766e", points: r.timeline.filter((p) => p.serverRssBytes !== undefined).map((p) => [p.t, p.serverRssBytes! / 2 ** 20]) }], {
        title: "Server memory over time (RSS summed over its processes)",
        xLabel: "seconds (negative: setup)",
        yLabel: "MiB",
      }),
    );
  }
  const stageRows = r.stages.map((s) => [
    s.index + 1,
    s.rate === "max" ? "max" : s.rate,
    throughputOf(scenario, s).perSec,
    s.latencyMs[r.charts.kind].p50,
    s.latencyMs[r.charts.kind].p90,
    s.latencyMs[r.charts.kind].p99,
    s.latencyMs[r.charts.kind].max,
    s.server?.cores ?? "—",
    s.server?.cpuUsPerUnit ?? "—",
    s.counters.errors,
  ]);
  const lat = (name: string, l: LoadtestResult["latencyMs"]["delivery"]) => [name, l.count, l.p50, l.p90, l.p99, l.p999, l.max];
  const errors = Object.entries(r.errors).sort((a, b) => b[1] - a[1]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Load test ${esc(scenario)} ${esc(r.startedAt)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:980px;color:#1f2328;padding:0 16px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:right}th{background:#f6f8fa}
td:first-child,th:first-child{text-align:left}pre{background:#f6f8fa;padding:12px;white-space:pre-wrap}
figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}svg{max-width:100%;height:auto;font-size:11px}
svg text{fill:#57606a}svg .label{font-size:12px;fill:#1f2328}.grid{stroke:#eaeef2}.empty{color:#57606a}
.bad{color:#b42318;font-weight:600}
</style></head><body>
<h1>Load test: ${esc(scenario)}</h1>
<p>${esc(String(r.options.url))} · ${esc(String(r.options.engine))} engine over ${esc(String(r.options.transport))} · ${esc(r.startedAt)} → ${esc(r.endedAt)} · run ${esc(r.runId)}${r.interrupted ? ' · <span class="bad">interrupted</span>' : ""}</p>
${r.failures.length > 0 ? `<p class="bad">${r.failures.map(esc).join("<br>")}</p>` : ""}
<h2>Capacity summary</h2><pre>${esc(r.capacity.lines.join("\n"))}</pre>
<h2>Stages</h2>${table(["stage", "rate/s", unit, "p50 ms", "p90 ms", "p99 ms", "max ms", "server cores", `server µs per ${r.stages[0] ? throughputOf(scenario, r.stages[0]).single : "unit"}`, "errors"], stageRows)}
<h2>Charts</h2>${charts.join("\n")}
<h2>Latency (measured windows)</h2>${table(["kind", "count", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"], [
    lat("publish → deliver", r.latencyMs.delivery),
    lat("publish → ack", r.latencyMs.ack),
    lat("connect", r.connections.latencyMs),
    lat("presence op → own event", r.latencyMs.presence),
    lat("recovery reconnect", r.latencyMs.recovery),
  ])}
<h2>Messages and connections</h2>${table(["measure", "value"], [
    ["deliveries owed", r.delivery.expected],
    ["delivered (distinct)", r.delivery.delivered],
    ["lost", r.delivery.lost],
    ["duplicated", r.delivery.duplicated],
    ["reordered", r.delivery.reordered],
    ["published", r.totals.published],
    ["acked", r.totals.acked],
    ["refused by the server", r.totals.refused],
    ["skipped by the generator", r.totals.skipped],
    ["connects", r.connections.connects],
    ["connect errors", r.connections.errors],
    ["hung connects", r.connections.hung],
    ["dropped by the server", r.connections.disconnects],
    ...(r.recovery ? [["recoveries attempted", r.recovery.attempts], ["recovered", r.recovery.recovered], ["not recovered", r.recovery.notRecovered]] as Array<[string, number]> : []),
    ...(r.presence ? [["presence ops", r.presence.ops], ["presence events", r.presence.events], ["ghost members", r.presence.ghosts], ["missing members", r.presence.missing]] as Array<[string, number]> : []),
  ])}
${r.server ? `<h2>Server</h2>${table(["measure", "value"], [
    ["idle RSS (MiB)", (r.server.idleRssBytes ?? 0) / 2 ** 20],
    ["RSS with the connections (MiB)", (r.server.connectedRssBytes ?? 0) / 2 ** 20],
    ["RSS per connection (KiB)", (r.server.rssPerConnectionBytes ?? 0) / 1024],
    ["peak RSS (MiB)", r.server.peakRssBytes / 2 ** 20],
    ["CPU per delivery (µs)", r.server.cpuUsPerDelivery ?? 0],
  ])}${table(["process", "pid", "RSS MiB", "share of server CPU"], r.server.processes.map((p) => [p.name, String(p.pid), p.rssBytes / 2 ** 20, `${fmt((r.server!.cpuShare.find((c) => c.pid === p.pid)?.share ?? 0) * 100, 1)}%`]))}` : ""}
<h2>Errors</h2>${errors.length > 0 ? table(["kind", "count"], errors) : "<p>none</p>"}
<h2>Options</h2><pre>${esc(JSON.stringify(r.options, null, 2))}</pre>
<p>Host: ${esc(r.host.hostname)}, ${r.host.cpus} × ${esc(r.host.cpuModel)}, Node ${esc(r.host.node)}.</p>
</body></html>
`;
}
