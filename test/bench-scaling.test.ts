import { describe, expect, it } from "vitest";
import { BenchArgsError, parseBenchArgs } from "../scripts/bench/cli.js";
import { partCpuBetween, perUnitUs, roleOf, type PartCpu, type PartSample, type Role } from "../scripts/bench/parts.js";
import { roomLayout, seededRandom } from "../scripts/bench/rooms.js";
import { formatScaling, summarizeScaling, type Mode, type ScalingRun, type Workload } from "../scripts/bench/scaling-report.js";
import { scalingUnits } from "../scripts/bench/scaling.js";

describe("bench flags", () => {
  it("keeps the main suite the default, with its flags and defaults", () => {
    expect(parseBenchArgs([])).toMatchObject({ suite: "main", help: false, runs: 3, connections: 1000, memoryConnections: 10_000, latencySubscribers: 500, durationS: 8, out: "loadtest-results" });
    expect(parseBenchArgs(["--targets", "baseline,embedded-w2", "--runs", "5"])).toMatchObject({ targets: ["baseline", "embedded-w2"], runs: 5 });
    expect(parseBenchArgs(["--help", "--suite", "scaling"])).toEqual({ suite: "scaling", help: true });
    expect(parseBenchArgs(["--suite", "metrics", "--scrape-every", "2", "--targets", "embedded-w2"])).toMatchObject({ suite: "metrics", scrapeEveryS: 2, targets: ["embedded-w2"], runs: 3, connections: 1000 });
  });

  it("gives the scaling suite its defaults", () => {
    expect(parseBenchArgs(["--suite", "scaling"])).toEqual({
      suite: "scaling", help: false, runs: 3, workers: [1, 2, 4, 8], modes: ["embedded", "clustered"], clients: 256, inflight: 32,
      room5Clients: 2000, room5Workers: [1, 2], room5Persistence: ["off"], connectRate: 400, warmupS: 2, durationS: 6, out: "loadtest-results",
    });
    expect(parseBenchArgs(["--suite", "scaling", "--workers", "4,1", "--modes", "clustered", "--room5-clients", "0", "--duration", "1.5"])).toMatchObject({
      workers: [1, 4], modes: ["clustered"], room5Clients: 0, durationS: 1.5,
    });
    expect(parseBenchArgs(["--suite", "scaling", "--room5-persistence", "embedded,off"])).toMatchObject({ room5Persistence: ["off", "embedded"] });
  });

  it("refuses bad values and the other suite's flags with one line", () => {
    const refused = (argv: string[]) => {
      try {
        parseBenchArgs(argv);
      } catch (err) {
        expect(err).toBeInstanceOf(BenchArgsError);
        return (err as Error).message;
      }
      throw new Error(`accepted ${argv.join(" ")}`);
    };
    expect(refused(["--suite", "fast"])).toMatch(/--suite must be one of main, scaling/);
    expect(refused(["--suite", "scaling", "--targets", "baseline"])).toMatch(/--targets is not a flag of --suite scaling/);
    expect(refused(["--workers", "1,2"])).toMatch(/--workers is not a flag of --suite main/);
    expect(refused(["--scrape-every", "1"])).toMatch(/--scrape-every is not a flag of --suite main/);
    expect(refused(["--suite", "metrics", "--targets", "baseline"])).toMatch(/--suite metrics runs embedded-w2, clustered-w2/);
    expect(refused(["--suite", "metrics", "--memory-connections", "10"])).toMatch(/--memory-connections is not a flag of --suite metrics/);
    expect(refused(["--suite", "scaling", "--workers", "2,4"])).toMatch(/must include 1/);
    expect(refused(["--suite", "scaling", "--workers", "1,2,2"])).toMatch(/twice/);
    expect(refused(["--suite", "scaling", "--workers", "1,x"])).toMatch(/--workers must be an integer/);
    expect(refused(["--suite", "scaling", "--room5-clients", "2001"])).toMatch(/multiple of 5/);
    expect(refused(["--suite", "scaling", "--modes", "embedded,cloud"])).toMatch(/unknown mode cloud/);
    expect(refused(["--suite", "scaling", "--room5-persistence", "dynamodb"])).toMatch(/--room5-persistence: unknown value dynamodb/);
    expect(refused(["--runs", "0"])).toMatch(/--runs must be an integer from 1/);
    expect(refused(["--targets", "nope"])).toMatch(/unknown target nope/);
    expect(refused(["--frobnicate"])).toMatch(/frobnicate/);
  });

  it("plans one measurement per workload and shape, the plain process first", () => {
    const units = scalingUnits({ workers: [1, 2, 4, 8], modes: ["embedded", "clustered"], room5Clients: 2000, room5Workers: [1, 2], room5Persistence: ["off"] });
    expect(units).toHaveLength(1 + 8 + 1 + 4);
    expect(units[0]).toEqual({ workload: "rooms-1", mode: "plain", workers: 1, persistence: "off" });
    expect(units.filter((u) => u.workload === "rooms-5").map((u) => `${u.mode}${u.workers}`)).toEqual(["plain1", "embedded1", "embedded2", "clustered1", "clustered2"]);
    expect(scalingUnits({ workers: [1], modes: ["embedded"], room5Clients: 0, room5Workers: [1], room5Persistence: ["off", "embedded"] })).toHaveLength(2);
    const stored = scalingUnits({ workers: [1], modes: ["embedded"], room5Clients: 200, room5Workers: [2], room5Persistence: ["off", "embedded"] });
    // Persistence only varies for the product's rooms of 5; rooms of one member and the plain process stay off.
    expect(stored.map((u) => `${u.workload} ${u.mode}${u.workers} ${u.persistence}`)).toEqual([
      "rooms-1 plain1 off", "rooms-1 embedded1 off", "rooms-5 plain1 off", "rooms-5 embedded2 off", "rooms-5 embedded2 embedded",
    ]);
  });
});

