import { ADAPTER_SOURCE, type AdapterBatch } from "./adapter-ipc.js";

/**
 * The adapter messages one side has for one IPC peer, sent as one batch per event-loop turn (at
 * `setImmediate`, after the turn's I/O callbacks have all run): a burst of broadcasts costs the
 * peer one structured clone, one read and one event instead of one each. Order is kept: every
 * message for the peer goes through the same outbox.
 */
export class AdapterOutbox<T> {
  private queue: T[] = [];
  private scheduled: NodeJS.Immediate | undefined;

  /** `write` sends one batch; it may throw (a message that cannot be cloned), see `flush`. */
  constructor(
    private readonly write: (batch: AdapterBatch<T>) => void,
    /** Told of each message dropped because it alone could not be sent. */
    private readonly onDropped: (message: T, err: unknown) => void,
  ) {}

  get size(): number {
    return this.queue.length;
  }

  push(message: T): void {
    this.queue.push(message);
    this.scheduled ??= setImmediate(this.flush);
  }

  /** Sends what is queued now. */
  readonly flush = (): void => {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.queue.length === 0) return;
    const m = this.queue;
    this.queue = [];
    try {
      this.write({ source: ADAPTER_SOURCE, m });
    } catch {
      // One message that cannot be cloned (a function in socket.data, say) fails the whole
      // batch: send them one by one so that only that one is lost.
      for (const message of m) {
        try {
          this.write({ source: ADAPTER_SOURCE, m: [message] });
        } catch (err) {
          this.onDropped(message, err);
        }
      }
    }
  };

  /** Forgets what is queued (the peer is gone). */
  clear(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.queue = [];
  }
}
