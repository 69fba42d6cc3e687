import cluster from "node:cluster";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import jwt from "jsonwebtoken";
import { ConfigError, WORKER_CONFIG_ENV, exportSdkEnvironment, loadConfig, readEnvironment, type Config } from "../shared/config.js";
import { IPC_SOURCE } from "../shared/ipc.js";
import { createLogger } from "../shared/logger.js";
import { AdapterHost } from "./adapter-host.js";
import { Balancer } from "./balancer.js";
import { loadRecoveryState, saveRecoveryState } from "./recovery-state.js";
import { createHealthServer } from "./health-server.js";
import { hostPresence } from "./presence-host.js";
import { Supervisor } from "./supervisor.js";
import { keepPrimaryYoungGenerationSmall, workerExecArgv } from "./heap-tuning.js";
import { EmbeddedStore } from "../store/launcher.js";

function loadOrExit(): Config {
  try {
    return loadConfig(readEnvironment(), () => randomBytes(32).toString("base64url"));
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}

/** Prints the generated development key once, with a token ready to paste into a client. */
function announceGeneratedKey(config: Config): void {
  const token = jwt.sign({}, Buffer.from(config.apiKey, "utf8"), { algorithm: "HS256", expiresIn: "24h" });
  process.stderr.write(
    [
      "",
      "No API_KEY is set: generated one for this run (set API_KEY to keep it across restarts).",
      `  API_KEY=${config.apiKey}`,
      `  A token valid for 24 h: ${token}`,
      "",
    ].join("\n") + "\n",
  );
}

async function main(): Promise<void> {
  process.title = "cerebellum-primary";
  keepPrimaryYoungGenerationSmall();
  const config = loadOrExit();
  exportSdkEnvironment(config.persistence);
  const log = createLogger(config.logLevel, { role: "primary" });
  if (config.apiKeyGenerated) announceGeneratedKey(config);

  cluster.setupPrimary({ exec: resolve(__dirname, "../worker/main.js"), serialization: "advanced", execArgv: workerExecArgv() });
  // The embedded store runs before any worker: workers find its endpoint in their configuration.
  const store = config.persistence.sink === "embedded" ? await EmbeddedStore.start(config, log.child({ component: "store" })) : undefined;
  const workerConfig = store ? store.workerConfig(config) : config;
  const supervisor = new Supervisor(config, { [WORKER_CONFIG_ENV]: JSON.stringify(workerConfig) }, log.child({ component: "supervisor" }));
  let adapterHost: AdapterHost | undefined;
  if (config.mode === "embedded") {
    hostPresence(supervisor, config, log.child({ component: "presence" }));
    const { replay, sessions } = loadRecoveryState(config, log.child({ component: "recovery" }));
    adapterHost = new AdapterHost(supervisor, replay, sessions, log.child({ component: "adapter" }));
  } else {
    // Clustered: a dead worker's presence lease would run out by itself within PRESENCE_STALE_MS;
    // this host knows sooner, so a surviving worker ends it after the crash grace.
    supervisor.on("exit", (_workerId, presenceOwner) => {
      const survivor = supervisor.readyWorkers()[0];
      if (presenceOwner && survivor) {
        supervisor.send(survivor, { source: IPC_SOURCE, type: "presence:owner-died", owner: presenceOwner });
      }
    });
  }
  let draining = false;

  const balancer = new Balancer({
    byId: (id) => supervisor.byId(id),
    ready: () => supervisor.readyWorkers(),
    message: (head) => ({ source: IPC_SOURCE, type: "connection", head }),
    headerTimeoutMs: config.balancer.headerTimeoutMs,
    log: log.child({ component: "balancer" }),
  });
  const health = createHealthServer(config, () => !draining && supervisor.allReady(), log.child({ component: "health" }));

  supervisor.start();
  const port = await balancer.listen(config.port, config.host);
  await new Promise<void>((resolveListen, reject) => {
    health.once("error", reject);
    health.listen(config.healthPort, config.host, () => resolveListen());
  });
  log.info({ port, healthPort: config.healthPort, workers: config.workers, mode: config.mode }, "cerebellum listening");

  const shutdown = async (signal: string) => {
    if (draining) return;
    draining = true;
    log.info({ signal }, "shutting down");
    const hardDeadlineAt = Date.now() + config.shutdownTimeoutMs + 2000;
    const hardDeadline = setTimeout(() => {
      log.error("shutdown deadline passed, exiting");
      // A store that did not stop (hung) must not outlive us holding its files' lock.
      store?.kill();
      process.exit(1);
    }, hardDeadlineAt - Date.now());
    hardDeadline.unref();
    await balancer.close();
    await supervisor.stop(config.shutdownTimeoutMs);
    // After the workers: their last flush goes to it. What is left of the budget bounds it.
    await store?.stop(Math.max(500, hardDeadlineAt - Date.now() - 500));
    if (adapterHost) {
      adapterHost.close();
      saveRecoveryState(config, adapterHost.log, adapterHost.sessions, log.child({ component: "recovery" }));
    }
    health.close();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  // Rolling restart: replace the workers one by one; their clients recover on the others.
  process.on("SIGHUP", () => {
    log.info("SIGHUP: rolling restart");
    void supervisor.rollingRestart(config.shutdownTimeoutMs);
  });
}

main().catch((err: unknown) => {
  console.error("cerebellum failed to start", err);
  process.exit(1);
});
