import cluster, { type Worker } from "node:cluster";
import { EventEmitter } from "node:events";
import type { Config } from "../shared/config.js";
import { IPC_SOURCE, isWorkerMessage, type PrimaryMessage, type WorkerMessage } from "../shared/ipc.js";
import { isAdapterBatch, type AdapterUpMessage } from "../shared/adapter-ipc.js";
import type { Logger } from "../shared/logger.js";
import { IpcBacklog, estimateSize } from "../shared/ipc-backlog.js";

/** How long a worker may stay past IPC_QUEUE_MAX_BYTES (not back under half of it) before it is replaced. */
export const IPC_STALL_MS = 5000;

/** What the primary has written to each worker that it has not read yet (IPC_QUEUE_MAX_BYTES). */
const backlogs = new WeakMap<Worker, IpcBacklog>();

/**
 * Sends to a worker without ever throwing or emitting: a worker that died between the check and
 * the write loses the message, which its exit handling accounts for (sessions, presence). A
 * send's error (EPIPE, ERR_IPC_CHANNEL_CLOSED from a worker that just died) needs nothing more:
 * the callback only settles the backlog.
 */
export function sendTo(worker: Worker, message: unknown): void {
  if (!worker.isConnected()) return;
  const settled = backlogs.get(worker)?.sent(estimateSize(message)) ?? ignoreSendError;
  try {
    worker.send(message as Parameters<Worker["send"]>[0], undefined, undefined, settled);
  } catch (err) {
    // Not sent (it could not be cloned): nothing is owed to the worker. The caller decides.
    settled(null);
    throw err;
  }
}

function ignoreSendError(): void {
  // EPIPE/ERR_IPC_CHANNEL_CLOSED from a worker that just died: nothing to deliver to any more.
}

/** A worker that stayed up this long is healthy again: its next crash restarts without backoff. */
const STABLE_AFTER_MS = 30_000;

interface Slot {
  index: number;
  worker: Worker | undefined;
  ready: boolean;
  draining: boolean;
  failures: number;
  startedAt: number;
  /** Being replaced by a rolling restart: fork again at once, without backoff. */
  replacing: boolean;
  /** The worker's presence lease id (clustered mode), from its ready message. */
  presenceOwner: string | undefined;
  restartTimer: NodeJS.Timeout | undefined;
  /** Times this slot's worker was forked again (crash or rolling restart). */
  restarts: number;
}

/** One worker slot as the admin page shows it. */
export interface SlotInfo {
  slot: number;
  workerId: number | undefined;
  pid: number | undefined;
  state: "ready" | "starting" | "draining" | "restarting";
  /** When the current worker was forked (ms since the epoch). */
  startedAt: number;
  restarts: number;
}

export interface SupervisorEvents {
  /** A worker left (crash or stop); its members must be cleaned up. */
  exit: [workerId: number, presenceOwner: string | undefined];
  message: [worker: Worker, message: WorkerMessage];
  /** The embedded adapter's traffic (see adapter-host.ts). */
  adapter: [worker: Worker, message: AdapterUpMessage];
}

