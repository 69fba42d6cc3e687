import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

export { API_PREFIX, DATA_PATHS, isApiPath, pathOf } from "../../shared/http-api-paths.js";

/** The body was larger than the bound. */
export class BodyTooLarge extends Error {}

/**
 * Reads a request body up to `max` bytes. Past it the read stops and BodyTooLarge is thrown (a
 * Content-Length above it is refused before anything is read).
 */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > max) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        cleanup();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

/** Checks a request's key (X-API-Key, or Authorization: Bearer) in constant time; no key configured: every request passes. */
export function keyChecker(key: string | undefined): (req: IncomingMessage) => boolean {
  if (key === undefined) return () => true;
  // Hashes are compared, so neither the length nor the bytes of the key leak through timing.
  const expected = createHash("sha256").update(key, "utf8").digest();
  return (req) => {
    const header = req.headers["x-api-key"];
    let given = typeof header === "string" ? header : undefined;
    const authorization = req.headers.authorization;
    if (given === undefined && typeof authorization === "string" && /^bearer /i.test(authorization)) given = authorization.slice(7).trim();
    if (given === undefined) return false;
    return timingSafeEqual(createHash("sha256").update(given, "utf8").digest(), expected);
  };
}

/** Answers JSON. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers }).end(text);
}

/** Answers plain text. */
export function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers }).end(text);
}

/**
 * After an answer sent before the body was read whole (401, 413), what the client still sends is
 * read and dropped, so the connection closes in order rather than with a reset that may lose the answer.
 */
export function drainAndClose(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader("Connection", "close");
  req.resume();
}
