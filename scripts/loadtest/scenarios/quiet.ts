import { sleep } from "../clock.js";

/**
 * Waits until `count()` has not moved for `quietMs`, or `maxMs` has passed: the end of a drain,
 * when the last deliveries have arrived (a lost message never will, hence the bound).
 */
export async function waitQuiet(count: () => number, quietMs: number, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = count();
  let still = Date.now();
  while (Date.now() < deadline) {
    await sleep(Math.min(50, Math.max(1, deadline - Date.now())));
    const now = count();
    if (now !== last) {
      last = now;
      still = Date.now();
    } else if (Date.now() - still >= quietMs) return;
  }
}
