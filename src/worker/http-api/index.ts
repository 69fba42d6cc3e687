import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { ErrorCode } from "../../shared/errors.js";
import type { HandlerContext } from "../handlers/context.js";
import { publishMessage, type PublishOutcome } from "../handlers/publish.js";
import { HistoryRequestError } from "../../persistence/history-reader.js";
import { measureContent } from "../schemas.js";
import { workerMetrics } from "../metrics.js";
import { ClusterOps, type Gathered } from "./cluster.js";
import { API_PREFIX, BodyTooLarge, DATA_PATHS, drainAndClose, keyChecker, pathOf, readBody, sendJson, sendText } from "./http.js";

/** Channels one `broadcast` may name; more gets 400. */
export const BROADCAST_CHANNELS_MAX = 100;

/** Codes of the HTTP API besides the client catalogue's. */
const HttpCode = {
  UNAUTHORIZED: "UNAUTHORIZED",
  METHOD_NOT_FOUND: "METHOD_NOT_FOUND",
  METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
} as const;

/** The HTTP status of a failure code. */
function statusOf(code: string): number {
  switch (code) {
    case ErrorCode.PAYLOAD_TOO_LARGE:
      return 413;
    case ErrorCode.OVERLOADED:
    case ErrorCode.STORE_UNAVAILABLE:
      return 503;
    case ErrorCode.INTERNAL:
      return 500;
    default:
      return 400;
  }
}
const RETRY = { "retry-after": "1" };
const retryHeaders = (status: number) => (status === 503 ? RETRY : {});

class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = statusOf(code),
  ) {
    super(message);
  }
}

type Method = (params: Record<string, unknown>) => Promise<unknown>;

/**
 * The HTTP API for backends, on PORT next to Socket.IO: the original server's `/data` routes
 * (also under `/prod/data`) and the server API (`POST /api/<method>`). Returns the request
 * handler: true when it answered the request (its path is the API's), false otherwise.
 */
