import * as hdr from "hdr-histogram-js";

/**
 * HDR histograms of latencies, recorded in microseconds: 1 µs to 1 h at 3 significant digits
 * (0.1% resolution). Values outside the range are clamped, never dropped.
 */
export type Histogram = hdr.Histogram;

export const HIGHEST_US = 3_600_000_000;

export function newHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 32,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

/** Records a latency given in milliseconds (negative, from clock skew, counts as 0). */
export function recordMs(h: Histogram, ms: number): void {
  const us = Math.round(ms * 1000);
  h.recordValue(us <= 0 ? 0 : us >= HIGHEST_US ? HIGHEST_US : us);
}

/** A latency distribution in milliseconds, as the result file shows it. */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

const ms = (us: number) => Math.round(us) / 1000;

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: h.totalCount,
    min: ms(h.getValueAtPercentile(0)),
    mean: Math.round(h.mean) / 1000,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

/** Compact text form, to carry a histogram between generator processes. */
export function encodeHistogram(h: Histogram): string {
  return h.totalCount === 0 ? "" : hdr.encodeIntoCompressedBase64(h);
}

/** Adds an encoded histogram into `into`. */
export function mergeEncoded(into: Histogram, encoded: string): void {
  if (!encoded) return;
  const other = hdr.decodeFromCompressedBase64(encoded, 32, false);
  into.add(other);
  other.destroy();
}

/** Latency at each percentile of the classic HDR plot (50, 75, 90, 99, 99.9 ...), in ms. */
export function percentileCurve(h: Histogram): Array<{ percentile: number; ms: number }> {
  if (h.totalCount === 0) return [];
  const points = [0, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100];
  return points.map((percentile) => ({ percentile, ms: ms(h.getValueAtPercentile(percentile)) }));
}

/**
 * Counts per log-spaced latency bucket (for the report's histogram), found through the public
 * percentile API: the share of values at or below each bucket edge, by bisection.
 */
export function logBuckets(h: Histogram, perDecade = 5): Array<{ fromMs: number; toMs: number; count: number }> {
  const total = h.totalCount;
  if (total === 0) return [];
  const minUs = Math.max(1, h.getValueAtPercentile(0));
  const maxUs = Math.max(minUs + 1, h.maxValue);
  const step = 1 / perDecade;
  const start = Math.floor(Math.log10(minUs) * perDecade) / perDecade;
  const edges: number[] = [];
  for (let e = start; ; e += step) {
    edges.push(10 ** e);
    if (10 ** e > maxUs) break;
  }
  const shareAtOrBelow = (us: number): number => {
    let lo = 0;
    let hi = 100;
    for (let i = 0; i < 40; i++) {
      const mid = (lo + hi) / 2;
      if (h.getValueAtPercentile(mid) <= us) lo = mid;
      else hi = mid;
    }
    return lo / 100;
  };
  const buckets: Array<{ fromMs: number; toMs: number; count: number }> = [];
  let below = 0;
  for (let i = 1; i < edges.length; i++) {
    const atOrBelow = i === edges.length - 1 ? total : Math.round(shareAtOrBelow(edges[i]!) * total);
    buckets.push({ fromMs: edges[i - 1]! / 1000, toMs: edges[i]! / 1000, count: Math.max(0, atOrBelow - below) });
    below = Math.max(below, atOrBelow);
  }
  return buckets;
}
