import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import jwt from "jsonwebtoken";
import type { Config } from "../shared/config.js";
import type { Logger } from "../shared/logger.js";

/** The largest `POST /login` body accepted. */
const LOGIN_BODY_MAX = 4096;

/** The admin page's routes under /admin (src/primary/admin.ts); absent when ADMIN_PASSWORD is unset. */
export interface AdminRoutes {
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean;
}

/** What `GET /metrics` serves: the host's metrics in Prometheus text format. */
export interface MetricsSource {
  scrape(): Promise<string>;
  readonly contentType: string;
}

/**
 * The side HTTP port: `GET /` (the reference load balancer's check), `/healthz` (alive),
 * `/readyz` (every worker ready and not draining), `GET /metrics` (Prometheus; behind
 * METRICS_TOKEN when set), when LOGIN_ROUTE enables it `POST /login`, and when ADMIN_PASSWORD is
 * set the admin page under /admin.
 */
export function createHealthServer(config: Config, isReady: () => boolean, log: Logger, metrics?: MetricsSource, admin?: AdminRoutes): Server {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (admin?.handle(req, res, path)) return;
    if (req.method === "GET" && path === "/") return text(res, 200, "Server is healthy");
    if (req.method === "GET" && path === "/healthz") return text(res, 200, "ok");
    if (req.method === "GET" && path === "/readyz") {
      return isReady() ? text(res, 200, "ready") : text(res, 503, "not ready");
    }
    if (req.method === "GET" && path === "/metrics" && metrics) {
      if (config.metricsToken !== undefined && !bearerMatches(req, config.metricsToken)) {
        res.writeHead(401, { "content-type": "text/plain; charset=utf-8", "www-authenticate": 'Bearer realm="metrics"' }).end("GET /metrics needs Authorization: Bearer <METRICS_TOKEN>");
        return;
      }
      metrics.scrape().then(
        (body) => res.writeHead(200, { "content-type": metrics.contentType }).end(body),
        (err: unknown) => {
          log.error({ err }, "could not collect the metrics");
          text(res, 500, "could not collect the metrics");
        },
      );
      return;
    }
    if (path === "/login" && config.loginRoute !== "off" && (req.method === "POST" || req.method === "OPTIONS")) {
      if (config.loginRoute === "loopback" && !isLoopback(req.socket.remoteAddress)) {
        log.warn({ from: req.socket.remoteAddress }, "POST /login refused: LOGIN_ROUTE=loopback and the client is not on this host");
        return text(res, 403, "POST /login answers clients on this host only (LOGIN_ROUTE=loopback)");
      }
      if (req.method === "OPTIONS") {
        res.writeHead(204, corsHeaders()).end();
        return;
      }
      return login(req, res, config, log);
    }
    text(res, 404, "Not found");
  });
  server.on("clientError", (_err, socket) => socket.destroy());
  return server;
}

/** Whether the request carries `Authorization: Bearer <token>` (compared in constant time). */
function bearerMatches(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? "";
  if (!header.startsWith("Bearer ")) return false;
  const given = Buffer.from(header.slice(7).trim(), "utf8");
  const expected = Buffer.from(token, "utf8");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Whether a peer address is this host's loopback (IPv4 127/8, IPv6 ::1, or IPv4 mapped into IPv6).
 * A reverse proxy on the same host makes every client look local: use LOGIN_ROUTE=off behind one.
 */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return v4.startsWith("127.") || address === "::1";
}

/** Where `POST /login` answers, for the start-up log line; undefined when it is off. */
export function loginRouteWhere(config: Config): string | undefined {
  if (config.loginRoute === "off") return undefined;
  return config.loginRoute === "loopback" ? "clients on this host only (loopback)" : "anyone who reaches the side port";
}

function corsHeaders(): Record<string, string> {
  return {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "POST, OPTIONS",
    "access-control-allow-headers": "content-type",
  };
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(body);
}

/** Development helper for the SDK's `authRoute` flow: `{username}` in, a bare 1-minute JWT out (LOGIN_ROUTE). */
function login(req: IncomingMessage, res: ServerResponse, config: Config, log: Logger): void {
  let body = "";
  let tooLarge = false;
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => {
    body += chunk;
    if (body.length > LOGIN_BODY_MAX && !tooLarge) {
      tooLarge = true;
      res.writeHead(413, corsHeaders()).end("Payload too large");
      req.destroy();
    }
  });
  req.on("end", () => {
    if (tooLarge) return;
    let username: unknown;
    try {
      username = (JSON.parse(body || "{}") as { username?: unknown }).username;
    } catch {
      username = undefined; // not JSON: answered as a bad request below
    }
    if (typeof username !== "string" || username.length === 0 || username.length > 256) {
      res.writeHead(400, { ...corsHeaders(), "content-type": "text/plain" }).end("username (string) is required");
      return;
    }
    const token = jwt.sign({ username }, Buffer.from(config.apiKey, "utf8"), { algorithm: "HS256", expiresIn: 60 });
    log.debug("issued a login token");
    res.writeHead(200, { ...corsHeaders(), "content-type": "text/plain" }).end(token);
  });
}
