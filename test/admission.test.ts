import { describe, expect, it } from "vitest";
import { Admission } from "../src/primary/admission.js";

describe("admission of new sessions at the balancer", () => {
  it("lets a second's worth of connects through at once, then CONNECT_RATE_LIMIT × workers per second", () => {
    let now = 1_000;
    const admission = new Admission({ ratePerWorker: 5, maxPerWorker: 0, workers: 2, now: () => now });
    const burst = Array.from({ length: 12 }, () => admission.takeConnect());
    expect(burst.filter(Boolean)).toHaveLength(10);
    now += 100; // a tenth of a second: one more
    expect([admission.takeConnect(), admission.takeConnect()]).toEqual([true, false]);
    now += 10_000; // refills to the burst, no more
    expect(Array.from({ length: 11 }, () => admission.takeConnect()).filter(Boolean)).toHaveLength(10);
  });

  it("caps each worker at MAX_CONNECTIONS_PER_WORKER, counting hand-overs until the worker's report covers them", () => {
    const admission = new Admission({ ratePerWorker: 0, maxPerWorker: 2, workers: 2 });
    expect(admission.takeConnect()).toBe(true); // no rate limit
    admission.handed(1);
    expect(admission.hasRoom(1)).toBe(true);
    admission.handed(1);
    expect([admission.hasRoom(1), admission.hasRoom(2)]).toEqual([false, true]);
    admission.reported(1, 1); // one of them closed
    expect(admission.hasRoom(1)).toBe(true);
    admission.reported(1, 5);
    admission.workerGone(1); // its replacement starts empty
    expect(admission.hasRoom(1)).toBe(true);
  });

  it("with both limits at 0 lets everything in", () => {
    const admission = new Admission({ ratePerWorker: 0, maxPerWorker: 0, workers: 1 });
    for (let i = 0; i < 1000; i++) admission.handed(1);
    expect([admission.takeConnect(), admission.hasRoom(1)]).toEqual([true, true]);
  });
});
