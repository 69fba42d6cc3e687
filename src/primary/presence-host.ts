import type { Worker } from "node:cluster";
import { IPC_SOURCE, assertNever, type PresenceOp, type PresenceOpResult } from "../shared/ipc.js";
import { PresenceTable } from "../shared/presence-table.js";
import type { Supervisor } from "./supervisor.js";

/**
 * Embedded mode's presence: the primary holds the table for every worker, answers their
 * requests over IPC, and evicts (with `leave` events) the members of a worker that died.
 */
export function hostPresence(supervisor: Supervisor): PresenceTable {
  const table = new PresenceTable();

  const run = (owner: number, request: PresenceOp): PresenceOpResult => {
    switch (request.op) {
      case "add":
        return table.add(request.channel, request.socketId, request.info, owner);
      case "remove":
        return table.remove(request.channel, request.socketId);
      case "members":
        return table.members(request.channel);
      case "update":
        return table.update(request.channel, request.socketId, request.info) ?? null;
      case "channelsOf":
        return table.channelsOf(request.socketId);
      case "removeAll":
        return table.removeAll(request.socketId);
      default:
        return assertNever(request);
    }
  };

  supervisor.on("message", (worker: Worker, message) => {
    if (message.type !== "presence") return;
    const result = run(worker.id, message.request);
    supervisor.send(worker, { source: IPC_SOURCE, type: "presence:result", id: message.id, result });
  });

  supervisor.on("exit", (workerId) => {
    const members = table.removeOwnedBy(workerId);
    if (members.length === 0) return;
    // A surviving worker broadcasts the leave events through the adapter.
    const announcer = supervisor.readyWorkers()[0];
    if (announcer) supervisor.send(announcer, { source: IPC_SOURCE, type: "presence:evicted", members });
  });

  return table;
}
