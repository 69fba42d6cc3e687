import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import jwt from "jsonwebtoken";
import type { Config } from "../shared/config.js";
import type { Logger } from "../shared/logger.js";

/** The largest `POST /login` body accepted. */
const LOGIN_BODY_MAX = 4096;

/**
 * The side HTTP port: `GET /` (the reference load balancer's check), `/healthz` (alive),
 * `/readyz` (every worker ready and not draining) and, in development only, `POST /login`.
 */
export function createHealthServer(config: Config, isReady: () => boolean, log: Logger): Server {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/") return text(res, 200, "Server is healthy");
    if (req.method === "GET" && path === "/healthz") return text(res, 200, "ok");
    if (req.method === "GET" && path === "/readyz") {
      return isReady() ? text(res, 200, "ready") : text(res, 503, "not ready");
    }
    if (req.method === "POST" && path === "/login" && config.env === "development") {
      return login(req, res, config, log);
    }
    if (req.method === "OPTIONS" && path === "/login" && config.env === "development") {
      res.writeHead(204, corsHeaders()).end();
      return;
    }
    text(res, 404, "Not found");
  });
  server.on("clientError", (_err, socket) => socket.destroy());
  return server;
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

/** Development helper for the SDK's `authRoute` flow: `{username}` in, a bare 1-minute JWT out. */
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
    log.debug("issued a development login token");
    res.writeHead(200, { ...corsHeaders(), "content-type": "text/plain" }).end(token);
  });
}
