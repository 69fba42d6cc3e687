import { HIGHEST_US, encodeHistogram, newHistogram, recordMs, type Histogram } from "./hdr.js";

/** Latency kinds the tool records. */
export const LATENCY_KINDS = ["delivery", "ack", "connect", "presence", "recovery"] as const;
export type LatencyKind = (typeof LATENCY_KINDS)[number];

export const COUNTERS = [
  "deliveries",
  "published",
  "acked",
  "refused",
  /** Refusals that say the server is at a bound (OVERLOADED): a capacity limit, not a mistake. */
  "overloaded",
  /** Acks not answered within --ack-timeout. */
  "ackTimeouts",
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

/** A stage's measured window on the wall clock (Date.now() ms). */
export interface MeasuredSpan {
  index: number;
  measureAt: number;
  endAt: number;
}

/**
 * One generator process's measurements. Everything is counted in `total`; the stage window in
 * progress (outside warm-up and drain) and the current one-second interval get the same events.
 * Which window an event belongs to is decided by the clock when it is recorded, not by timers, so
 * a busy event loop (a connect storm launching hundreds of connects) cannot shift the windows.
 */
export class ShardMetrics {
  readonly total = new Window();
  /** Connect latencies and errors while setting up (before the first stage). */
  readonly setup = new Window();
  readonly interval = new Window();
  readonly stages: Window[] = [];
  readonly errors = new Map<string, number>();
  private spans: readonly MeasuredSpan[] | undefined;
  /** The window events go to until `until` (ms); undefined: none (warm-up, drain). */
  private current: Window | undefined = this.setup;
  private until = Infinity;
  /** Set by cut(): events after it go to no stage, even those addressed to one. */
  private cutAt = Infinity;

  /** Fixes the stages' measured windows; until then everything counts as setup. */
  plan(spans: readonly MeasuredSpan[]): void {
    this.spans = spans;
    for (const span of spans) while (this.stages.length <= span.index) this.stages.push(new Window());
    this.until = 0; // recompute at the next event
  }

  /** Ends every measured window at `at` (an interrupted run measures up to the interruption). */
  cut(at: number): void {
    this.cutAt = Math.min(this.cutAt, at);
    if (!this.spans) return;
    this.spans = this.spans.map((span) => ({ ...span, endAt: Math.min(span.endAt, at), measureAt: Math.min(span.measureAt, at) }));
    this.until = 0;
  }

  /** The window for an event now: a stage's measured window, the setup, or none. */
  private windowNow(): Window | undefined {
    const now = Date.now();
    if (now < this.until) return this.current;
    const spans = this.spans!;
    let until = Infinity;
    let current: Window | undefined;
    if (spans.length > 0 && now < spans[0]!.measureAt) {
      current = undefined; // between the start and the first measured window: warm-up
      until = spans[0]!.measureAt;
    }
    for (const span of spans) {
      if (now >= span.measureAt && now < span.endAt) {
        current = this.stages[span.index];
        until = span.endAt;
        break;
      }
      if (now < span.measureAt) {
        until = Math.min(until, span.measureAt);
        break;
      }
    }
    this.current = current;
    this.until = until;
    return current;
  }

  /**
   * The window of an event: the one of this moment, or with `stage`, that stage's (a scenario
   * whose stage starts by opening connections counts those connects in the stage they belong to,
   * though they happen in its warm-up).
   */
  private windowFor(stage: number | undefined): Window | undefined {
    if (stage === undefined) return this.windowNow();
    return Date.now() < this.cutAt ? this.stages[stage] : undefined;
  }

  count(counter: CounterName, n = 1, stage?: number): void {
    this.total.counters[counter] += n;
    this.interval.counters[counter] += n;
    const w = this.windowFor(stage);
    if (w) w.counters[counter] += n;
  }

  latency(kind: LatencyKind, ms: number, stage?: number): void {
    recordMs(this.total.latency[kind], ms);
    recordMs(this.interval.latency[kind], ms);
    const w = this.windowFor(stage);
    if (w) recordMs(w.latency[kind], ms);
  }

  /** Hot path of every delivery: counted and timed without the generic bookkeeping. */
  delivery(ms: number): void {
    const us = Math.round(ms * 1000);
    const v = us <= 0 ? 0 : us >= HIGHEST_US ? HIGHEST_US : us;
    this.total.counters.deliveries++;
    this.interval.counters.deliveries++;
    this.total.latency.delivery.recordValue(v);
    this.interval.latency.delivery.recordValue(v);
    const w = this.windowNow();
    if (w) {
      w.counters.deliveries++;
      w.latency.delivery.recordValue(v);
    }
  }

  /** An error: counted in `errors` (which judges a stage) and tallied by kind. */
  error(kind: string, stage?: number): void {
    this.count("errors", 1, stage);
    this.note(kind);
  }

  /**
   * Tallies an outcome by kind without counting it as an error: refusals and ack timeouts have
   * counters of their own and judge a stage as limits, not as errors.
   */
  note(kind: string): void {
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
