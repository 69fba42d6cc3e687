import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { IPC_SOURCE } from "../shared/ipc.js";
import { createLogger, type Logger } from "../shared/logger.js";
import { isToStore, type FromStore, type ToStore } from "./ipc.js";
import { MessageDb } from "./message-db.js";
import { hasLegacyStore, migrateDynalite } from "./migrate-dynalite.js";
import { StoreServer } from "./server.js";

/**
 * The embedded message store: LevelDB under DATA_DIR, served on a loopback port (wire.ts), in
 * its own process so that it never competes with the primary's accept path and outlives the
 * workers' last flush. Started and stopped by the primary over IPC; it ignores terminal signals
 * (Ctrl-C reaches the whole process group) until the primary asks it to stop.
 */
process.title = "cerebellum-store";

/** Requests in progress at stop get this long to finish, in ms. */
const DRAIN_MS = 5_000;
/** Past this, a stop that has not finished exits anyway, in ms. */
const STOP_DEADLINE_MS = 10_000;

let db: MessageDb | undefined;
let server: StoreServer | undefined;
let log: Logger = createLogger("info", { role: "store" });
let stopping = false;

const send = (message: FromStore) => {
  if (process.connected) process.send?.(message);
};

async function start(message: Extract<ToStore, { type: "store:start" }>): Promise<void> {
  log = createLogger(message.logLevel, { role: "store" });
  mkdirSync(dirname(message.path), { recursive: true });
  const opened = await MessageDb.open(message.path, { sync: message.sync });
  db = opened;
  if (hasLegacyStore(message.legacyPath)) {
    log.info({ from: message.legacyPath }, "migrating the history of the previous embedded store (dynalite)");
    const started = Date.now();
    const result = await migrateDynalite({
      legacyPath: message.legacyPath,
      keepAs: keptName(message.legacyPath),
      db: opened,
      tables: message.tables,
      log,
      onProgress: (copied) => send({ source: IPC_SOURCE, type: "store:progress", ...copied }),
    });
    log.info(
      { ...result, ms: Date.now() - started },
      "migrated the previous embedded store; its files are kept at keptAt and can be deleted",
    );
    if (result.otherTables.length > 0) {
      log.warn({ tables: result.otherTables, keptAt: result.keptAt }, "the previous store held other tables: not migrated");
    }
  }
  if (stopping) return;
  const listening = new StoreServer({ db: opened, secret: message.secret, log });
  server = listening;
  const port = await listening.listen(message.port);
  log.info({ port, path: message.path, sync: message.sync }, "store ready");
  send({ source: IPC_SOURCE, type: "store:ready", port });
}

/** `<path>.migrated`, or with a time stamp when that name is taken. */
function keptName(legacyPath: string): string {
  const plain = `${legacyPath}.migrated`;
  return existsSync(plain) ? `${plain}-${Date.now()}` : plain;
}

function stop(reason: string): void {
  if (stopping) return;
  stopping = true;
  log.info({ reason }, "store stopping");
  setTimeout(() => {
    log.error("store did not close in time");
    process.exit(1);
  }, STOP_DEADLINE_MS).unref();
  (async () => {
    await server?.close(DRAIN_MS);
    await db?.close();
  })().then(
    () => process.exit(0),
    (err: unknown) => {
      log.error({ err }, "store did not close cleanly");
      process.exit(1);
    },
  );
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
