import type { ChildProcess } from "node:child_process";

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

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every 100 ms until it holds; fails once `child` has exited, or after `timeoutMs`. */
export async function untilReady(what: string, timeoutMs: number, probe: () => Promise<boolean>, child?: ChildProcess): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${what}: the process exited (code ${child.exitCode}, signal ${child.signalCode})`);
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`${what}: not ready after ${timeoutMs} ms`);
    await sleep(100);
  }
}
