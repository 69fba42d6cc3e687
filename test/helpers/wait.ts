/** Polls a condition until it holds or the deadline passes (for state outside our process). */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 15_000, intervalMs = 25, what = "condition" } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolves when `count` calls of the returned function have happened. */
export function latch(count: number, timeoutMs = 15_000, what = "latch") {
  let seen = 0;
  let resolveFn!: () => void;
  let rejectFn!: (e: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveFn = resolve;
    rejectFn = reject;
  });
  const timer = setTimeout(() => rejectFn(new Error(`${what}: saw ${seen} of ${count}`)), timeoutMs);
  if (count <= 0) {
    clearTimeout(timer);
    resolveFn();
  }
  return {
    hit() {
      seen++;
      if (seen === count) {
        clearTimeout(timer);
        resolveFn();
      }
    },
    get seen() {
      return seen;
    },
    done,
  };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false; // ESRCH: no such process
  }
}
