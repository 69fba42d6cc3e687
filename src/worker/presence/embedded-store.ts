import { IPC_SOURCE, type PresenceOp, type PresenceOpResult, type WorkerMessage } from "../../shared/ipc.js";
import type { PresenceState } from "../../shared/contract.js";
import type { PresenceInfo } from "../../shared/schemas.js";
import { toState, type PresenceStore } from "./store.js";

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

  private call(request: PresenceOp): Promise<PresenceOpResult> {
    if (this.closed) return Promise.reject(new Error("presence store closed"));
    if (this.waiting.size >= MAX_IN_FLIGHT) return Promise.reject(new Error("presence store overloaded"));
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.send({ source: IPC_SOURCE, type: "presence", id, request });
    });
  }

  async add(channel: string, socketId: string, info: PresenceInfo): Promise<PresenceState> {
    const { socketId: _ignored, ...fields } = toState(info, socketId);
    return (await this.call({ op: "add", channel, socketId, info: fields })) as PresenceState;
  }
  async remove(channel: string, socketId: string): Promise<boolean> {
    return (await this.call({ op: "remove", channel, socketId })) as boolean;
  }
  async members(channel: string): Promise<PresenceState[]> {
    return (await this.call({ op: "members", channel })) as PresenceState[];
  }
  async update(channel: string, socketId: string, partial: PresenceInfo): Promise<PresenceState | undefined> {
    const { socketId: _ignored, ...fields } = toState(partial, socketId);
    return ((await this.call({ op: "update", channel, socketId, info: fields })) as PresenceState | null) ?? undefined;
  }
  async channelsOf(socketId: string): Promise<string[]> {
    return (await this.call({ op: "channelsOf", socketId })) as string[];
  }
  async removeAll(socketId: string): Promise<string[]> {
    return (await this.call({ op: "removeAll", socketId })) as string[];
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}
