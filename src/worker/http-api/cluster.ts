import { hostname } from "node:os";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { DISCONNECTING_EVENT } from "../../shared/contract.js";
import { ErrorCode } from "../../shared/errors.js";
import type { Mode } from "../../shared/config.js";
import type { Logger } from "../../shared/logger.js";
import { writeEventPacket } from "../adapter/pending-restores.js";
import type { AppServer, AppSocket } from "../handlers/context.js";
import { channelRoom } from "../rooms.js";

/**
 * How long a cluster-wide question waits for the other workers (socket.io-adapter's fixed request
 * timeout for a server-side emit with an acknowledgement). Past it the answer is partial and says
 * which servers did not answer.
 */
export const GATHER_TIMEOUT_MS = 5000;

/** Channels one worker lists in a `channels` answer at most; past it the answer says `truncated`. */
export const CHANNELS_PER_WORKER_MAX = 10_000;

/** One worker of the cluster, as the server API names it. */
export interface ServerIdentity {
  /** The worker's adapter id: unique in the cluster. */
  uid: string;
  /** `<hostname>/<pid>`: the worker process. */
  name: string;
  host: string;
  pid: number;
  worker: number;
}

export interface WorkerInfo extends ServerIdentity {
  version: string;
  mode: Mode;
  uptime: number;
  num_clients: number;
  num_channels: number;
}

/** Who a `disconnect` or `unsubscribe` is about: one connection, or every connection of a token subject. */
export interface Target {
  client?: string;
  user?: string;
}

/** Worker-to-worker questions of the server API (server-side emits with an acknowledgement). */
const EVENTS = {
  info: "cerebellum:api:info",
  channels: "cerebellum:api:channels",
  disconnect: "cerebellum:api:disconnect",
  unsubscribe: "cerebellum:api:unsubscribe",
  /** A worker says who it is (`fresh`: it just started, and every other worker says so back). */
  hello: "cerebellum:api:hello",
} as const;

type Answer<T> = { server: ServerIdentity } & T;

export interface Gathered<T> {
  answers: Answer<T>[];
  /** Servers that did not answer in time (known ones by name, others by uid only). */
  missing: Array<Partial<ServerIdentity> & { uid: string }>;
}

