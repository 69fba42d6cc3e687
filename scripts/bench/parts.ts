import { readFileSync } from "node:fs";
import { processTree, readProcess } from "../loadtest/server-stats.js";

/**
 * CPU of a server by part, from /proc/<pid>/stat (utime + stime): the top process (the product's
 * primary, or the whole plain socket.io server), the product's workers together, anything else it
 * runs (the embedded store), and a redis-server given by pid. The scaling suite divides these by
 * the broadcasts or connects of a measured window.
 */

export type Role = "primary" | "worker" | "other";

export interface PartCpu {
  primary: number;
  workers: number;
  other: number;
  /** Null when no redis-server is measured. */
  redis: number | null;
}

/** CPU seconds per pid at one moment, each pid with its role. */
export interface PartSample {
  at: number;
  byPid: Map<number, { role: Role; cpuS: number }>;
  redisCpuS: number | null;
}

/** A process's role from its pid and command line (NUL-separated, as /proc/<pid>/cmdline holds it). */
export function roleOf(pid: number, rootPid: number, cmdline: string): Role {
  if (pid === rootPid) return "primary";
  // A worker names itself (process.title, which replaces the command line); until it has, the
  // command line holds the script cluster.fork runs (src/primary/main.ts: setupPrimary's exec).
  const args = cmdline.split("\0");
  return args[0] === "cerebellum-worker" || args.some((arg) => /[/\\]worker[/\\]main\.js$/.test(arg)) ? "worker" : "other";
}

function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return ""; // exited between the listing and the read: its CPU is not read either
  }
}

/** Reads the CPU of every process of the tree under `rootPid`, and of `redisPid` when given. */
export function samplePartCpu(rootPid: number, redisPid?: number): PartSample {
  const byPid = new Map<number, { role: Role; cpuS: number }>();
  for (const pid of processTree(rootPid)) {
    const p = readProcess(pid);
    if (p) byPid.set(pid, { role: roleOf(pid, rootPid, cmdlineOf(pid)), cpuS: p.cpuS });
  }
  const redis = redisPid === undefined ? undefined : readProcess(redisPid);
  return { at: Date.now(), byPid, redisCpuS: redis ? redis.cpuS : null };
}

/** CPU seconds each part spent between two samples; a process born in between counts from zero. */
export function partCpuBetween(a: PartSample, b: PartSample): PartCpu {
  const cpu: PartCpu = { primary: 0, workers: 0, other: 0, redis: a.redisCpuS !== null && b.redisCpuS !== null ? b.redisCpuS - a.redisCpuS : null };
  for (const [pid, now] of b.byPid) {
    const used = Math.max(0, now.cpuS - (a.byPid.get(pid)?.cpuS ?? 0));
    if (now.role === "primary") cpu.primary += used;
    else if (now.role === "worker") cpu.workers += used;
    else cpu.other += used;
  }
  return cpu;
}

/** Every part's CPU seconds ÷ `n` (broadcasts, connects), in µs; null parts stay null. */
export function perUnitUs(cpu: PartCpu, n: number): PartCpu | null {
  if (n <= 0) return null;
  const us = (s: number) => (s * 1e6) / n;
  return { primary: us(cpu.primary), workers: us(cpu.workers), other: us(cpu.other), redis: cpu.redis === null ? null : us(cpu.redis) };
}
