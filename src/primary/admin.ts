import type { Worker } from "node:cluster";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { hostname } from "node:os";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Config } from "../shared/config.js";
import { IPC_SOURCE, type AdminChannel, type AdminRequest, type AdminResult, type WorkerMessage } from "../shared/ipc.js";
import type { Logger } from "../shared/logger.js";
import { METRIC_PREFIX, type MetricSnapshot } from "../shared/metrics.js";
import { dashboardPage, loginPage } from "./admin-page.js";
import type { AdapterHost } from "./adapter-host.js";
import type { HostMetrics } from "./metrics.js";
import type { ServerApiClient } from "./server-api-client.js";
import type { SlotInfo, Supervisor } from "./supervisor.js";

/** The session cookie's name; HttpOnly, SameSite=Strict, Path=/admin. */
export const ADMIN_COOKIE = "cerebellum_admin";
/** How long a login lasts, in ms. */
export const ADMIN_SESSION_MS = 12 * 60 * 60 * 1000;
/** Wrong passwords accepted per minute (host-wide) before logins answer 429 until the minute is over. */
export const ADMIN_LOGIN_FAILURES_PER_MIN = 10;
/** The largest request body the admin routes read. */
const BODY_MAX = 64 * 1024;
/** How long the page's questions to the workers may take before the answer goes without them. */
const WORKER_ANSWER_MS = 2000;
/** An action through the server API: a publish answers once stored; a cluster question within 5 s. */
const ACTION_ANSWER_MS = 10_000;
/** The cluster-wide view (server API `info` and `channels`) is asked again at most this often. */
export const CLUSTER_REFRESH_MS = 2000;
/** How long the cluster-wide questions may take (the API waits up to 5 s for a silent worker). */
const CLUSTER_ANSWER_MS = 7000;
/** Presence members listed for one channel. */
const PRESENCE_SHOWN = 200;
/** Channels shown: the busiest. */
const CHANNELS_SHOWN = 20;

/** One worker of the cluster as the server API's `info` names it. */
export interface ClusterNode {
  uid: string;
  name: string;
  host: string;
  pid: number;
  worker: number;
  version: string;
  mode: string;
  uptime: number;
  num_clients: number;
  num_channels: number;
}

/** What the server API said of the whole cluster, when it last could. */
interface ClusterView {
  at: number;
  nodes: ClusterNode[];
  channels: AdminChannel[];
  truncated: boolean;
  /** Workers that did not answer the API's question in time. */
  missing: { uid: string; name?: string }[];
}

interface Session {
  csrf: string;
  expiresAt: number;
}

interface Pending {
  waiting: Set<number>;
  results: AdminResult[];
  done: () => void;
}

export interface AdminSources {
  config: Config;
  supervisor: Supervisor;
  metrics: HostMetrics;
  /** Embedded mode's adapter host: the replay log and the sessions kept for recovery. */
  adapterHost: AdapterHost | undefined;
  /** The workers' server API on the main port: the cluster-wide view and the actions. */
  api: ServerApiClient;
  version: string;
  log: Logger;
}

/**
 * The admin page on the side port (`GET /admin`), on when ADMIN_PASSWORD is set: a login form
 * that sets an HttpOnly session cookie, the page, `GET /admin/state` (what the page polls) and
 * two actions (`POST /admin/disconnect`, `POST /admin/publish`) that need the session and its
 * CSRF token. Everything it shows is this host's: the primary's per-worker metric snapshots
 * (the same collection /metrics sums) and the workers' answers over IPC. The actions go to the
 * workers over IPC too: a test publish takes the adapter's path, so it reaches every host.
 */
export class AdminPage {
  private readonly sessions = new Map<string, Session>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failures = { minute: 0, count: 0 };
  private readonly passwordDigest: Buffer;
  private readonly startedAt = Date.now();
  private cluster: { view?: ClusterView; error?: string; errorAt?: number; refreshing?: Promise<void> } = {};

