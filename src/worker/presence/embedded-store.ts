import { IPC_SOURCE, type PresenceOp, type PresenceOpResult, type WorkerMessage } from "../../shared/ipc.js";
import type { PresenceState } from "../../shared/contract.js";
import type { PresenceRefusal, Reentry, Removal } from "../../shared/presence-limits.js";
import type { PresenceStore } from "./store.js";

/** Requests waiting on the primary beyond this are refused rather than queued without bound. */
const MAX_IN_FLIGHT = 10_000;

/** Embedded presence: each operation is a request to the primary, which holds the host's table. */
export class EmbeddedPresenceStore implements PresenceStore {
  private nextId = 1;
  private readonly waiting = new Map<number, (result: PresenceOpResult) => void>();
  private closed = false;

  constructor(private readonly send: (message: WorkerMessage) => void) {}

  /** Called by the worker's IPC dispatcher with the primary's answer. */
  settle(id: number, result: PresenceOpResult): void {
    const resolve = this.waiting.get(id);
    this.waiting.delete(id);
    resolve?.(result);
  }

  private call<T extends PresenceOpResult>(request: PresenceOp): Promise<T> {
    if (this.closed) return Promise.reject(new Error("presence store closed"));
    if (this.waiting.size >= MAX_IN_FLIGHT) return Promise.reject(new Error("presence store overloaded"));
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve as (r: PresenceOpResult) => void);
      this.send({ source: IPC_SOURCE, type: "presence", id, request });
    });
  }

  add(channel: string, socketId: string, info: Record<string, string>): Promise<PresenceState | PresenceRefusal> {
    return this.call({ op: "add", channel, socketId, info });
  }
  remove(channel: string, socketId: string): Promise<boolean> {
    return this.call({ op: "remove", channel, socketId });
  }
  members(channel: string): Promise<PresenceState[]> {
    return this.call({ op: "members", channel });
  }
  async update(channel: string, socketId: string, info: Record<string, string>): Promise<PresenceState | undefined> {
    return (await this.call<PresenceState | null>({ op: "update", channel, socketId, info })) ?? undefined;
  }
  channelsOf(socketId: string): Promise<string[]> {
    return this.call({ op: "channelsOf", socketId });
  }
  removeAll(socketId: string): Promise<string[]> {
    return this.call({ op: "removeAll", socketId });
  }
  suspend(socketId: string, graceMs: number): Promise<boolean> {
    return this.call({ op: "suspend", socketId, graceMs });
  }
  resume(socketId: string): Promise<Reentry[]> {
    return this.call({ op: "resume", socketId });
  }
  reap(): Promise<Removal[]> {
    return this.call({ op: "reap" });
  }
  async close(): Promise<void> {
    this.closed = true;
    for (const resolve of this.waiting.values()) resolve(null);
    this.waiting.clear();
  }
}
