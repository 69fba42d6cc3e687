import type { RunningServer } from "./server.js";

export interface HttpAnswer<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: T;
}

/** One HTTP request to the server's PORT, answered whole. */
export async function http<T = unknown>(
  server: RunningServer,
  path: string,
  init: { method?: string; body?: string; key?: string | null; headers?: Record<string, string> } = {},
): Promise<HttpAnswer<T>> {
  const headers: Record<string, string> = { ...init.headers };
  const key = init.key === undefined ? server.apiKey : init.key;
  if (key !== null) headers["x-api-key"] = key;
  if (init.body !== undefined) headers["content-type"] ??= "application/json";
  const res = await fetch(`${server.url}${path}`, { method: init.method ?? (init.body === undefined ? "GET" : "POST"), body: init.body, headers });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as T };
}

/** Calls a server API method (`POST /api/<method>`). */
export function api<T = { result?: any; error?: { code: string; message: string } }>( // eslint-disable-line @typescript-eslint/no-explicit-any
  server: RunningServer,
  method: string,
  params: unknown = {},
  key?: string | null,
): Promise<HttpAnswer<T>> {
  return http<T>(server, `/api/${method}`, { body: JSON.stringify(params), key });
}
