/**
 * The result of one attempt to store a batch: what is stored is implied (everything else);
 * `failed` may succeed on a retry; `rejected` never will (the store refuses the item itself,
 * e.g. too large), so it goes to the rejected-messages file instead of being retried forever.
 */
export interface WriteOutcome {
  failed: string[];
  rejected: Array<{ messageId: string; reason: string }>;
  /** The last error seen, for the logs. */
  error?: string;
}

export const emptyOutcome = (): WriteOutcome => ({ failed: [], rejected: [] });

export function mergeOutcomes(outcomes: WriteOutcome[]): WriteOutcome {
  const merged = emptyOutcome();
  for (const o of outcomes) {
    merged.failed.push(...o.failed);
    merged.rejected.push(...o.rejected);
    if (o.error) merged.error = o.error;
  }
  return merged;
}
