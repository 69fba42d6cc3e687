import { performance } from "node:perf_hooks";
import { sleep, wallMs } from "../loadtest/clock.js";
import { paddingFor, type ClientHandlers } from "../loadtest/engines/client.js";
import { RawClient, websocketUrl } from "../loadtest/engines/raw-client.js";
import { REFUSED_CODES } from "../loadtest/publishers.js";
import { connectMany } from "../loadtest/pool.js";
import { tokenSource } from "../loadtest/tokens.js";
import { partCpuBetween, samplePartCpu, type PartCpu, type PartSample } from "./parts.js";

/**
 * The many-rooms workload of the scaling suite: `clients` raw-engine connections, each the member
 * of one room (channel) of `roomSize`, and `inflight` broadcasts kept outstanding, each sent by a
 * random connection to a random room and done when every member of that room has it (window by
 * delivery). The server's CPU by part is read from /proc at the start and end of the measured
 * window and divided by the broadcasts done in between; optionally the connect phase is measured
 * the same way (CPU per connect).
 */

/** Who is in which room: client i is in room `roomOf[i]` at position `positionOf[i]` (0..size-1). */
export interface RoomLayout {
  rooms: number;
  roomOf: Int32Array;
  positionOf: Int32Array;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same layout and the same sends. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Rooms of `roomSize` over `clients` (a multiple of it), members drawn at random. At random because
 * the balancer hands connections to workers in turn: rooms of consecutive clients would each span
 * the workers in the same pattern, and rooms of every n-th client would sit in one worker.
 */
export function roomLayout(clients: number, roomSize: number, seed: number): RoomLayout {
  if (!Number.isInteger(roomSize) || roomSize < 1 || roomSize > 30) throw new Error(`room size must be 1..30 (got ${roomSize})`);
  if (!Number.isInteger(clients) || clients < roomSize || clients % roomSize !== 0) {
    throw new Error(`clients (${clients}) must be a positive multiple of the room size (${roomSize})`);
  }
  const order = Array.from({ length: clients }, (_, i) => i);
  const random = seededRandom(seed);
  for (let i = clients - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const roomOf = new Int32Array(clients);
  const positionOf = new Int32Array(clients);
  order.forEach((client, slot) => {
    roomOf[client] = Math.floor(slot / roomSize);
    positionOf[client] = slot % roomSize;
  });
  return { rooms: clients / roomSize, roomOf, positionOf };
}

export interface RoomsPlan {
  url: string;
  /** HS256 key for a fresh token per connect; undefined for the plain process (no authentication). */
  apiKey: string | undefined;
  clients: number;
  roomSize: number;
  /** Broadcasts outstanding at once, over all senders. */
  inflight: number;
  warmupMs: number;
  measureMs: number;
  /** Connects started per second (a fixed rate, so the connect phase is the same for every server). */
  connectRate: number;
  connectConcurrency: number;
  /** Measure the server's CPU over the connect phase (clients subscribe after it, not during). */
  measureConnects: boolean;
  payloadBytes: number;
  seed: number;
  /** The server's top process, and a redis-server to measure with it. */
  rootPid: number;
  redisPid: number | undefined;
  /**
   * When set, one client reads a history page of HISTORY_PAGE messages of a random live room
   * every so many ms during the measured window (persistence on: what a page costs under load).
   */
  historyEveryMs?: number;
  signal: AbortSignal;
}

export interface RoomsOutcome {
  connected: number;
  subscribed: number;
  connectErrors: number;
  hung: number;
  /** The connect phase: successful connects, its wall seconds, the server's CPU seconds by part. */
  connect: { connects: number; seconds: number; cpu: PartCpu } | null;
  /** Broadcasts done (every member had it) within the measured window, and that window. */
  broadcasts: number;
  measuredS: number;
  /** Server CPU seconds by part over the measured window; null when nothing was measured. */
  cpu: PartCpu | null;
  /** This process's CPU seconds (user + system, every thread) over the measured window. */
  generatorCpuS: number;
  published: number;
  /** Milliseconds of each history page read in the measured window (empty unless asked for). */
  historyMs: number[];
  /** Broadcasts that did not reach every member within the timeout (or by the end). */
  lost: number;
  /** Deliveries to a member that already had that broadcast. */
  duplicated: number;
  /** Deliveries to a client outside the broadcast's room. */
  misrouted: number;
  /** Deliveries of a broadcast already done or given up (late, or a duplicate after the last member). */
  unexpected: number;
  errors: Record<string, number>;
}

/** A broadcast whose members have not all had it within this is counted as lost. */
const DELIVERY_TIMEOUT_MS = 5000;
const CONNECT_TIMEOUT_MS = 10_000;
const ACK_TIMEOUT_MS = 10_000;
/** Messages per history page read (the page the persistence targets name). */
export const HISTORY_PAGE = 50;
/** After the window: longest wait for the last broadcasts. */
const DRAIN_MS = 3000;
/** Distinct error kinds kept; more are counted as "other". */
const MAX_ERROR_KINDS = 20;

interface Outstanding {
  room: number;
  /** Members that have it, as bits of their position in the room. */
  got: number;
  remaining: number;
  sentAt: number;
}

/** Runs the workload against a started server; every wait is bounded. */
export async function runRooms(plan: RoomsPlan): Promise<RoomsOutcome> {
  const layout = roomLayout(plan.clients, plan.roomSize, plan.seed);
  const random = seededRandom(plan.seed ^ 0x5bd1e995);
  const wsUrl = websocketUrl(plan.url, "/socket.io/");
  const tokens = tokenSource({ apiKey: plan.apiKey, token: undefined, ttlS: 3600 });
  const channel = (room: number) => `bench:rooms:${plan.seed}:${room}`;
  const padding = paddingFor(plan.payloadBytes);
  const outcome: RoomsOutcome = {
    connected: 0, subscribed: 0, connectErrors: 0, hung: 0, connect: null, broadcasts: 0, measuredS: 0, cpu: null,
    generatorCpuS: 0, published: 0, historyMs: [], lost: 0, duplicated: 0, misrouted: 0, unexpected: 0, errors: {},
  };
  const error = (kind: string) => {
    const key = kind in outcome.errors || Object.keys(outcome.errors).length < MAX_ERROR_KINDS ? kind : "other";
    outcome.errors[key] = (outcome.errors[key] ?? 0) + 1;
  };

  const clients: Array<RawClient | undefined> = new Array(plan.clients).fill(undefined);
  const members = new Int32Array(layout.rooms);
  const awaiting = new Map<number, Outstanding>();
  let closing = false;
  let sending = false;
  let seq = 0;
  let done = 0;

  const handlersOf = (index: number): ClientHandlers => ({
    probe: (probe) => onDelivery(index, probe.s),
    event: () => undefined, // the welcome: not measured
    closed: (reason) => {
      if (!closing) error(`disconnected: ${reason}`);
    },
  });

  const subscribe = async (index: number, client: RawClient) => {
    const ack = await client.request("channel:subscribe", [channel(layout.roomOf[index]!)], ACK_TIMEOUT_MS);
    if (!ack.ok) return error(`subscribe: ${ack.error}`);
    members[layout.roomOf[index]!]!++;
    outcome.subscribed++;
  };

  // Connect (and, unless the connects are measured, subscribe) at a fixed rate.
  const beforeConnects = plan.measureConnects ? samplePartCpu(plan.rootPid, plan.redisPid) : undefined;
  await connectMany({
    indices: Array.from({ length: plan.clients }, (_, i) => i),
    rate: plan.connectRate,
    concurrency: plan.connectConcurrency,
    signal: plan.signal,
    open: async (index) => {
      const client = new RawClient(wsUrl, handlersOf(index));
      const result = await client.connect(tokens.next(index), false, CONNECT_TIMEOUT_MS);
      if (!result.ok) {
        if (result.hung) outcome.hung++;
        else outcome.connectErrors++;
        error(`connect: ${result.error}`);
        return { result, value: undefined };
      }
      clients[index] = client;
      outcome.connected++;
      if (!plan.measureConnects) await subscribe(index, client);
      return { result, value: client };
    },
  });
  if (beforeConnects) {
    // A connect's last work (the welcome, session bookkeeping) may trail its CONNECT answer a little.
    await sleep(250, plan.signal);
    const after = samplePartCpu(plan.rootPid, plan.redisPid);
    outcome.connect = { connects: outcome.connected, seconds: (after.at - beforeConnects.at) / 1000, cpu: partCpuBetween(beforeConnects, after) };
    const pending = clients.flatMap((c, i) => (c ? [[i, c] as const] : []));
    for (let i = 0; i < pending.length && !plan.signal.aborted; i += 200) {
      await Promise.all(pending.slice(i, i + 200).map(([index, client]) => subscribe(index, client)));
    }
  }

  const senders = clients.filter((c): c is RawClient => c !== undefined);
  const liveRooms = Array.from(members.keys()).filter((room) => members[room]! > 0);
  const positionOf = layout.positionOf;

  function send(): void {
    if (!sending) return;
    const sender = senders[Math.floor(random() * senders.length)]!;
    const room = liveRooms[Math.floor(random() * liveRooms.length)]!;
    const s = ++seq;
    awaiting.set(s, { room, got: 0, remaining: members[room]!, sentAt: Date.now() });
    outcome.published++;
    const ack = sender.publish(channel(room), { p: 0, s, t: wallMs() }, padding, true, ACK_TIMEOUT_MS);
    void ack?.then((result) => {
      // Acks still owed when the run closes its clients fail with DISCONNECTED: the run's end, not the server's.
      if (result.ok || closing) return;
      error(`publish: ${result.error ?? "failed"}`);
      // Refused: never broadcast, so nothing will complete it.
      if (result.error !== undefined && REFUSED_CODES.has(result.error) && awaiting.delete(s)) send();
    });
  }

  function onDelivery(index: number, s: number): void {
    const entry = awaiting.get(s);
    if (!entry) {
      outcome.unexpected++;
      return;
    }
    if (layout.roomOf[index] !== entry.room) {
      outcome.misrouted++;
      return;
    }
    const bit = 1 << positionOf[index]!;
    if (entry.got & bit) {
      outcome.duplicated++;
      return;
    }
    entry.got |= bit;
    if (--entry.remaining > 0) return;
    awaiting.delete(s);
    done++;
    send();
  }

  /** Reads a page of a random live room's history every `everyMs`, one at a time, until stopped. */
  function readHistory(everyMs: number): { stop: () => Promise<void> } {
    let reading = true;
    // A PRNG of its own, so the publishes draw the same senders and rooms with or without reads.
    const pick = seededRandom(plan.seed ^ 0x27d4eb2d);
    const loop = (async () => {
      while (reading && !plan.signal.aborted) {
        const reader = senders[Math.floor(pick() * senders.length)]!;
        const room = liveRooms[Math.floor(pick() * liveRooms.length)]!;
        const t0 = performance.now();
        const page = await reader.request("channel:history", [channel(room), HISTORY_PAGE, "descending", null], ACK_TIMEOUT_MS);
        const ms = performance.now() - t0;
        const got = (page.value as { pastMessages?: unknown[] } | undefined)?.pastMessages?.length ?? 0;
        if (!page.ok) error(`history: ${page.error ?? "failed"}`);
        // A page of fewer messages (a room with little history yet) is not the page measured.
        else if (got === HISTORY_PAGE) outcome.historyMs.push(ms);
        await sleep(everyMs, plan.signal);
      }
    })();
    return {
      stop: async () => {
        reading = false;
        await loop;
      },
    };
  }

  const sweep = setInterval(() => {
    const cutoff = Date.now() - DELIVERY_TIMEOUT_MS;
    for (const [s, entry] of awaiting) {
      if (entry.sentAt >= cutoff) continue;
      awaiting.delete(s);
      outcome.lost++;
      error("broadcast not delivered to every member in time");
      send();
    }
  }, 250);

  try {
    if (senders.length === 0 || liveRooms.length === 0 || plan.signal.aborted) return outcome;
    sending = true;
    for (let i = 0; i < plan.inflight; i++) send();
    await sleep(plan.warmupMs, plan.signal);
    const reader = plan.historyEveryMs ? readHistory(plan.historyEveryMs) : undefined;
    // The window's two readings, each taken with the count of broadcasts done at that moment.
    const start: { sample: PartSample; done: number; cpu: NodeJS.CpuUsage } = { sample: samplePartCpu(plan.rootPid, plan.redisPid), done, cpu: process.cpuUsage() };
    await sleep(plan.measureMs, plan.signal);
    const end = { sample: samplePartCpu(plan.rootPid, plan.redisPid), done, cpu: process.cpuUsage(start.cpu) };
    sending = false;
    await reader?.stop();
    outcome.broadcasts = end.done - start.done;
    outcome.measuredS = (end.sample.at - start.sample.at) / 1000;
    outcome.cpu = partCpuBetween(start.sample, end.sample);
    outcome.generatorCpuS = (end.cpu.user + end.cpu.system) / 1e6;
    const drainUntil = Date.now() + DRAIN_MS;
    while (awaiting.size > 0 && Date.now() < drainUntil && !plan.signal.aborted) await sleep(20);
    outcome.lost += awaiting.size;
    if (awaiting.size > 0) error("broadcast not delivered to every member by the end");
    return outcome;
  } finally {
    sending = false;
    clearInterval(sweep);
    closing = true;
    for (const client of clients) client?.close();
  }
}
