import { expect } from "vitest";
import type { RunningServer } from "./server.js";

export const ADMIN_PASSWORD = "admin-password-0123456789";

/** A logged-in admin session: its cookie and CSRF token, and the page's routes. */
export interface AdminSession {
  cookie: string;
  csrf: string;
  state(): Promise<AdminStateBody>;
  action(path: "/admin/publish" | "/admin/disconnect", body: object): Promise<{ status: number; body: ActionBody }>;
}

export interface ActionBody {
  result?: { messageId?: string; disconnected?: string };
  error?: { code: string; message: string };
}

export interface AdminStateBody {
  mode: string;
  workers: { slot: number; pid: number | undefined; state: string; answered: boolean; connections: number | null; published: number | null; rssBytes: number | null; lagMs: number | null; restarts: number }[];
  totals: { connections: number; published: number; delivered: number };
  channels: { scope: "cluster" | "host"; top: { channel: string; subscribers: number; presence?: number }[] };
  cluster: { available: boolean; error?: string; nodes?: { host: string; pid: number; num_clients: number }[]; missing?: unknown[] };
  recovery: { maxDisconnectionMs: number; recovered: number };
  persistence: { sink: string; queueDepth: number };
}

/** Logs in with the form (as a browser would) and reads the CSRF token from the page. */
export async function adminLogin(server: RunningServer, password = ADMIN_PASSWORD): Promise<AdminSession> {
  const res = await fetch(`${server.healthUrl}/admin/login`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ password }).toString(),
    redirect: "manual",
  });
  expect(res.status).toBe(303);
  const setCookie = res.headers.get("set-cookie") ?? "";
  expect(setCookie).toMatch(/HttpOnly/);
  const cookie = setCookie.split(";")[0]!;
  const page = await (await fetch(`${server.healthUrl}/admin`, { headers: { cookie } })).text();
  const csrf = /name="csrf-token" content="([^"]+)"/.exec(page)?.[1];
  if (!csrf) throw new Error("no CSRF token in the admin page");
  return {
    cookie,
    csrf,
    async state() {
      const r = await fetch(`${server.healthUrl}/admin/state`, { headers: { cookie } });
      expect(r.status).toBe(200);
      return ((await r.json()) as { result: AdminStateBody }).result;
    },
    async action(path, body) {
      const r = await fetch(`${server.healthUrl}${path}`, {
        method: "POST",
        headers: { cookie, "x-csrf-token": csrf, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: r.status, body: (await r.json()) as ActionBody };
    },
  };
}
