/**
 * Which workers have local members in which rooms (embedded mode), as the workers report them
 * (a room's first local join, its last local leave): the primary relays a broadcast only to the
 * workers with a member in one of its rooms, so a broadcast costs the workers that need it and
 * no others.
 *
 * A restore routes the session's rooms to the worker that takes it at once, before its socket
 * has joined them (the restore's answer covers the log only up to that moment), under a *pin*: a
 * number per worker, counted up by each restore. A worker stamps each `del` with the last pin it
 * had seen; a `del` of a pinned room stamped with an older pin was decided before the worker knew
 * of the restore, and is ignored (the worker keeps that room until the restored socket joined it
 * or never will, then says `del` again).
 */
export class InterestTable {
  private readonly byRoom = new Map<string, Set<number>>();
  /** Per worker: its rooms, each with the pin that routed it there (0: joined, not pinned). */
  private readonly byWorker = new Map<number, Map<string, number>>();
  private readonly pins = new Map<number, number>();

  /** The workers with interest in `room` (do not change the set). */
  workersOf(room: string): ReadonlySet<number> | undefined {
    return this.byRoom.get(room);
  }

  has(worker: number, room: string): boolean {
    return this.byWorker.get(worker)?.has(room) ?? false;
  }

  /** How many rooms have interest (each counted once). */
  get rooms(): number {
    return this.byRoom.size;
  }

  add(worker: number, rooms: readonly string[]): void {
    for (const room of rooms) this.set(worker, room, 0);
  }

  /** Drops `rooms` for `worker`, but not one pinned after `seenPin`. */
  del(worker: number, rooms: readonly string[], seenPin: number): void {
    const mine = this.byWorker.get(worker);
    if (!mine) return;
    for (const room of rooms) {
      const pin = mine.get(room);
      if (pin === undefined || pin > seenPin) continue;
      mine.delete(room);
      const workers = this.byRoom.get(room);
      workers?.delete(worker);
      if (workers?.size === 0) this.byRoom.delete(room);
    }
  }

  /** Routes `rooms` to `worker` for a restore it takes now; returns the pin to tell it. */
  pin(worker: number, rooms: readonly string[]): number {
    const pin = (this.pins.get(worker) ?? 0) + 1;
    this.pins.set(worker, pin);
    for (const room of rooms) this.set(worker, room, pin);
    return pin;
  }

  /** The worker is gone: nothing is routed to it any more. */
  workerLeft(worker: number): void {
    const mine = this.byWorker.get(worker);
    this.byWorker.delete(worker);
    this.pins.delete(worker);
    if (!mine) return;
    for (const room of mine.keys()) {
      const workers = this.byRoom.get(room);
      workers?.delete(worker);
      if (workers?.size === 0) this.byRoom.delete(room);
    }
  }

  private set(worker: number, room: string, pin: number): void {
    let mine = this.byWorker.get(worker);
    if (!mine) this.byWorker.set(worker, (mine = new Map()));
    mine.set(room, Math.max(pin, mine.get(room) ?? 0));
    let workers = this.byRoom.get(room);
    if (!workers) this.byRoom.set(room, (workers = new Set()));
    workers.add(worker);
  }
}
