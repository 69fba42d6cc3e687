/** A least-squares line through points: y = intercept + slope × x, and how well it fits (r², 0..1). */
export interface LineFit {
  slope: number;
  intercept: number;
  r2: number;
  points: number;
}

/**
 * Fits a line through (x, y) points. Undefined with fewer than two points or when every x is the
 * same (no slope to find). A cost per connection is the slope through readings at several
 * connection counts: what each process holds whatever the count (heap, young generation,
 * buffers) falls into the intercept instead of being spread over the connections.
 */
export function fitLine(points: ReadonlyArray<readonly [number, number]>): LineFit | undefined {
  const n = points.length;
  if (n < 2) return undefined;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (const [x, y] of points) {
    sxx += (x - mx) ** 2;
    sxy += (x - mx) * (y - my);
    syy += (y - my) ** 2;
  }
  if (sxx === 0) return undefined;
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy), points: n };
}
