import { EventEmitter } from "node:events";
import type { Worker } from "node:cluster";
import { MessageType, type ClusterMessage } from "socket.io-adapter";
import { afterEach, describe, expect, it, onTestFinished, vi } from "vitest";
import { formatOffset, parseOffset, type AdapterBatch, type AdapterDownMessage, type AdapterUpMessage } from "../src/shared/adapter-ipc.js";
import { createLogger } from "../src/shared/logger.js";
import { AdapterHost, SEEN_DELAY_MS } from "../src/primary/adapter-host.js";
import { ReplayLog } from "../src/primary/replay-log.js";
import { SessionTable } from "../src/primary/session-table.js";
import type { Supervisor } from "../src/primary/supervisor.js";
import { PendingRestores, type RestoreStage } from "../src/worker/adapter/pending-restores.js";

const LIMITS = { maxAgeMs: 120_000, maxEntries: 1000, maxBytes: 1 << 20 };
const EPOCH = "0a1b2c";
type Up = AdapterUpMessage;
const freshLog = () => new ReplayLog(LIMITS, { epoch: EPOCH, seq: 0, entries: [] });

describe("embedded offsets", () => {
  it("round-trips plain and counted positions", () => {
    for (const p of [
      { epoch: EPOCH, seq: 0 },
      { epoch: EPOCH, seq: 41 },
      { epoch: EPOCH, seq: 7, origin: "deadbeef", n: 3 },
    ]) {
      expect(parseOffset(formatOffset(p))).toEqual(p);
    }
    expect(formatOffset({ epoch: EPOCH, seq: 7, origin: "deadbeef", n: 3 })).toBe("0a1b2c-7.deadbeef.3");
  });

  it("rejects what a client may send that is not one of ours", () => {
    for (const bad of ["", "-", "0a1b2c", "0a1b2c-", "0a1b2c--1", "0a1b2c-01", "0a1b2c-1.5", "0a1b2c-1.x.2", "0a1b2c-1.ab.0", "0a1b2c-1.ab.2.3", "zz-1", "0a1b2c-99999999999999999", "1-2-3"]) {
      expect(parseOffset(bad), bad).toBeUndefined();
    }
  });
});

