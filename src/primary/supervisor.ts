import cluster, { type Worker } from "node:cluster";
import { EventEmitter } from "node:events";
import type { Config } from "../shared/config.js";
import { IPC_SOURCE, isWorkerMessage, type PrimaryMessage, type WorkerMessage } from "../shared/ipc.js";
import type { Logger } from "../shared/logger.js";

/** A worker that stayed up this long is healthy again: its next crash restarts without backoff. */
const STABLE_AFTER_MS = 30_000;

interface Slot {
  index: number;
  worker: Worker | undefined;
  ready: boolean;
  draining: boolean;
  failures: number;
  startedAt: number;
  restartTimer: NodeJS.Timeout | undefined;
}

export interface SupervisorEvents {
  /** A worker left (crash or stop); its members must be cleaned up. */
  exit: [workerId: number];
  message: [worker: Worker, message: WorkerMessage];
}

/**
 * Keeps one worker per slot alive: forks them, tracks readiness, restarts a dead worker with
 * exponential backoff while the others keep serving, and stops them all on shutdown.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly slots: Slot[] = [];
  private stopping = false;

  constructor(
    private readonly config: Config,
    private readonly workerEnv: Record<string, string>,
    private readonly log: Logger,
  ) {
    super();
  }

  start(): void {
    for (let index = 0; index < this.config.workers; index++) {
      const slot: Slot = {
        index,
        worker: undefined,
        ready: false,
        draining: false,
        failures: 0,
        startedAt: 0,
        restartTimer: undefined,
      };
      this.slots.push(slot);
      this.fork(slot);
    }
  }

  private fork(slot: Slot): void {
    slot.restartTimer = undefined;
    slot.ready = false;
    slot.draining = false;
    slot.startedAt = Date.now();
    const worker = cluster.fork({ ...this.workerEnv, CEREBELLUM_WORKER_INDEX: String(slot.index) });
    slot.worker = worker;
    worker.on("message", (message: unknown) => {
      if (!isWorkerMessage(message)) return; // adapter traffic is handled by the adapter's primary side
      if (message.type === "ready") slot.ready = true;
      else if (message.type === "draining") slot.draining = true;
      this.emit("message", worker, message);
    });
    worker.on("exit", (code, signal) => this.onExit(slot, worker, code, signal));
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.ready = false;
    this.emit("exit", worker.id);
    if (this.stopping) return;
    const uptime = Date.now() - slot.startedAt;
    slot.failures = uptime > STABLE_AFTER_MS ? 1 : slot.failures + 1;
    const { restartDelayMs, restartMaxDelayMs } = this.config.supervisor;
    const delay = Math.min(restartDelayMs * 2 ** (slot.failures - 1), restartMaxDelayMs);
    this.log.warn({ worker: worker.id, slot: slot.index, code, signal, restartInMs: delay }, "worker exited");
    slot.restartTimer = setTimeout(() => this.fork(slot), delay);
  }

  /** Ready, non-draining workers. */
  readyWorkers(): Worker[] {
    return this.slots.filter((s) => s.ready && !s.draining && s.worker).map((s) => s.worker!);
  }

  byId(id: number): Worker | undefined {
    const slot = this.slots.find((s) => s.worker?.id === id);
    return slot?.ready && !slot.draining ? slot.worker : undefined;
  }

  allReady(): boolean {
    return !this.stopping && this.slots.length > 0 && this.slots.every((s) => s.ready && !s.draining);
  }

  send(worker: Worker, message: PrimaryMessage): void {
    if (worker.isConnected()) worker.send(message);
  }

  /** Asks every worker to drain, waits up to the deadline, then kills what is left. */
  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    const live: Worker[] = [];
    for (const slot of this.slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      if (slot.worker) live.push(slot.worker);
    }
    await Promise.all(
      live.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            const timer = setTimeout(() => {
              this.log.error({ worker: worker.id }, "worker did not stop in time, killing it");
              worker.process.kill("SIGKILL");
            }, deadlineMs);
            worker.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
            this.send(worker, { source: IPC_SOURCE, type: "shutdown" });
          }),
      ),
    );
  }
}
