import { setFlagsFromString } from "node:v8";
import { nodeOptions } from "../shared/config.js";

/**
 * V8 sizes each process's young generation to its allocation load, up to 2 × 16 MiB, and keeps
 * it: every process of the product pays that once, after its first burst of connections
 * (docs/benchmarks.md, "Memory"). A worker delivers messages and benefits from a nursery, but not
 * from the largest one; the primary only routes and sequences, and needs none.
 *
 * An operator's own `--max-semi-space-size` (on the command line or in NODE_OPTIONS) wins over both.
 */

/** A worker's semi-space cap, in MiB (V8's default on 64-bit: 16). */
export const WORKER_SEMI_SPACE_MB = 8;

export function operatorSizedYoungGeneration(execArgv: readonly string[] = process.execArgv, nodeOptionsText = nodeOptions()): boolean {
  const flag = /--(max|min)[-_]semi[-_]space[-_]size|--semi[-_]space[-_]growth[-_]factor/;
  return execArgv.some((a) => flag.test(a)) || flag.test(nodeOptionsText);
}

/** The node flags the primary forks workers with. */
export function workerExecArgv(execArgv: readonly string[] = process.execArgv, nodeOptionsText = nodeOptions()): string[] {
  if (operatorSizedYoungGeneration(execArgv, nodeOptionsText)) return [...execArgv];
  return [...execArgv, `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`];
}

/**
 * Keeps the primary's young generation at its initial size (1 MiB semi-spaces). Its cap cannot
 * change once the process runs, but the growth factor is read at each resize: 1 means no growth.
 * Measured: the primary then grows by ~3 KiB per connection instead of ~5.4 (10,000 connections).
 */
export function keepPrimaryYoungGenerationSmall(): void {
  if (!operatorSizedYoungGeneration()) setFlagsFromString("--semi-space-growth-factor=1");
}