describe("replay log", () => {
  it("replays what a socket in the rooms missed after a plain offset", () => {
    const log = freshLog();
    const first = log.append(["e", 1], ["a"], [], 10, 0);
    log.append(["e", 2], ["b"], [], 10, 0);
    log.appendMarker(0);
    log.append(["e", 3], ["a"], [], 10, 0);
    log.append(["e", 4], [], ["a"], 10, 0);
    expect(first).toBe(`${EPOCH}-1`);
    expect(log.since(first, ["a"])).toEqual([["e", 3, `${EPOCH}-4`]]);
    expect(log.since(`${EPOCH}-0`, ["b"])).toEqual([["e", 2, `${EPOCH}-2`], ["e", 4, `${EPOCH}-5`]]);
  });

  it("skips the broadcasts an offset's origin already delivered, and only those", () => {
    const log = freshLog();
    log.append(["e", "x1"], ["a"], [], 10, 0, { origin: "aaaa", n: 1 }); // seq 1
    log.append(["e", "y1"], ["a"], [], 10, 0, { origin: "bbbb", n: 1 }); // seq 2
    log.append(["e", "x2"], ["a"], [], 10, 0, { origin: "aaaa", n: 2 }); // seq 3
    log.append(["e", "x3"], ["a"], [], 10, 0, { origin: "aaaa", n: 3 }); // seq 4
    log.append(["e", "y2"], ["a"], [], 10, 0, { origin: "bbbb", n: 2 }); // seq 5
    // The socket had everything up to seq 1, and worker aaaa's first two broadcasts (x2 went out
    // before the primary sequenced y1).
    const missed = log.since(formatOffset({ epoch: EPOCH, seq: 1, origin: "aaaa", n: 2 }), ["a"]);
    expect(missed?.map((d) => d[1])).toEqual(["y1", "x3", "y2"]);
    // The same count from another origin skips nothing of aaaa's.
    expect(log.since(formatOffset({ epoch: EPOCH, seq: 1, origin: "cccc", n: 2 }), ["a"])?.map((d) => d[1])).toEqual(["y1", "x2", "x3", "y2"]);
  });

  it("replays the entries of a log saved by an earlier version (data arrays, not JSON)", () => {
    const log = new ReplayLog(LIMITS, {
      epoch: EPOCH,
      seq: 2,
      entries: [
        { seq: 1, at: 0, data: null, rooms: [], except: [], bytes: 0 },
        { seq: 2, at: 0, data: ["e", "old", `${EPOCH}-2`], rooms: ["a"], except: [], bytes: 10 },
      ],
    });
    log.append(["e", "new"], ["a"], [], 10, 0);
    expect(log.since(`${EPOCH}-0`, ["a"])).toEqual([["e", "old", `${EPOCH}-2`], ["e", "new", `${EPOCH}-3`]]);
  });

  it("fails whole for another epoch, a future sequence number or a trimmed gap", () => {
    const log = new ReplayLog({ ...LIMITS, maxEntries: 2 }, { epoch: EPOCH, seq: 0, entries: [] });
    for (let i = 1; i <= 4; i++) log.append(["e", i], ["a"], [], 10, 0);
    expect(log.since(`beef-3`, ["a"])).toBeUndefined();
    expect(log.since(`${EPOCH}-5`, ["a"])).toBeUndefined();
    expect(log.since(`${EPOCH}-1`, ["a"])).toBeUndefined(); // seq 2 was trimmed
    expect(log.since(formatOffset({ epoch: EPOCH, seq: 1, origin: "aaaa", n: 9 }), ["a"])).toBeUndefined();
    expect(log.since(`${EPOCH}-2`, ["a"])?.map((d) => d[1])).toEqual([3, 4]);
  });
});

class FakeWorker {
  private readonly received: AdapterDownMessage[] = [];
  connected = true;
  /** Sends what the host has queued for its workers (it batches per event-loop turn). */
  flush = () => undefined as void;
  constructor(readonly id: number) {}
  isConnected() {
    return this.connected;
  }
  send(batch: AdapterBatch<AdapterDownMessage>) {
    this.received.push(...batch.m);
    return true;
  }
  /** Everything the host sent this worker so far. */
  get sent(): AdapterDownMessage[] {
    this.flush();
    return this.received;
  }
}

const hosts: AdapterHost[] = [];
afterEach(() => hosts.splice(0).forEach((h) => h.close()));

/** An adapter host with `count` fake workers, driven through the messages real workers send. */
function hostWith(count: number) {
  const workers = Array.from({ length: count }, (_, i) => new FakeWorker(i + 1));
  const supervisor = Object.assign(new EventEmitter(), {
    connectedWorkers: () => workers.filter((w) => w.connected),
  });
  const sessions = new SessionTable({ maxDisconnectionMs: 120_000, maxDisconnected: 100 });
  const host = new AdapterHost(supervisor as unknown as Supervisor, freshLog(), sessions, createLogger("silent", {}));
  hosts.push(host);
  for (const w of workers) w.flush = () => host.flush();
  const up = (worker: FakeWorker, message: Up) => supervisor.emit("adapter", worker as unknown as Worker, message);
  const publish = (worker: FakeWorker, id: number, content: string, n: number, rooms: string[] = ["a"]) =>
    up(worker, { t: "bc", id, relay: true, uid: `uid${worker.id}`, nsp: "/", rooms, except: [], d: JSON.stringify(["e", content]), origin: `0000000${worker.id}`, n });
  return { host, workers, supervisor, up, publish };
}

