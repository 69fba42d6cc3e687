import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { parseStat, parseStatusRss, ticksPerSecond } from "../../harness/procfs.js";

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
  /** Services on this host the server holds connections to (Redis in clustered mode); not in cpuS or rssBytes. */
  peers: ProcessSample[];
  /** The host's memory (/proc/meminfo), bytes. */
  host: HostMemory | undefined;
}

export interface HostMemory {
  totalBytes: number;
  availableBytes: number;
}

/** MemTotal and MemAvailable from /proc/meminfo text. */
export function parseMeminfo(text: string): HostMemory | undefined {
  const total = /^MemTotal:\s+(\d+)\s+kB/m.exec(text);
  const available = /^MemAvailable:\s+(\d+)\s+kB/m.exec(text);
  if (!total || !available) return undefined;
  return { totalBytes: Number(total[1]) * 1024, availableBytes: Number(available[1]) * 1024 };
}

export function readHostMemory(): HostMemory | undefined {
  try {
    return parseMeminfo(readFileSync("/proc/meminfo", "utf8"));
  } catch {
    return undefined; // no /proc (not Linux): the host's memory is not judged
  }
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

/** One socket of /proc/net/tcp or tcp6. */
export interface TcpSocket {
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** "0A" listening, "01" established, ... */
  state: string;
  inode: string;
}

/** An address of /proc/net/tcp (hex, 32-bit words in host order, little-endian here) in the usual notation. */
export function decodeProcAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => [6, 4, 2, 0].map((i) => parseInt(w.slice(i, i + 2), 16)));
  if (bytes.length === 4) return bytes.join(".");
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join(".");
  if (bytes.slice(0, 15).every((b) => b === 0) && bytes[15] === 1) return "::1";
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":");
}

/** A line of /proc/net/tcp(6); undefined for the header or anything else. */
export function parseTcpLine(line: string): TcpSocket | undefined {
  const cols = line.trim().split(/\s+/);
  if (cols.length < 10 || !/^\d+:$/.test(cols[0]!)) return undefined;
  const [localAddress, localPort] = cols[1]!.split(":");
  const [remoteAddress, remotePort] = cols[2]!.split(":");
  if (!localAddress || !localPort || !remoteAddress || !remotePort) return undefined;
  return { localPort: parseInt(localPort, 16), remoteAddress: decodeProcAddress(remoteAddress), remotePort: parseInt(remotePort, 16), state: cols[3]!, inode: cols[9]! };
}

function tcpSockets(): TcpSocket[] {
  const sockets: TcpSocket[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue; // no IPv6 on this host
    }
    for (const line of text.split("\n")) {
      const socket = parseTcpLine(line);
      if (socket) sockets.push(socket);
    }
  }
  return sockets;
}

/** Socket inodes a process holds open. */
function socketInodes(pid: number): string[] {
  const inodes: string[] = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes; // exited, or not ours to read
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.push(match[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/** Sockets in LISTEN state on `port`, by inode. */
function listeningInodes(port: number, sockets: readonly TcpSocket[] = tcpSockets()): Set<string> {
  return new Set(sockets.filter((s) => s.state === "0A" && s.localPort === port).map((s) => s.inode));
}

/** The process listening on `port` (the topmost one when a parent and its children share the socket). */
export function findListeningPid(port: number, sockets?: readonly TcpSocket[]): number | undefined {
  const inodes = listeningInodes(port, sockets);
  if (inodes.size === 0) return undefined;
  const holders: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    if (socketInodes(Number(entry)).some((inode) => inodes.has(inode))) holders.push(Number(entry));
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

/** A service the server holds a TCP connection to: a process on this host, or only an address. */
export interface Peer {
  address: string;
  port: number;
  /** The process listening there, when it is on this host. */
  pid: number | undefined;
  name: string;
}

/**
 * The services the processes of `tree` are connected to (Redis in clustered mode): the listening
 * end of each of their established TCP connections, when that is not one of their own sockets.
 * Connections to the tree's own listening ports (the clients, the load generator) are left out.
 */
export function findPeers(tree: readonly number[]): Peer[] {
  const sockets = tcpSockets();
  const own = new Set(tree.flatMap(socketInodes));
  const ownPorts = new Set(sockets.filter((s) => s.state === "0A" && own.has(s.inode)).map((s) => s.localPort));
  const listening = new Set(sockets.filter((s) => s.state === "0A").map((s) => s.localPort));
  const peers = new Map<string, Peer>();
  for (const s of sockets) {
    if (s.state !== "01" || !own.has(s.inode) || ownPorts.has(s.localPort) || ownPorts.has(s.remotePort)) continue;
    const key = `${s.remoteAddress}:${s.remotePort}`;
    if (peers.has(key)) continue;
    const local = isLocalHost(s.remoteAddress) && listening.has(s.remotePort);
    const pid = local ? findListeningPid(s.remotePort, sockets) : undefined;
    if (pid !== undefined && tree.includes(pid)) continue; // between the server's own processes
    const name = pid === undefined ? "" : (readProcess(pid)?.name ?? "");
    peers.set(key, { address: s.remoteAddress, port: s.remotePort, pid, name });
  }
  return [...peers.values()];
}

/** A peer that is Redis (or a server speaking its protocol): by process name on this host, by the usual port otherwise. */
export function isRedisPeer(peer: Peer): boolean {
  return peer.pid !== undefined ? /redis|valkey|keydb|dragonfly/i.test(peer.name) : peer.port === 6379;
}

/** Samples the server's process tree; the tree is looked up again at every sample (workers restart). */
export class ServerMonitor {
  /** Services found by discoverPeers(), sampled with the server but kept apart. */
  peers: Peer[] = [];

  constructor(readonly rootPid: number) {}

  /** Looks for the services the server is connected to (call once its workers are up). */
  discoverPeers(): Peer[] {
    this.peers = findPeers(processTree(this.rootPid));
    return this.peers;
  }

  sample(): ServerSample | undefined {
    const processes = processTree(this.rootPid)
      .map(readProcess)
      .filter((p): p is ProcessSample => p !== undefined);
    if (processes.length === 0) return undefined;
    const peers = this.peers.flatMap((peer) => {
      const sample = peer.pid === undefined ? undefined : readProcess(peer.pid);
      return sample ? [sample] : [];
    });
    return {
      at: Date.now(),
      cpuS: processes.reduce((sum, p) => sum + p.cpuS, 0),
      rssBytes: processes.reduce((sum, p) => sum + p.rssBytes, 0),
      processes,
      peers,
      host: readHostMemory(),
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

/** CPU seconds the peers (Redis) spent between two samples. */
export function peerCpuBetween(a: ServerSample, b: ServerSample): number {
  const before = new Map(a.peers.map((p) => [p.pid, p.cpuS]));
  return b.peers.reduce((sum, p) => sum + Math.max(0, p.cpuS - (before.get(p.pid) ?? p.cpuS)), 0);
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
