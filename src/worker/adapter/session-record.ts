import type { SessionRecord } from "../../shared/adapter-ipc.js";

/** The parts of a Socket.IO socket a session record is built from. */
export interface RecoverableSocket {
  id: string;
  rooms: Set<string>;
  data: unknown;
  disconnect(close?: boolean): unknown;
}

/**
 * Socket.IO keeps the private session id (`pid`) in a private field; it is what a client sends
 * back to recover, so the eager session save has to read it.
 */
export function sessionRecordOf(socket: RecoverableSocket): SessionRecord {
  const pid = (socket as unknown as { pid?: string }).pid ?? "";
  return { sid: socket.id, pid, rooms: [...socket.rooms], data: socket.data };
}