/** The primary's adapter host, driven through the same messages its workers send. */
describe("adapter host: restores and broadcasts a worker delivered first", () => {
  function setup() {
    const { workers, supervisor, up, publish } = hostWith(2);
    // A session that was on worker 1, disconnected: its client comes back on worker 2.
    const session = { sid: "s1", pid: "p1", rooms: ["a"], data: {} };
    up(workers[0]!, { t: "open", session });
    up(workers[0]!, { t: "closed", session });
    const restored = () => workers[1]!.sent.filter((m) => m.t === "restored");
    return { workers, supervisor, up, publish, restored };
  }

  it("holds a restore until the broadcasts its offset counts have arrived, then skips them", () => {
    const { workers, up, publish, restored } = setup();
    publish(workers[0]!, 1, "x1", 1); // seq 1
    // The client had x1 and x2 from worker 1; x2 has not reached the primary yet.
    up(workers[1]!, { t: "restore", id: 7, pid: "p1", offset: formatOffset({ epoch: EPOCH, seq: 0, origin: "00000001", n: 2 }) });
    expect(restored()).toEqual([]);
    publish(workers[1]!, 1, "y1", 1); // seq 2, from the other worker: not what it waits for
    expect(restored()).toEqual([]);
    publish(workers[0]!, 2, "x2", 2); // seq 3
    const [answer] = restored();
    expect(answer).toMatchObject({ id: 7, upTo: `${EPOCH}-3` });
    expect(answer?.t === "restored" && answer.session?.missedPackets.map((d) => d[1])).toEqual(["y1"]);
  });

  it("answers at once when the counted broadcasts are in, and when their worker has died", () => {
    const { workers, supervisor, up, publish, restored } = setup();
    publish(workers[0]!, 1, "x1", 1);
    up(workers[1]!, { t: "restore", id: 1, pid: "nobody", offset: formatOffset({ epoch: EPOCH, seq: 0, origin: "00000001", n: 1 }) });
    expect(restored()).toHaveLength(1);
    up(workers[1]!, { t: "restore", id: 2, pid: "p1", offset: formatOffset({ epoch: EPOCH, seq: 0, origin: "00000001", n: 5 }) });
    expect(restored()).toHaveLength(1);
    workers[0]!.connected = false;
    supervisor.emit("exit", 1, undefined);
    const answer = restored()[1];
    expect(answer).toMatchObject({ id: 2 });
    expect(answer?.t === "restored" && answer.session?.missedPackets).toEqual([]);
  });

  it("answers a held restore after 2 s even if the counted broadcasts never come", () => {
    vi.useFakeTimers();
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { workers, up, publish, restored } = setup();
    publish(workers[0]!, 1, "x1", 1);
    up(workers[1]!, { t: "restore", id: 1, pid: "p1", offset: formatOffset({ epoch: EPOCH, seq: 0, origin: "00000001", n: 2 }) });
    vi.advanceTimersByTime(1999);
    expect(restored()).toEqual([]);
    vi.advanceTimersByTime(1);
    const [answer] = restored();
    expect(answer).toMatchObject({ id: 1 });
    expect(answer?.t === "restored" && answer.session?.missedPackets).toEqual([]);
  });

  it("holds at most 10,000 restores: past that one is answered at once (a duplicate at worst, never a wait)", () => {
    const { workers, up, publish, restored } = setup();
    publish(workers[0]!, 1, "x1", 1);
    const waiting = formatOffset({ epoch: EPOCH, seq: 0, origin: "00000001", n: 2 });
    for (let id = 1; id <= 10_001; id++) up(workers[1]!, { t: "restore", id, pid: `nobody${id}`, offset: waiting });
    expect(restored().map((m) => m.t === "restored" && m.id)).toEqual([10_001]);
    // The counted broadcast arrives: every held one goes ahead.
    publish(workers[0]!, 2, "x2", 2);
    expect(restored()).toHaveLength(10_001);
  });
});

/** Contents of the broadcasts relayed to a worker, in order. */
function relayed(worker: FakeWorker): unknown[] {
  return worker.sent.flatMap((m) => (m.t === "bc" ? [(JSON.parse(m.d) as unknown[])[1]] : []));
}

