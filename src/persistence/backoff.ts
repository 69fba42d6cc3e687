/** "Full jitter" backoff: a random delay in [0, min(max, base * 2^attempt)) ms, attempt counted from 0. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The error's name (AWS SDK errors carry the service's error code there), or "Error". */
export const errorName = (err: unknown): string => (err instanceof Error ? err.name : "Error");

export const errorText = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));
