/**
 * Which new sessions the balancer lets in, decided before any hand-over or token check, so that a
 * connect storm is refused at the price of reading a request head: a host-wide connect rate
 * (a token bucket of CONNECT_RATE_LIMIT × workers per second, one second's worth of burst) and
 * a cap on each worker's connections (MAX_CONNECTIONS_PER_WORKER). A request that names an
 * existing session (polling, or its websocket upgrade) is never refused here: it is counted already.
 */
export interface AdmissionOptions {
  /** New connections per second per worker; 0: no rate limit. */
  ratePerWorker: number;
  /** Connections per worker; 0: no cap. */
  maxPerWorker: number;
  workers: number;
  now?: () => number;
}

export class Admission {
  private readonly rate: number;
  private tokens: number;
  private last: number;
  private readonly now: () => number;
  /** Per worker: its last reported connection count plus the sessions handed to it since. */
  private readonly counts = new Map<number, number>();

  constructor(private readonly options: AdmissionOptions) {
    this.rate = options.ratePerWorker * options.workers;
    this.tokens = this.rate;
    this.now = options.now ?? Date.now;
    this.last = this.now();
  }

  /** Takes one new connection from the rate; false when the host is over it. */
  takeConnect(): boolean {
    if (this.rate === 0) return true;
    const now = this.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether worker `id` may take one more session. */
  hasRoom(id: number): boolean {
    return this.options.maxPerWorker === 0 || (this.counts.get(id) ?? 0) < this.options.maxPerWorker;
  }

  /** A new session went to worker `id` (counted until its next report covers it). */
  handed(id: number): void {
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
  }

  /** Worker `id` reported how many connections it holds. */
  reported(id: number, connections: number): void {
    this.counts.set(id, connections);
  }

  workerGone(id: number): void {
    this.counts.delete(id);
  }
}
