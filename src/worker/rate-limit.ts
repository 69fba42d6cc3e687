/** Refusals are counted over this window: more than CLIENT_RATE_MAX_REFUSALS in it disconnect. */
export const REFUSAL_WINDOW_MS = 10_000;

export interface RateLimits {
  /** Events per second a connection may send on average; 0: no limit. */
  readonly perSec: number;
  /** Events it may send at once after a quiet spell (the bucket's size). */
  readonly burst: number;
  /** Refusals within REFUSAL_WINDOW_MS it may get; the next one disconnects it. */
  readonly maxRefusals: number;
}

/** What happens to one client event: handled, refused (RATE_LIMITED), or refused and the connection closed. */
export type Admission = "admitted" | "refused" | "disconnect";

interface Bucket {
  /** Events it may send now (refilled at `perSec`, at most `burst`). */
  tokens: number;
  /** Refusals it may still get (refilled at `maxRefusals` per window, at most that). */
  refusals: number;
  /** When both were last refilled, in ms. */
  at: number;
}

/**
 * Per-connection token buckets for client events. A connection starts with a full bucket of
 * `burst` events, refilled at `perSec`; an event with no token left is refused. Refusals draw
 * on a second bucket of `maxRefusals` refilled over REFUSAL_WINDOW_MS, so a client that keeps
 * sending past its limit (rather than slowing down after a refusal) runs out of it and is
 * disconnected. A connection's buckets are made at its first event and go with it (WeakMap),
 * so idle connections cost nothing.
 */
export class EventRateLimiter {
  private readonly buckets = new WeakMap<object, Bucket>();

  constructor(
    private readonly limits: RateLimits,
    /** Monotonic clock in ms (a test passes its own). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  admit(connection: object): Admission {
    const { perSec, burst, maxRefusals } = this.limits;
    if (perSec === 0) return "admitted";
    const t = this.now();
    let bucket = this.buckets.get(connection);
    if (!bucket) this.buckets.set(connection, (bucket = { tokens: burst, refusals: maxRefusals, at: t }));
    const elapsed = t - bucket.at;
    bucket.at = t;
    bucket.tokens = Math.min(burst, bucket.tokens + (elapsed * perSec) / 1000);
    bucket.refusals = Math.min(maxRefusals, bucket.refusals + (elapsed * maxRefusals) / REFUSAL_WINDOW_MS);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return "admitted";
    }
    if (bucket.refusals >= 1) {
      bucket.refusals -= 1;
      return "refused";
    }
    return "disconnect";
  }
}