function readVersion(): string {
  try {
    // dist/src/worker/http-api → the package root.
    const pkg = JSON.parse(readFileSync(resolve(__dirname, "../../../../package.json"), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

/** The sockets of this worker a target names. */
function localTargets(io: AppServer, target: Target): AppSocket[] {
  const sockets = io.of("/").sockets;
  if (target.client !== undefined) {
    const socket = sockets.get(target.client);
    if (!socket) return [];
    return target.user === undefined || socket.data.subject === target.user ? [socket] : [];
  }
  const found: AppSocket[] = [];
  for (const socket of sockets.values()) if (socket.data.subject === target.user) found.push(socket);
  return found;
}

/** Turns a glob with `*` (any run of characters) into a test; no pattern: everything. */
function matcher(pattern: string | undefined): (name: string) => boolean {
  if (pattern === undefined || pattern === "*") return () => true;
  const re = new RegExp(`^${pattern.split("*").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`, "su");
  return (name) => re.test(name);
}

/**
 * The server API's cluster-wide operations. Each asks every worker of the cluster (the other
 * workers of this host in embedded mode through the primary, every worker of every host in
 * clustered mode through Redis) with a server-side emit, answers its own part itself, and puts
 * the answers together.
 */
export class ClusterOps {
  private readonly started = Date.now();
  private readonly version = readVersion();
  readonly self: ServerIdentity;
  /** Servers seen answering, to name the ones that miss an answer later. */
  private readonly known = new Map<string, ServerIdentity>();

  constructor(
    private readonly io: AppServer,
    private readonly mode: Mode,
    workerId: number,
    private readonly log: Logger,
  ) {
    const host = hostname();
    this.self = { uid: this.adapter.uid, name: `${host}/${process.pid}`, host, pid: process.pid, worker: workerId };
    const on = (event: string, answer: (payload: unknown) => unknown) =>
      io.on(event as never, ((payload: unknown, ack: unknown) => {
        if (typeof ack !== "function") return;
        try {
          (ack as (a: unknown) => void)({ server: this.self, ...(answer(payload) as object) });
        } catch (err) {
          log.error({ err, event }, "server API question failed here");
        }
      }) as never);
    on(EVENTS.info, () => this.localInfo());
    on(EVENTS.channels, (p) => this.localChannels((p as { pattern?: string }).pattern));
    on(EVENTS.disconnect, (p) => this.localDisconnect(p as Target));
    on(EVENTS.unsubscribe, (p) => this.localUnsubscribe(p as Target & { channel: string }));
    // Every worker knows who the others are, so that one that does not answer can be named.
    io.on(EVENTS.hello as never, ((hello: { server?: ServerIdentity; fresh?: boolean }) => {
      if (typeof hello?.server?.uid !== "string") return;
      this.known.set(hello.server.uid, hello.server);
      if (hello.fresh) this.hello(false);
    }) as never);
    this.hello(true);
  }

  private hello(fresh: boolean): void {
    (this.io.serverSideEmit as (ev: string, ...args: unknown[]) => boolean)(EVENTS.hello, { server: this.self, fresh });
  }

  private get adapter(): { uid: string; nodesMap?: Map<string, number> } {
    return this.io.of("/").adapter as unknown as { uid: string; nodesMap?: Map<string, number> };
  }

  /** Asks every worker (this one included) and waits for their answers, at most GATHER_TIMEOUT_MS. */
  private gather<T extends object>(event: string, payload: object, local: () => T): Promise<Gathered<T>> {
    const expected = [...(this.adapter.nodesMap?.keys() ?? [])];
    // This worker's part at once (a disconnect here does not wait for the others' answers).
    const mine = { server: this.self, ...local() };
    return new Promise((done) => {
      const finish = (err: unknown, responses: unknown) => {
        const answers = [mine, ...((Array.isArray(responses) ? responses : []) as Answer<T>[])];
        for (const a of answers) this.known.set(a.server.uid, a.server);
        const answered = new Set(answers.map((a) => a.server.uid));
        const missing = expected.filter((uid) => !answered.has(uid)).map((uid): Gathered<T>["missing"][number] => this.known.get(uid) ?? { uid });
        if (err) this.log.warn({ err, event, missing: missing.map((m) => m.name ?? m.uid) }, "some servers did not answer a server API question");
        done({ answers, missing });
      };
      try {
        (this.io.serverSideEmit as (ev: string, ...args: unknown[]) => boolean)(event, payload, finish);
      } catch (err) {
        finish(err, []);
      }
    });
  }

  info(): Promise<Gathered<Omit<WorkerInfo, keyof ServerIdentity>>> {
    return this.gather(EVENTS.info, {}, () => this.localInfo());
  }

  channels(pattern: string | undefined): Promise<Gathered<{ channels: Record<string, number>; truncated?: boolean }>> {
    return this.gather(EVENTS.channels, pattern === undefined ? {} : { pattern }, () => this.localChannels(pattern));
  }

  disconnect(target: Target): Promise<Gathered<{ disconnected: number }>> {
    return this.gather(EVENTS.disconnect, target, () => this.localDisconnect(target));
  }

  unsubscribe(target: Target & { channel: string }): Promise<Gathered<{ unsubscribed: number }>> {
    return this.gather(EVENTS.unsubscribe, target, () => this.localUnsubscribe(target));
  }

  private localInfo(): Omit<WorkerInfo, keyof ServerIdentity> {
    const nsp = this.io.of("/");
    let channels = 0;
    for (const room of nsp.adapter.rooms.keys()) if (room.startsWith(CHANNEL_PREFIX)) channels++;
    return {
      version: this.version,
      mode: this.mode,
      uptime: Math.floor((Date.now() - this.started) / 1000),
      num_clients: nsp.sockets.size,
      num_channels: channels,
    };
  }

  /** This worker's subscribers per channel (`ch:` rooms only: no presence or socket rooms). */
  private localChannels(pattern: unknown): { channels: Record<string, number>; truncated?: boolean } {
    const matches = matcher(typeof pattern === "string" ? pattern : undefined);
    const channels: Record<string, number> = {};
    let listed = 0;
    for (const [room, members] of this.io.of("/").adapter.rooms) {
      if (!room.startsWith(CHANNEL_PREFIX)) continue;
      const name = room.slice(CHANNEL_PREFIX.length);
      if (!matches(name)) continue;
      if (listed >= CHANNELS_PER_WORKER_MAX) return { channels, truncated: true };
      channels[name] = members.size;
      listed++;
    }
    return { channels };
  }

  private localDisconnect(target: Target): { disconnected: number } {
    const sockets = localTargets(this.io, target);
    for (const socket of sockets) {
      // Written straight to the connection: Engine.IO sends what it queued before it closes.
      writeEventPacket(socket, [DISCONNECTING_EVENT, { code: ErrorCode.DISCONNECTED, message: "disconnected by the server API" }]);
      socket.disconnect(true);
    }
    if (sockets.length > 0) this.log.info({ disconnected: sockets.length }, "disconnected clients through the server API");
    return { disconnected: sockets.length };
  }

  /** What a client's channel:unsubscribe does, for each connection named. */
  private localUnsubscribe(target: Target & { channel: string }): { unsubscribed: number } {
    const room = channelRoom(target.channel);
    let count = 0;
    for (const socket of localTargets(this.io, target)) {
      if (!socket.rooms.has(room)) continue;
      void socket.leave(room);
      count++;
    }
    return { unsubscribed: count };
  }
}

const CHANNEL_PREFIX = channelRoom("");
