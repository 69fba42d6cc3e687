/**
 * What one side of an IPC channel has written that the other has not read yet, estimated from the
 * messages sent and settled by `send()`'s callback (Node's public API: the channel's own queue
 * size is internal). It is `over` from when it passes `maxBytes` until it is back under half of
 * that; the owner is told of both (to replace a stuck peer, or to refuse work meanwhile).
 */
export class IpcBacklog {
  /** Estimated bytes written and not yet taken by the peer. */
  bytes = 0;
  over = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onOver: (bytes: number) => void,
    private readonly onUnder: () => void = () => undefined,
  ) {}

  /** Counts a message of about `size` bytes; returns the callback to pass to `send()`. */
  sent(size: number): (err: Error | null) => void {
    this.bytes += size;
    if (this.maxBytes > 0 && !this.over && this.bytes > this.maxBytes) {
      this.over = true;
      this.onOver(this.bytes);
    }
    return () => {
      this.bytes -= size;
      if (this.over && this.bytes <= this.maxBytes / 2) {
        this.over = false;
        this.onUnder();
      }
    };
  }
}

/** Per message, what its fields cost beyond the strings counted (a rough structured-clone size). */
const PER_MESSAGE = 96;

/**
 * A rough size of what crosses IPC: the broadcast data strings (`d`) that dominate it are counted
 * exactly, anything else at a flat rate, without serialising anything twice.
 */
export function estimateSize(message: unknown): number {
  const batch = (message as { m?: unknown }).m;
  if (!Array.isArray(batch)) return PER_MESSAGE;
  let size = 0;
  for (const m of batch) {
    const d = (m as { d?: unknown }).d;
    size += PER_MESSAGE + (typeof d === "string" ? d.length : 0);
    const session = (m as { session?: { missedPackets?: unknown[] } | null }).session;
    if (session?.missedPackets) size += session.missedPackets.length * PER_MESSAGE;
  }
  return size;
}
