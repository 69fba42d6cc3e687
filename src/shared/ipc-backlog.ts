/**
 * What one side of an IPC channel has written that the other has not read yet, estimated from the
 * messages sent and settled by `send()`'s callback (Node's public API: the channel's own queue
 * size is internal). Past `maxBytes` the peer is taken as stuck (stopped, in a busy loop): the
 * owner is told once, to replace it (primary) or to give up (worker) rather than buffer for ever.
 */
export class IpcBacklog {
  /** Estimated bytes written and not yet taken by the peer. */
  bytes = 0;
  private over = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onOver: (bytes: number) => void,
  ) {}

  /** Counts a message of about `size` bytes; returns the callback to pass to `send()`. */
  sent(size: number): (err: Error | null) => void {
    this.bytes += size;
    if (this.maxBytes > 0 && this.bytes > this.maxBytes && !this.over) {
      this.over = true;
      this.onOver(this.bytes);
    }
    return () => {
      this.bytes -= size;
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
