/**
 * How long a restored session's rooms stay routed to its new worker without a local member: its
 * socket joins them within moments of the restore's answer, or (its client gone) never; pending
 * restores give up at 10 s.
 */
export const RESERVED_MS = 30_000;

/**
 * Rooms a worker keeps routed to itself (embedded: at the primary; clustered: subscribed in
 * Redis) for a restored session whose socket has not joined them yet. Each is let go after
 * RESERVED_MS; `onExpired` then releases those that have no local member.
 */
export class ReservedRooms {
  private readonly until = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly onExpired: (rooms: string[]) => void) {}

  has(room: string): boolean {
    return this.until.has(room);
  }

  add(rooms: Iterable<string>): void {
    const until = Date.now() + RESERVED_MS;
    for (const room of rooms) this.until.set(room, until);
    this.timer ??= setTimeout(this.sweep, RESERVED_MS).unref();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly sweep = (): void => {
    this.timer = undefined;
    const now = Date.now();
    const expired: string[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const [room, until] of this.until) {
      if (until > now) next = Math.min(next, until);
      else {
        this.until.delete(room);
        expired.push(room);
      }
    }
    if (expired.length > 0) this.onExpired(expired);
    if (next !== Number.POSITIVE_INFINITY) this.timer = setTimeout(this.sweep, next - now).unref();
  };
}
