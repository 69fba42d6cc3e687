/**
 * The paths of the HTTP API for backends on PORT: the worker serves them, the balancer routes
 * them without counting them as new Socket.IO sessions.
 */
export const DATA_PATHS: ReadonlySet<string> = new Set(["/data", "/data/", "/prod/data", "/prod/data/"]);
export const API_PREFIX = "/api/";

/** Whether a request path (no query) belongs to the HTTP API: `/data`, `/prod/data`, `/api/<method>`. */
export function isApiPath(path: string): boolean {
  return DATA_PATHS.has(path) || path.startsWith(API_PREFIX);
}

/** The path of a request target, without its query. */
export function pathOf(url: string | undefined): string {
  const target = url ?? "/";
  const query = target.indexOf("?");
  return query === -1 ? target : target.slice(0, query);
}
