import { randomBytes } from "node:crypto";

/**
 * The admin page's HTML: self-contained (inline style and script under a per-response CSP
 * nonce, hand-written SVG charts), so that it works offline and loads nothing from elsewhere.
 */

const STYLE = `
  :root { color-scheme: light dark; --fg: #1b1f24; --muted: #667; --bg: #f6f7f9; --card: #fff; --line: #d7dbe0; --accent: #2f6fdf; --accent2: #d9822b; --bad: #c0392b; --good: #2e8b57; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --muted: #99a; --bg: #14171b; --card: #1d2126; --line: #343a42; } }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; gap: 1em; align-items: baseline; padding: 0.8em 1.2em; border-bottom: 1px solid var(--line); background: var(--card); }
  header h1 { font-size: 1.1em; margin: 0; }
  header .meta { color: var(--muted); flex: 1; }
  main { padding: 1em 1.2em; display: grid; gap: 1em; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 0.8em 1em; }
  section h2 { font-size: 1em; margin: 0 0 0.6em; }
  section.wide { grid-column: 1 / -1; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: right; padding: 0.2em 0.5em; border-bottom: 1px solid var(--line); }
  th:first-child, td:first-child { text-align: left; }
  .big { font-size: 1.6em; font-weight: 600; font-variant-numeric: tabular-nums; }
  .muted { color: var(--muted); }
  .bad { color: var(--bad); }
  .good { color: var(--good); }
  #banner { display: none; margin: 1em 1.2em 0; padding: 0.6em 1em; border-radius: 6px; background: #fbeaea; color: #7a1f1f; border: 1px solid #e3b3b3; }
  #banner.shown { display: block; }
  svg.chart { width: 100%; height: 140px; display: block; }
  svg.chart .grid { stroke: var(--line); stroke-width: 1; }
  svg.chart .s0 { fill: none; stroke: var(--accent); stroke-width: 2; }
  svg.chart .s1 { fill: none; stroke: var(--accent2); stroke-width: 2; }
  svg.chart text { fill: var(--muted); font-size: 11px; }
  .legend span { margin-right: 1em; }
  .legend .k0 { color: var(--accent); } .legend .k1 { color: var(--accent2); }
  form { display: flex; gap: 0.5em; flex-wrap: wrap; align-items: center; margin-bottom: 0.6em; }
  input, textarea { font: inherit; padding: 0.3em 0.5em; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); }
  textarea { width: 100%; min-height: 3em; }
  button { font: inherit; padding: 0.3em 0.9em; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
  button.link { background: none; color: var(--accent); border: none; padding: 0; }
  .result { min-height: 1.4em; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 0.2em 1em; margin: 0; }
  dt { color: var(--muted); } dd { margin: 0; font-variant-numeric: tabular-nums; }
  .login { max-width: 22em; margin: 15vh auto; }
  .login form { flex-direction: column; align-items: stretch; }
  #members { margin-top: 0.8em; }
  #members td:nth-child(2) { text-align: left; font-family: ui-monospace, monospace; font-size: 0.9em; word-break: break-all; }
`;