describe("adapter host: telling a worker how far its own broadcasts are sequenced", () => {
  const publishUnanswered = (up: ReturnType<typeof hostWith>["up"], worker: FakeWorker, n: number, content: string) =>
    up(worker, { t: "bc", relay: true, uid: `uid${worker.id}`, nsp: "/", rooms: ["a"], except: [], d: JSON.stringify(["e", content]), origin: `0000000${worker.id}`, n });

  it("answers no broadcast sent without an id, and says once, after SEEN_DELAY_MS, how far they went", () => {
    vi.useFakeTimers();
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { workers, up } = hostWith(2);
    const [w1] = workers as [FakeWorker, FakeWorker];
    for (let n = 1; n <= 3; n++) publishUnanswered(up, w1, n, `x${n}`);
    w1.flush();
    expect(w1.sent).toEqual([]);
    vi.advanceTimersByTime(SEEN_DELAY_MS);
    w1.flush();
    expect(w1.sent).toEqual([{ t: "seen", n: 3, offset: `${EPOCH}-3` }]);
    // Nothing more to tell: no further message.
    vi.advanceTimersByTime(SEEN_DELAY_MS * 4);
    w1.flush();
    expect(w1.sent).toHaveLength(1);
  });

  it("sends a pending seen ahead of the next message for that worker, in order", () => {
    vi.useFakeTimers();
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { workers, up, publish } = hostWith(2);
    const [w1, w2] = workers as [FakeWorker, FakeWorker];
    up(w1, { t: "interest", add: ["a"] });
    publishUnanswered(up, w1, 1, "own"); // seq 1
    publish(w2, 1, "relayed", 1); // seq 2, relayed to worker 1
    w1.flush();
    expect(w1.sent.map((m) => m.t)).toEqual(["seen", "bc"]);
    expect(w1.sent[0]).toEqual({ t: "seen", n: 1, offset: `${EPOCH}-1` });
    expect(w1.sent[1]).toMatchObject({ t: "bc", offset: `${EPOCH}-2` });
    vi.advanceTimersByTime(SEEN_DELAY_MS);
    w1.flush();
    expect(w1.sent).toHaveLength(2);
  });
});

