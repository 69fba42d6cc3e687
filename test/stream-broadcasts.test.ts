import { MessageType, type BroadcastOptions } from "socket.io-adapter";
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/shared/logger.js";
import {
  compareStreamIds,
  formatStreamPosition,
  parseStreamPosition,
  StreamBroadcasts,
  UNNUMBERED_OWN,
  type BroadcastLog,
} from "../src/worker/adapter/stream-broadcasts.js";

const UID = "c0ffee";
/** The bound on own broadcasts held for Redis in these tests (BROADCAST_MAX_PENDING). */
const MAX_HELD = 50;
const log = createLogger("silent", {});

describe("clustered offsets", () => {
  it("round-trips plain and counted positions", () => {
    for (const p of [{ id: "1700000000000-0" }, { id: "1700000000000-12", origin: UID, n: 3 }]) {
      expect(parseStreamPosition(formatStreamPosition(p))).toEqual(p);
    }
    expect(formatStreamPosition({ id: "5-1", origin: UID, n: 2 })).toBe("5-1.c0ffee.2");
  });

  it("rejects what a client may send that is not one of ours", () => {
    for (const bad of ["", "5", "5-", "-1", "a-1", "5-1.", "5-1.c0ffee", "5-1.c0ffee.0", "5-1.c0ffee.01", "5-1.XY.2", "5-1.c0ffee.2.3", "5-1-2", "99999999999999999-0", "5-1.c0ffee.99999999999999999"]) {
      expect(parseStreamPosition(bad), bad).toBeUndefined();
    }
  });

  it("orders stream ids numerically", () => {
    expect(compareStreamIds("10-0", "9-5")).toBeGreaterThan(0);
    expect(compareStreamIds("9-10", "9-9")).toBeGreaterThan(0);
    expect(compareStreamIds("9-9", "9-9")).toBe(0);
  });
});

/** A stand-in for RedisAdapter: records local deliveries, holds appends to the log. */
function fakeAdapter() {
  const deliveries: Array<{ data: unknown[]; entry: string | undefined }> = [];
  const xadds: Array<{ data: { n?: number }; resolve(id: string): void; reject(err: Error): void }> = [];
  let broadcasts: StreamBroadcasts | undefined;
  const adapter: BroadcastLog = {
    uid: UID,
    append(data): Promise<string> {
      return new Promise((resolve, reject) => xadds.push({ data, resolve, reject }));
    },
    deliverHere(packet, _opts, offset) {
      if (offset) packet.data.push(offset);
      deliveries.push({ data: [...packet.data], entry: broadcasts?.deliveringEntry });
    },
  };
  return {
    adapter: {
      broadcast: (packet: { type: number; data: unknown[] }, opts: BroadcastOptions) => broadcasts!.broadcast(packet, opts),
      broadcastWithReceipt: (packet: { type: number; data: unknown[] }, opts: BroadcastOptions) => broadcasts!.broadcastWithReceipt(packet, opts),
    },
    deliveries,
    xadds,
    attach(mayDeliverAtOnce: () => boolean) {
      broadcasts = new StreamBroadcasts(adapter, mayDeliverAtOnce, log, MAX_HELD);
      return broadcasts;
    },
  };
}

