import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { sleep } from "./wait.js";

/** A process a bench started, stopped with it whatever happens. */
export interface Owned {
  name: string;
  child: ChildProcess;
  /** Leads its own process group (a server: its primary and workers are killed together). */
  group: boolean;
  exited: Promise<void>;
}

export const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

/**
 * The processes a bench or storm started: each one is stopped at the end of its run, and on any
 * exit of this process (an exception, Ctrl-C, a deadline) what is left is SIGKILLed.
 */
export class Processes {
  private readonly owned = new Set<Owned>();

  constructor() {
    process.on("exit", () => this.signalAll("SIGKILL"));
  }

  get size(): number {
    return this.owned.size;
  }

  /** Spawns a command as the leader of its own process group, its output piped. */
  spawn(name: string, command: string, args: string[], options: SpawnOptions = {}): Owned {
    return this.track(name, spawn(command, args, { ...options, detached: true, stdio: ["ignore", "pipe", "pipe"] }), true);
  }

  track(name: string, child: ChildProcess, group: boolean): Owned {
    const exited = new Promise<void>((r) => {
      if (hasExited(child)) r();
      else child.once("exit", () => r());
    });
    const entry: Owned = { name, child, group, exited };
    this.owned.add(entry);
    // A process group may outlive its leader (workers of a killed primary): kept until stopped.
    void exited.then(() => {
      if (!group) this.owned.delete(entry);
    });
    return entry;
  }

  signal(entry: Owned, sig: NodeJS.Signals, wholeGroup: boolean): void {
    const pid = entry.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(wholeGroup && entry.group ? -pid : pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err; // ESRCH: already gone
    }
  }

  signalAll(sig: NodeJS.Signals): void {
    for (const e of this.owned) this.signal(e, sig, true);
  }

  /** SIGTERM, then SIGKILL of what is left of the group past `graceMs`; says whether it stopped in time. */
  async stop(entry: Owned, graceMs: number): Promise<{ graceful: boolean; code: number | null; signal: NodeJS.Signals | null }> {
    this.signal(entry, "SIGTERM", false);
    const graceful = await Promise.race([entry.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!graceful) process.stderr.write(`  ${entry.name} did not stop in ${graceMs} ms: killed\n`);
    this.signal(entry, "SIGKILL", true);
    await Promise.race([entry.exited, sleep(2000)]);
    this.owned.delete(entry);
    return { graceful, code: entry.child.exitCode, signal: entry.child.signalCode };
  }

  /** Stops everything, newest first: clients before the server, the server before its Redis. */
  async stopAll(graceMs: number): Promise<void> {
    for (const e of [...this.owned].reverse()) await this.stop(e, graceMs);
  }
}