function page(title: string, body: string, script: string | undefined, meta = ""): { html: string; nonce: string } {
  const nonce = randomBytes(16).toString("base64");
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><link rel="icon" href="data:,">${meta}
<style nonce="${nonce}">${STYLE}</style></head>
<body>${body}${script === undefined ? "" : `<script nonce="${nonce}">${script}</script>`}</body></html>`;
  return { html, nonce };
}

/** The login form; `problem` is said above it (wrong password, too many tries). */
export function loginPage(problem: string | undefined): { html: string; nonce: string } {
  return page(
    "Cerebellum admin: log in",
    `<section class="login"><h2>Cerebellum admin</h2>
${problem ? `<p class="bad" id="login-problem">${escapeHtml(problem)}</p>` : ""}
<form method="post" action="/admin/login">
<label for="password">Password (ADMIN_PASSWORD)</label>
<input id="password" name="password" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button></form></section>`,
    undefined,
  );
}

/** The page itself; `csrf` is the session's token, which every action sends back. */
export function dashboardPage(csrf: string): { html: string; nonce: string } {
  return page(
    "Cerebellum admin",
    BODY,
    SCRIPT,
    `<meta name="csrf-token" content="${escapeHtml(csrf)}">`,
  );
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const BODY = `
<header><h1>Cerebellum admin</h1><span class="meta" id="meta">connecting…</span>
<span id="updated" class="muted"></span><button class="link" id="logout" type="button">Log out</button></header>
<div id="banner" role="alert"></div>
<main>
<section><h2>Connections</h2>
<div class="big" id="connections-now">–</div>
<svg class="chart" id="chart-connections" viewBox="0 0 600 140" preserveAspectRatio="none" role="img" aria-label="connections over the last minutes"></svg>
<div class="legend muted"><span class="k0">■ open connections</span> last 5 minutes</div></section>
<section><h2>Messages per second</h2>
<div class="big"><span id="published-rate">–</span> <span class="muted">published</span> · <span id="delivered-rate">–</span> <span class="muted">delivered</span></div>
<svg class="chart" id="chart-messages" viewBox="0 0 600 140" preserveAspectRatio="none" role="img" aria-label="messages per second over the last minutes"></svg>
<div class="legend muted"><span class="k0">■ published/s</span><span class="k1">■ delivered/s</span> last 5 minutes</div></section>
<section class="wide"><h2>Processes on this host</h2>
<table id="workers"><thead><tr><th>process</th><th>pid</th><th>state</th><th>connections</th><th>event-loop lag (mean / p99)</th><th>RSS</th><th>up</th><th>restarts</th></tr></thead><tbody></tbody></table></section>
<section class="wide"><h2>Cluster <span class="muted" id="cluster-note"></span></h2>
<table id="cluster"><thead><tr><th>worker</th><th>host</th><th>pid</th><th>connections</th><th>channels</th><th>up</th><th>version</th></tr></thead><tbody></tbody></table></section>
<section><h2>Busiest channels <span class="muted" id="channels-scope"></span></h2>
<table id="channels"><thead><tr><th>channel</th><th>subscribers</th><th>presence</th><th></th></tr></thead><tbody></tbody></table>
<p class="muted" id="channels-note"></p>
<div id="members" hidden><h2>Present in <span id="members-channel"></span> <span class="muted" id="members-count"></span></h2>
<table id="members-table"><thead><tr><th>socket id</th><th>info</th><th></th></tr></thead><tbody></tbody></table></div></section>
<section><h2>Recovery and persistence</h2><dl id="status"></dl></section>
<section><h2>Actions</h2>
<form id="publish-form"><input id="publish-channel" placeholder="channel" required size="18">
<textarea id="publish-data" placeholder='data (JSON, or plain text)'>{"test": true}</textarea>
<button type="submit">Publish a test message</button></form>
<form id="disconnect-form"><input id="disconnect-socket" placeholder="socket id" required size="24">
<button type="submit">Disconnect the socket</button></form>
<div class="result" id="action-result" role="status"></div></section>
</main>`;

/* The page's script: polls /admin/state every second, keeps the last 5 minutes for the charts,
   computes rates from each worker's counters (by pid, so that a restarted worker's counters
   starting again from zero are not a negative rate), and sends the actions with the CSRF token. */
const SCRIPT = `
"use strict";
const POLL_MS = 1000, KEEP_MS = 5 * 60 * 1000;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
const series = { connections: [], published: [], delivered: [] };
let previous = null;
let timer = 0;

function fmt(n, digits) { return n === null || n === undefined ? "–" : Number(n).toLocaleString(undefined, { maximumFractionDigits: digits ?? 0 }); }
function bytes(n) { if (n === null || n === undefined) return "–"; const u = ["B", "KiB", "MiB", "GiB"]; let i = 0; while (n >= 1024 && i < 3) { n /= 1024; i++; } return n.toFixed(i ? 1 : 0) + " " + u[i]; }
function ago(s) { if (s < 60) return s + " s"; if (s < 3600) return Math.floor(s / 60) + " min"; if (s < 86400) return Math.floor(s / 3600) + " h"; return Math.floor(s / 86400) + " d"; }
function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }
function banner(text) { const b = $("banner"); b.textContent = text || ""; b.classList.toggle("shown", Boolean(text)); }

