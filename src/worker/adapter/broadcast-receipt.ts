import type { BroadcastOptions } from "socket.io-adapter";
import { ErrorCode } from "../../shared/errors.js";
import type { EventPacket } from "./own-deliveries.js";

/** A broadcast that did not reach every worker that needs it; `code` is what its publisher is told. */
export class BroadcastDropped extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "BroadcastDropped";
  }
}

/** Refused at a bound: nothing was sent anywhere. */
export const atBound = (what: string) => new BroadcastDropped(ErrorCode.OVERLOADED, `too many broadcasts waiting for ${what}, retry later`);

/** Its data is not JSON (a bug for a validated message). */
export const notJson = (cause: unknown) => new BroadcastDropped(ErrorCode.INTERNAL, "broadcast data is not JSON", { cause });

/**
 * What a publisher learns of its broadcast: refused at once (nothing was sent anywhere, so it may
 * be retried without duplicates), or `handedOn`, which resolves once the broadcast is sequenced
 * for every worker that needs it (embedded: the primary answered; clustered: Redis took the
 * append) and rejects with a BroadcastDropped when it was lost on the way (it may then have
 * reached this worker's own clients only).
 */
export type BroadcastReceipt = { refused: BroadcastDropped } | { refused?: undefined; handedOn: Promise<void> };

/** How an adapter settles a receipt's `handedOn`. */
export interface ReceiptSettler {
  resolve(): void;
  reject(err: BroadcastDropped): void;
}

/** A receipt's promise and its settler. */
export function pendingReceipt(): { handedOn: Promise<void>; settle: ReceiptSettler } {
  let settle!: ReceiptSettler;
  const handedOn = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  return { handedOn, settle };
}

/**
 * Both of our adapters report what became of a broadcast. Socket.IO calls `broadcast` and drops
 * the promise it returns (BroadcastOperator.emit returns `true` at once), so a handler that must
 * answer its client honestly calls `broadcastWithReceipt` instead.
 */
export interface ReportingAdapter {
  broadcastWithReceipt(packet: EventPacket, opts: BroadcastOptions): BroadcastReceipt;
}
