import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import type { EmbeddedStoreEndpoint } from "../../src/shared/config.js";
import { IPC_SOURCE } from "../../src/shared/ipc.js";
import { isFromStore, type ToStore } from "../../src/store/ipc.js";

/** The product's embedded store process (the compiled `src/store/main.js`), started as the primary starts it. */
export interface StoreProcess {
  pid: number;
  endpoint: EmbeddedStoreEndpoint;
  /** Asks it to stop, as the primary does at shutdown; resolves on its exit. */
  stop(): Promise<void>;
}

const STORE_MAIN = resolve(__dirname, "../../src/store/main.js");

/** Starts a store over `dataDir/history` (and migrates `dataDir/store` if it holds a dynalite store). */
export async function startStoreProcess(dataDir: string, options: { sync: boolean; logLevel?: string }): Promise<StoreProcess> {
  const child: ChildProcess = fork(STORE_MAIN, [], { stdio: "inherit", execArgv: [] });
  const secret = randomBytes(16).toString("base64url");
  const port = await new Promise<number>((resolveReady, reject) => {
    child.on("message", (message: unknown) => {
      if (!isFromStore(message)) return;
      if (message.type === "store:ready") resolveReady(message.port);
      if (message.type === "store:failed") reject(new Error(message.error));
    });
    child.once("exit", (code) => reject(new Error(`the store exited at start (code ${code})`)));
    const start: ToStore = {
      source: IPC_SOURCE,
      type: "store:start",
      path: join(dataDir, "history"),
      legacyPath: join(dataDir, "store"),
      port: 0,
      secret,
      sync: options.sync,
      logLevel: options.logLevel ?? "warn",
      tables: { messages: "messages", channels: "channels" },
    };
    child.send(start);
  });
  return {
    pid: child.pid!,
    endpoint: { host: "127.0.0.1", port, secret },
    stop: () =>
      new Promise<void>((resolveStop) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolveStop();
        child.once("exit", () => resolveStop());
        const stop: ToStore = { source: IPC_SOURCE, type: "store:stop" };
        child.send(stop);
      }),
  };
}
