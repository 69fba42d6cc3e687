/**
 * Fuzzing every client event with malformed arguments (docs/protocol.md, "Client → server
 * events": bad input gets a {success: false, error} ack when there is a callback, is dropped
 * otherwise, and never throws out of a handler), plus the explicit limits: payload size, channel names, missing acks and
 * protocol-level oversize packets.
 *
 * Reproduce a failing run with FUZZ_SEED=<seed printed in the failure> npx vitest run test/fuzz.test.ts
 */
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAllClients, connect, nextEvent, request, type ClientOptions } from "./helpers/client.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { isAlive, waitFor } from "./helpers/wait.js";

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_c0de) >>> 0;
/** Malformed combinations required per event (the bar), and extra cases on top. */
const MALFORMED_PER_EVENT = 1000;
const MIN_CASES_PER_EVENT = 1200;
/** Emits in flight before the fuzzer waits for their acks and a barrier round trip. */
const BATCH = 150;
/** One deliberately oversize packet after this many cases (it must cost the connection). */
const OVERSIZE_EVERY = 2500;
/** The server defaults this file relies on. */
const MESSAGE_MAX_BYTES = 131_072;
const MAX_HTTP_BUFFER_SIZE = 1_000_000;
const CHANNEL_NAME_MAX_LENGTH = 200;
const CLIENT_RATE_LIMIT_PER_SEC = 100;
const CLIENT_RATE_BURST = 200;
const CLIENT_RATE_MAX_REFUSALS = 100;
/**
 * The fuzzing server's own event rate limit (at the defaults, 10,000 calls would take minutes).
 * The fuzzer keeps to it (Fuzzer.pace), so no fuzz case may be answered RATE_LIMITED; the limit
 * itself is fuzzed at the defaults below ("input limits").
 */
const FUZZ_RATE = { perSec: 5000, burst: 1000 };

const EVENTS = [
  "channel:subscribe",
  "channel:unsubscribe",
  "channel:history",
  "message:queue",
  "presenceSet:enter",
  "presenceSet:leave",
  "presence:update",
  "presence:members:get",
] as const;
type EventName = (typeof EVENTS)[number];

/** Every code a well-behaved server may answer; INTERNAL (a handler threw) is a failure here. */
const CATALOGUE = ["INVALID_ARGUMENT", "INVALID_CHANNEL", "PAYLOAD_TOO_LARGE", "NOT_A_MEMBER", "LIMIT_EXCEEDED"];

interface Ack {
  success: boolean;
  error?: unknown;
  message?: unknown;
}

// ---------------------------------------------------------------------------------------------
// Seeded PRNG (mulberry32): the same seed gives the same cases.

function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!,
    chance: (p: number) => next() < p,
  };
}
type Rng = ReturnType<typeof prng>;

// ---------------------------------------------------------------------------------------------
// The value pool.

/** Stands for "a function here": the ack when it ends the argument list, plain data otherwise. */
const FN = Symbol("function");

function nest(depth: number, leaf: unknown, wrap: (inner: unknown) => unknown): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = wrap(value);
  return value;
}