export function createHttpApi(ctx: HandlerContext, workerId: number): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { config, schemas, log, history, presence } = ctx;
  const authorized = keyChecker(config.httpApi.key);
  const bodyMax = config.httpApi.bodyMaxBytes;
  const cluster = new ClusterOps(ctx.io, config.mode, workerId, log.child({ component: "server-api" }));
  const apiLog = log.child({ component: "http-api" });

  const publish = (channel: unknown, content: { value: unknown } | undefined) =>
    new Promise<PublishOutcome>((resolve) => publishMessage(ctx, channel, content, undefined, true, resolve));

  const channelOf = (raw: unknown, field = "channel"): string => {
    if (raw === undefined) throw new ApiError(ErrorCode.INVALID_ARGUMENT, `${field} is required`);
    const parsed = schemas.channelName.safeParse(raw);
    if (!parsed.success) throw new ApiError(ErrorCode.INVALID_CHANNEL, `${field}: ${parsed.error.issues[0]?.message.replace(/^channelName /, "")}`);
    return parsed.data;
  };
  const parse = <T>(schema: z.ZodType<T>, params: unknown): T => {
    const parsed = schema.safeParse(params);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ApiError(ErrorCode.INVALID_ARGUMENT, `${issue?.path.join(".") || "body"}: ${issue?.message}`);
    }
    return parsed.data;
  };
  const target = z
    .object({ client: z.string().min(1).max(256).optional(), user: z.string().min(1).max(1024).optional() })
    .refine((t) => t.client !== undefined || t.user !== undefined, "client or user is required");
  const withMissing = <T extends object>(result: T, gathered: Gathered<object>) =>
    gathered.missing.length > 0 ? { ...result, missing: gathered.missing } : result;
  const readHistory = async (channel: string, query: { limit?: unknown; sortDirection?: unknown; lastEvaluatedKey?: unknown }) => {
    const args = schemas.historyArgs.safeParse(query);
    if (!args.success) {
      const issue = args.error.issues[0];
      throw new ApiError(ErrorCode.INVALID_ARGUMENT, `${issue?.path.join(".")}: ${issue?.message}`);
    }
    try {
      return await history.page(channel, args.data);
    } catch (err) {
      if (err instanceof HistoryRequestError) throw new ApiError(err.code, err.message);
      apiLog.warn({ err, channel }, "history read failed");
      throw new ApiError(ErrorCode.STORE_UNAVAILABLE, "history is unavailable");
    }
  };
  const membersOf = async (channel: string) => {
    try {
      return await presence.members(channel);
    } catch (err) {
      apiLog.warn({ err }, "presence members read failed");
      throw new ApiError(ErrorCode.STORE_UNAVAILABLE, "presence is unavailable");
    }
  };

  /** The server API's methods, shaped after Centrifugo's server API where it has the method. */
  const methods: Record<string, Method> = {
    async publish(params) {
      const channel = channelOf(params.channel);
      const outcome = await publish(channel, "data" in params ? { value: params.data } : undefined);
      if (!outcome.success) throw new ApiError(outcome.error, outcome.message ?? outcome.error);
      return { messageId: outcome.messageId, createdAt: outcome.createdAt };
    },

    async broadcast(params) {
      if (!Array.isArray(params.channels) || params.channels.length === 0) throw new ApiError(ErrorCode.INVALID_ARGUMENT, "channels must be a non-empty array of channel names");
      if (params.channels.length > BROADCAST_CHANNELS_MAX) throw new ApiError(ErrorCode.INVALID_ARGUMENT, `at most ${BROADCAST_CHANNELS_MAX} channels per broadcast`);
      // Everything that can be refused for all is checked before the first publish: bad input changes nothing.
      const channels = params.channels.map((raw, i) => channelOf(raw, `channels.${i}`));
      if (!("data" in params)) throw new ApiError(ErrorCode.INVALID_ARGUMENT, "data is required");
      const size = measureContent(params.data);
      if ("error" in size) throw new ApiError(ErrorCode.INVALID_ARGUMENT, size.error);
      if (size.bytes > config.limits.messageMaxBytes) throw new ApiError(ErrorCode.PAYLOAD_TOO_LARGE, `data is larger than ${config.limits.messageMaxBytes} bytes`);
      const outcomes = await Promise.all(channels.map((channel) => publish(channel, { value: params.data })));
      return {
        responses: outcomes.map((o) =>
          o.success ? { result: { messageId: o.messageId, createdAt: o.createdAt } } : { error: { code: o.error, message: o.message ?? o.error } },
        ),
      };
    },

    async history(params) {
      const channel = channelOf(params.channel);
      const p = parse(z.object({ reverse: z.boolean().optional() }), params);
      const page = await readHistory(channel, {
        limit: params.limit,
        sortDirection: p.reverse ? "descending" : "ascending",
        lastEvaluatedKey: params.cursor,
      });
      const publications = page.pastMessages.map((m) => ({ data: m.content, createdAt: m.createdAt }));
      return page.lastEvaluatedKey === undefined ? { publications } : { publications, cursor: page.lastEvaluatedKey };
    },

    async presence(params) {
      const members = await membersOf(channelOf(params.channel));
      const result: Record<string, { client: string; info: Record<string, string> }> = {};
      for (const { socketId, ...info } of members) result[socketId] = { client: socketId, info };
      return { presence: result };
    },

    async presence_stats(params) {
      const members = await membersOf(channelOf(params.channel));
      return { num_clients: members.length };
    },

    async channels(params) {
      const { pattern } = parse(z.object({ pattern: z.string().min(1).max(1024).optional() }), params);
      const gathered = await cluster.channels(pattern);
      const channels: Record<string, { num_clients: number }> = {};
      let truncated = false;
      for (const answer of gathered.answers) {
        if (answer.truncated) truncated = true;
        for (const [name, count] of Object.entries(answer.channels)) {
          const entry = (channels[name] ??= { num_clients: 0 });
          entry.num_clients += count;
        }
      }
      return withMissing(truncated ? { channels, truncated } : { channels }, gathered);
    },

    async info() {
      const gathered = await cluster.info();
      const nodes = gathered.answers.map(({ server, ...rest }) => ({ ...server, ...rest }));
      nodes.sort((a, b) => a.name.localeCompare(b.name) || a.worker - b.worker);
      return withMissing({ nodes }, gathered);
    },

    async disconnect(params) {
      const who = parse(target, params);
      const gathered = await cluster.disconnect(who);
      return withMissing({ disconnected: gathered.answers.reduce((n, a) => n + a.disconnected, 0) }, gathered);
    },

    async unsubscribe(params) {
      const channel = channelOf(params.channel);
      const who = parse(target, params);
      const gathered = await cluster.unsubscribe({ ...who, channel });
      return withMissing({ unsubscribed: gathered.answers.reduce((n, a) => n + a.unsubscribed, 0) }, gathered);
    },
  };

  /** Reads and parses a JSON body; undefined after it has answered (too large, not JSON). */
  const readJson = async (req: IncomingMessage, res: ServerResponse, refuse: (status: number, message: string) => void): Promise<{ value: unknown } | undefined> => {
    let body: Buffer;
    try {
      body = await readBody(req, bodyMax);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        drainAndClose(req, res);
        refuse(413, `request body is larger than ${bodyMax} bytes`);
      } else res.destroy();
      return undefined;
    }
    try {
      return { value: JSON.parse(body.toString("utf8")) as unknown };
    } catch {
      refuse(400, "body is not JSON");
      return undefined;
    }
  };

  const serveData = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    if (req.method === "POST") {
      const invalid = "Invalid input: channelName and content are required";
      const body = await readJson(req, res, (status, message) => sendText(res, status, status === 413 ? `Invalid input: ${message}` : invalid));
      if (!body) return;
      const input = body.value as Record<string, unknown> | null;
      if (typeof input !== "object" || input === null || Array.isArray(input) || typeof input.channelName !== "string" || input.channelName === "" || !("content" in input)) {
        return sendText(res, 400, invalid);
      }
      const outcome = await publish(input.channelName, { value: input.content });
      if (outcome.success) return sendText(res, 200, "Message processing completed");
      const status = statusOf(outcome.error);
      if (status >= 500) return sendText(res, status, "Error Sending Message to redis", retryHeaders(status));
      return sendText(res, status, `Invalid input: ${outcome.message ?? outcome.error}`);
    }
    if (req.method === "GET" || req.method === "HEAD") {
      req.resume();
      const name = url.searchParams.get("channelName");
      if (!name) return sendJson(res, 400, { error: "Invalid input: channelName query parameter is required" });
      try {
        const channel = channelOf(name, "channelName");
        const limitRaw = url.searchParams.get("limit");
        const keyRaw = url.searchParams.get("lastEvaluatedKey");
        let lastEvaluatedKey: unknown = null;
        if (keyRaw !== null && keyRaw !== "") {
          try {
            lastEvaluatedKey = JSON.parse(keyRaw);
          } catch {
            throw new ApiError(ErrorCode.INVALID_ARGUMENT, "lastEvaluatedKey is not a cursor this server handed out");
          }
        }
        const page = await readHistory(channel, {
          limit: limitRaw === null || limitRaw === "" ? undefined : /^\d+$/.test(limitRaw) ? Number(limitRaw) : limitRaw,
          sortDirection: url.searchParams.get("sortDirection") ?? undefined,
          lastEvaluatedKey,
        });
        // A channel with nothing stored does not exist (a later page may be empty: the channel does).
        if (lastEvaluatedKey === null && page.pastMessages.length === 0) return sendJson(res, 404, { error: `Channel ${channel} does not exist` });
        return sendJson(res, 200, page.lastEvaluatedKey === undefined ? { messages: page.pastMessages } : { messages: page.pastMessages, lastEvaluatedKey: page.lastEvaluatedKey });
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (err.status >= 500) return sendJson(res, err.status, { error: "Could not get data" }, retryHeaders(err.status));
        return sendJson(res, err.status, { error: `Invalid input: ${err.message}` });
      }
    }
    drainAndClose(req, res);
    sendText(res, 405, "Method Not Allowed", { allow: "GET, POST" });
  };

  const serveApi = async (req: IncomingMessage, res: ServerResponse, name: string) => {
    const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
      sendJson(res, status, { error: { code, message } }, headers);
    if (req.method !== "POST") {
      drainAndClose(req, res);
      return fail(405, HttpCode.METHOD_NOT_ALLOWED, "the server API takes POST", { allow: "POST" });
    }
    const method = Object.hasOwn(methods, name) ? methods[name] : undefined;
    if (!method) {
      drainAndClose(req, res);
      return fail(404, HttpCode.METHOD_NOT_FOUND, `no server API method ${JSON.stringify(name)} (methods: ${Object.keys(methods).join(", ")})`);
    }
    const body = await readJson(req, res, (status, message) => fail(status, status === 413 ? ErrorCode.PAYLOAD_TOO_LARGE : ErrorCode.INVALID_ARGUMENT, message));
    if (!body) return;
    const params = body.value;
    if (typeof params !== "object" || params === null || Array.isArray(params)) return fail(400, ErrorCode.INVALID_ARGUMENT, "body must be a JSON object");
    try {
      sendJson(res, 200, { result: await method(params as Record<string, unknown>) });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      fail(err.status, err.code, err.message, retryHeaders(err.status));
    }
  };

  return (req, res) => {
    const path = pathOf(req.url);
    const isData = DATA_PATHS.has(path);
    if (!isData && !path.startsWith(API_PREFIX)) return false;
    // Labels from closed sets only: the route is a known method or "other", never the raw path.
    const method = path.slice(API_PREFIX.length);
    const route = isData ? `${req.method === "POST" ? "POST" : "GET"} /data` : Object.hasOwn(methods, method) ? `/api/${method}` : "/api/other";
    const started = performance.now();
    res.once("finish", () => {
      workerMetrics.httpApiRequests.inc({ route, status: String(res.statusCode) });
      workerMetrics.httpApiDuration.observe({ route }, (performance.now() - started) / 1000);
    });
    if (!authorized(req)) {
      drainAndClose(req, res);
      const message = "an API key is required (X-API-Key, or Authorization: Bearer)";
      const headers = { "www-authenticate": 'Bearer realm="cerebellum"' };
      if (isData) sendText(res, 401, `Unauthorized: ${message}`, headers);
      else sendJson(res, 401, { error: { code: HttpCode.UNAUTHORIZED, message } }, headers);
      return true;
    }
    const served = isData ? serveData(req, res, new URL(req.url ?? "/", "http://localhost")) : serveApi(req, res, path.slice(API_PREFIX.length));
    served.catch((err: unknown) => {
      apiLog.error({ err, path }, "HTTP API request failed");
      if (isData && req.method === "POST") sendText(res, 500, "Error Sending Message to redis");
      else if (isData) sendJson(res, 500, { error: "Could not get data" });
      else sendJson(res, 500, { error: { code: ErrorCode.INTERNAL, message: "internal error" } });
    });
    return true;
  };
}