  constructor(private readonly sources: AdminSources) {
    this.passwordDigest = digest(sources.config.adminPassword ?? "");
    sources.supervisor.on("message", (worker: Worker, message: WorkerMessage) => {
      if (message.type === "admin:result") this.answered(worker.id, message.id, message.result);
    });
    sources.supervisor.on("exit", (workerId: number) => {
      for (const pending of this.pending.values()) this.drop(pending, workerId);
    });
  }

  /** Answers a side-port request under /admin; false when the path is not the page's. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (path !== "/admin" && !path.startsWith("/admin/")) return false;
    res.setHeader("cache-control", "no-store");
    res.setHeader("x-frame-options", "DENY");
    res.setHeader("x-content-type-options", "nosniff");
    // Not no-referrer: with it Chromium sends "Origin: null" on the page's own POSTs, which sameOrigin() refuses.
    res.setHeader("referrer-policy", "same-origin");
    const session = this.session(req);
    if (req.method === "GET" && path === "/admin") {
      if (!session) return this.html(res, 200, loginPage(undefined));
      return this.html(res, 200, dashboardPage(session.csrf));
    }
    if (req.method === "POST" && path === "/admin/login") {
      this.login(req, res);
      return true;
    }
    if (req.method === "GET" && path === "/admin/state") {
      if (!session) return json(res, 401, { error: { code: "UNAUTHENTICATED", message: "log in at /admin" } });
      this.state().then(
        (state) => json(res, 200, { result: state }),
        (err: unknown) => {
          this.sources.log.error({ err }, "admin page: could not build the state");
          json(res, 500, { error: { code: "INTERNAL", message: "could not collect the state" } });
        },
      );
      return true;
    }
    if (req.method === "GET" && path === "/admin/presence") {
      // A read: the SameSite=Strict cookie keeps other sites from sending it, and its JSON is not
      // readable across origins, so it needs no CSRF token.
      if (!session) return json(res, 401, { error: { code: "UNAUTHENTICATED", message: "log in at /admin" } });
      const channel = new URL(req.url ?? "/", "http://admin").searchParams.get("channel") ?? "";
      this.members(channel).then(
        (answer) => json(res, "error" in answer ? actionStatus(answer.error.code) : 200, answer),
        (err: unknown) => {
          this.sources.log.error({ err }, "admin page: could not read presence");
          json(res, 500, { error: { code: "INTERNAL", message: "could not read presence" } });
        },
      );
      return true;
    }
    if (req.method === "POST" && (path === "/admin/logout" || path === "/admin/disconnect" || path === "/admin/publish")) {
      const refused = this.actionRefused(req, session);
      if (refused) return json(res, refused.status, { error: { code: refused.code, message: refused.message } });
      if (path === "/admin/logout") {
        this.sessions.delete(this.cookie(req)!);
        res.setHeader("set-cookie", `${ADMIN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=0`);
        return json(res, 200, { result: {} });
      }
      readBody(req, res, (body) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          return json(res, 400, { error: { code: "INVALID_ARGUMENT", message: "the body must be JSON" } });
        }
        const action = path === "/admin/disconnect" ? this.disconnect(parsed) : this.publish(parsed);
        action.then(
          (answer) => json(res, "error" in answer ? actionStatus(answer.error.code) : 200, answer),
          (err: unknown) => {
            this.sources.log.error({ err }, "admin page: an action failed");
            json(res, 500, { error: { code: "INTERNAL", message: "the action failed" } });
          },
        );
      });
      return true;
    }
    json(res, 404, { error: { code: "NOT_FOUND", message: "no such admin route" } });
    return true;
  }

  /** Why an action is refused: no session, a cross-site request, or a missing/wrong CSRF token. */
  private actionRefused(req: IncomingMessage, session: Session | undefined): { status: number; code: string; message: string } | undefined {
    if (!session) return { status: 401, code: "UNAUTHENTICATED", message: "log in at /admin" };
    if (!sameOrigin(req)) return { status: 403, code: "FORBIDDEN", message: "cross-origin request" };
    const given = req.headers["x-csrf-token"];
    if (typeof given !== "string" || !safeEqual(given, session.csrf)) {
      return { status: 403, code: "FORBIDDEN", message: "missing or wrong X-CSRF-Token" };
    }
    return undefined;
  }