describe("adapter host: interest routing", () => {
  it("relays a broadcast only to the workers with a member in its rooms, and answers its publisher", () => {
    const { workers, up, publish } = hostWith(3);
    const [w1, w2, w3] = workers as [FakeWorker, FakeWorker, FakeWorker];
    publish(w1, 1, "nobody", 1, ["a"]);
    expect([relayed(w2), relayed(w3)]).toEqual([[], []]);
    expect(w1.sent.filter((m) => m.t === "offset")).toEqual([{ t: "offset", id: 1, offset: `${EPOCH}-1` }]);
    up(w2, { t: "interest", id: 9, add: ["a"] });
    expect(w2.sent.filter((m) => m.t === "interested")).toEqual([{ t: "interested", id: 9 }]);
    publish(w1, 2, "to-a", 2, ["a"]);
    publish(w1, 3, "to-b", 3, ["b"]);
    publish(w1, 4, "to-a-or-b", 4, ["b", "a"]);
    expect(relayed(w2)).toEqual(["to-a", "to-a-or-b"]);
    expect(relayed(w3)).toEqual([]);
    // The worker's last member left: nothing more for it.
    up(w2, { t: "interest", del: ["a"], pin: 0 });
    publish(w1, 5, "after", 5, ["a"]);
    expect(relayed(w2)).toEqual(["to-a", "to-a-or-b"]);
    // Its own broadcasts never come back to it.
    up(w1, { t: "interest", add: ["a"] });
    publish(w1, 6, "own", 6, ["a"]);
    expect(relayed(w1)).toEqual([]);
  });

  it("relays broadcasts to every socket, and other cluster messages, to every other worker", () => {
    const { workers, up, publish } = hostWith(3);
    const [w1, w2, w3] = workers as [FakeWorker, FakeWorker, FakeWorker];
    publish(w1, 1, "all", 1, []);
    up(w1, { t: "pub", msg: { uid: "uid1", nsp: "/", type: MessageType.FETCH_SOCKETS, data: { opts: { rooms: ["a"], except: [], flags: {} }, requestId: "r1" } } as ClusterMessage });
    for (const w of [w2, w3]) {
      expect(relayed(w)).toEqual(["all"]);
      expect(w.sent.filter((m) => m.t === "msg" && m.msg.type === MessageType.FETCH_SOCKETS)).toHaveLength(1);
    }
  });

  it("relays a broadcast to a socket's own room to the worker holding that socket", () => {
    const { workers, up, publish } = hostWith(3);
    const [w1, w2, w3] = workers as [FakeWorker, FakeWorker, FakeWorker];
    up(w2, { t: "open", session: { sid: "s2", pid: "p2", rooms: ["s2"], data: {} } });
    publish(w1, 1, "to-s2", 1, ["s2"]);
    expect([relayed(w2), relayed(w3)]).toEqual([["to-s2"], []]);
  });

  it("routes a restored session's rooms to its new worker at once, and ignores a leave decided before the worker knew", () => {
    const { workers, up, publish } = hostWith(2);
    const [w1, w2] = workers as [FakeWorker, FakeWorker];
    const session = { sid: "s1", pid: "p1", rooms: ["s1", "a"], data: {} };
    up(w1, { t: "open", session });
    up(w1, { t: "interest", add: ["a"] });
    up(w1, { t: "closed", session });
    up(w2, { t: "interest", add: ["a"] });
    up(w2, { t: "restore", id: 1, pid: "p1", offset: `${EPOCH}-0` });
    const answer = w2.sent.find((m) => m.t === "restored");
    expect(answer).toMatchObject({ pin: 1, session: { sid: "s1" } });
    // Worker 2's last other member in "a" left before it read the answer: that leave is stale.
    up(w2, { t: "interest", del: ["a"], pin: 0 });
    publish(w1, 1, "for-restored", 1, ["a"]);
    expect(relayed(w2)).toEqual(["for-restored"]);
    // Decided after it saw the pin (the restored socket left, or never came): honoured.
    up(w2, { t: "interest", del: ["a"], pin: 1 });
    publish(w1, 2, "after", 2, ["a"]);
    expect(relayed(w2)).toEqual(["for-restored"]);
  });

  it("forgets a worker's rooms when it exits", () => {
    const { host, workers, supervisor, up } = hostWith(2);
    up(workers[1]!, { t: "interest", add: ["a", "b"] });
    expect(host.interest.rooms).toBe(2);
    supervisor.emit("exit", 2, undefined);
    expect(host.interest.rooms).toBe(0);
  });
});

describe("pending restores (worker side)", () => {
  it("holds own broadcasts back only until the restored socket connects, or 10 s if it never does", () => {
    vi.useFakeTimers(); // Date.now() stands still: the 10 s bound is exact
    onTestFinished(() => {
      vi.useRealTimers();
    });
    let stage: RestoreStage = "awaiting";
    const pending = new PendingRestores(() => stage);
    expect(pending.unsettled(Date.now())).toBe(false);
    pending.add({ sid: "s1", pid: "p1", rooms: [], data: {}, missedPackets: [] });
    const now = Date.now();
    expect(pending.unsettled(now)).toBe(true);
    stage = "registered";
    expect(pending.unsettled(now)).toBe(false);
    stage = "constructed";
    expect(pending.unsettled(now + 9_999)).toBe(true);
    // Its client left during the restore: the entry is given up and holds nothing back any more.
    expect(pending.unsettled(now + 10_000)).toBe(false);
    stage = "awaiting";
    expect(pending.unsettled(now)).toBe(false);
  });
});
