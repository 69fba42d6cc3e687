import { performance } from "node:perf_hooks";

/**
 * Wall-clock milliseconds with sub-millisecond resolution. Publishers embed it in every message and
 * receivers subtract it, so latency between generator processes on one host stays exact;
 * generators on different hosts need synchronised clocks (docs/loadtest.md).
 */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
