import { HIGHEST_US, encodeHistogram, newHistogram, recordMs, type Histogram } from "./hdr.js";

/** Latency kinds the tool records. */
export const LATENCY_KINDS = ["delivery", "ack", "connect", "presence", "recovery"] as const;
export type LatencyKind = (typeof LATENCY_KINDS)[number];

export const COUNTERS = [
  "deliveries",
  "published",
  "acked",
  "refused",
  "skipped",
  "connects",
  "connectErrors",
  "hung",
  "disconnects",
  "presenceOps",
  "presenceEvents",
  "recoveries",
  "recovered",
  "notRecovered",
  "errors",
] as const;
export type CounterName = (typeof COUNTERS)[number];
export type Counters = Record<CounterName, number>;

export const zeroCounters = (): Counters => Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Counters;

export function addCounters(into: Counters, from: Partial<Counters>): Counters {
  for (const c of COUNTERS) into[c] += from[c] ?? 0;
  return into;
}

/** Distinct error kinds kept per process; further kinds are counted under "other". */
const MAX_ERROR_KINDS = 50;

/** Counters and histograms for one span of time (a stage's measured window, an interval, the setup). */
export class Window {
  readonly counters = zeroCounters();
  readonly latency: Record<LatencyKind, Histogram> = {
    delivery: newHistogram(),
    ack: newHistogram(),
    connect: newHistogram(),
    presence: newHistogram(),
    recovery: newHistogram(),
  };

  encode(): EncodedWindow {
    return {
      counters: { ...this.counters },
      latency: Object.fromEntries(LATENCY_KINDS.map((k) => [k, encodeHistogram(this.latency[k])])) as Record<LatencyKind, string>,
    };
  }

  reset(): void {
    for (const c of COUNTERS) this.counters[c] = 0;
    for (const k of LATENCY_KINDS) this.latency[k].reset();
  }
}

export interface EncodedWindow {
  counters: Counters;
  latency: Record<LatencyKind, string>;
}

/**
 * One generator process's measurements. Everything is counted in `total`; the stage window in
 * progress (outside warm-up and drain) and the current one-second interval get the same events.
 */
export class ShardMetrics {
  readonly total = new Window();
  /** Connect latencies and errors while setting up (before the first stage). */
  readonly setup = new Window();
  readonly interval = new Window();
  readonly stages: Window[] = [];
  /** The stage being measured, or undefined in setup, warm-up and drain. */
  private current: Window | undefined;
  private inSetup = true;
  readonly errors = new Map<string, number>();

  startStage(index: number): void {
    this.inSetup = false;
    while (this.stages.length <= index) this.stages.push(new Window());
    this.current = this.stages[index];
  }

  stopMeasuring(): void {
    this.inSetup = false;
    this.current = undefined;
  }

  get measuring(): boolean {
    return this.current !== undefined;
  }

  count(counter: CounterName, n = 1): void {
    this.total.counters[counter] += n;
    this.interval.counters[counter] += n;
    if (this.current) this.current.counters[counter] += n;
    else if (this.inSetup) this.setup.counters[counter] += n;
  }

  latency(kind: LatencyKind, ms: number): void {
    recordMs(this.total.latency[kind], ms);
    recordMs(this.interval.latency[kind], ms);
    if (this.current) recordMs(this.current.latency[kind], ms);
    else if (this.inSetup) recordMs(this.setup.latency[kind], ms);
  }

  /** Hot path of every delivery: counted and timed without the generic bookkeeping. */
  delivery(ms: number): void {
    const us = Math.round(ms * 1000);
    const v = us <= 0 ? 0 : us >= HIGHEST_US ? HIGHEST_US : us;
    this.total.counters.deliveries++;
    this.interval.counters.deliveries++;
    this.total.latency.delivery.recordValue(v);
    this.interval.latency.delivery.recordValue(v);
    if (this.current) {
      this.current.counters.deliveries++;
      this.current.latency.delivery.recordValue(v);
    }
  }

  error(kind: string): void {
    this.count("errors");
    const key = this.errors.has(kind) || this.errors.size < MAX_ERROR_KINDS ? kind : "other";
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }

  /** The interval's figures, then a fresh interval. */
  takeInterval(): EncodedWindow {
    const encoded = this.interval.encode();
    this.interval.reset();
    return encoded;
  }
}