function buildPool(rng: Rng) {
  const random = Buffer.alloc(64 * 1024);
  for (let i = 0; i < random.length; i++) random[i] = rng.int(256);
  const manyKeys: Record<string, number> = {};
  for (let i = 0; i < 40; i++) manyKeys[`k${i}`] = i;
  const wideObject: Record<string, string> = {};
  for (let i = 0; i < 5000; i++) wideObject[`key${i}`] = "v";
  const nullProto = Object.assign(Object.create(null) as object, { user: "np" });

  const strings: unknown[] = [
    "",
    " ",
    "a",
    "ascending",
    "descending",
    "ASCENDING",
    "0",
    "null",
    "undefined",
    "true",
    "héllo wörld ✓",
    "🎉🔥💥",
    "مرحبا بالعالم",
    "zero\u200bwidth",
    "\ud800",
    "\udfff\ud800",
    "\u0000",
    "\n",
    "\r\n",
    "\x1b[31mred\x1b[0m",
    "\x1e",
    "\u2028\u2029",
    "\ufeff",
    "__proto__",
    "constructor",
    "prototype",
    "hasOwnProperty",
    "ch:room",
    "pr:room",
    "message:receive:x",
    "%s%n%d",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "x".repeat(CHANNEL_NAME_MAX_LENGTH + 1),
    "x".repeat(10_000),
    "é".repeat(10_000),
    "\u0001".repeat(10_000),
    "y".repeat(MESSAGE_MAX_BYTES + 8_000), // too large a message, by characters
    "é".repeat(70_000), // too large a message by UTF-8 bytes only
  ];
  const numbers: unknown[] = [
    0,
    -0,
    1,
    -1,
    1.5,
    50,
    100,
    101,
    NaN,
    Infinity,
    -Infinity,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 2,
    Number.MIN_SAFE_INTEGER,
    1e308,
    -1e308,
    5e-324,
    2 ** 64,
  ];
  const arrays: unknown[] = [
    [],
    [null],
    [1, 2, 3],
    ["a", "b"],
    new Array(1000).fill(0),
    [[[]]],
    // eslint-disable-next-line no-sparse-arrays
    [, 1],
    [undefined, NaN],
    nest(100, [], (inner) => [inner]),
    nest(1000, [], (inner) => [inner]),
  ];
  const objects: unknown[] = [
    {},
    { a: 1 },
    { user: "alice" },
    { typing: true },
    { user: "bob", n: 3, ok: false, z: null },
    { user: { nested: 1 } },
    { user: ["a"] },
    manyKeys,
    wideObject,
    { ["k".repeat(200)]: "long key" },
    { user: "v".repeat(2000) },
    JSON.parse('{"__proto__": {"polluted": true}}') as unknown,
    JSON.parse('{"__proto__": "x", "user": "p"}') as unknown,
    { constructor: { prototype: { polluted: true } } },
    { constructor: "c", toString: "t", valueOf: 1, hasOwnProperty: "h" },
    { socketId: "spoofed" },
    nullProto,
    nest(100, { leaf: 1 }, (inner) => ({ a: inner })),
    nest(1000, { leaf: 1 }, (inner) => ({ a: inner })),
    { ExclusiveStartKey: { channelName: { S: "x" } } },
    new Map([["a", 1]]),
    new Set([1, 2]),
    new Date(0),
  ];
  const binary: unknown[] = [
    Buffer.alloc(0),
    Buffer.from([0, 1, 2, 255]),
    random,
    new Uint8Array([1, 2, 3]),
    new ArrayBuffer(16),
    new Float64Array([1.5, NaN]),
    { data: Buffer.from("abc") },
    [Buffer.from("x")],
    { deep: { deeper: [Buffer.from("y")] } },
  ];
  const general: unknown[] = [undefined, null, true, false, FN, ...strings, ...numbers, ...arrays, ...objects, ...binary];

  const validNames = [
    "fuzz",
    "fuzz:a",
    "fuzz:room:1",
    "fuzz b",
    "fuzz!#$%&*()+-./;<=>?@[]^_`{|}~",
    "z".repeat(CHANNEL_NAME_MAX_LENGTH),
    "__proto__",
    "constructor",
    "toString",
  ];
  const names: unknown[] = [
    ...validNames,
    "fuzz:é",
    "fuzz:🎉",
    "fuzz\u200b",
    "fuzz\ud800",
    "ﬀ",
    "مرحبا",
    "",
    "z".repeat(CHANNEL_NAME_MAX_LENGTH + 1),
    "fuzz\n",
    "fuzz\u0000",
    "\u0007",
    "fuzz\u007f",
    "fuzz\u009f",
  ];
  const plausible: Record<EventName, unknown[][]> = {
    "channel:subscribe": [],
    "channel:unsubscribe": [],
    "presence:members:get": [],
    "presenceSet:leave": [],
    "channel:history": [
      [1, 50, 100, 0, 101, -1, 1.5, null, undefined, "50", NaN],
      ["ascending", "descending", null, undefined, "up", 1],
      [null, undefined, { channelName: "x" }, "cursor"],
    ],
    "message:queue": [
      ["hello", 1, null, { a: [1, { b: "c" }] }, [1, 2], true, "y".repeat(MESSAGE_MAX_BYTES + 8_000), "é".repeat(70_000)],
    ],
    "presenceSet:enter": [[{ user: "alice" }, { typing: "true", n: 1 }, null, undefined, {}]],
    "presence:update": [[{ typing: true }, { typing: false, user: "a" }, null, {}]],
  };
  return { general, names, validNames, plausible };
}

// ---------------------------------------------------------------------------------------------
// What the server sees (JSON on the wire, binary kept) and what it must answer.

const BIN = Symbol("binary");
const MIXED = Symbol("json with binary inside");

function isBinary(v: unknown): boolean {
  return Buffer.isBuffer(v) || ArrayBuffer.isView(v) || v instanceof ArrayBuffer;
}

function containsBinary(v: unknown, depth = 0): boolean {
  if (isBinary(v)) return true;
  if (v === null || typeof v !== "object" || depth > 50) return false;
  return Object.values(v).some((inner) => containsBinary(inner, depth + 1));
}

/** The server's view of one top-level argument. */
function onWire(v: unknown): unknown {
  if (v === FN || v === undefined || typeof v === "function") return null;
  if (isBinary(v)) return BIN;
  if (containsBinary(v)) return MIXED;
  return JSON.parse(JSON.stringify(v)) as unknown;
}

function depthOf(v: unknown): number {
  if (v === null || typeof v !== "object") return 0;
  let max = 0;
  for (const inner of Object.values(v)) max = Math.max(max, depthOf(inner));
  return max + 1;
}

type Expectation = { kind: "fail"; code: string } | { kind: "success" } | { kind: "either"; codes: string[] };
const FAIL = (code: string): Expectation => ({ kind: "fail", code });
const SUCCESS: Expectation = { kind: "success" };
const EITHER = (...codes: string[]): Expectation => ({ kind: "either", codes });

