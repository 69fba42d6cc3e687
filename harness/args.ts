/** An integer flag's value, at least `min`; a clear error otherwise. */
export function intArg(name: string, raw: string | undefined, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min} (got ${String(raw)})`);
  return n;
}

/** A flag's value, one of `allowed`; a clear error otherwise. */
export function oneOf<T extends string>(name: string, raw: string | undefined, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(String(raw))) throw new Error(`--${name} must be one of ${allowed.join(", ")} (got ${String(raw)})`);
  return raw as T;
}

/** A flag's value, a whole number of at least 1; a clear error otherwise. */
export function positiveInt(name: string, raw: string | undefined): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer (got ${raw})`);
  return n;
}
