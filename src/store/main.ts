import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdirSync } from "node:fs";
import dynalite from "dynalite";
import { IPC_SOURCE } from "../shared/ipc.js";
import { createLogger, type Logger } from "../shared/logger.js";
import { createDynamoClient } from "../worker/persistence/aws-clients.js";
import { isToStore, type FromStore, type ToStore } from "./ipc.js";
import { ensureTables } from "./tables.js";

/**
 * The embedded message store: dynalite (a DynamoDB-compatible server) over LevelDB files under
 * DATA_DIR, on a loopback port, in its own process so that it never competes with the
 * primary's accept path. Started and stopped by the primary over IPC; it ignores terminal
 * signals (Ctrl-C reaches the whole process group) so that it outlives the workers' last flush.
 */
process.title = "cerebellum-store";

let server: Server | undefined;
let log: Logger = createLogger("info", { role: "store" });
let stopping = false;

const send = (message: FromStore) => {
  if (process.connected) process.send?.(message);
};

async function start(message: Extract<ToStore, { type: "store:start" }>): Promise<void> {
  log = createLogger(message.logLevel, { role: "store" });
  mkdirSync(message.path, { recursive: true });
  // Tables become ACTIVE at once: there is no provisioning to wait for here.
  const instance = dynalite({ path: message.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  server = instance;
  await new Promise<void>((resolve, reject) => {
    instance.once("error", reject);
    instance.listen(message.port, "127.0.0.1", () => resolve());
  });
  const port = (instance.address() as AddressInfo).port;
  const client = createDynamoClient({
    region: "us-east-1",
    dynamodbEndpoint: `http://127.0.0.1:${port}`,
    sqsEndpoint: undefined,
    requestTimeoutMs: 10_000,
    localCredentials: true,
  });
  try {
    const createdTables = await ensureTables(client, message.tables);
    log.info({ port, path: message.path, createdTables }, "store ready");
    send({ source: IPC_SOURCE, type: "store:ready", port, createdTables });
  } finally {
    client.destroy();
  }
}

function stop(reason: string): void {
  if (stopping) return;
  stopping = true;
  log.info({ reason }, "store stopping");
  const exit = () => process.exit(0);
  if (!server) return exit();
  // Workers are gone by now; close what keep-alive connections remain so close() can finish.
  server.closeAllConnections();
  server.close(() => exit());
  setTimeout(() => {
    log.error("store did not close in time");
    process.exit(1);
  }, 10_000).unref();
}

process.on("message", (message: unknown) => {
  if (!isToStore(message)) return;
  if (message.type === "store:stop") return stop("primary asked");
  start(message).catch((err: unknown) => {
    log.error({ err }, "store failed to start");
    send({ source: IPC_SOURCE, type: "store:failed", error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  });
});
// The primary decides when to stop (after the workers flushed): a signal, which Ctrl-C or a
// container runtime sends to every process at once, only starts a long grace period.
const SIGNAL_GRACE_MS = 60_000;
let graceTimer: NodeJS.Timeout | undefined;
const onSignal = (signal: string) => {
  log.debug({ signal }, "signal received: waiting for the primary to stop the store");
  graceTimer ??= setTimeout(() => stop(`${signal}, and the primary never asked`), SIGNAL_GRACE_MS);
};
process.on("SIGINT", () => onSignal("SIGINT"));
process.on("SIGTERM", () => onSignal("SIGTERM"));
process.on("disconnect", () => stop("primary gone"));
