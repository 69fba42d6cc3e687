/**
 * The acks this worker owes its publishers: publishes accepted (broadcast and queued for
 * storage) whose ack waits for the message to be durable. A draining worker sends them before it
 * closes its sockets: an ack that never arrives makes a publisher retry, and store the message
 * twice. Once the drain has started, new publishes that want an ack are refused (the client
 * retries on another worker) so that the drain ends.
 */
export class OwedAcks {
  private owed = 0;
  private draining = false;
  private whenNone: (() => void) | undefined;

  /** Whether a new publish that wants an ack is taken (no drain under way). */
  get open(): boolean {
    return !this.draining;
  }

  /** Acks owed now. */
  get count(): number {
    return this.owed;
  }

  /** An accepted publish will be acked; call the returned function once its ack went out (any further call is ignored). */
  owe(): () => void {
    this.owed++;
    let paid = false;
    return () => {
      if (paid) return;
      paid = true;
      this.owed--;
      if (this.owed === 0) this.whenNone?.();
    };
  }

  /** Takes no more; resolves true once every owed ack went out, false when `timeoutMs` passed first. */
  drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    if (this.owed === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.whenNone = undefined;
        resolve(false);
      }, timeoutMs);
      this.whenNone = () => {
        clearTimeout(timer);
        this.whenNone = undefined;
        resolve(true);
      };
    });
  }
}