  private login(req: IncomingMessage, res: ServerResponse): void {
    if (!sameOrigin(req)) {
      this.html(res, 403, loginPage("This login came from another site."));
      return;
    }
    readBody(req, res, (body) => {
      const minute = Math.floor(Date.now() / 60_000);
      if (this.failures.minute !== minute) this.failures = { minute, count: 0 };
      if (this.failures.count >= ADMIN_LOGIN_FAILURES_PER_MIN) {
        this.html(res, 429, loginPage("Too many wrong passwords: try again in a minute."));
        return;
      }
      const password = new URLSearchParams(body).get("password") ?? "";
      // Digests of equal length, compared in constant time: neither the length nor a prefix leaks.
      if (!timingSafeEqual(digest(password), this.passwordDigest)) {
        this.failures.count++;
        this.sources.log.warn({ from: req.socket.remoteAddress }, "admin page: wrong password");
        this.html(res, 401, loginPage("Wrong password."));
        return;
      }
      this.expireSessions();
      const id = randomBytes(32).toString("base64url");
      this.sessions.set(id, { csrf: randomBytes(32).toString("base64url"), expiresAt: Date.now() + ADMIN_SESSION_MS });
      this.sources.log.info({ from: req.socket.remoteAddress }, "admin page: logged in");
      res.writeHead(303, {
        location: "/admin",
        "set-cookie": `${ADMIN_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=${ADMIN_SESSION_MS / 1000}`,
      });
      res.end();
    });
  }

  private cookie(req: IncomingMessage): string | undefined {
    for (const part of (req.headers.cookie ?? "").split(";")) {
      const [name, ...value] = part.trim().split("=");
      if (name === ADMIN_COOKIE) return value.join("=");
    }
    return undefined;
  }

  private session(req: IncomingMessage): Session | undefined {
    const id = this.cookie(req);
    const session = id === undefined ? undefined : this.sessions.get(id);
    if (!session) return undefined;
    if (session.expiresAt <= Date.now()) {
      this.sessions.delete(id!);
      return undefined;
    }
    return session;
  }

