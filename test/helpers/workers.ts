import type { Socket } from "socket.io-client";
import { connect, type ClientOptions } from "./client.js";
import type { RunningServer } from "./server.js";
import { workerOf } from "../../harness/sockets.js";

export { workerOf };

/** One connection on each of the server's two workers, the lower worker id first. */
export async function oneOnEachWorker(server: RunningServer, options: ClientOptions = {}): Promise<[Socket, Socket]> {
  const byWorker = new Map<number, Socket>();
  for (let i = 0; i < 20 && byWorker.size < 2; i++) {
    const socket = await connect(server.url, server.token(), options);
    if (byWorker.has(workerOf(socket))) socket.close();
    else byWorker.set(workerOf(socket), socket);
  }
  if (byWorker.size !== 2) throw new Error(`connections reached ${byWorker.size} worker(s), not 2`);
  return [...byWorker.entries()].sort(([a], [b]) => a - b).map(([, s]) => s) as [Socket, Socket];
}

/** The server's JSON log lines with this message. */
export function logLines<T extends object>(server: RunningServer, msg: string): Array<T & { worker?: number }> {
  const lines: Array<T & { worker?: number }> = [];
  for (const line of server.output) {
    if (!line.startsWith("{") || !line.includes(msg)) continue;
    const entry = JSON.parse(line) as T & { worker?: number; msg?: string };
    if (entry.msg === msg) lines.push(entry);
  }
  return lines;
}