describe("rooms layout", () => {
  it("puts every client in exactly one room of the given size, at distinct positions", () => {
    const layout = roomLayout(2000, 5, 7);
    expect(layout.rooms).toBe(400);
    const seen = new Map<number, Set<number>>();
    for (let i = 0; i < 2000; i++) {
      const room = layout.roomOf[i]!;
      expect(room).toBeGreaterThanOrEqual(0);
      expect(room).toBeLessThan(400);
      const positions = seen.get(room) ?? new Set<number>();
      positions.add(layout.positionOf[i]!);
      seen.set(room, positions);
    }
    expect([...seen.values()].every((p) => p.size === 5 && [...p].every((x) => x >= 0 && x < 5))).toBe(true);
  });

  it("draws members at random, the same way for the same seed", () => {
    const a = roomLayout(100, 5, 1);
    expect(roomLayout(100, 5, 1).roomOf).toEqual(a.roomOf);
    expect(roomLayout(100, 5, 2).roomOf).not.toEqual(a.roomOf);
    // Not the consecutive clients: those would share the balancer's turn pattern.
    expect(Array.from(a.roomOf.slice(0, 5))).not.toEqual([0, 0, 0, 0, 0]);
    const one = roomLayout(8, 1, 3);
    expect(new Set(one.roomOf).size).toBe(8);
    expect(Array.from(one.positionOf)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    const random = seededRandom(9);
    const draws = Array.from({ length: 1000 }, random);
    expect(draws.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it("refuses sizes it cannot lay out", () => {
    expect(() => roomLayout(12, 5, 1)).toThrow(/multiple of the room size/);
    expect(() => roomLayout(3, 5, 1)).toThrow(/multiple of the room size/);
    expect(() => roomLayout(62, 31, 1)).toThrow(/room size must be 1..30/);
  });
});

describe("CPU by part", () => {
  it("tells the primary, the workers (by title or script) and anything else apart", () => {
    expect(roleOf(10, 10, "cerebellum-primary\0\0\0")).toBe("primary");
    expect(roleOf(11, 10, "cerebellum-worker\0\0\0\0")).toBe("worker");
    expect(roleOf(12, 10, "/usr/bin/node\0--max-semi-space-size=8\0/app/dist/src/worker/main.js\0")).toBe("worker");
    expect(roleOf(13, 10, "cerebellum-store\0\0")).toBe("other");
    expect(roleOf(14, 10, "")).toBe("other");
  });

  it("sums each part's CPU between two samples; a process born in between counts from zero", () => {
    const sample = (at: number, entries: Array<[number, { role: Role; cpuS: number }]>, redis: number | null): PartSample => ({ at, byPid: new Map(entries), redisCpuS: redis });
    const a = sample(0, [[1, { role: "primary", cpuS: 1 }], [2, { role: "worker", cpuS: 2 }], [3, { role: "worker", cpuS: 5 }]], 10);
    const b = sample(1000, [[1, { role: "primary", cpuS: 1.5 }], [2, { role: "worker", cpuS: 3 }], [3, { role: "worker", cpuS: 5.25 }], [4, { role: "other", cpuS: 0.1 }]], 10.2);
    const cpu = partCpuBetween(a, b);
    expect(cpu.primary).toBeCloseTo(0.5);
    expect(cpu.workers).toBeCloseTo(1.25);
    expect(cpu.other).toBeCloseTo(0.1);
    expect(cpu.redis).toBeCloseTo(0.2);
    expect(partCpuBetween({ ...a, redisCpuS: null }, b).redis).toBeNull();
    expect(perUnitUs(cpu, 1000)).toMatchObject({ primary: 500, workers: 1250 });
    expect(perUnitUs(cpu, 0)).toBeNull();
  });
});

describe("scaling summary", () => {
  const parts = (primary: number, workers: number, redis: number | null = null): PartCpu => ({ primary, workers, other: 0, redis });
  const run = (workload: Workload, mode: Mode, workers: number, round: number, us: PartCpu, connect?: PartCpu): ScalingRun => ({
    workload, mode, workers, round, persistence: "off", refused: 0, clients: workload === "rooms-1" ? 256 : 2000, roomSize: workload === "rooms-1" ? 1 : 5,
    broadcasts: 10_000, measuredS: 5, usPerBroadcast: us, generatorUsPerBroadcast: 50, connect: connect ? { connects: 2000, usPerConnect: connect } : null,
    lost: 0, duplicated: 0, misrouted: 0, hung: 0, connectErrors: 0, errors: {},
  });

  it("takes each part's median, its ratio to one worker, and judges the bars", () => {
    const summary = summarizeScaling([
      run("rooms-1", "plain", 1, 1, parts(80, 0)),
      run("rooms-1", "plain", 1, 2, parts(100, 0)),
      run("rooms-1", "plain", 1, 3, parts(90, 0)),
      ...[1, 2, 3].map((r) => run("rooms-1", "embedded", 1, r, parts(40 + r, 70))),
      ...[1, 2, 3].map((r) => run("rooms-1", "embedded", 8, r, parts(50, 100 + r))),
      run("rooms-1", "embedded", 2, 1, parts(45, 80)),
      run("rooms-1", "clustered", 1, 1, parts(0, 80, 40)),
      run("rooms-1", "clustered", 8, 1, parts(0.5, 90, 48)),
      run("rooms-5", "plain", 1, 1, parts(200, 0), parts(400, 0)),
      run("rooms-5", "embedded", 1, 1, parts(100, 200), parts(120, 380)),
    ]);
    const embedded8 = summary.shapes.find((s) => s.workload === "rooms-1" && s.mode === "embedded" && s.workers === 8)!;
    expect(embedded8).toMatchObject({ rounds: 3, usPerBroadcast: { primary: 50, workers: 102 }, allUsPerBroadcast: 152, broadcastsPerSec: 2000 });
    const byMeasure = Object.fromEntries(summary.verdicts.map((v) => [v.measure, v]));
    expect(byMeasure["rooms of 1, embedded, primary: CPU per broadcast, 8 ÷ 1 workers"]).toMatchObject({ value: 50 / 42, pass: true });
    expect(byMeasure["rooms of 1, embedded, all workers: CPU per broadcast, 8 ÷ 1 workers"]).toMatchObject({ value: 102 / 70, pass: false });
    // Next to nothing at one worker: the floor keeps the ratio from dividing by zero.
    expect(byMeasure["rooms of 1, clustered, primary: CPU per broadcast, 8 ÷ 1 workers"]).toMatchObject({ value: 0.1, pass: true });
    expect(byMeasure["rooms of 1, clustered, primary: CPU per broadcast, 8 ÷ 1 workers"]!.note).toMatch(/taken as 5 µs/);
    expect(byMeasure["rooms of 1, clustered, redis-server: CPU per broadcast, 8 ÷ 1 workers"]).toMatchObject({ value: 1.2, pass: true });
    expect(byMeasure["rooms of 1, CPU per broadcast, embedded 1 worker ÷ plain"]).toMatchObject({ value: 112 / 90, pass: true });
    expect(byMeasure["CPU per connect, embedded 1 worker ÷ plain"]).toMatchObject({ value: 1.25, pass: true });
    expect(byMeasure["CPU per connect, the primary (embedded, 1 worker)"]).toMatchObject({ value: 120, unit: "µs", pass: true });
    expect(summary.pass).toBe(false);

    const text = formatScaling(summary, { cores: "2 cores" });
    expect(text).toContain("more workers than cores oversubscribe them, so CPU per broadcast is the measure here, not throughput");
    expect(text).toMatch(/embedded, WORKERS=8 +2,000 +50\.0 +102\.0 +0\.0 +152\.0 +1\.19× +1\.46×/);
    expect(text).toMatch(/all workers: CPU per broadcast, 8 ÷ 1 workers +1\.46× +bar ≤ 1\.25× +MISS/);
    expect(text).toContain("medians of 1–3 rounds");
    expect(text).toContain("Some scaling bars are missed");
  });

  it("still catches a part that grows from nothing to more than the floor", () => {
    const summary = summarizeScaling([run("rooms-1", "clustered", 1, 1, parts(0, 80, 40)), run("rooms-1", "clustered", 8, 1, parts(7, 90, 40))]);
    expect(summary.verdicts[0]).toMatchObject({ measure: "rooms of 1, clustered, primary: CPU per broadcast, 8 ÷ 1 workers", value: 1.4, pass: false });
  });

  it("judges nothing it has not measured, and never passes an empty run", () => {
    const summary = summarizeScaling([run("rooms-1", "embedded", 1, 1, parts(40, 70))]);
    expect(summary.verdicts).toEqual([]);
    expect(summary.pass).toBe(false);
    expect(formatScaling(summary, { cores: "2 cores" })).toContain("nothing to judge");
    const missing = summarizeScaling([run("rooms-1", "embedded", 1, 1, parts(40, 70)), { ...run("rooms-1", "embedded", 2, 1, parts(0, 0)), usPerBroadcast: null, broadcasts: 0 }]);
    expect(missing.verdicts.map((v) => [v.value, v.pass])).toEqual([[null, false], [null, false]]);
  });

  it("judges the stored history's cost per message against the same shape without it, and its refusals", () => {
    const off = (r: number) => run("rooms-5", "embedded", 2, r, parts(20, 180));
    const stored = (r: number, refused: number) => ({
      ...run("rooms-5", "embedded", 2, r, { primary: 20, workers: 200, other: 10 + r, redis: null }),
      persistence: "embedded" as const, refused, errors: (refused ? { "publish: OVERLOADED": refused } : {}) as Record<string, number>,
      // Pages read in each round: the summary takes the percentiles over all of them.
      historyMs: [r, r + 0.5, 10 * r],
    });
    const summary = summarizeScaling([off(1), off(2), off(3), stored(1, 0), stored(2, 0), stored(3, 2)]);
    expect(summary.shapes.map((s) => s.persistence)).toEqual(["off", "embedded"]);
    const byMeasure = Object.fromEntries(summary.verdicts.map((v) => [v.measure, v]));
    expect(byMeasure["rooms of 5, embedded 2w: CPU per message, history stored ÷ off"]).toMatchObject({ value: 232 / 200, pass: true });
    expect(byMeasure["rooms of 5, embedded 2w, history stored: publishes refused"]).toMatchObject({ value: 2, pass: false });
    // Reads 1, 1.5, 10, 2, 2.5, 20, 3, 3.5, 30: sorted, the fifth of nine is 3 ms.
    expect(summary.shapes[1]!.history).toEqual({ reads: 9, p50: 3, p99: 30 });
    expect(byMeasure["rooms of 5, embedded 2w, history stored: page of 50 read under the load, p50"]).toMatchObject({ value: 3, unit: "ms", pass: false });
    expect(summary.shapes[0]!.history).toBeNull();
    const text = formatScaling(summary, { cores: "2 cores" });
    expect(text).toMatch(/embedded, WORKERS=2, stored +2,000 +20\.0 +200\.0 +12\.0 +232\.0/);
    expect(text).toMatch(/history stored: publishes refused +2 +bar = 0 +MISS/);
    expect(text).toMatch(/page of 50 read under the load, p50 +3\.00 ms +bar ≤ 2 ms +MISS/);
    expect(text).toContain("embedded, WORKERS=2, stored 9 pages, p50 3.00 ms, p99 30.00 ms");
  });
});