/** Printable ASCII names are valid channel names by contract (apps use ':'); others are checked by rule only. */
function classifyName(name: unknown): "invalid" | "valid" | "unsure" {
  if (typeof name !== "string") return "invalid";
  if (name.length === 0 || name.length > CHANNEL_NAME_MAX_LENGTH) return "invalid";
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return "invalid";
  if (/^[\x20-\x7e]+$/.test(name)) return "valid";
  return "unsure";
}

/** Presence info must be a flat object of at most 32 scalar fields. */
/**
 * What the server answers for presence info, in its order of checks: shape (INVALID_ARGUMENT),
 * then field count (LIMIT_EXCEEDED, > 32), then size (PAYLOAD_TOO_LARGE, > 4096 bytes as
 * stringified JSON). "unsure" where zod's handling of odd keys is not worth modelling.
 */
function infoVerdict(info: unknown): "ok" | "unsure" | "INVALID_ARGUMENT" | "LIMIT_EXCEEDED" | "PAYLOAD_TOO_LARGE" {
  if (info === BIN || info === MIXED) return "INVALID_ARGUMENT";
  if (info === null || typeof info !== "object" || Array.isArray(info)) return "INVALID_ARGUMENT";
  const entries = Object.entries(info);
  if (entries.some(([k]) => k === "__proto__")) return "unsure"; // zod drops this key rather than failing
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > 128 || k === "socketId") return "INVALID_ARGUMENT";
    if (v !== null && typeof v === "object") return "INVALID_ARGUMENT";
    if (typeof v === "number" && !Number.isFinite(v)) return "unsure"; // NaN/Infinity arrive as null on the wire
  }
  if (entries.length > 32) return "LIMIT_EXCEEDED";
  const stringified = Object.fromEntries(entries.map(([k, v]) => [k, String(v)]));
  if (Buffer.byteLength(JSON.stringify(stringified), "utf8") > 4096) return "PAYLOAD_TOO_LARGE";
  return "ok";
}