const event = (text: string) => ({ type: 2, data: ["m", text] });
const toRoom = (): BroadcastOptions => ({ rooms: new Set(["r"]), except: new Set() });
const entry = (uid: string, n?: number) => ({ uid, nsp: "/", type: MessageType.BROADCAST, data: { packet: event("x"), opts: {}, n } });
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("clustered own broadcasts", () => {
  it("delivers at once with a counted position, and drops the count once the subscription brings them back", async () => {
    const fake = fakeAdapter();
    const b = fake.attach(() => true);
    const relayed: string[] = [];
    b.received(entry("other"), "5-0", (_m, offset) => relayed.push(offset));
    expect(relayed).toEqual(["5-0"]);
    void fake.adapter.broadcast(event("a"), toRoom());
    void fake.adapter.broadcast(event("b"), toRoom());
    expect(fake.deliveries).toEqual([]); // at the end of the tick, after both went to Redis
    expect(fake.xadds.map((x) => x.data.n)).toEqual([1, 2]);
    await tick();
    expect(fake.deliveries).toEqual([
      { data: ["m", "a", "5-0.c0ffee.1"], entry: UNNUMBERED_OWN },
      { data: ["m", "b", "5-0.c0ffee.2"], entry: UNNUMBERED_OWN },
    ]);
    b.received(entry("other"), "6-0", (_m, offset) => relayed.push(offset));
    b.received(entry(UID, 1), "7-0", () => relayed.push("own entries are not delivered again"));
    b.received(entry("other"), "8-0", (_m, offset) => relayed.push(offset));
    b.received(entry(UID, 2), "9-0", () => relayed.push("own entries are not delivered again"));
    b.received(entry("other"), "10-0", (_m, offset) => relayed.push(offset));
    expect(relayed).toEqual(["5-0", "6-0.c0ffee.2", "8-0.c0ffee.2", "10-0"]);
  });

  it("holds own broadcasts until Redis has them, delivering each on the append's answer or the subscription, whichever is first, in order", async () => {
    const fake = fakeAdapter();
    let atOnce = false;
    const b = fake.attach(() => atOnce);
    b.received(entry("other"), "5-0", () => {});
    void fake.adapter.broadcast(event("a"), toRoom());
    void fake.adapter.broadcast(event("b"), toRoom());
    void fake.adapter.broadcast(event("c"), toRoom());
    await tick();
    expect(fake.deliveries).toEqual([]);
    fake.xadds[0]!.resolve("6-0"); // answered first
    await tick();
    b.received(entry(UID, 1), "6-0", () => {});
    b.received(entry(UID, 2), "7-0", () => {}); // read back before its answer
    fake.xadds[1]!.resolve("7-0");
    fake.xadds[2]!.reject(new Error("OOM")); // refused: never delivered
    await tick();
    expect(fake.deliveries).toEqual([
      { data: ["m", "a", "5-0.c0ffee.1"], entry: "6-0" },
      { data: ["m", "b", "7-0"], entry: "7-0" },
    ]);
    // Nothing held any more: at once again when allowed.
    atOnce = true;
    void fake.adapter.broadcast(event("d"), toRoom());
    await tick();
    expect(fake.deliveries[2]).toEqual({ data: ["m", "d", "7-0.c0ffee.4"], entry: UNNUMBERED_OWN });
  });

  it("waits for Redis before the subscription has delivered anything, stamping the entry's own id", async () => {
    const fake = fakeAdapter();
    const b = fake.attach(() => true);
    void fake.adapter.broadcast(event("a"), toRoom());
    await tick();
    expect(fake.deliveries).toEqual([]);
    fake.xadds[0]!.resolve("3-0");
    await tick();
    expect(fake.deliveries).toEqual([{ data: ["m", "a", "3-0"], entry: "3-0" }]);
  });

  it("drops an own broadcast past MAX_HELD waiting for Redis, and takes them again once some are answered", async () => {
    const fake = fakeAdapter();
    fake.attach(() => false);
    for (let i = 0; i <= MAX_HELD; i++) void fake.adapter.broadcast(event(String(i)), toRoom());
    expect(fake.xadds.length).toBe(MAX_HELD); // the last one was dropped, not sent
    fake.xadds[0]!.resolve("1-0");
    await tick();
    expect(fake.deliveries.map((d) => d.data[1])).toEqual(["0"]);
    void fake.adapter.broadcast(event("next"), toRoom());
    expect(fake.xadds.length).toBe(MAX_HELD + 1);
  });

  it("tells a publisher what became of its broadcast: refused at the bound, handed on, or refused by Redis", async () => {
    const fake = fakeAdapter();
    fake.attach(() => false);
    const receipts = Array.from({ length: MAX_HELD }, (_, i) => fake.adapter.broadcastWithReceipt(event(String(i)), toRoom()));
    expect(receipts.every((r) => r.refused === undefined)).toBe(true);
    const over = fake.adapter.broadcastWithReceipt(event("over"), toRoom());
    expect(over.refused?.code).toBe("OVERLOADED");
    expect(fake.xadds.length).toBe(MAX_HELD); // nothing of it went to Redis
    const [first, second] = receipts as Array<{ handedOn: Promise<void> }>;
    fake.xadds[0]!.resolve("1-0");
    await expect(first!.handedOn).resolves.toBeUndefined();
    fake.xadds[1]!.reject(new Error("NOREPLICAS Not enough good replicas to write."));
    await expect(second!.handedOn).rejects.toMatchObject({ name: "BroadcastDropped", code: "STORE_UNAVAILABLE" });
    // At once (Redis up): delivered here, and still reported on Redis' answer.
    const atOnce = fakeAdapter();
    const b = atOnce.attach(() => true);
    b.received(entry("other"), "5-0", () => {});
    const local = atOnce.adapter.broadcastWithReceipt(event("here"), toRoom()) as { handedOn: Promise<void> };
    await tick();
    expect(atOnce.deliveries.map((d) => d.data[1])).toEqual(["here"]);
    atOnce.xadds[0]!.reject(new Error("OOM"));
    await expect(local.handedOn).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
  });

  it("lets only the subscription deliver own broadcasts until it has passed what a restore replayed", async () => {
    const fake = fakeAdapter();
    const b = fake.attach(() => true);
    const relayed: string[] = [];
    b.received(entry("other"), "5-0", () => {});
    b.restored("8-0"); // a socket here got everything up to 8-0 from the restore
    void fake.adapter.broadcast(event("a"), toRoom());
    await tick();
    expect(fake.deliveries).toEqual([]); // not at once: its position would say 5-0
    fake.xadds[0]!.resolve("9-0");
    await tick();
    expect(fake.deliveries).toEqual([]); // nor on the append's answer
    for (const id of ["6-0", "7-0", "8-0"]) b.received(entry("other"), id, (_m, offset) => relayed.push(offset));
    b.received(entry(UID, 1), "9-0", () => {});
    expect(relayed).toEqual(["6-0", "7-0", "8-0"]);
    expect(fake.deliveries).toEqual([{ data: ["m", "a", "9-0"], entry: "9-0" }]);
    void fake.adapter.broadcast(event("b"), toRoom());
    await tick();
    expect(fake.deliveries[1]).toEqual({ data: ["m", "b", "9-0.c0ffee.2"], entry: UNNUMBERED_OWN });
  });

  it("keeps held broadcasts in order when the subscription passes a restore's replay between two append answers", async () => {
    const fake = fakeAdapter();
    const b = fake.attach(() => false);
    b.received(entry("other"), "5-0", () => {});
    b.restored("8-0"); // a restore here replayed up to 8-0; the subscription is behind it
    void fake.adapter.broadcast(event("a"), toRoom());
    void fake.adapter.broadcast(event("b"), toRoom());
    fake.xadds[0]!.resolve("9-0"); // answered while the poll is behind the replay: left to the subscription
    await tick();
    for (const id of ["6-0", "7-0", "8-0"]) b.received(entry("other"), id, () => {}); // the subscription passes the replay, not 9-0 yet
    fake.xadds[1]!.resolve("10-0"); // "b" must not overtake "a", which still waits for the subscription
    await tick();
    expect(fake.deliveries).toEqual([]);
    b.received(entry(UID, 1), "9-0", () => {});
    b.received(entry(UID, 2), "10-0", () => {});
    expect(fake.deliveries.map((d) => d.data[1])).toEqual(["a", "b"]);
  });

  it("delivers held broadcasts whose entries the subscription never brought back before the one it did, once", async () => {
    const fake = fakeAdapter();
    const b = fake.attach(() => true);
    void fake.adapter.broadcast(event("a"), toRoom());
    void fake.adapter.broadcast(event("b"), toRoom());
    // The first entry heard (or one after lagging past the stream's cap) comes after "a"'s.
    b.received(entry(UID, 2), "4-0", () => {});
    expect(fake.deliveries.map((d) => d.data[1])).toEqual(["a", "b"]);
    fake.xadds[0]!.resolve("3-0");
    fake.xadds[1]!.resolve("4-0");
    await tick();
    expect(fake.deliveries.length).toBe(2);
    void fake.adapter.broadcast(event("c"), toRoom()); // nothing waits any more: at once
    await tick();
    expect(fake.deliveries[2]).toEqual({ data: ["m", "c", "4-0.c0ffee.3"], entry: UNNUMBERED_OWN });
  });

  it("delivers own broadcasts once each and in order, however append answers, the subscription and restores interleave", async () => {
    // A small model of Redis: XADDs are appended in the order sent and answered in that order;
    // the poll reads the stream in order; a restore replays up to the stream's end of the moment.
    for (let seed = 1; seed <= 300; seed++) {
      let state = seed;
      const random = (n: number) => {
        state = (state * 1103515245 + 12345) % 2147483648;
        return (state >>> 16) % n; // the low bits of this generator repeat with a short period
      };
      const fake = fakeAdapter();
      let atOnce = true;
      const b = fake.attach(() => atOnce);
      const stream: Array<{ id: string; message: ReturnType<typeof entry> }> = [];
      const append = (message: ReturnType<typeof entry>) => {
        const id = `${stream.length + 1}-0`;
        stream.push({ id, message });
        return id;
      };
      let sent = 0;
      const ids: string[] = []; // the entry id of each XADD Redis has run
      let answered = 0;
      let read = 0;
      const step = async (kind: number) => {
        if (kind === 0) void fake.adapter.broadcast(event(String(sent++)), toRoom());
        else if (kind === 1) append(entry("other"));
        else if (kind === 2 && ids.length < fake.xadds.length) ids.push(append(entry(UID, fake.xadds[ids.length]!.data.n)));
        else if (kind === 3 && answered < ids.length) {
          fake.xadds[answered]!.resolve(ids[answered++]!);
          await tick();
        } else if (kind === 4) {
          for (const end = Math.min(stream.length, read + 1 + random(4)); read < end; read++) b.received(stream[read]!.message, stream[read]!.id, () => {});
        } else if (kind === 5 && stream.length > 0) {
          b.flush();
          b.restored(stream[stream.length - 1]!.id);
        } else if (kind === 6) atOnce = !atOnce;
        else if (kind === 7) await tick();
      };
      for (let i = 0; i < 120; i++) await step(random(8));
      // Drain: Redis runs and answers everything, the subscription brings it all back.
      atOnce = true;
      while (ids.length < fake.xadds.length) await step(2);
      while (answered < ids.length) await step(3);
      while (read < stream.length) await step(4);
      await tick();
      const own = fake.deliveries.map((d) => Number(d.data[1]));
      expect(own, `seed ${seed}`).toEqual(Array.from({ length: sent }, (_, i) => i));
    }
  });

  it("flush delivers what was sent this tick at once (a restore starting in the same tick)", () => {
    const fake = fakeAdapter();
    const b = fake.attach(() => true);
    b.received(entry("other"), "5-0", () => {});
    void fake.adapter.broadcast(event("a"), toRoom());
    b.flush();
    expect(fake.deliveries).toEqual([{ data: ["m", "a", "5-0.c0ffee.1"], entry: UNNUMBERED_OWN }]);
  });
});
