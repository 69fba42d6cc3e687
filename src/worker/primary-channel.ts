import { IpcBacklog, estimateSize } from "../shared/ipc-backlog.js";

/**
 * The worker's side of its IPC channel to the primary (one per process): every message to the
 * primary goes through here, so what the primary has not read yet is bounded (IPC_QUEUE_MAX_BYTES).
 */
let backlog: IpcBacklog | undefined;

/** Sets the bound; `onOver`/`onUnder` are told when the backlog passes it and when it is back under half. */
export function boundPrimaryBacklog(maxBytes: number, onOver: (bytes: number) => void, onUnder: () => void): void {
  backlog = new IpcBacklog(maxBytes, onOver, onUnder);
}

/** Whether the primary is behind by more than the bound: new broadcasts are refused meanwhile. */
export function primaryBacklogOver(): boolean {
  return backlog?.over === true;
}

/** Sends to the primary; false when there is no primary to send to. Never throws on a closed channel. */
export function sendToPrimary(message: unknown): boolean {
  if (!process.connected || !process.send) return false;
  const settled = backlog?.sent(estimateSize(message)) ?? ignoreSendError;
  try {
    process.send(message as object, undefined, undefined, settled);
  } catch (err) {
    // Not sent (it could not be cloned): nothing is owed to the primary. The caller decides.
    settled(null);
    throw err;
  }
  return true;
}

function ignoreSendError(): void {
  // ERR_IPC_CHANNEL_CLOSED: the primary is gone; the worker's disconnect handling takes over.
}