function expectationFor(event: EventName, wire: unknown[]): Expectation {
  const verdict = classifyName(wire[0]);
  if (verdict === "invalid") return FAIL("INVALID_CHANNEL");
  if (verdict === "unsure") return EITHER(...CATALOGUE);
  switch (event) {
    case "channel:subscribe":
    case "channel:unsubscribe":
    case "presence:members:get":
      return SUCCESS;
    case "presenceSet:leave":
      return EITHER("NOT_A_MEMBER");
    case "message:queue": {
      if (wire.length < 2) return FAIL("INVALID_ARGUMENT");
      const content = wire[1];
      if (content === BIN || content === MIXED) return FAIL("INVALID_ARGUMENT");
      const depth = depthOf(content);
      if (depth >= 40) return FAIL("INVALID_ARGUMENT");
      if (depth > 20) return EITHER("INVALID_ARGUMENT", "PAYLOAD_TOO_LARGE");
      const bytes = Buffer.byteLength(JSON.stringify(content), "utf8");
      return bytes > MESSAGE_MAX_BYTES ? FAIL("PAYLOAD_TOO_LARGE") : SUCCESS;
    }
    case "channel:history": {
      const [, limit, direction, cursor] = wire;
      const limitOk = limit === null || limit === undefined || (Number.isInteger(limit) && (limit as number) >= 1 && (limit as number) <= 100);
      const directionOk = direction === null || direction === undefined || direction === "ascending" || direction === "descending";
      // Only a cursor the server handed out (an object of its shape) is accepted; fuzz never makes one.
      const cursorOk = cursor === null || cursor === undefined;
      return limitOk && directionOk && cursorOk ? SUCCESS : FAIL("INVALID_ARGUMENT");
    }
    case "presenceSet:enter": {
      const info = wire[1] ?? {};
      const v = infoVerdict(info);
      // A valid enter may still meet the bound on presence channels per member (100).
      if (v === "ok") return EITHER("LIMIT_EXCEEDED");
      return v === "unsure" ? EITHER("INVALID_ARGUMENT", "LIMIT_EXCEEDED", "PAYLOAD_TOO_LARGE") : FAIL(v);
    }
    case "presence:update": {
      const v = infoVerdict(wire[1]);
      if (v === "ok") return EITHER("NOT_A_MEMBER");
      return v === "unsure" ? EITHER("INVALID_ARGUMENT", "LIMIT_EXCEEDED", "PAYLOAD_TOO_LARGE", "NOT_A_MEMBER") : FAIL(v);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Cases.

interface Case {
  index: number;
  event: EventName;
  /** Data arguments as emitted (FN already turned into a plain function where it is data). */
  data: unknown[];
  /** True when the emitted argument list ends with a function (the ack). */
  withAck: boolean;
  expected: Expectation;
}

function generateCases(seed: number): Case[] {
  const rng = prng(seed);
  const pool = buildPool(rng);
  const cases: Case[] = [];
  const malformed = new Map<EventName, number>(EVENTS.map((e) => [e, 0]));
  const total = new Map<EventName, number>(EVENTS.map((e) => [e, 0]));
  const done = (e: EventName) => malformed.get(e)! >= MALFORMED_PER_EVENT && total.get(e)! >= MIN_CASES_PER_EVENT;

  while (!EVENTS.every(done)) {
    const event = rng.pick(EVENTS.filter((e) => !done(e)));
    const count = rng.pick([0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 6]);
    const raw: unknown[] = [];
    for (let position = 0; position < count; position++) {
      const plausible = pool.plausible[event][position - 1];
      if (position === 0 && rng.chance(0.5)) raw.push(rng.pick(pool.names));
      else if (plausible && rng.chance(0.5)) raw.push(rng.pick(plausible));
      else raw.push(rng.pick(pool.general));
    }
    // Half the calls pass an ack; a pool function that ends the list is an ack too (as in socket.io).
    let withAck = rng.chance(0.5);
    if (!withAck && raw.length > 0 && raw[raw.length - 1] === FN) {
      raw.pop();
      withAck = true;
    }
    const data = raw.map((v) => (v === FN ? function notAnAck() {} : v));
    const expected = expectationFor(event, data.map(onWire));
    cases.push({ index: cases.length, event, data, withAck, expected });
    total.set(event, total.get(event)! + 1);
    if (expected.kind === "fail") malformed.set(event, malformed.get(event)! + 1);
  }
  return cases;
}

/** A short, printable description of a case for failure messages. */
function describeCase(c: Case): string {
  const show = (v: unknown) => {
    if (typeof v === "function") return "fn";
    if (isBinary(v)) return `<binary ${(v as { byteLength: number }).byteLength}>`;
    if (typeof v === "number" || v === undefined) return String(v);
    const text = JSON.stringify(v) ?? String(v);
    return text.length > 60 ? `${text.slice(0, 57)}...(${text.length})` : text;
  };
  return `#${c.index} ${c.event}(${c.data.map(show).join(", ")}${c.withAck ? ", ack" : ""}) seed=${SEED}`;
}

// ---------------------------------------------------------------------------------------------

describe(`fuzzing every client event (seed ${SEED})`, () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ env: { CLIENT_RATE_LIMIT_PER_SEC: String(FUZZ_RATE.perSec), CLIENT_RATE_BURST: String(FUZZ_RATE.burst) } });
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("answers every malformed call with a failure ack, drops the rest, and no worker dies", async () => {
    const pidsBefore = await allWorkersLogged(server, 2);

    // Two well-behaved clients, one on each worker, on a channel the fuzzer never names.
    const good = await connectOnEveryWorker(server, 2);
    const goodChannel = `good:${SEED}`;
    const received = good.map(() => [] as Array<{ event: string; args: unknown[] }>);
    const goodDisconnects: string[] = [];
    good.forEach((socket, i) => {
      socket.onAny((event: string, ...args: unknown[]) => received[i]!.push({ event, args }));
      socket.on("disconnect", (reason) => goodDisconnects.push(reason));
    });
    for (const socket of good) expect(await request(socket, "channel:subscribe", goodChannel)).toEqual({ success: true });
    await publishAndExpect(good, goodChannel, "before fuzzing");

    const cases = generateCases(SEED);
    const perEvent = Object.fromEntries(EVENTS.map((e) => [e, { total: 0, malformed: 0 }]));
    for (const c of cases) {
      perEvent[c.event]!.total++;
      if (c.expected.kind === "fail") perEvent[c.event]!.malformed++;
    }
    for (const e of EVENTS) expect(perEvent[e]!.malformed, e).toBeGreaterThanOrEqual(MALFORMED_PER_EVENT);

    const fuzz = new Fuzzer(server);
    await fuzz.open();
    const problems: string[] = [];
    const codes: Record<string, number> = {};
    let acked = 0;
    let oversizeProbes = 0;

    for (let start = 0; start < cases.length; start += BATCH) {
      const batch = cases.slice(start, start + BATCH);
      const answers = await fuzz.run(batch);
      answers.forEach((answer, i) => {
        const c = batch[i]!;
        if (!c.withAck) return;
        if (answer.kind !== "ack") {
          problems.push(`${describeCase(c)}: ${answer.kind === "dropped" ? `connection dropped (${answer.reason})` : "no ack"}`);
          return;
        }
        acked++;
        const problem = checkAck(c, answer.value);
        const key = answer.value && typeof answer.value === "object" ? String((answer.value as Ack).error ?? "success") : "?";
        codes[key] = (codes[key] ?? 0) + 1;
        if (problem) problems.push(`${describeCase(c)}: ${problem}`);
      });
      if (problems.length > 20) break;
      if (Math.floor((start + BATCH) / OVERSIZE_EVERY) > Math.floor(start / OVERSIZE_EVERY)) {
        oversizeProbes++;
        await fuzz.oversize(EVENTS[oversizeProbes % EVENTS.length]!, oversizeProbes % 2 === 0);
      }
    }
    const emits = cases.length + oversizeProbes;
    console.log(
      `fuzz seed=${SEED}: ${emits} emits (${cases.filter((c) => c.withAck).length} with ack, ${acked} acked),` +
        ` per event ${JSON.stringify(perEvent)}, answers ${JSON.stringify(codes)},` +
        ` disconnects ${fuzz.disconnects.length} (${oversizeProbes} oversize probes)`,
    );

    expect(problems).toEqual([]);
    expect(emits).toBeGreaterThanOrEqual(8000);
    // The only disconnects are the deliberate oversize packets, each costing exactly its connection.
    expect(oversizeProbes).toBeGreaterThan(0);
    expect(fuzz.unexpectedDisconnects).toEqual([]);
    expect(fuzz.disconnects).toHaveLength(oversizeProbes);

    // The fuzzer's latest connection still works.
    expect(fuzz.socket.connected).toBe(true);
    await fuzz.pace(1);
    expect(await request(fuzz.socket, "channel:subscribe", "fuzz:after")).toEqual({ success: true });

    // No worker crashed, restarted or failed inside a handler.
    expect(server.workerPids()).toEqual(pidsBefore);
    for (const pid of pidsBefore) expect(isAlive(pid), `worker ${pid} alive`).toBe(true);
    expect(server.output.filter((line) => line.includes('"worker exited"'))).toEqual([]);
    expect(server.output.filter((line) => line.includes('"handler failed"'))).toEqual([]);

    // The well-behaved clients were never disturbed, still subscribe/publish/receive, and saw only their own traffic.
    expect(goodDisconnects).toEqual([]);
    const laterChannel = `good:after:${SEED}`;
    for (const socket of good) expect(await request(socket, "channel:subscribe", laterChannel)).toEqual({ success: true });
    await publishAndExpect(good, laterChannel, "after fuzzing");
    await publishAndExpect(good, goodChannel, "after fuzzing, old channel");
    for (const [i, events] of received.entries()) {
      const stray = events.filter(
        (e) => e.event !== "cerebellum:welcome" && e.event !== `message:receive:${goodChannel}` && e.event !== `message:receive:${laterChannel}`,
      );
      expect(stray, `client ${i} stray events`).toEqual([]);
      // Exactly the 2 + 2 + 2 messages the good clients published, nothing from the fuzzer.
      const contents = events.filter((e) => e.event.startsWith("message:receive:")).map((e) => (e.args[0] as { content: unknown }).content);
      expect(contents).toHaveLength(6);
      for (const content of contents) expect(String((content as { text: string }).text)).toMatch(/^good /);
    }
  });
});