function push(list, t, v) { list.push([t, v]); while (list.length && list[0][0] < t - KEEP_MS) list.shift(); }

function chart(svg, lines, now) {
  const W = 600, H = 140, top = 12, bottom = 4;
  let max = 0;
  for (const l of lines) for (const p of l) if (p[1] > max) max = p[1];
  const scale = max > 0 ? niceMax(max) : 1;
  const x = (t) => ((t - (now - KEEP_MS)) / KEEP_MS) * W;
  const y = (v) => H - bottom - (v / scale) * (H - top - bottom);
  const ns = "http://www.w3.org/2000/svg";
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  for (const f of [0, 0.5, 1]) {
    const g = document.createElementNS(ns, "line");
    g.setAttribute("class", "grid"); g.setAttribute("x1", "0"); g.setAttribute("x2", String(W));
    g.setAttribute("y1", String(y(scale * f))); g.setAttribute("y2", String(y(scale * f)));
    svg.appendChild(g);
  }
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "4"); label.setAttribute("y", "11"); label.textContent = fmt(scale, 1);
  svg.appendChild(label);
  lines.forEach((l, i) => {
    const pl = document.createElementNS(ns, "polyline");
    pl.setAttribute("class", "s" + i);
    pl.setAttribute("points", l.map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" "));
    svg.appendChild(pl);
  });
  svg.dataset.points = String(lines.reduce((n, l) => n + l.length, 0));
  svg.dataset.max = String(max);
}
function niceMax(v) { const p = Math.pow(10, Math.floor(Math.log10(v))); for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p; return 10 * p; }

function rates(state) {
  const now = state.now;
  const counters = new Map();
  for (const w of state.workers) if (w.pid && w.answered) counters.set(w.pid, { published: w.published || 0, delivered: w.delivered || 0 });
  const out = { published: null, delivered: null };
  if (previous && now > previous.now) {
    const dt = (now - previous.now) / 1000;
    out.published = 0; out.delivered = 0;
    for (const [pid, c] of counters) {
      const before = previous.counters.get(pid);
      if (!before) continue;
      out.published += Math.max(0, c.published - before.published) / dt;
      out.delivered += Math.max(0, c.delivered - before.delivered) / dt;
    }
  }
  previous = { now, counters };
  return out;
}

