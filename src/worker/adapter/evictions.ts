/**
 * Sockets being closed because their session moved to a newer connection (a half-open one the
 * client already replaced). Their disconnect is not a departure: presence and sessions stay.
 */
export class Evictions {
  private readonly sids = new Set<string>();

  /** Closes `close` under the eviction mark, so the disconnect handlers it triggers can tell. */
  run(sid: string, close: () => void): void {
    this.sids.add(sid);
    try {
      close();
    } finally {
      this.sids.delete(sid);
    }
  }

  has(sid: string): boolean {
    return this.sids.has(sid);
  }
}