/** Checks one ack against the case's expectation; returns a problem or undefined. */
function checkAck(c: Case, value: unknown): string | undefined {
  if (value === null || typeof value !== "object") return `ack is not an object: ${JSON.stringify(value)}`;
  const ack = value as Ack;
  if (typeof ack.success !== "boolean") return `ack without boolean success: ${JSON.stringify(ack)}`;
  if (!ack.success && typeof ack.error !== "string") return `failure without string error: ${JSON.stringify(ack)}`;
  if (!ack.success && ack.message !== undefined && typeof ack.message !== "string") return `non-string message: ${JSON.stringify(ack)}`;
  const exp = c.expected;
  if (exp.kind === "fail" && (ack.success || ack.error !== exp.code)) return `expected ${exp.code}, got ${JSON.stringify(ack)}`;
  if (exp.kind === "success" && !ack.success) return `expected success, got ${JSON.stringify(ack)}`;
  if (exp.kind === "either" && !ack.success && !exp.codes.includes(ack.error as string)) {
    return `expected success or ${exp.codes.join("/")}, got ${JSON.stringify(ack)}`;
  }
  return undefined;
}

type Answer = { kind: "ack"; value: unknown } | { kind: "timeout" } | { kind: "dropped"; reason: string } | { kind: "none" };

/** One fuzzing connection (websocket), reopened after an expected drop. */
class Fuzzer {
  socket!: Socket;
  readonly disconnects: string[] = [];
  readonly unexpectedDisconnects: string[] = [];
  private expectingDrop = false;
  /**
   * The fewest tokens the server's bucket for this connection can hold (FUZZ_RATE), and since
   * when it has been refilling: from the answer to the last barrier, by which time the server had
   * handled every earlier event of this connection.
   */
  private tokens = FUZZ_RATE.burst;
  private refillingSince = Date.now();

  constructor(private readonly server: RunningServer) {}

  /**
   * Keeps to the server's rate limit: waits until the bucket surely holds `events` tokens, then
   * spends them. (Pacing a sender to a rate is a matter of time, not a condition to poll for.)
   */
  async pace(events: number): Promise<void> {
    const refill = () => {
      const now = Date.now();
      this.tokens = Math.min(FUZZ_RATE.burst, this.tokens + ((now - this.refillingSince) * FUZZ_RATE.perSec) / 1000);
      this.refillingSince = now;
    };
    refill();
    if (this.tokens < events) {
      await new Promise((r) => setTimeout(r, Math.ceil(((events - this.tokens) * 1000) / FUZZ_RATE.perSec)));
      refill();
    }
    this.tokens -= events;
  }

