import { EventEmitter } from "node:events";
import type { Worker } from "node:cluster";
import { MessageType, type ClusterMessage } from "socket.io-adapter";
import { afterEach, describe, expect, it, onTestFinished, vi } from "vitest";
import { ADAPTER_SOURCE, formatOffset, parseOffset, type AdapterDownMessage, type AdapterUpMessage } from "../src/shared/adapter-ipc.js";
import { createLogger } from "../src/shared/logger.js";
import { AdapterHost } from "../src/primary/adapter-host.js";
import { ReplayLog } from "../src/primary/replay-log.js";
import { SessionTable } from "../src/primary/session-table.js";
import type { Supervisor } from "../src/primary/supervisor.js";
import { PendingRestores, type RestoreStage } from "../src/worker/adapter/pending-restores.js";

const LIMITS = { maxAgeMs: 120_000, maxEntries: 1000, maxBytes: 1 << 20 };
const EPOCH = "0a1b2c";
/** AdapterUpMessage without its source tag (an Omit per member of the union). */
type Up = AdapterUpMessage extends infer U ? (U extends unknown ? Omit<U, "source"> : never) : never;
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

/** The primary's adapter host, driven through the same messages its workers send. */
describe("adapter host: restores and broadcasts a worker delivered first", () => {
  class FakeWorker {
    readonly sent: AdapterDownMessage[] = [];
    connected = true;
    constructor(readonly id: number) {}
    isConnected() {
      return this.connected;
    }
    send(message: AdapterDownMessage) {
      this.sent.push(message);
      return true;
    }
  }
  const hosts: AdapterHost[] = [];
  afterEach(() => hosts.splice(0).forEach((h) => h.close()));

  function setup() {
    const workers = [new FakeWorker(1), new FakeWorker(2)];
    const supervisor = Object.assign(new EventEmitter(), {
      connectedWorkers: () => workers.filter((w) => w.connected),
    });
    const sessions = new SessionTable({ maxDisconnectionMs: 120_000, maxDisconnected: 100 });
    const host = new AdapterHost(supervisor as unknown as Supervisor, freshLog(), sessions, createLogger("silent", {}));
    hosts.push(host);
    const up = (worker: FakeWorker, message: Up) =>
      supervisor.emit("adapter", worker as unknown as Worker, { source: ADAPTER_SOURCE, ...message } as AdapterUpMessage);
    const publish = (worker: FakeWorker, id: number, content: string, n: number) =>
      up(worker, {
        t: "pub",
        id,
        relay: true,
        bytes: 10,
        origin: `0000000${worker.id}`,
        n,
        msg: {
          uid: `uid${worker.id}`,
          nsp: "/",
          type: MessageType.BROADCAST,
          data: { packet: { type: 2, data: ["e", content] }, opts: { rooms: ["a"], except: [], flags: {} } },
        } as ClusterMessage,
      });
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