function render(state) {
  const now = state.now;
  $("meta").textContent = state.host + " · " + state.mode + " mode · v" + state.version + " · primary pid " + state.primary.pid + " · up " + ago(state.primary.uptimeS);
  $("updated").textContent = "updated " + new Date(now).toLocaleTimeString();
  const r = rates(state);
  push(series.connections, now, state.totals.connections);
  if (r.published !== null) { push(series.published, now, r.published); push(series.delivered, now, r.delivered); }
  $("connections-now").textContent = fmt(state.totals.connections);
  $("published-rate").textContent = fmt(r.published, 1);
  $("delivered-rate").textContent = fmt(r.delivered, 1);
  chart($("chart-connections"), [series.connections], now);
  chart($("chart-messages"), [series.published, series.delivered], now);

  const tbody = $("workers").tBodies[0];
  tbody.textContent = "";
  const p = state.primary;
  const ptr = document.createElement("tr");
  cell(ptr, "primary"); cell(ptr, String(p.pid)); cell(ptr, "running", "good"); cell(ptr, "");
  cell(ptr, fmt(p.lagMs, 1) + " ms"); cell(ptr, bytes(p.rssBytes)); cell(ptr, ago(p.uptimeS));
  cell(ptr, (p.restarts.crash + p.restarts.rolling) + " (" + p.restarts.crash + " crash)");
  tbody.appendChild(ptr);
  for (const w of state.workers) {
    const tr = document.createElement("tr");
    tr.dataset.pid = String(w.pid || "");
    // The worker's id, as the cluster table names it (a replacement gets a new one); its slot while it has none.
    cell(tr, w.workerId !== undefined && w.workerId !== null ? "worker " + w.workerId : "slot " + w.slot);
    cell(tr, w.pid ? String(w.pid) : "–");
    const st = w.state === "ready" && !w.answered ? "not answering" : w.state;
    cell(tr, st, w.state === "ready" && w.answered ? "good" : "bad");
    cell(tr, fmt(w.connections));
    cell(tr, fmt(w.lagMs, 1) + " / " + fmt(w.lagP99Ms, 1) + " ms");
    cell(tr, bytes(w.rssBytes));
    cell(tr, w.pid ? ago(Math.max(0, Math.round((now - w.startedAt) / 1000))) : "–");
    cell(tr, String(w.restarts));
    tbody.appendChild(tr);
  }

  const cbody = $("channels").tBodies[0];
  cbody.textContent = "";
  for (const c of state.channels.top) {
    const tr = document.createElement("tr");
    cell(tr, c.channel); cell(tr, fmt(c.subscribers)); cell(tr, c.presence === undefined ? "–" : fmt(c.presence));
    const td = cell(tr, "");
    if (c.presence) {
      const m = document.createElement("button"); m.className = "link members"; m.type = "button"; m.textContent = "members…";
      m.addEventListener("click", () => showMembers(c.channel));
      td.append(m, " ");
    }
    const b = document.createElement("button"); b.className = "link"; b.type = "button"; b.textContent = "publish…";
    b.addEventListener("click", () => { $("publish-channel").value = c.channel; $("publish-data").focus(); });
    td.appendChild(b);
    tr.dataset.channel = c.channel;
    cbody.appendChild(tr);
  }
  const where = state.channels.scope === "cluster" ? "in the cluster" : "on this host";
  $("channels-scope").textContent = "(" + where + ")";
  $("channels-note").textContent = (state.channels.top.length === 0 ? "No channel has a subscriber " + where + "." :
    state.channels.scope === "cluster" ? "Subscribers across the cluster (server API); presence counts are shared by the cluster." :
    "Subscribers on this host's workers only, while the server API cannot answer.") + (state.channels.truncated ? " Some workers listed only part of their channels." : "");

  const kbody = $("cluster").tBodies[0];
  kbody.textContent = "";
  const cl = state.cluster;
  if (cl.available) {
    const hosts = new Set(cl.nodes.map((n) => n.host));
    $("cluster-note").textContent = "(" + cl.nodes.length + " workers on " + hosts.size + (hosts.size === 1 ? " host" : " hosts") + (cl.missing.length ? ", " + cl.missing.length + " not answering" : "") + ")";
    for (const n of cl.nodes) {
      const tr = document.createElement("tr");
      cell(tr, "worker " + n.worker + (n.host === state.host ? " (this host)" : ""));
      cell(tr, n.host); cell(tr, String(n.pid)); cell(tr, fmt(n.num_clients)); cell(tr, fmt(n.num_channels));
      cell(tr, ago(Math.round(n.uptime))); cell(tr, n.version);
      kbody.appendChild(tr);
    }
    for (const m of cl.missing) { const tr = document.createElement("tr"); cell(tr, (m.name || m.uid) + " (not answering)", "bad"); kbody.appendChild(tr); }
  } else {
    $("cluster-note").textContent = "(unavailable)";
    const tr = document.createElement("tr"); const td = cell(tr, "The server API could not answer: " + cl.error, "bad"); td.colSpan = 7; kbody.appendChild(tr);
  }

  const s = $("status");
  s.textContent = "";
  const rec = state.recovery, per = state.persistence;
  const rows = [
    ["recovery window", rec.maxDisconnectionMs > 0 ? fmt(rec.maxDisconnectionMs / 1000) + " s" : "off"],
    ["sessions recovered / not", fmt(rec.recovered) + " / " + fmt(rec.notRecovered)],
  ];
  if (rec.replayLogEntries !== undefined) rows.push(["replay log (messages kept)", fmt(rec.replayLogEntries)]);
  if (rec.sessionsKept !== undefined) rows.push(["disconnected sessions kept", fmt(rec.sessionsKept)]);
  rows.push(["persistence", per.sink], ["waiting to be stored", fmt(per.queueDepth)], ["spilled to disk", fmt(per.spilled)], ["store errors", fmt(per.storeErrors)]);
  for (const [k, v] of rows) { const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = v; s.append(dt, dd); }

  const down = state.workers.filter((w) => w.state !== "ready" || !w.answered);
  const notes = [];
  if (down.length) notes.push(down.map((w) => (w.workerId !== undefined && w.workerId !== null ? "worker " + w.workerId : "slot " + w.slot) + (w.state === "ready" ? " is not answering" : " is " + w.state)).join("; ") + ": its numbers are missing until it is back.");
  if (!cl.available) notes.push("The cluster view is unavailable (" + cl.error + "): showing this host only; actions may fail.");
  banner(notes.join(" "));
}