  async open(): Promise<void> {
    // A new connection starts with a full bucket.
    this.tokens = FUZZ_RATE.burst;
    this.refillingSince = Date.now();
    const socket = await connect(this.server.url, this.server.token(), { transports: ["websocket"] });
    socket.on("disconnect", (reason) => {
      if (this.expectingDrop) this.disconnects.push(reason);
      else this.unexpectedDisconnects.push(reason);
    });
    this.socket = socket;
  }

  /** Emits a batch, then waits for its acks and for a barrier round trip (so ack-less calls were handled too). */
  async run(batch: Case[]): Promise<Answer[]> {
    if (!this.socket.connected) await this.open();
    await this.pace(batch.length + 1); // and the barrier
    const answers = batch.map(
      (c) =>
        new Promise<Answer>((resolve) => {
          if (!c.withAck) {
            this.socket.emit(c.event, ...c.data);
            return resolve({ kind: "none" });
          }
          this.socket.timeout(15_000).emit(c.event, ...c.data, (err: Error | null, value: unknown) => {
            if (!err) resolve({ kind: "ack", value });
            else resolve(err.message.includes("disconnected") ? { kind: "dropped", reason: err.message } : { kind: "timeout" });
          });
        }),
    );
    const settled = await Promise.all(answers);
    if (this.socket.connected) {
      const barrier = await request(this.socket, "presence:members:get", "fuzz:barrier").catch((err: Error) => err);
      if (barrier instanceof Error && this.socket.connected) throw barrier;
      this.refillingSince = Date.now();
    }
    return settled;
  }

  /** Sends one packet larger than maxHttpBufferSize: the server must drop this connection (only). */
  async oversize(event: EventName, withAck: boolean): Promise<void> {
    await this.pace(1); // (Engine.IO drops it before it counts; the model need not know that.)
    const huge = "o".repeat(MAX_HTTP_BUFFER_SIZE + 1024);
    this.expectingDrop = true;
    let acked = false;
    if (withAck) this.socket.emit(event, "fuzz", huge, () => (acked = true));
    else this.socket.emit(event, "fuzz", huge);
    await waitFor(() => !this.socket.connected, { what: "oversize packet to drop the connection" });
    this.expectingDrop = false;
    expect(acked, "an oversize packet is never handled").toBe(false);
    await this.open();
  }
}

/** The workers' pids once each has logged "worker ready" (/readyz can answer before the log line is read). */
function allWorkersLogged(server: RunningServer, workers: number): Promise<number[]> {
  return waitFor(() => server.workerPids().length >= workers && server.workerPids(), { what: "worker ready lines" });
}

/** Connects clients until each of `workers` workers holds one (ids from the Engine.IO session id). */
async function connectOnEveryWorker(server: RunningServer, workers: number, options: ClientOptions = {}): Promise<Socket[]> {
  const byWorker = new Map<string, Socket>();
  for (let attempt = 0; attempt < 20 && byWorker.size < workers; attempt++) {
    const socket = await connect(server.url, server.token(), options);
    const worker = socket.io.engine.id.split(".")[0]!;
    if (byWorker.has(worker)) socket.close();
    else byWorker.set(worker, socket);
  }
  expect(byWorker.size, "clients on every worker").toBe(workers);
  return [...byWorker.values()];
}

/** Every client publishes once; every client receives every message. */
async function publishAndExpect(clients: Socket[], channel: string, label: string): Promise<void> {
  const texts = clients.map((_, i) => `good ${label} ${i}`);
  const arrivals = clients.map(
    (socket) =>
      new Promise<string[]>((resolve, reject) => {
        const seen: string[] = [];
        const timer = setTimeout(() => reject(new Error(`${label}: saw only ${JSON.stringify(seen)}`)), 10_000);
        const onMessage = (message: { content: { text: string } }) => {
          seen.push(message.content.text);
          if (seen.length === texts.length) {
            clearTimeout(timer);
            socket.off(`message:receive:${channel}`, onMessage);
            resolve(seen);
          }
        };
        socket.on(`message:receive:${channel}`, onMessage);
      }),
  );
  for (const [i, socket] of clients.entries()) {
    const ack = await request<Ack>(socket, "message:queue", channel, { text: texts[i] });
    expect(ack.success, `${label}: publish acked`).toBe(true);
  }
  for (const seen of await Promise.all(arrivals)) expect([...seen].sort()).toEqual([...texts].sort());
}

// ---------------------------------------------------------------------------------------------

