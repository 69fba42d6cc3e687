import type { Worker } from "node:cluster";
import type { Config } from "../shared/config.js";
import { IPC_SOURCE, assertNever, type PresenceOp, type PresenceOpResult } from "../shared/ipc.js";
import type { Logger } from "../shared/logger.js";
import { PresenceTable } from "./presence-table.js";
import type { Supervisor } from "./supervisor.js";

/**
 * Embedded mode's presence: the primary holds the table for every worker and answers their
 * requests over IPC. The members of a worker that dies are suspended for PRESENCE_CRASH_GRACE_MS:
 * those that recover elsewhere stay, the others are reaped with `leave` events.
 */
export function hostPresence(supervisor: Supervisor, config: Config, log: Logger): PresenceTable {
  const table = new PresenceTable(
    { maxMembers: config.presence.maxMembers, maxChannelsPerMember: config.presence.maxChannelsPerMember },
    config.recovery.maxDisconnectionMs,
    config.recovery.maxSessions,
  );

  const run = (owner: number, request: PresenceOp): PresenceOpResult => {
    const now = Date.now();
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
        // Only what the asking worker still owns (see PresenceTable.removeAll).
        return table.removeAll(request.socketId, owner);
      case "suspend":
        return table.suspend(request.socketId, now + request.graceMs, owner);
      case "resume":
        return table.resume(request.socketId, owner, now);
      case "reap":
        return table.reap(now);
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
    const count = table.suspendOwnedBy(workerId, Date.now() + config.presence.crashGraceMs);
    if (count > 0) log.info({ worker: workerId, members: count }, "a dead worker's members leave unless they recover");
  });

  return table;
}
