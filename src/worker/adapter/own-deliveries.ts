import type { BroadcastOptions } from "socket.io-adapter";

export type EventPacket = { type: number; id?: number; data: unknown[] };

/** An own broadcast to deliver to this worker's sockets; `n` is its own count when it is stamped. */
export interface OwnDelivery {
  packet: EventPacket;
  opts: BroadcastOptions;
  n: number | undefined;
}

/**
 * Own broadcasts already sent on, delivered to this worker's sockets once the current tick's
 * handlers have run (one microtask), in order: a burst of client packets read together leaves
 * the worker as one burst before the worker spends its time on the deliveries. `flush` delivers
 * them early where order demands it.
 */
export class EndOfTickDeliveries {
  private readonly queue: OwnDelivery[] = [];

  constructor(private readonly deliver: (delivery: OwnDelivery) => void) {}

  push(delivery: OwnDelivery): void {
    this.queue.push(delivery);
    if (this.queue.length === 1) queueMicrotask(this.flush);
  }

  readonly flush = (): void => {
    for (const delivery of this.queue.splice(0)) this.deliver(delivery);
  };
}

/**
 * Delivers a broadcast to this worker's sockets only: the offset is stamped through
 * ClusterAdapter's private `addOffsetIfNecessary` (where `hookBeforeLocalDelivery` listens), then
 * `broadcastHere` (the stock broadcast, given the local flag) delivers it.
 */
export function deliverHere(
  adapter: object,
  broadcastHere: (packet: EventPacket, opts: BroadcastOptions) => unknown,
  packet: EventPacket,
  opts: BroadcastOptions,
  offset: string | undefined,
): void {
  const local = { ...opts, flags: { ...opts.flags, local: true } };
  if (offset) (adapter as OffsetStamp).addOffsetIfNecessary(packet, local, offset);
  void broadcastHere(packet, local);
}

/** ClusterAdapter's private offset stamp. */
type OffsetStamp = { addOffsetIfNecessary(packet: EventPacket, opts: BroadcastOptions, offset: string): void };