describe("input limits (server defaults)", () => {
  let server: RunningServer;
  let pids: number[];
  beforeAll(async () => {
    server = await startServer();
    pids = await allWorkersLogged(server, 2);
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("refuses content larger than MESSAGE_MAX_BYTES with PAYLOAD_TOO_LARGE and delivers nothing", async () => {
    const [publisher, subscriber] = await connectOnEveryWorker(server, 2);
    expect(await request(subscriber!, "channel:subscribe", "limits:size")).toEqual({ success: true });
    const first = nextEvent<{ content: unknown }>(subscriber!, "message:receive:limits:size");

    // The JSON form of a string is two quotes longer than the string.
    const tooLarge = await request<Ack>(publisher!, "message:queue", "limits:size", "x".repeat(MESSAGE_MAX_BYTES - 1));
    expect(tooLarge).toMatchObject({ success: false, error: "PAYLOAD_TOO_LARGE" });
    expect(typeof tooLarge.message).toBe("string");
    const multiByte = await request<Ack>(publisher!, "message:queue", "limits:size", { text: "é".repeat(MESSAGE_MAX_BYTES / 2) });
    expect(multiByte).toMatchObject({ success: false, error: "PAYLOAD_TOO_LARGE" });

    const exactly = "x".repeat(MESSAGE_MAX_BYTES - 2);
    expect(await request<Ack>(publisher!, "message:queue", "limits:size", exactly)).toMatchObject({ success: true });
    // The first delivery is the one at the limit: the refused ones never went out.
    expect((await first).content).toBe(exactly);
  });

  it("refuses a channel name longer than 200 characters with INVALID_CHANNEL on every event", async () => {
    const socket = await connect(server.url, server.token());
    const long = "c".repeat(CHANNEL_NAME_MAX_LENGTH + 1);
    const argsFor: Record<EventName, unknown[]> = {
      "channel:subscribe": [long],
      "channel:unsubscribe": [long],
      "channel:history": [long, 10, "ascending", null],
      "message:queue": [long, "hi"],
      "presenceSet:enter": [long, { user: "a" }],
      "presenceSet:leave": [long],
      "presence:update": [long, { typing: true }],
      "presence:members:get": [long],
    };
    for (const event of EVENTS) {
      expect(await request(socket, event, ...argsFor[event]), event).toMatchObject({ success: false, error: "INVALID_CHANNEL" });
    }
    // 200 characters is still a channel.
    expect(await request(socket, "channel:subscribe", "c".repeat(CHANNEL_NAME_MAX_LENGTH))).toEqual({ success: true });
  });

  it("refuses channel names with control characters with INVALID_CHANNEL", async () => {
    const socket = await connect(server.url, server.token());
    for (const name of ["room\u0000", "room\n", "\u0007bell", "tab\there", "room\u007f", "room\u0085", "\u001b[31m"]) {
      expect(await request(socket, "channel:subscribe", name), JSON.stringify(name)).toMatchObject({
        success: false,
        error: "INVALID_CHANNEL",
      });
      expect(await request(socket, "message:queue", name, "x"), JSON.stringify(name)).toMatchObject({
        success: false,
        error: "INVALID_CHANNEL",
      });
    }
  });

  it("answers calls past CLIENT_RATE_BURST with RATE_LIMITED, then disconnects a client that keeps on", async () => {
    const [flooder, bystander] = await connectOnEveryWorker(server, 2);
    const sameWorker = await connect(server.url, server.token(), { transports: ["websocket"] });
    const neighbour = [bystander!, sameWorker].find((s) => s.io.engine.id.split(".")[0] === flooder!.io.engine.id.split(".")[0]);
    const notice = new Promise<unknown>((resolve) => flooder!.once("cerebellum:disconnecting", resolve));
    const gone = new Promise<string>((resolve) => flooder!.once("disconnect", resolve));
    // Far more calls at once than a full bucket holds plus what refills while the worker reads
    // them (100 a second) plus the refusals allowed: cheap ones, valid and not, acked (answered
    // at once) and not (publishes).
    const total = CLIENT_RATE_BURST + 10 * CLIENT_RATE_MAX_REFUSALS;
    const answers: Array<Promise<Ack | "dropped">> = [];
    for (let i = 0; i < total; i++) {
      if (i % 5 === 4) {
        flooder!.emit("message:queue", "limits:rate", i);
        continue;
      }
      answers.push(
        new Promise((resolve) =>
          flooder!.timeout(30_000).emit("channel:unsubscribe", i % 2 ? "limits:rate" : "", (err: Error | null, ack: Ack) => resolve(err ? "dropped" : ack)),
        ),
      );
    }
    expect(await gone).toBe("io server disconnect");
    expect(await notice).toMatchObject({ code: "RATE_LIMITED" });
    const settled = await Promise.all(answers);
    const codes = settled.map((a) => (a === "dropped" ? a : a.success ? "success" : String(a.error)));
    // A full bucket: the first calls are answered as usual (the acked ones among the first CLIENT_RATE_BURST).
    const firstAcked = Math.floor((CLIENT_RATE_BURST * 4) / 5);
    expect(codes.slice(0, firstAcked).every((c) => c === "success" || c === "INVALID_CHANNEL")).toBe(true);
    expect(codes).toContain("RATE_LIMITED");
    // Only those answers, and the calls left unread when the connection closed.
    expect(new Set(codes.filter((c) => !["success", "INVALID_CHANNEL", "RATE_LIMITED", "dropped"].includes(c)))).toEqual(new Set());
    // Its neighbour on the same worker was not touched.
    if (neighbour) expect(await request(neighbour, "channel:subscribe", "limits:rate:after")).toEqual({ success: true });
    expect(server.workerPids()).toEqual(pids);
  });

  it("handles calls without an ack callback (valid or not) and keeps serving", async () => {
    const [socket, other] = await connectOnEveryWorker(server, 2);
    const disconnects: string[] = [];
    socket!.on("disconnect", (reason) => disconnects.push(reason));

    // The original server crashed on these: ack-events with no callback, valid and malformed.
    expect(() => socket!.emit("channel:subscribe", "noack:room")).not.toThrow();
    for (const event of EVENTS) {
      socket!.emit(event);
      socket!.emit(event, null, null, null);
      socket!.emit(event, "noack:other", { bad: { nested: true } }, 42);
    }
    socket!.emit("channel:history", "noack:room", 10, "ascending", null);
    socket!.emit("presence:members:get", "noack:room");

    // An acked call after them: its answer means the worker has read (and subscribed) all of the
    // above, since a connection's packets are handled in order; without it the other worker's
    // message could overtake the ack-less subscribe.
    expect(await request(socket!, "presence:members:get", "noack:room")).toMatchObject({ success: true, users: [] });
    // The ack-less subscribe took effect: a message from the other worker arrives.
    const got = nextEvent<{ content: unknown }>(socket!, "message:receive:noack:room");
    expect(await request<Ack>(other!, "message:queue", "noack:room", "still here")).toMatchObject({ success: true });
    expect((await got).content).toBe("still here");
    expect(socket!.connected).toBe(true);
    expect(disconnects).toEqual([]);
    expect(server.workerPids()).toEqual(pids);
    for (const pid of pids) expect(isAlive(pid)).toBe(true);
  });
});

describe("packets larger than maxHttpBufferSize", () => {
  const BUFFER = 20_000;
  let server: RunningServer;
  let pids: number[];
  beforeAll(async () => {
    server = await startServer({ env: { MAX_HTTP_BUFFER_SIZE: String(BUFFER), MESSAGE_MAX_BYTES: "1000" } });
    pids = await allWorkersLogged(server, 2);
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
  });

  for (const transport of ["websocket", "polling"] as const) {
    it(`over ${transport}: disconnect only the sender; the worker and its other clients carry on`, async () => {
      const bystanders = await connectOnEveryWorker(server, 2);
      const victim = await connect(server.url, server.token(), { transports: [transport] });
      const victimWorker = victim.io.engine.id.split(".")[0];
      // A bystander on the victim's own worker is the one that matters most.
      expect(bystanders.map((s) => s.io.engine.id.split(".")[0])).toContain(victimWorker);
      const bystanderDrops: string[] = [];
      for (const socket of bystanders) socket.on("disconnect", (reason) => bystanderDrops.push(reason));
      const channel = `oversize:${transport}`;
      for (const socket of [...bystanders, victim]) expect(await request(socket, "channel:subscribe", channel)).toEqual({ success: true });
      const delivered: unknown[] = [];
      for (const socket of bystanders) socket.on(`message:receive:${channel}`, (m: { content: unknown }) => delivered.push(m.content));

      // Over MESSAGE_MAX_BYTES but within the buffer: an answer, not a disconnect.
      expect(await request(victim, "message:queue", channel, "m".repeat(5000))).toMatchObject({
        success: false,
        error: "PAYLOAD_TOO_LARGE",
      });
      expect(victim.connected).toBe(true);

      const reason = new Promise<string>((resolve) => victim.once("disconnect", resolve));
      let acked = false;
      victim.emit("message:queue", channel, "b".repeat(BUFFER + 10_000), () => (acked = true));
      const why = await reason;
      expect(["transport close", "transport error", "ping timeout"]).toContain(why);
      expect(acked).toBe(false);

      // The others are still connected and working, on both workers.
      for (const [i, socket] of bystanders.entries()) {
        const text = `after ${transport} ${i}`;
        expect(await request(socket, "message:queue", channel, text)).toMatchObject({ success: true });
      }
      await waitFor(() => delivered.length === 2 * bystanders.length, { what: "bystander messages" });
      expect(delivered.every((c) => typeof c === "string" && c.startsWith("after "))).toBe(true);
      expect(bystanderDrops).toEqual([]);
      expect(bystanders.every((s) => s.connected)).toBe(true);

      // New connections are served, the workers are the same processes.
      const again = await connect(server.url, server.token(), { transports: [transport] });
      expect(await request(again, "channel:subscribe", channel)).toEqual({ success: true });
      expect(server.workerPids()).toEqual(pids);
      for (const pid of pids) expect(isAlive(pid)).toBe(true);
    });
  }
});
