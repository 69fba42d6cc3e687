import { createConnection, createServer } from "node:net";

/** A TCP port that was free a moment ago (the OS picks it); something else may take it before it is bound. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Whether a Redis answers PING on 127.0.0.1:port (a raw connection: no client library state). */
export function redisPing(port: number): Promise<boolean> {
  return new Promise((resolvePing) => {
    const s = createConnection({ host: "127.0.0.1", port });
    let buf = "";
    s.setTimeout(1_000, () => s.destroy());
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("\r\n")) {
        s.end();
        resolvePing(buf.startsWith("+PONG"));
      }
    });
    s.on("error", () => resolvePing(false));
    s.on("close", () => resolvePing(false));
  });
}

/** The HTTP status of a GET (0 when nothing answers within a second). */
export async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}