/**
 * Keeps one worker per slot alive: forks them, tracks readiness, restarts a dead worker with
 * exponential backoff while the others keep serving, and stops them all on shutdown.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly slots: Slot[] = [];
  private stopping = false;
  /** Workers forked again since start: after a crash (or kill), or replaced by a rolling restart (metrics). */
  readonly restartsTotal = { crash: 0, rolling: 0 };

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
        replacing: false,
        presenceOwner: undefined,
        restartTimer: undefined,
        restarts: 0,
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
    // A worker that stops reading (SIGSTOP, a busy loop) would make the primary buffer every
    // relay for it: past the bound it is replaced, and its clients recover on the others.
    let stalled: NodeJS.Timeout | undefined;
    const backlog = new IpcBacklog(
      this.config.ipcQueueMaxBytes,
      (bytes) => {
        this.log.warn({ worker: worker.id, backlogBytes: bytes, cap: this.config.ipcQueueMaxBytes }, "a worker is behind on its IPC channel (IPC_QUEUE_MAX_BYTES)");
        stalled = setTimeout(() => {
          this.log.error({ worker: worker.id, pid: worker.process.pid, backlogBytes: backlog.bytes, cap: this.config.ipcQueueMaxBytes, stalledMs: IPC_STALL_MS }, "replacing a worker that stopped reading its IPC channel (IPC_QUEUE_MAX_BYTES)");
          worker.process.kill("SIGKILL");
        }, IPC_STALL_MS);
        stalled.unref();
      },
      () => clearTimeout(stalled),
    );
    backlogs.set(worker, backlog);
    worker.once("exit", () => clearTimeout(stalled));
    worker.on("message", (message: unknown) => {
      if (isAdapterBatch<AdapterUpMessage>(message)) {
        for (const m of message.m) this.emit("adapter", worker, m);
        return;
      }
      if (!isWorkerMessage(message)) return; // unknown traffic is dropped
      if (message.type === "ready") {
        slot.ready = true;
        slot.presenceOwner = message.presenceOwner;
      }
      else if (message.type === "draining") slot.draining = true;
      this.emit("message", worker, message);
    });
    worker.on("exit", (code, signal) => this.onExit(slot, worker, code, signal));
    // A worker that was just killed still reads as connected for a moment; a send to it then
    // fails with EPIPE. Without a listener that error would crash the primary.
    worker.on("error", (err) => this.log.warn({ worker: worker.id, err: err.message }, "worker IPC error"));
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.ready = false;
    this.emit("exit", worker.id, slot.presenceOwner);
    slot.presenceOwner = undefined;
    if (this.stopping) return;
    if (slot.replacing) {
      slot.replacing = false;
      this.restartsTotal.rolling++;
      slot.restarts++;
      this.fork(slot);
      return;
    }
    const uptime = Date.now() - slot.startedAt;
    slot.failures = uptime > STABLE_AFTER_MS ? 1 : slot.failures + 1;
    const { restartDelayMs, restartMaxDelayMs } = this.config.supervisor;
    const delay = Math.min(restartDelayMs * 2 ** (slot.failures - 1), restartMaxDelayMs);
    this.log.warn({ worker: worker.id, slot: slot.index, code, signal, restartInMs: delay }, "worker exited");
    this.restartsTotal.crash++;
    slot.restarts++;
    slot.restartTimer = setTimeout(() => this.fork(slot), delay);
  }

  /** Every slot: its worker (if any), state and restarts. */
  slotInfo(): SlotInfo[] {
    return this.slots.map((s) => ({
      slot: s.index,
      workerId: s.worker?.id,
      pid: s.worker?.process.pid,
      state: !s.worker ? "restarting" : s.draining ? "draining" : s.ready ? "ready" : "starting",
      startedAt: s.startedAt,
      restarts: s.restarts,
    }));
  }

  /** Ready, non-draining workers. */
  readyWorkers(): Worker[] {
    return this.slots.filter((s) => s.ready && !s.draining && s.worker).map((s) => s.worker!);
  }

  /** Every worker with a live IPC channel, ready or not (they all take adapter traffic). */
  connectedWorkers(): Worker[] {
    return this.slots.flatMap((s) => (s.worker?.isConnected() ? [s.worker] : []));
  }

  byId(id: number): Worker | undefined {
    const slot = this.slots.find((s) => s.worker?.id === id);
    return slot?.ready && !slot.draining ? slot.worker : undefined;
  }

  allReady(): boolean {
    return !this.stopping && this.slots.length > 0 && this.slots.every((s) => s.ready && !s.draining);
  }

  send(worker: Worker, message: PrimaryMessage): void {
    sendTo(worker, message);
  }

  /**
   * Replaces the workers one at a time (SIGHUP): each drains (its clients recover on the others),
   * a fresh one takes its slot, and the next goes only once that one is ready.
   */
  async rollingRestart(deadlineMs: number): Promise<void> {
    if (this.rolling || this.stopping) return;
    this.rolling = true;
    try {
      for (const slot of this.slots) {
        if (this.stopping) return;
        const old = slot.worker;
        if (old) {
          slot.replacing = true;
          await this.stopWorker(old, deadlineMs);
        } else if (slot.restartTimer) {
          clearTimeout(slot.restartTimer);
          this.fork(slot);
        }
        await new Promise<void>((resolve) => {
          const check = () => (slot.ready || this.stopping ? resolve() : setTimeout(check, 20));
          check();
        });
      }
      this.log.info("rolling restart done");
    } finally {
      this.rolling = false;
    }
  }

  private rolling = false;

  private stopWorker(worker: Worker, deadlineMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
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
    });
  }

  /** Asks every worker to drain, waits up to the deadline, then kills what is left. */
  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    const live: Worker[] = [];
    for (const slot of this.slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      if (slot.worker) live.push(slot.worker);
    }
    await Promise.all(live.map((worker) => this.stopWorker(worker, deadlineMs)));
  }
}
