import { sleep } from "./clock.js";
import type { ConnectResult, LoadClient } from "./engines/client.js";
import type { ShardMetrics } from "./metrics.js";

export interface ConnectPlan<T> {
  /** Connection indices to open, in order. */
  indices: readonly number[];
  /** Connects started per second (undefined: as fast as `concurrency` allows). */
  rate: number | undefined;
  concurrency: number;
  /** Stop starting connects when this returns false (the stage ended) or the signal aborts. */
  keepGoing?: () => boolean;
  signal: AbortSignal;
  /** Opens one connection; resolves with the outcome and what the caller keeps for it. */
  open(index: number): Promise<{ result: ConnectResult; value: T | undefined }>;
}

/**
 * Records one connect outcome: latency on success, a failed or hung connect otherwise (counters
 * of their own: they judge a stage as the connects limit, not as errors). With `stage`, the
 * outcome counts in that stage wherever the clock is.
 */
export function recordConnect(metrics: ShardMetrics, result: ConnectResult, stage?: number): void {
  if (result.ok) {
    metrics.count("connects", 1, stage);
    metrics.latency("connect", result.ms, stage);
  } else if (result.hung) {
    metrics.count("hung", 1, stage);
    metrics.note(`connect hung: ${result.error}`);
  } else {
    metrics.count("connectErrors", 1, stage);
    metrics.note(`connect failed: ${result.error}`);
  }
}

/**
 * Opens connections at a bounded rate with a bounded number in progress. Resolves once every
 * started connect has finished (each is bounded by its own timeout), with the values of the
 * successful ones by index.
 */
export async function connectMany<T>(plan: ConnectPlan<T>): Promise<Map<number, T>> {
  const opened = new Map<number, T>();
  const inFlight = new Set<Promise<void>>();
  const spacing = plan.rate ? 1000 / plan.rate : 0;
  let nextAt = Date.now();
  for (const index of plan.indices) {
    if (plan.signal.aborted || (plan.keepGoing && !plan.keepGoing())) break;
    while (inFlight.size >= plan.concurrency) await Promise.race(inFlight);
    if (spacing > 0) {
      const wait = nextAt - Date.now();
      if (wait > 1) await sleep(wait, plan.signal);
      nextAt = Math.max(nextAt + spacing, Date.now() - 1000); // catch up at most a second's worth
      if (plan.signal.aborted || (plan.keepGoing && !plan.keepGoing())) break;
    }
    const task: Promise<void> = plan
      .open(index)
      .catch(() => ({ value: undefined })) // open() records its own failures; a throw is one more
      .then(({ value }) => {
        if (value !== undefined) opened.set(index, value);
        inFlight.delete(task);
      });
    inFlight.add(task);
  }
  await Promise.all(inFlight);
  return opened;
}

/** Connects `client` and records the outcome. */
export async function connectOne(metrics: ShardMetrics, client: LoadClient, token: string | undefined, timeoutMs: number): Promise<ConnectResult> {
  const result = await client.connect(token, false, timeoutMs);
  recordConnect(metrics, result);
  return result;
}
