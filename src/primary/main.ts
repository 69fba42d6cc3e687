import cluster, { type Worker } from "node:cluster";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import jwt from "jsonwebtoken";
import { ConfigError, WORKER_CONFIG_ENV, exportSdkEnvironment, loadConfig, readEnvironment, type Config } from "../shared/config.js";
import { IPC_SOURCE, type WorkerMessage } from "../shared/ipc.js";
import { createLogger } from "../shared/logger.js";
import { AdapterHost } from "./adapter-host.js";
import { Admission } from "./admission.js";
import { Balancer } from "./balancer.js";
import { loadRecoveryState, saveRecoveryState } from "./recovery-state.js";
import { createHealthServer, loginRouteWhere } from "./health-server.js";
import { HostMetrics } from "./metrics.js";
import { AdminPage } from "./admin.js";
import { ServerApiClient } from "./server-api-client.js";
import { hostPresence } from "./presence-host.js";
import { Supervisor } from "./supervisor.js";
import { keepPrimaryYoungGenerationSmall, workerExecArgv } from "./heap-tuning.js";
import { EmbeddedStore } from "../store/launcher.js";
import { judgeRuntime } from "./runtime.js";

function loadOrExit(): Config {
  try {
    return loadConfig(readEnvironment(), generatedKey, process.stdout.isTTY === true);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}

/** Where a generated development key is kept, under DATA_DIR. */
const DEVELOPMENT_KEY_FILE = "development-api-key";

/**
 * A key for a server started without API_KEY. Outside production it is kept in DATA_DIR (owner
 * read-only), so that tokens survive restarts, `npm run dev`'s on every change included.
 */
function generatedKey({ dataDir, env }: { dataDir: string; env: string }): string {
  const fresh = randomBytes(32).toString("base64url");
  if (env === "production") return fresh;
  const file = join(dataDir, DEVELOPMENT_KEY_FILE);
  try {
    const kept = readFileSync(file, "utf8").trim();
    if (kept.length >= 32) return kept;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") console.error(`Could not read ${file}: ${(err as Error).message}; using a new key`);
  }
  try {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, `${fresh}\n`, { mode: 0o600 });
  } catch (err) {
    // A read-only DATA_DIR: the key lasts this run only, as it says when printed.
    console.error(`Could not keep the generated key in ${file}: ${(err as Error).message}`);
  }
  return fresh;
}

/** Prints the generated development key once, with a token ready to paste into a client. */
function announceGeneratedKey(config: Config): void {
  const token = jwt.sign({}, Buffer.from(config.apiKey, "utf8"), { algorithm: "HS256", expiresIn: "24h" });
  process.stderr.write(
    [
      "",
      config.env === "production"
        ? "No API_KEY is set: generated one for this run (set API_KEY to keep it across restarts)."
        : `No API_KEY is set: using a development key, kept in ${join(config.dataDir, DEVELOPMENT_KEY_FILE)} across restarts.`,
      `  API_KEY=${config.apiKey}`,
      `  A token valid for 24 h: ${token}`,
      "",
    ].join("\n") + "\n",
  );
}

/** The server's version, from package.json (shown on the admin page). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(resolve(__dirname, "../../../package.json"), "utf8")) as { version?: string }).version ?? "unknown";
  } catch {
    return "unknown";
  }
}

async function main(): Promise<void> {
  process.title = "cerebellum-primary";
  const runtime = judgeRuntime(process.versions.node);
  if (runtime.verdict === "refuse") {
    console.error(runtime.message);
    process.exit(1);
  }
  keepPrimaryYoungGenerationSmall();
  const config = loadOrExit();
  exportSdkEnvironment(config.persistence);
  const log = createLogger(config.logLevel, { role: "primary" }, config.logFormat);
  if (config.apiKeyGenerated) announceGeneratedKey(config);
  if (runtime.verdict === "warn") log.warn({ node: process.versions.node }, runtime.message);
  if (!config.httpApi.key) log.warn("HTTP_API_AUTH=off: /data and /api/<method> on PORT answer anyone who reaches the port (trusted networks only)");

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

  const admission = new Admission({
    ratePerWorker: config.balancer.connectRateLimit,
    maxPerWorker: config.balancer.maxConnectionsPerWorker,
    workers: config.workers,
  });
  supervisor.on("message", (worker: Worker, message: WorkerMessage) => {
    if (message.type === "connections") admission.reported(worker.id, message.count);
  });
  supervisor.on("exit", (workerId: number) => admission.workerGone(workerId));
  const balancer = new Balancer({
    byId: (id) => supervisor.byId(id),
    ready: () => supervisor.readyWorkers(),
    message: (head) => ({ source: IPC_SOURCE, type: "connection", head }),
    headerTimeoutMs: config.balancer.headerTimeoutMs,
    admission,
    log: log.child({ component: "balancer" }),
  });
  const metrics = new HostMetrics({ supervisor, refused: () => balancer.refusedTotal });
  // The main port once bound (PORT=0 asks the system): the admin page calls the server API there.
  let mainPort = config.port;
  const admin = config.adminPassword
    ? new AdminPage({
        config,
        supervisor,
        metrics,
        adapterHost,
        api: new ServerApiClient(config, () => mainPort),
        version: packageVersion(),
        log: log.child({ component: "admin" }),
      })
    : undefined;
  const health = createHealthServer(config, () => !draining && supervisor.allReady(), log.child({ component: "health" }), metrics, admin);

  supervisor.start();
  const port = await balancer.listen(config.port, config.host);
  mainPort = port;
  await new Promise<void>((resolveListen, reject) => {
    health.once("error", reject);
    health.listen(config.healthPort, config.host, () => resolveListen());
  });
  // The ports bound (PORT or HEALTH_PORT 0 asks the system for a free one).
  const healthAddress = health.address();
  const healthPort = typeof healthAddress === "object" && healthAddress ? healthAddress.port : config.healthPort;
  log.info({ port, healthPort, workers: config.workers, mode: config.mode, metrics: config.metricsToken ? "bearer token" : "open", admin: admin ? `http://${config.host}:${healthPort}/admin` : "off" }, "cerebellum listening");
  // Whether the side port mints tokens, and for whom: said once, at every start.
  const loginWhere = loginRouteWhere(config);
  const loginLine = { loginRoute: config.loginRoute, url: `http://${config.host}:${healthPort}/login` };
  if (config.loginRoute === "on") log.warn(loginLine, `POST /login is on: it mints a token for ${loginWhere}`);
  else if (loginWhere) log.info(loginLine, `POST /login is on: it mints a token for ${loginWhere}`);
  else log.info({ loginRoute: config.loginRoute }, "POST /login is off (LOGIN_ROUTE)");

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