async function poll() {
  try {
    const res = await fetch("/admin/state", { cache: "no-store", credentials: "same-origin" });
    if (res.status === 401) { banner("Your session has ended: reload the page to log in again."); return; }
    const body = await res.json().catch(() => null);
    if (!res.ok || !body || !body.result) banner("The server could not answer (" + res.status + (body && body.error ? ": " + body.error.message : "") + "); retrying.");
    else render(body.result);
  } catch (err) {
    banner("The server is unreachable; retrying.");
  }
  timer = setTimeout(poll, POLL_MS);
}

async function showMembers(channel) {
  const box = $("members"), body = $("members-table").tBodies[0];
  box.hidden = false; body.textContent = "";
  $("members-channel").textContent = channel; $("members-count").textContent = "…";
  try {
    const res = await fetch("/admin/presence?channel=" + encodeURIComponent(channel), { cache: "no-store", credentials: "same-origin" });
    const answer = await res.json().catch(() => null);
    if (!answer || !answer.result) { $("members-count").textContent = answer && answer.error ? answer.error.code + ": " + answer.error.message : "HTTP " + res.status; return; }
    const r = answer.result;
    $("members-count").textContent = "(" + r.total + (r.total > r.members.length ? ", first " + r.members.length + " shown" : "") + ")";
    for (const m of r.members) {
      const tr = document.createElement("tr");
      tr.dataset.socket = m.client;
      cell(tr, m.client); cell(tr, JSON.stringify(m.info));
      const td = cell(tr, "");
      const b = document.createElement("button"); b.className = "link"; b.type = "button"; b.textContent = "disconnect";
      b.addEventListener("click", async () => { await act("/admin/disconnect", { socketId: m.client }); showMembers(channel); });
      td.appendChild(b);
      body.appendChild(tr);
    }
  } catch (err) {
    $("members-count").textContent = "The server is unreachable.";
  }
}

async function act(path, payload) {
  const out = $("action-result");
  out.className = "result muted"; out.textContent = "…";
  try {
    const res = await fetch(path, { method: "POST", credentials: "same-origin", headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: JSON.stringify(payload) });
    const body = await res.json().catch(() => null);
    if (body && body.result) { out.className = "result good"; out.textContent = path === "/admin/publish" ? "Published (message " + body.result.messageId + ")." : "Disconnected " + body.result.disconnected + "."; }
    else { out.className = "result bad"; out.textContent = body && body.error ? body.error.code + ": " + body.error.message : "HTTP " + res.status; }
  } catch (err) {
    out.className = "result bad"; out.textContent = "The server is unreachable.";
  }
}

$("publish-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const raw = $("publish-data").value;
  let data;
  try { data = JSON.parse(raw); } catch (_) { data = raw; }
  act("/admin/publish", { channel: $("publish-channel").value.trim(), data });
});
$("disconnect-form").addEventListener("submit", (e) => {
  e.preventDefault();
  act("/admin/disconnect", { socketId: $("disconnect-socket").value.trim() });
});
$("logout").addEventListener("click", async () => {
  clearTimeout(timer);
  await fetch("/admin/logout", { method: "POST", credentials: "same-origin", headers: { "x-csrf-token": csrf } }).catch(() => null);
  location.reload();
});
poll();
`;
