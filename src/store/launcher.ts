import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import type { Config, EmbeddedStoreEndpoint } from "../shared/config.js";
import { IPC_SOURCE } from "../shared/ipc.js";
import type { Logger } from "../shared/logger.js";
import { isFromStore, type FromStore, type ToStore } from "./ipc.js";

/** The store must be ready (or report migration progress) within this long, in ms. */
const START_TIMEOUT_MS = 30_000;
const RESTART_DELAY_MS = 500;
const RESTART_MAX_DELAY_MS = 30_000;

/**
 * The primary's handle on the embedded store process ("cerebellum-store"): started before any
 * worker (workers get its endpoint and secret in their configuration), restarted on the same
 * port if it dies (workers retry, then spill, meanwhile), stopped after the workers have flushed.
 */
export class EmbeddedStore {
  private child: ChildProcess | undefined;
  private stopping = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Shared with the workers only: any local process can reach a loopback port. */
  private readonly secret = randomBytes(24).toString("base64url");

  private constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private port: number,
  ) {}

  /** Starts the store and resolves once it listens; rejects if it cannot start. */
  static async start(config: Config, log: Logger): Promise<EmbeddedStore> {
    if (config.mode === "clustered") {
      log.warn("PERSISTENCE=embedded with REDIS_URL: history is kept per host; several hosts need PERSISTENCE=dynamodb or sqs");
    }
    const store = new EmbeddedStore(config, log, config.persistence.storePort);
    await store.launch();
    return store;
  }

  get endpoint(): EmbeddedStoreEndpoint {
    return { host: "127.0.0.1", port: this.port, secret: this.secret };
  }

  /** The workers' configuration: the embedded sink's endpoint is this store. */
  workerConfig(config: Config): Config {
    return { ...config, persistence: { ...config.persistence, embeddedStore: this.endpoint } };
  }

  private launch(): Promise<void> {
    const child = fork(resolve(__dirname, "main.js"), [], { stdio: "inherit", execArgv: [] });
    this.child = child;
    return new Promise<void>((resolveStart, rejectStart) => {
      let started = false;
      const giveUp = () => {
        child.kill("SIGKILL");
        rejectStart(new Error(`embedded store did not start within ${START_TIMEOUT_MS} ms`));
      };
      let timer = setTimeout(giveUp, START_TIMEOUT_MS);
      child.on("message", (message: unknown) => {
        if (!isFromStore(message)) return;
        const msg: FromStore = message;
        switch (msg.type) {
          case "store:ready":
            started = true;
            clearTimeout(timer);
            this.port = msg.port;
            this.log.info({ port: msg.port }, "embedded store ready");
            resolveStart();
            break;
          case "store:progress":
            // A migration copies for as long as the old store is large: it only has to keep going.
            clearTimeout(timer);
            timer = setTimeout(giveUp, START_TIMEOUT_MS);
            this.log.info({ messages: msg.messages, channels: msg.channels }, "migrating the previous embedded store");
            break;
          case "store:failed":
            clearTimeout(timer);
            rejectStart(new Error(`embedded store failed to start: ${msg.error}`));
            break;
          default: {
            const never: never = msg;
            this.log.warn({ message: never }, "unknown message from the embedded store");
          }
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        if (!started) return rejectStart(new Error(`embedded store exited during start (code ${code}, signal ${signal})`));
        this.onExit(child, code, signal);
      });
      const start: ToStore = {
        source: IPC_SOURCE,
        type: "store:start",
        path: join(this.config.dataDir, "history"),
        legacyPath: join(this.config.dataDir, "store"),
        port: this.port,
        secret: this.secret,
        // "Stored" means on disk, as "spilled" does: one fsync per write, shared by the writes
        // that arrive together (LevelDB commits them as a group); docs/persistence.md has the cost.
        sync: true,
        logLevel: this.config.logLevel,
        tables: { messages: this.config.persistence.messagesTable, channels: this.config.persistence.channelsTable },
      };
      child.send(start);
    });
  }

  private onExit(child: ChildProcess, code: number | null, signal: string | null): void {
    if (this.child !== child || this.stopping) return;
    this.child = undefined;
    this.log.error({ code, signal }, "embedded store exited; workers spill until it is back");
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopping) return;
    this.failures++;
    const delay = Math.min(RESTART_DELAY_MS * 2 ** (this.failures - 1), RESTART_MAX_DELAY_MS);
    this.log.info({ restartInMs: delay }, "restarting the embedded store");
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.launch().then(
        () => (this.failures = 0),
        (err: unknown) => {
          this.log.error({ err }, "embedded store restart failed");
          this.scheduleRestart();
        },
      );
    }, delay);
  }

  /** Ends the store at once (SIGKILL), e.g. when the primary must exit before it stopped. */
  kill(): void {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.child?.kill("SIGKILL");
  }

  /** Stops the store (after the workers are gone); bounded by `deadlineMs`, then SIGKILL. */
  async stop(deadlineMs = 5_000): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolveStop) => {
      const timer = setTimeout(() => {
        this.log.error("embedded store did not stop in time, killing it");
        child.kill("SIGKILL");
      }, deadlineMs);
      child.once("exit", () => {
        clearTimeout(timer);
        resolveStop();
      });
      const stop: ToStore = { source: IPC_SOURCE, type: "store:stop" };
      if (child.connected) child.send(stop);
      else child.kill("SIGKILL");
    });
  }
}