  private expireSessions(): void {
    const now = Date.now();
    for (const [id, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(id);
  }

  private html(res: ServerResponse, status: number, page: { html: string; nonce: string }): true {
    res.writeHead(status, {
      "content-type": "text/html; charset=utf-8",
      // Everything is inline and nonced; the page talks to its own origin only.
      "content-security-policy": `default-src 'none'; script-src 'nonce-${page.nonce}'; style-src 'nonce-${page.nonce}'; img-src data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    });
    res.end(page.html);
    return true;
  }

  /** What the page shows: this host's processes from the primary, the cluster from the server API. */
  async state(): Promise<AdminState> {
    const { config, supervisor, metrics, adapterHost } = this.sources;
    const cluster = await this.clusterView();
    const [gathered, channelAnswers] = await Promise.all([
      metrics.gather(),
      cluster.view
        ? Promise.resolve([])
        : // No cluster view: the page shows this host's channels, from its workers.
          this.ask(supervisor.connectedWorkers(), { op: "channels", limit: CHANNELS_SHOWN * 2, presenceOf: CHANNELS_SHOWN }, WORKER_ANSWER_MS),
    ]);
    const byWorker = new Map(gathered.workers.map((w) => [w.workerId, w.snapshot]));
    const workers = supervisor.slotInfo().map((slot): WorkerState => {
      const snapshot = slot.workerId === undefined ? undefined : byWorker.get(slot.workerId);
      return {
        ...slot,
        answered: snapshot !== undefined,
        connections: read(snapshot, "connections"),
        published: read(snapshot, "messages_published_total"),
        delivered: read(snapshot, "messages_delivered_total"),
        lagMs: toMs(read(snapshot, "nodejs_eventloop_lag_mean_seconds")),
        lagP99Ms: toMs(read(snapshot, "nodejs_eventloop_lag_p99_seconds")),
        rssBytes: read(snapshot, "process_resident_memory_bytes"),
      };
    });
    const snapshots = gathered.workers.map((w) => w.snapshot);
    const sum = (name: string, labels?: Record<string, string>) => snapshots.reduce((total, s) => total + (read(s, name, labels) ?? 0), 0);
    return {
      now: Date.now(),
      host: hostname(),
      version: this.sources.version,
      mode: config.mode,
      primary: {
        pid: process.pid,
        uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
        rssBytes: read(gathered.primary, "process_resident_memory_bytes"),
        lagMs: toMs(read(gathered.primary, "nodejs_eventloop_lag_mean_seconds")),
        restarts: { ...supervisor.restartsTotal },
      },
      workers,
      unanswered: gathered.missing.length,
      totals: { connections: sum("connections"), published: sum("messages_published_total"), delivered: sum("messages_delivered_total") },
      channels: cluster.view ? clusterChannels(cluster.view) : hostChannels(channelAnswers),
      cluster: cluster.view
        ? { available: true, at: cluster.view.at, nodes: cluster.view.nodes, missing: cluster.view.missing, ...(cluster.error ? { error: cluster.error } : {}) }
        : { available: false, error: cluster.error ?? "not asked yet" },
      recovery: {
        maxDisconnectionMs: config.recovery.maxDisconnectionMs,
        recovered: sum("recoveries_total", { recovered: "true" }),
        notRecovered: sum("recoveries_total", { recovered: "false" }),
        replayLogEntries: adapterHost?.log.size,
        sessionsKept: adapterHost?.sessions.disconnectedCount,
      },
      persistence: {
        sink: config.persistence.sink,
        queueDepth: sum("persistence_queue_depth"),
        spilled: sum("persistence_spilled_messages_total"),
        storeErrors: sum("persistence_store_errors_total"),
      },
    };
  }

  /**
   * The cluster-wide view, asked of the server API at most every CLUSTER_REFRESH_MS and shared by
   * every open page. A poll waits only for the first answer; later ones get the last view while
   * the next is asked. When the API fails, the last view goes (it would be stale) and the error
   * is shown instead, so the page falls back to this host's numbers.
   */
  private async clusterView(): Promise<{ view?: ClusterView; error?: string }> {
    const fresh = (this.cluster.view?.at ?? this.cluster.errorAt ?? 0) > Date.now() - CLUSTER_REFRESH_MS;
    if (!fresh) this.cluster.refreshing ??= this.refreshCluster().finally(() => (this.cluster.refreshing = undefined));
    if (!this.cluster.view && !this.cluster.error && this.cluster.refreshing) await this.cluster.refreshing;
    return this.cluster;
  }

  private async refreshCluster(): Promise<void> {
    const { api } = this.sources;
    type Missing = { missing?: { uid: string; name?: string }[] };
    const [info, channels] = await Promise.all([
      api.call<{ nodes: ClusterNode[] } & Missing>("info", {}, CLUSTER_ANSWER_MS),
      api.call<{ channels: Record<string, { num_clients: number }>; truncated?: boolean } & Missing>("channels", {}, CLUSTER_ANSWER_MS),
    ]);
    const failed = "error" in info ? info : "error" in channels ? channels : undefined;
    if (failed && "error" in failed) {
      this.cluster = { error: `${failed.error.code}: ${failed.error.message}`, errorAt: Date.now() };
      return;
    }
    if ("error" in info || "error" in channels) return; // narrowed above
    const top = Object.entries(channels.result.channels)
      .map(([channel, { num_clients }]): AdminChannel => ({ channel, subscribers: num_clients }))
      .sort((a, b) => b.subscribers - a.subscribers || (a.channel < b.channel ? -1 : 1))
      .slice(0, CHANNELS_SHOWN);
    // Presence counts with the list, not per poll: a read copies a channel's whole member list.
    const counts = (await this.presenceOf(top.map((c) => c.channel))).find((a) => a.op === "presence")?.counts ?? {};
    for (const entry of top) if (counts[entry.channel] !== undefined) entry.presence = counts[entry.channel];
    const missing = new Map([...(info.result.missing ?? []), ...(channels.result.missing ?? [])].map((m) => [m.uid, m]));
    this.cluster = {
      view: { at: Date.now(), nodes: info.result.nodes, channels: top, truncated: channels.result.truncated === true, missing: [...missing.values()] },
    };
  }

  /** Presence counts of these channels, from one ready worker (presence is shared). */
  private async presenceOf(channels: string[]): Promise<AdminResult[]> {
    const worker = this.sources.supervisor.readyWorkers()[0];
    if (!worker || channels.length === 0) return [];
    return this.ask([worker], { op: "presence", channels }, WORKER_ANSWER_MS);
  }

  /** A channel's presence members (the first PRESENCE_SHOWN), so that one can be picked to disconnect. */
  private async members(channel: string): Promise<ActionAnswer> {
    const answer = await this.sources.api.call<{ presence: Record<string, { client: string; info: Record<string, string> }> }>("presence", { channel }, ACTION_ANSWER_MS);
    if ("error" in answer) return answer;
    const members = Object.values(answer.result.presence);
    return { result: { channel, total: members.length, members: members.slice(0, PRESENCE_SHOWN) } };
  }

  private async disconnect(body: unknown): Promise<ActionAnswer> {
    const socketId = (body as { socketId?: unknown } | null)?.socketId;
    if (typeof socketId !== "string" || socketId.length === 0 || socketId.length > 256) {
      return { error: { code: "INVALID_ARGUMENT", message: "socketId (string) is required" } };
    }
    const answer = await this.sources.api.call<{ disconnected: number; missing?: unknown[] }>("disconnect", { client: socketId }, ACTION_ANSWER_MS);
    this.sources.log.info({ socketId, answer }, "admin page: disconnect a socket");
    if ("error" in answer) return answer;
    if (answer.result.disconnected === 0) {
      const incomplete = answer.result.missing?.length ? " (some workers did not answer)" : "";
      return { error: { code: "NOT_FOUND", message: `no connection with that id in the cluster${incomplete}` } };
    }
    return { result: { disconnected: socketId } };
  }

  private async publish(body: unknown): Promise<ActionAnswer> {
    const { channel, data } = (body ?? {}) as { channel?: unknown; data?: unknown };
    if (typeof channel !== "string" || data === undefined) {
      return { error: { code: "INVALID_ARGUMENT", message: "channel (string) and data are required" } };
    }
    const answer = await this.sources.api.call<{ messageId: string }>("publish", { channel, data }, ACTION_ANSWER_MS);
    this.sources.log.info({ channel, ok: "result" in answer }, "admin page: publish a test message");
    if ("error" in answer) return answer;
    return { result: { messageId: answer.result.messageId } };
  }

  /** Asks these workers and collects what they answer within `timeoutMs`. */
  private async ask(workers: Worker[], request: AdminRequest, timeoutMs: number): Promise<AdminResult[]> {
    const id = this.nextId++;
    const pending: Pending = { waiting: new Set(workers.map((w) => w.id)), results: [], done: () => undefined };
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      pending.done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.pending.set(id, pending);
      for (const worker of workers) this.sources.supervisor.send(worker, { source: IPC_SOURCE, type: "admin:request", id, request });
      if (pending.waiting.size === 0) pending.done();
    });
    this.pending.delete(id);
    return pending.results;
  }

  private answered(workerId: number, id: number, result: AdminResult): void {
    const pending = this.pending.get(id);
    if (!pending?.waiting.has(workerId)) return;
    pending.results.push(result);
    this.drop(pending, workerId);
  }

  private drop(pending: Pending, workerId: number): void {
    if (pending.waiting.delete(workerId) && pending.waiting.size === 0) pending.done();
  }
}

/** The HTTP status of an action's failure code. */
function actionStatus(code: string): number {
  if (code === "NOT_FOUND") return 404;
  if (code === "UNAVAILABLE" || code === "OVERLOADED" || code === "STORE_UNAVAILABLE") return 503;
  return 400;
}

type ActionAnswer = { result: object } | { error: { code: string; message: string } };

export interface WorkerState extends SlotInfo {
  /** Whether its metrics came back in time (false: the numbers below are null). */
  answered: boolean;
  connections: number | null;
  published: number | null;
  delivered: number | null;
  lagMs: number | null;
  lagP99Ms: number | null;
  rssBytes: number | null;
}

export interface AdminState {
  now: number;
  host: string;
  version: string;
  mode: Config["mode"];
  primary: { pid: number; uptimeS: number; rssBytes: number | null; lagMs: number | null; restarts: { crash: number; rolling: number } };
  workers: WorkerState[];
  unanswered: number;
  totals: { connections: number; published: number; delivered: number };
  /** `cluster`: subscriber counts across the cluster (server API); `host`: this host's workers only. */
  channels: { scope: "cluster" | "host"; top: AdminChannel[]; truncated?: boolean };
  cluster:
    | { available: true; at: number; nodes: ClusterNode[]; missing: { uid: string; name?: string }[]; error?: string }
    | { available: false; error: string };
  recovery: {
    maxDisconnectionMs: number;
    recovered: number;
    notRecovered: number;
    replayLogEntries: number | undefined;
    sessionsKept: number | undefined;
  };
  persistence: { sink: Config["persistence"]["sink"]; queueDepth: number; spilled: number; storeErrors: number };
}

/** The cluster's busiest channels, with the presence counts read along with them. */
function clusterChannels(view: ClusterView): AdminState["channels"] {
  const top = view.channels.map((c) => ({ ...c }));
  return view.truncated ? { scope: "cluster", top, truncated: true } : { scope: "cluster", top };
}

/** This host's busiest channels, summed over its workers' answers. */
function hostChannels(answers: AdminResult[]): AdminState["channels"] {
  const merged = new Map<string, AdminChannel>();
  for (const answer of answers) {
    if (answer.op !== "channels") continue;
    for (const entry of answer.channels) {
      const seen = merged.get(entry.channel);
      if (!seen) merged.set(entry.channel, { ...entry });
      else {
        seen.subscribers += entry.subscribers;
        seen.presence = entry.presence ?? seen.presence;
      }
    }
  }
  const top = [...merged.values()].sort((a, b) => b.subscribers - a.subscribers || (a.channel < b.channel ? -1 : 1)).slice(0, CHANNELS_SHOWN);
  return { scope: "host", top };
}

/** A sample's value in one process's snapshot (summed over matching label sets); null when absent or NaN. */
function read(snapshot: MetricSnapshot | undefined, suffix: string, labels?: Record<string, string>): number | null {
  const metric = snapshot?.find((m) => m.name === `${METRIC_PREFIX}${suffix}`);
  if (!metric) return null;
  let total: number | null = null;
  for (const v of metric.values) {
    if (labels && !Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)) continue;
    if (!Number.isFinite(v.value)) continue;
    total = (total ?? 0) + v.value;
  }
  return total;
}

/** An empty lag window reads as max 0 and min 9.2e9 s; anything past an hour is such a reading. */
function toMs(seconds: number | null): number | null {
  if (seconds === null || seconds > 3600) return null;
  return Math.round(seconds * 1e6) / 1e3;
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * Whether a state-changing request comes from the page itself: a browser sends Origin on every
 * POST (Sec-Fetch-Site on every request); when either is there it must name this host. Requests
 * without them (curl) are not cross-site requests from a browser.
 */
function sameOrigin(req: IncomingMessage): boolean {
  const site = req.headers["sec-fetch-site"];
  if (typeof site === "string" && site !== "same-origin" && site !== "none") return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function readBody(req: IncomingMessage, res: ServerResponse, then: (body: string) => void): void {
  let body = "";
  let tooLarge = false;
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => {
    body += chunk;
    if (body.length > BODY_MAX && !tooLarge) {
      tooLarge = true;
      json(res, 413, { error: { code: "PAYLOAD_TOO_LARGE", message: "body too large" } });
      req.destroy();
    }
  });
  req.on("end", () => {
    if (!tooLarge) then(body);
  });
}

function json(res: ServerResponse, status: number, body: object): true {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(body));
  return true;
}
