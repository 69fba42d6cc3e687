import type { Server as EngineServer, Socket as EngineSocket } from "engine.io";
import { IPC_SOURCE, type WorkerMessage } from "../shared/ipc.js";

/** How long a change in the connection count may wait before the primary hears of it. */
export const CONNECTIONS_REPORT_DELAY_MS = 100;

/**
 * Tells the primary how many Engine.IO connections this worker holds (its balancer's
 * MAX_CONNECTIONS_PER_WORKER admission), once per burst of changes rather than per connection.
 */
export function reportConnections(engine: EngineServer, send: (message: WorkerMessage) => void): void {
  let timer: NodeJS.Timeout | undefined;
  const changed = () => {
    timer ??= setTimeout(() => {
      timer = undefined;
      send({ source: IPC_SOURCE, type: "connections", count: engine.clientsCount });
    }, CONNECTIONS_REPORT_DELAY_MS);
  };
  engine.on("connection", (conn: EngineSocket) => {
    changed();
    conn.once("close", changed);
  });
}
