import type { Config } from "../shared/config.js";

/** What a server API call gives back: its result, or why there is none. */
export type ApiAnswer<T> = { result: T } | { error: { code: string; message: string } };

/**
 * The primary's client of its own workers' server API (`POST /api/<method>` on PORT), over
 * loopback through the balancer, with the HTTP API key. The admin page asks it what only the
 * whole cluster knows (`info`, `channels`) and sends its actions through it (`disconnect`,
 * `publish`), so they take the very path, checks and cluster-wide reach of a backend's call.
 * Never throws: an unreachable port, a timeout or a non-JSON answer is an `UNAVAILABLE` error.
 */
export class ServerApiClient {
  constructor(
    private readonly config: Config,
    private readonly port: () => number,
  ) {}

  async call<T>(method: string, params: object, timeoutMs: number): Promise<ApiAnswer<T>> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.config.httpApi.key !== undefined) headers["x-api-key"] = this.config.httpApi.key;
    let res: Response;
    try {
      res = await fetch(`http://${loopbackHost(this.config.host)}:${this.port()}/api/${method}`, {
        method: "POST",
        headers,
        body: JSON.stringify(params),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const timedOut = (err as Error).name === "TimeoutError";
      return { error: { code: "UNAVAILABLE", message: timedOut ? `the server API did not answer within ${timeoutMs} ms (an action may still take effect)` : `the server API is unreachable: ${(err as Error).message}` } };
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      return { error: { code: "UNAVAILABLE", message: `the server API answered ${res.status} without JSON` } };
    }
    if (body && typeof body === "object" && ("result" in body || "error" in body)) return body as ApiAnswer<T>;
    return { error: { code: "UNAVAILABLE", message: `the server API answered ${res.status} with an unknown shape` } };
  }
}

/** Where this host's own main port answers: the bound address, or loopback for a wildcard. */
export function loopbackHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::" || host === "[::]") return "[::1]";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
