import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { networkInterfaces } from "node:os";

/**
 * The server's CPU and memory, read from /proc (Linux, same host only): the primary process and
 * every descendant (workers, the embedded store), found through the ppid field of /proc/<pid>/stat.
 */

export interface ProcessSample {
  pid: number;
  ppid: number;
  name: string;
  /** utime + stime, in seconds. */
  cpuS: number;
  /** VmRSS, in bytes. */
  rssBytes: number;
}

export interface ServerSample {
  /** Wall clock, ms. */
  at: number;
  cpuS: number;
  rssBytes: number;
  processes: ProcessSample[];
}

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

/** A thread's scheduler times: ns on a CPU, ns waiting on a run queue (runnable, every core busy), time slices. */
export interface Schedstat {
  runNs: number;
  waitNs: number;
  slices: number;
}

/** /proc/<pid>/schedstat text; undefined for anything else. */
export function parseSchedstat(text: string): Schedstat | undefined {
  const fields = text.trim().split(/\s+/).map(Number);
  if (fields.length !== 3 || !fields.every((f) => Number.isSafeInteger(f) && f >= 0)) return undefined;
  return { runNs: fields[0]!, waitNs: fields[1]!, slices: fields[2]! };
}

/** This process's main thread's schedstat (Linux; undefined where /proc has none). */
export function readOwnSchedstat(): Schedstat | undefined {
  try {
    return parseSchedstat(readFileSync("/proc/self/schedstat", "utf8"));
  } catch {
    return undefined; // no /proc (not Linux), or a kernel without schedstat: the figure is left out
  }
}

/** VmRSS from /proc/<pid>/status text, in bytes. */
export function parseStatusRss(text: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return match ? Number(match[1]) * 1024 : 0;
}

export function readProcess(pid: number): ProcessSample | undefined {
  try {
    const stat = parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
    if (!stat) return undefined;
    const rssBytes = parseStatusRss(readFileSync(`/proc/${pid}/status`, "utf8"));
    return { pid, ppid: stat.ppid, name: stat.name, cpuS: stat.ticks / ticksPerSecond(), rssBytes };
  } catch {
    return undefined; // the process exited between the listing and the read
  }
}

/** Every process's parent, from /proc/*\/stat. */
function parents(): Map<number, number> {
  const map = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = parseStat(readFileSync(`/proc/${entry}/stat`, "utf8"));
      if (stat) map.set(Number(entry), stat.ppid);
    } catch {
      // exited meanwhile: not part of the tree any more
    }
  }
  return map;
}

/** `root` and all its descendants. */
export function processTree(root: number): number[] {
  const byParent = new Map<number, number[]>();
  for (const [pid, ppid] of parents()) {
    const list = byParent.get(ppid) ?? [];
    list.push(pid);
    byParent.set(ppid, list);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(byParent.get(pid) ?? []));
  }
  return tree;
}

/** Sockets in LISTEN state on `port`, by inode, from /proc/net/tcp and tcp6. */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue; // no IPv6 on this host
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      if (cols[3] === "0A" && cols[1]!.endsWith(`:${hexPort}`)) inodes.add(cols[9]!);
    }
  }
  return inodes;
}

/** The process listening on `port` (the topmost one when a parent and its children share the socket). */
export function findListeningPid(port: number): number | undefined {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return undefined;
  const holders: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // exited, or not ours to read
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      const match = /^socket:\[(\d+)\]$/.exec(link);
      if (match && inodes.has(match[1]!)) {
        holders.push(Number(entry));
        break;
      }
    }
  }
  if (holders.length === 0) return undefined;
  const parentOf = parents();
  return holders.find((pid) => !holders.includes(parentOf.get(pid) ?? -1)) ?? holders[0];
}

/** True when the URL's host is this machine (loopback or one of its interface addresses). */
export function isLocalHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost" || host === "0.0.0.0" || host === "::" || host === "::1" || host.startsWith("127.")) return true;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) if (address.address === host) return true;
  }
  return false;
}

/** Samples the server's process tree; the tree is looked up again at every sample (workers restart). */
export class ServerMonitor {
  constructor(readonly rootPid: number) {}

  sample(): ServerSample | undefined {
    const processes = processTree(this.rootPid)
      .map(readProcess)
      .filter((p): p is ProcessSample => p !== undefined);
    if (processes.length === 0) return undefined;
    return {
      at: Date.now(),
      cpuS: processes.reduce((sum, p) => sum + p.cpuS, 0),
      rssBytes: processes.reduce((sum, p) => sum + p.rssBytes, 0),
      processes,
    };
  }

  /** Finds the server behind a local URL (or takes the given pid); undefined when it is remote or not found. */
  static locate(url: string, pid: number | undefined): ServerMonitor | undefined {
    if (process.platform !== "linux") return undefined;
    if (pid !== undefined) return new ServerMonitor(pid);
    const u = new URL(url);
    if (!isLocalHost(u.hostname)) return undefined;
    const port = Number(u.port || (u.protocol === "https:" || u.protocol === "wss:" ? 443 : 80));
    const found = findListeningPid(port);
    return found === undefined ? undefined : new ServerMonitor(found);
  }
}

/** CPU seconds spent between two samples, per process role and in total. */
export function cpuBetween(a: ServerSample, b: ServerSample): { totalS: number; byPid: Map<number, number> } {
  const before = new Map(a.processes.map((p) => [p.pid, p.cpuS]));
  const byPid = new Map<number, number>();
  let totalS = 0;
  for (const p of b.processes) {
    // A process born in between counts from zero.
    const used = Math.max(0, p.cpuS - (before.get(p.pid) ?? 0));
    byPid.set(p.pid, used);
    totalS += used;
  }
  return { totalS, byPid };
}
