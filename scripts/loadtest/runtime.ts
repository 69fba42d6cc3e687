import type { ClientHandlers, LoadClient } from "./engines/client.js";
import { RawClient, websocketUrl } from "./engines/raw-client.js";
import { SioClient } from "./engines/sio-client.js";
import type { Layout } from "./layout.js";
import type { ShardMetrics } from "./metrics.js";
import { stageRates, type LoadtestOptions } from "./options.js";
import type { TokenSource } from "./tokens.js";

export type Phase = "setup" | "warmup" | "measure" | "drain" | "done";

/** One stage on the wall clock (ms). */
export interface StageTimes {
  index: number;
  rate: number | "max";
  /** connections: the open connections the stage holds. */
  level?: number;
  warmupAt: number;
  measureAt: number;
  endAt: number;
}

type PlanOptions = Pick<LoadtestOptions, "scenario" | "rates" | "connectionLevels" | "connectRate" | "warmupS" | "durationS">;

/**
 * The stages laid on the wall clock from a common start, so every generator process changes rate
 * together. A stage of the connections scenario opens its new connections in its warm-up, which
 * is stretched by the time they take at --connect-rate.
 */
export function stagePlan(options: PlanOptions, startAt: number): StageTimes[] {
  const stages: StageTimes[] = [];
  const ramp = options.scenario === "connections";
  let at = startAt;
  for (const [index, rate] of stageRates(options).entries()) {
    const level = ramp ? options.connectionLevels[index] : undefined;
    const opening = level === undefined ? 0 : ((level - (options.connectionLevels[index - 1] ?? 0)) / options.connectRate) * 1000;
    const measureAt = at + opening + options.warmupS * 1000;
    const endAt = measureAt + options.durationS * 1000;
    stages.push({ index, rate, ...(level !== undefined ? { level } : {}), warmupAt: at, measureAt, endAt });
    at = endAt;
  }
  return stages;
}

/** The stage and phase at `now`. */
export function phaseAt(stages: readonly StageTimes[], now: number): { phase: Phase; stage: StageTimes | undefined } {
  for (const stage of stages) {
    if (now < stage.warmupAt) return { phase: "setup", stage: undefined };
    if (now < stage.measureAt) return { phase: "warmup", stage };
    if (now < stage.endAt) return { phase: "measure", stage };
  }
  return { phase: "drain", stage: undefined };
}

/** What scenarios get from the generator process they run in. */
export interface Runtime {
  readonly options: LoadtestOptions;
  readonly layout: Layout;
  readonly shard: number;
  readonly shards: number;
  readonly metrics: ShardMetrics;
  /** Aborted on Ctrl-C (or the run's hard deadline): stop starting work, finish quickly. */
  readonly signal: AbortSignal;
  readonly tokens: TokenSource;
  /** Stages on the wall clock, known once the run starts (empty during setup). */
  stages: StageTimes[];
  owns(index: number): boolean;
  newClient(handlers: ClientHandlers): LoadClient;
}

export function clientFactory(options: LoadtestOptions): (handlers: ClientHandlers) => LoadClient {
  if (options.engine === "raw") {
    const url = websocketUrl(options.url, options.path);
    return (handlers) => new RawClient(url, handlers);
  }
  return (handlers) => new SioClient(options.url, options.path, options.transport, handlers);
}
