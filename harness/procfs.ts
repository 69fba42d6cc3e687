import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Linux's /proc, read for CPU and memory figures of processes (ours and the machine's). */

let clockTicks: number | undefined;

/** USER_HZ, the unit of /proc/<pid>/stat times (100 on every mainstream Linux). */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100; // getconf missing: the kernel's USER_HZ is 100 on every architecture Node runs on
    }
  }
  return clockTicks;
}

/** Parses /proc/<pid>/stat text: fields after the parenthesised command name (which may hold spaces). */
export function parseStat(text: string): { name: string; ppid: number; ticks: number } | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const fields = text.slice(close + 2).split(" ");
  // fields[0] is state (field 3); ppid is field 4; utime 14; stime 15.
  const ppid = Number(fields[1]);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(ppid) || !Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return { name: text.slice(open + 1, close), ppid, ticks: utime + stime };
}

/** A process's parent and utime+stime (all its threads, in clock ticks); undefined once it is gone. */
export function readStat(pid: number | string): { pid: number; ppid: number; ticks: number } | undefined {
  try {
    const stat = parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
    return stat && { pid: Number(pid), ppid: stat.ppid, ticks: stat.ticks };
  } catch {
    return undefined; // the process exited between the listing and the read
  }
}

/** Every process on the machine. */
export function allStats(): Array<{ pid: number; ppid: number; ticks: number }> {
  return readdirSync("/proc").flatMap((name) => {
    const s = /^\d+$/.test(name) ? readStat(name) : undefined;
    return s ? [s] : [];
  });
}

export function childrenOf(ppid: number): number[] {
  return allStats()
    .filter((s) => s.ppid === ppid)
    .map((s) => s.pid);
}

/** True once the process is gone or a zombie (an orphan that nobody reaped yet has still exited). */
export function isGone(pid: number): boolean {
  try {
    // "pid (comm) S ...": the state follows the last ')'.
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2, text.lastIndexOf(")") + 3) === "Z";
  } catch {
    return true; // no such process
  }
}

/** A process's command line, its arguments joined by spaces ("" once it is gone). */
export function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/** The cluster worker id Node gave a worker process (NODE_UNIQUE_ID in its environment). */
export function clusterIdOf(pid: number): number | undefined {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    const entry = env.find((e) => e.startsWith("NODE_UNIQUE_ID="));
    return entry ? Number(entry.slice("NODE_UNIQUE_ID=".length)) : undefined;
  } catch {
    return undefined;
  }
}

/** Whole-machine CPU from the first line of /proc/stat, in ticks summed over every core (idle and iowait left out). */
export function machineTicks(): { busy: number; steal: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1, 9).map(Number);
  return { busy: user + nice + system + irq + softirq, steal };
}

/** VmRSS from /proc/<pid>/status text, in bytes. */
export function parseStatusRss(text: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return match ? Number(match[1]) * 1024 : 0;
}

/** A process's resident set size in bytes, from /proc/<pid>/status. */
export function rssBytes(pid: number): number {
  return parseStatusRss(readFileSync(`/proc/${pid}/status`, "utf8"));
}

/** The main thread's CPU time so far in ns (/proc/self/task/<pid>/schedstat); undefined where there is none. */
export function mainThreadCpuNs(): number | undefined {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8").split(" ")[0]);
  } catch {
    return undefined; // not Linux, or a kernel without schedstat
  }
}

/**
 * CPU use of the whole machine over `ms`, in % of one core: busy (idle, iowait and steal left
 * out), stolen by the hypervisor, and this process's own share of it.
 */
export async function machineLoad(ms = 1000): Promise<{ busyPct: number; stealPct: number; ownPct: number }> {
  const [a, own0, t0] = [machineTicks(), process.cpuUsage(), performance.now()];
  await new Promise((r) => setTimeout(r, ms));
  const [b, own, seconds] = [machineTicks(), process.cpuUsage(own0), (performance.now() - t0) / 1000];
  const pct = (ticks: number) => (ticks / ticksPerSecond() / seconds) * 100;
  return { busyPct: pct(b.busy - a.busy), stealPct: pct(b.steal - a.steal), ownPct: ((own.user + own.system) / 1e6 / seconds) * 100 };
}
