import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { readFileSync, existsSync } from "node:fs";
import { parse as parseDotenv } from "dotenv";
import { z } from "zod";

/** Reads a `.env` file (if present) under the real environment, which wins. */
export function readEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  envFile = resolve(".env"),
): Record<string, string | undefined> {
  const fromFile = existsSync(envFile) ? parseDotenv(readFileSync(envFile)) : {};
  return { ...fromFile, ...env };
}

/**
 * Node's own NODE_OPTIONS (not an option of ours: Node applies it to every process before any of
 * our code runs). Read here, like every other variable, for the flags the primary passes on.
 */
export function nodeOptions(env: NodeJS.ProcessEnv = process.env): string {
  return env.NODE_OPTIONS ?? "";
}

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const port = int(0, 65535);
const emptyToUndefined = (v: unknown) => (v === "" ? undefined : v);
const optionalString = z.preprocess(emptyToUndefined, z.string().optional());

/**
 * Every option of the server: environment variable name, type, default and unit.
 * `.env.example` and the README's configuration table mirror this list.
 */
const envSchema = z.object({
  NODE_ENV: z.preprocess(emptyToUndefined, z.enum(["development", "production", "test"]).default("development")),
  HOST: z.preprocess(emptyToUndefined, z.string().default("0.0.0.0")),
  PORT: z.preprocess(emptyToUndefined, port.default(8001)),
  HEALTH_PORT: z.preprocess(emptyToUndefined, port.default(3000)),
  LOGIN_ROUTE: z.preprocess(emptyToUndefined, z.enum(["off", "loopback", "on"]).default("off")),
  METRICS_TOKEN: z.preprocess(emptyToUndefined, z.string().min(16, "must be at least 16 characters").optional()),
  ADMIN_PASSWORD: z.preprocess(emptyToUndefined, z.string().min(12, "must be at least 12 characters").optional()),
  WORKERS: z.preprocess(emptyToUndefined, int(1, 256).optional()),
  API_KEY: z.preprocess(emptyToUndefined, z.string().min(16, "must be at least 16 characters").optional()),
  HTTP_API_KEY: z.preprocess(emptyToUndefined, z.string().min(16, "must be at least 16 characters").optional()),
  HTTP_API_AUTH: z.preprocess(emptyToUndefined, z.enum(["key", "off"]).default("key")),
  HTTP_API_BODY_MAX_BYTES: z.preprocess(emptyToUndefined, int(1024, 200_000_000).optional()),
  JWT_PUBLIC_KEY: optionalString,
  JWT_ALGORITHMS: z.preprocess(emptyToUndefined, z.string().optional()),
  JWT_REQUIRE_EXP: z.preprocess(emptyToUndefined, bool.default(true)),
  JWT_CLOCK_TOLERANCE_S: z.preprocess(emptyToUndefined, int(0, 300).default(0)),
  JWT_BATCH_SIZE: z.preprocess(emptyToUndefined, int(1, 1000).default(32)),
  JWT_BATCH_WAIT_MS: z.preprocess(emptyToUndefined, int(0, 100).default(1)),
  POOL_THREADS: z.preprocess(emptyToUndefined, int(1, 64).default(1)),
  REDIS_URL: z.preprocess(emptyToUndefined, z.string().url().optional()),
  REDIS_ENDPOINT_ADDRESS: optionalString,
  REDIS_ENDPOINT_PORT: z.preprocess(emptyToUndefined, port.optional()),
  REDIS_KEY_PREFIX: z.preprocess(emptyToUndefined, z.string().min(1).max(64).default("cerebellum:")),
  DATA_DIR: z.preprocess(emptyToUndefined, z.string().default("./data")),
  LOG_LEVEL: z.preprocess(
    emptyToUndefined,
    z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  ),
  LOG_FORMAT: z.preprocess(emptyToUndefined, z.enum(["auto", "json", "pretty"]).default("auto")),
  SHUTDOWN_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(100, 600_000).default(10_000)),
  PING_INTERVAL_MS: z.preprocess(emptyToUndefined, int(1000, 300_000).default(25_000)),
  PING_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(1000, 300_000).default(20_000)),
  MAX_HTTP_BUFFER_SIZE: z.preprocess(emptyToUndefined, int(1024, 100_000_000).default(1_000_000)),
  MESSAGE_MAX_BYTES: z.preprocess(emptyToUndefined, int(16, 100_000_000).default(131_072)),
  CLIENT_QUEUE_MAX_BYTES: z.preprocess(emptyToUndefined, int(0, 2_000_000_000).default(4_194_304)),
  CHANNEL_NAME_MAX_LENGTH: z.preprocess(emptyToUndefined, int(1, 1024).default(200)),
  BROADCAST_MAX_PENDING: z.preprocess(emptyToUndefined, int(1, 10_000_000).default(100_000)),
  CLIENT_RATE_LIMIT_PER_SEC: z.preprocess(emptyToUndefined, int(0, 1_000_000).default(100)),
  CLIENT_RATE_BURST: z.preprocess(emptyToUndefined, int(1, 1_000_000).default(200)),
  CLIENT_RATE_MAX_REFUSALS: z.preprocess(emptyToUndefined, int(1, 1_000_000).default(100)),
  RECOVERY_MAX_DISCONNECTION_MS: z.preprocess(emptyToUndefined, int(0, 3_600_000).default(120_000)),
  RECOVERY_LOG_MAX_ENTRIES: z.preprocess(emptyToUndefined, int(1, 10_000_000).default(100_000)),
  RECOVERY_LOG_MAX_BYTES: z.preprocess(emptyToUndefined, int(1024, 64 * 1024 ** 3).default(128 * 1024 ** 2)),
  RECOVERY_MAX_SESSIONS: z.preprocess(emptyToUndefined, int(1, 10_000_000).default(100_000)),
  PRESENCE_GRACE_MS: z.preprocess(emptyToUndefined, int(0, 3_600_000).default(15_000)),
  PRESENCE_CRASH_GRACE_MS: z.preprocess(emptyToUndefined, int(0, 600_000).default(3_000)),
  PRESENCE_STALE_MS: z.preprocess(emptyToUndefined, int(1_000, 600_000).default(15_000)),
  PRESENCE_REAP_INTERVAL_MS: z.preprocess(emptyToUndefined, int(100, 60_000).default(1_000)),
  PRESENCE_MAX_MEMBERS: z.preprocess(emptyToUndefined, int(1, 1_000_000).default(10_000)),
  PRESENCE_MAX_CHANNELS_PER_MEMBER: z.preprocess(emptyToUndefined, int(1, 100_000).default(100)),
  PRESENCE_INFO_MAX_BYTES: z.preprocess(emptyToUndefined, int(16, 1_000_000).default(4_096)),
  PRESENCE_INFO_MAX_FIELDS: z.preprocess(emptyToUndefined, int(1, 1_000).default(32)),
  CORS_ORIGIN: z.preprocess(emptyToUndefined, z.string().default("*")),
  WORKER_RESTART_DELAY_MS: z.preprocess(emptyToUndefined, int(0, 60_000).default(500)),
  WORKER_RESTART_MAX_DELAY_MS: z.preprocess(emptyToUndefined, int(0, 600_000).default(30_000)),
  BALANCER_HEADER_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(100, 120_000).default(10_000)),
  IPC_QUEUE_MAX_BYTES: z.preprocess(emptyToUndefined, int(0, 8_000_000_000).default(67_108_864)),
  CONNECT_RATE_LIMIT: z.preprocess(emptyToUndefined, int(0, 1_000_000).default(500)),
  MAX_CONNECTIONS_PER_WORKER: z.preprocess(emptyToUndefined, int(0, 10_000_000).default(50_000)),
  AWS_REGION: z.preprocess(emptyToUndefined, z.string().default("us-east-1")),
  DYNAMODB_ENDPOINT: z.preprocess(emptyToUndefined, z.string().url().optional()),
  DYNAMODB_MESSAGES_TABLE_NAME: z.preprocess(emptyToUndefined, z.string().min(3).max(255).default("messages")),
  DYNAMODB_CHANNELS_TABLE_NAME: z.preprocess(emptyToUndefined, z.string().min(3).max(255).default("channels")),
  QUEUE_URL: z.preprocess(emptyToUndefined, z.string().url().optional()),
  SQS_ENDPOINT: z.preprocess(emptyToUndefined, z.string().url().optional()),
  PERSISTENCE: z.preprocess(emptyToUndefined, z.enum(["embedded", "dynamodb", "sqs", "off"]).optional()),
  PERSISTENCE_BATCH_SIZE: z.preprocess(emptyToUndefined, int(1, 1000).default(100)),
  PERSISTENCE_BATCH_WAIT_MS: z.preprocess(emptyToUndefined, int(0, 600_000).default(50)),
  PERSISTENCE_QUEUE_MAX: z.preprocess(emptyToUndefined, int(1, 10_000_000).default(10_000)),
  PERSISTENCE_CONCURRENCY: z.preprocess(emptyToUndefined, int(1, 64).default(4)),
  PERSISTENCE_RETRIES: z.preprocess(emptyToUndefined, int(0, 1000).default(4)),
  PERSISTENCE_RETRY_BASE_MS: z.preprocess(emptyToUndefined, int(1, 600_000).default(100)),
  PERSISTENCE_RETRY_MAX_MS: z.preprocess(emptyToUndefined, int(1, 3_600_000).default(5_000)),
  PERSISTENCE_REQUEST_TIMEOUT_MS: z.preprocess(emptyToUndefined, int(100, 300_000).default(5_000)),
  PERSISTENCE_REPLAY_INTERVAL_MS: z.preprocess(emptyToUndefined, int(50, 3_600_000).default(5_000)),
  PERSISTENCE_SPILL_MAX_BYTES: z.preprocess(emptyToUndefined, int(1024).default(1_073_741_824)),
  PERSISTENCE_CREATE_TABLES: z.preprocess(emptyToUndefined, bool.optional()),
  STORE_PORT: z.preprocess(emptyToUndefined, port.default(0)),
  CONSUMER_WAIT_SECONDS: z.preprocess(emptyToUndefined, int(0, 20).default(20)),
  CONSUMER_MAX_MESSAGES: z.preprocess(emptyToUndefined, int(1, 10).default(10)),
  CONSUMER_CONCURRENCY: z.preprocess(emptyToUndefined, int(1, 64).default(1)),
  CONSUMER_VISIBILITY_TIMEOUT_S: z.preprocess(emptyToUndefined, int(0, 43_200).optional()),
  // Read only to know whether credentials were given (never copied into the config).
  AWS_ACCESS_KEY_ID: optionalString,
  AWS_PROFILE: optionalString,
  // The AWS SDK's own switch (it reads the environment); defaulted here, handed on by exportSdkEnvironment.
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: z.preprocess(emptyToUndefined, bool.default(true)),
});

/** Every environment variable the server reads (the README and .env.example document each). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

export type Mode = "embedded" | "clustered";
export type LogFormat = "json" | "pretty";
export type JwtAlgorithm = "HS256" | "RS256" | "ES256";

export interface Config {
  readonly env: "development" | "production" | "test";
  readonly host: string;
  readonly port: number;
  readonly healthPort: number;
  /**
   * `POST /login` on the side port (a development helper that mints tokens): off, answering
   * loopback clients only, or anyone who reaches the port.
   */
  readonly loginRoute: "off" | "loopback" | "on";
  /** `GET /metrics` on the side port asks for `Authorization: Bearer <token>` when set; open otherwise. */
  readonly metricsToken: string | undefined;
  /** The admin page (`GET /admin` on the side port) is on, behind this password, when set; off otherwise. */
  readonly adminPassword: string | undefined;
  readonly workers: number;
  readonly mode: Mode;
  readonly apiKey: string;
  /** True when no API_KEY was configured and one was generated for this run. */
  readonly apiKeyGenerated: boolean;
  readonly jwt: {
    readonly publicKey: string | undefined;
    readonly algorithms: readonly JwtAlgorithm[];
    readonly requireExp: boolean;
    readonly clockToleranceS: number;
    readonly batchSize: number;
    readonly batchWaitMs: number;
  };
  readonly poolThreads: number;
  /** `/data` and `/api/<method>` on PORT, for backends. */
  readonly httpApi: {
    /** The key a request must carry (X-API-Key or Authorization: Bearer); undefined: HTTP_API_AUTH=off, no key asked. */
    readonly key: string | undefined;
    /** Largest request body, in bytes; larger gets 413. */
    readonly bodyMaxBytes: number;
  };
  readonly redis: { readonly url: string; readonly keyPrefix: string } | undefined;
  readonly dataDir: string;
  readonly logLevel: string;
  /** What one side of a primary–worker IPC channel may have written that the other has not read (0: no bound). */
  readonly ipcQueueMaxBytes: number;
  /** `pretty`: one coloured line per entry, for a person at a terminal; `json`: one JSON object per line. */
  readonly logFormat: LogFormat;
  readonly shutdownTimeoutMs: number;
  readonly engine: {
    readonly pingIntervalMs: number;
    readonly pingTimeoutMs: number;
    readonly maxHttpBufferSize: number;
    readonly corsOrigin: string;
  };
  readonly limits: {
    readonly messageMaxBytes: number;
    readonly channelNameMaxLength: number;
    /** What the server may hold for one client that does not read, in bytes (0: no cap). */
    readonly clientQueueMaxBytes: number;
    /**
     * Own broadcasts a worker holds that the primary (embedded) or Redis (clustered, while it is
     * down or a restore reads the stream) has not taken yet; past it a publish gets OVERLOADED.
     */
    readonly broadcastMaxPending: number;
  };
  /** Client events per connection (a token bucket); past it RATE_LIMITED, then a disconnect. */
  readonly clientRate: {
    /** Events per second on average; 0: no limit. */
    readonly perSec: number;
    /** Events at once after a quiet spell. */
    readonly burst: number;
    /** Refusals a connection may get within 10 s; the next one disconnects it. */
    readonly maxRefusals: number;
  };
  readonly presence: {
    /** A member whose connection dropped (recoverably) stays listed this long before `leave`, in ms. */
    readonly graceMs: number;
    /** Members of a worker that died are removed this long after, unless they recovered, in ms. */
    readonly crashGraceMs: number;
    /** A host whose lease is older than this is dead: its members are removed (clustered), in ms. */
    readonly staleMs: number;
    readonly reapIntervalMs: number;
    readonly maxMembers: number;
    readonly maxChannelsPerMember: number;
    readonly infoMaxBytes: number;
    readonly infoMaxFields: number;
  };
  readonly recovery: {
    readonly maxDisconnectionMs: number;
    /** Embedded replay log: most broadcasts kept (each also expires after maxDisconnectionMs). */
    readonly logMaxEntries: number;
    /** Embedded replay log: most bytes of broadcasts kept. */
    readonly logMaxBytes: number;
    /** Most disconnected sessions kept for recovery; in clustered mode also sizes the stream. */
    readonly maxSessions: number;
  };
  readonly supervisor: { readonly restartDelayMs: number; readonly restartMaxDelayMs: number };
  readonly balancer: {
    readonly headerTimeoutMs: number;
    /** New connections per second per worker, host-wide (0: no limit). */
    readonly connectRateLimit: number;
    /** 0: no cap. */
    readonly maxConnectionsPerWorker: number;
  };
  readonly persistence: {
    readonly sink: "embedded" | "dynamodb" | "sqs" | "off";
    readonly awsRegion: string;
    readonly dynamodbEndpoint: string | undefined;
    readonly messagesTable: string;
    readonly channelsTable: string;
    readonly queueUrl: string | undefined;
    readonly sqsEndpoint: string | undefined;
    /** Set by the primary for its workers once the embedded store runs (PERSISTENCE=embedded). */
    readonly embeddedStore?: EmbeddedStoreEndpoint | undefined;
    /** Hide the AWS SDK's notice that its releases after January 2027 need Node 22 (README, "Quick start"). */
    readonly hideSdkNodeVersionNotice: boolean;
  } & PersistenceTuning;
}

/** Where a worker reaches the embedded store, and the secret it proves itself with. */
export interface EmbeddedStoreEndpoint {
  readonly host: string;
  readonly port: number;
  readonly secret: string;
}

/** How the persistence pipeline batches, bounds, retries and spills (docs/persistence.md). */
export interface PersistenceTuning {
  /** Messages per flush (one pool task). */
  readonly batchSize: number;
  /** Oldest a queued message may get before its batch is flushed, in ms. */
  readonly batchWaitMs: number;
  /** Messages per worker accepted but not yet durable; beyond it publishes get OVERLOADED. */
  readonly queueMax: number;
  /** Batches in flight to the store per worker. */
  readonly concurrency: number;
  /** Retries of a failing batch before it is spilled to disk. */
  readonly retries: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Per-request timeout of the AWS clients, in ms. */
  readonly requestTimeoutMs: number;
  /** How often a worker with spilled messages probes the store, in ms. */
  readonly replayIntervalMs: number;
  /** Largest spill file per worker, in bytes; at the bound batches stay queued in memory. */
  readonly spillMaxBytes: number;
  /** Create missing tables at start (default: when DYNAMODB_ENDPOINT is set, i.e. development). */
  readonly createTables: boolean;
  /** Loopback port of the embedded store (0: any free port). */
  readonly storePort: number;
  /** Use static dummy AWS credentials: an endpoint is set and the environment gives none. */
  readonly localCredentials: boolean;
}

/** What the queue consumer (`npm run consumer`, or the Lambda handler) needs. */
export interface ConsumerConfig {
  readonly logLevel: string;
  readonly persistence: Config["persistence"];
  readonly waitSeconds: number;
  readonly maxMessages: number;
  readonly concurrency: number;
  readonly visibilityTimeoutS: number | undefined;
}

/** A configuration problem; `variable` names the environment variable at fault. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
  }
}

/** What a server API body may hold besides its content, by default (HTTP_API_BODY_MAX_BYTES). */
export const HTTP_API_ENVELOPE_BYTES = 65_536;

const ALGORITHMS: readonly JwtAlgorithm[] = ["HS256", "RS256", "ES256"];

function parseAlgorithms(raw: string | undefined, hasPublicKey: boolean): JwtAlgorithm[] {
  if (raw === undefined) return hasPublicKey ? ["RS256", "ES256"] : ["HS256"];
  const list = raw.split(",").map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new ConfigError("JWT_ALGORITHMS", "must list at least one algorithm");
  for (const alg of list) {
    if (!(ALGORITHMS as readonly string[]).includes(alg)) {
      throw new ConfigError("JWT_ALGORITHMS", `unsupported algorithm "${alg}" (allowed: ${ALGORITHMS.join(", ")})`);
    }
  }
  const algs = list as JwtAlgorithm[];
  if (algs.some((a) => a !== "HS256") && !hasPublicKey) {
    throw new ConfigError("JWT_ALGORITHMS", "RS256/ES256 need JWT_PUBLIC_KEY");
  }
  return algs;
}

function redisUrlFrom(v: z.infer<typeof envSchema>): string | undefined {
  if (v.REDIS_URL) return v.REDIS_URL;
  if (v.REDIS_ENDPOINT_ADDRESS) return `redis://${v.REDIS_ENDPOINT_ADDRESS}:${v.REDIS_ENDPOINT_PORT ?? 6379}`;
  return undefined;
}

/** Parses the raw environment with the schema; a ConfigError names the first bad variable. */
function parseEnvironment(raw: Record<string, string | undefined>): z.infer<typeof envSchema> {
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? "environment");
    throw new ConfigError(variable, `${issue.message} (got ${JSON.stringify(raw[variable] ?? null)})`);
  }
  return parsed.data;
}

/**
 * Validates the environment once and returns a frozen configuration.
 * Throws a ConfigError naming the first bad variable. `generateKey` supplies a key
 * when API_KEY is unset (outside production, or with JWT_PUBLIC_KEY), given where state lives.
 * `stdoutIsTerminal` decides LOG_FORMAT=auto.
 */
export function loadConfig(
  raw: Record<string, string | undefined>,
  generateKey: (where: { dataDir: string; env: Config["env"] }) => string,
  stdoutIsTerminal = false,
): Config {
  const v = parseEnvironment(raw);
  if (v.NODE_ENV === "production" && !v.API_KEY && !v.JWT_PUBLIC_KEY) {
    throw new ConfigError("API_KEY", "is required when NODE_ENV=production");
  }
  if (v.NODE_ENV === "production" && v.LOGIN_ROUTE !== "off") {
    throw new ConfigError("LOGIN_ROUTE", "must be off when NODE_ENV=production (POST /login mints a token for anyone who asks)");
  }
  if (v.REDIS_ENDPOINT_PORT !== undefined && !v.REDIS_ENDPOINT_ADDRESS && !v.REDIS_URL) {
    throw new ConfigError("REDIS_ENDPOINT_ADDRESS", "is required when REDIS_ENDPOINT_PORT is set");
  }
  if (v.PING_TIMEOUT_MS > v.RECOVERY_MAX_DISCONNECTION_MS && v.RECOVERY_MAX_DISCONNECTION_MS > 0) {
    throw new ConfigError("PING_TIMEOUT_MS", "must not exceed RECOVERY_MAX_DISCONNECTION_MS");
  }
  const algorithms = parseAlgorithms(v.JWT_ALGORITHMS, Boolean(v.JWT_PUBLIC_KEY));
  const redisUrl = redisUrlFrom(v);
  const sink = v.PERSISTENCE ?? (v.QUEUE_URL ? "sqs" : v.DYNAMODB_ENDPOINT ? "dynamodb" : "embedded");
  if (sink === "sqs" && !v.QUEUE_URL) throw new ConfigError("QUEUE_URL", "is required when PERSISTENCE=sqs");
  const apiKey = v.API_KEY ?? generateKey({ dataDir: resolve(v.DATA_DIR), env: v.NODE_ENV });

  const config: Config = {
    env: v.NODE_ENV,
    host: v.HOST,
    port: v.PORT,
    healthPort: v.HEALTH_PORT,
    loginRoute: v.LOGIN_ROUTE,
    metricsToken: v.METRICS_TOKEN,
    adminPassword: v.ADMIN_PASSWORD,
    workers: v.WORKERS ?? availableParallelism(),
    mode: redisUrl ? "clustered" : "embedded",
    apiKey,
    apiKeyGenerated: v.API_KEY === undefined,
    jwt: {
      publicKey: v.JWT_PUBLIC_KEY?.replace(/\\n/g, "\n"),
      algorithms,
      requireExp: v.JWT_REQUIRE_EXP,
      clockToleranceS: v.JWT_CLOCK_TOLERANCE_S,
      batchSize: v.JWT_BATCH_SIZE,
      batchWaitMs: v.JWT_BATCH_WAIT_MS,
    },
    poolThreads: v.POOL_THREADS,
    httpApi: {
      key: v.HTTP_API_AUTH === "off" ? undefined : (v.HTTP_API_KEY ?? apiKey),
      // The largest publish plus room for its envelope (channel names, field names).
      bodyMaxBytes: v.HTTP_API_BODY_MAX_BYTES ?? v.MESSAGE_MAX_BYTES + HTTP_API_ENVELOPE_BYTES,
    },
    redis: redisUrl ? { url: redisUrl, keyPrefix: v.REDIS_KEY_PREFIX } : undefined,
    dataDir: resolve(v.DATA_DIR),
    logLevel: v.LOG_LEVEL,
    ipcQueueMaxBytes: v.IPC_QUEUE_MAX_BYTES,
    // auto: readable at a terminal outside production; JSON wherever a program reads the output.
    logFormat: v.LOG_FORMAT === "auto" ? (stdoutIsTerminal && v.NODE_ENV !== "production" ? "pretty" : "json") : v.LOG_FORMAT,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    engine: {
      pingIntervalMs: v.PING_INTERVAL_MS,
      pingTimeoutMs: v.PING_TIMEOUT_MS,
      maxHttpBufferSize: v.MAX_HTTP_BUFFER_SIZE,
      corsOrigin: v.CORS_ORIGIN,
    },
    limits: {
      messageMaxBytes: v.MESSAGE_MAX_BYTES,
      channelNameMaxLength: v.CHANNEL_NAME_MAX_LENGTH,
      clientQueueMaxBytes: v.CLIENT_QUEUE_MAX_BYTES,
      broadcastMaxPending: v.BROADCAST_MAX_PENDING,
    },
    clientRate: { perSec: v.CLIENT_RATE_LIMIT_PER_SEC, burst: v.CLIENT_RATE_BURST, maxRefusals: v.CLIENT_RATE_MAX_REFUSALS },
    presence: {
      graceMs: v.PRESENCE_GRACE_MS,
      crashGraceMs: v.PRESENCE_CRASH_GRACE_MS,
      staleMs: v.PRESENCE_STALE_MS,
      reapIntervalMs: v.PRESENCE_REAP_INTERVAL_MS,
      maxMembers: v.PRESENCE_MAX_MEMBERS,
      maxChannelsPerMember: v.PRESENCE_MAX_CHANNELS_PER_MEMBER,
      infoMaxBytes: v.PRESENCE_INFO_MAX_BYTES,
      infoMaxFields: v.PRESENCE_INFO_MAX_FIELDS,
    },
    recovery: {
      maxDisconnectionMs: v.RECOVERY_MAX_DISCONNECTION_MS,
      logMaxEntries: v.RECOVERY_LOG_MAX_ENTRIES,
      logMaxBytes: v.RECOVERY_LOG_MAX_BYTES,
      maxSessions: v.RECOVERY_MAX_SESSIONS,
    },
    supervisor: { restartDelayMs: v.WORKER_RESTART_DELAY_MS, restartMaxDelayMs: v.WORKER_RESTART_MAX_DELAY_MS },
    balancer: {
      headerTimeoutMs: v.BALANCER_HEADER_TIMEOUT_MS,
      connectRateLimit: v.CONNECT_RATE_LIMIT,
      maxConnectionsPerWorker: v.MAX_CONNECTIONS_PER_WORKER,
    },
    persistence: persistenceFrom(v, sink),
  };
  return deepFreeze(config);
}

type ParsedEnv = z.infer<typeof envSchema>;

function persistenceFrom(v: ParsedEnv, sink: Config["persistence"]["sink"]): Config["persistence"] {
  if (v.PERSISTENCE_RETRY_MAX_MS < v.PERSISTENCE_RETRY_BASE_MS) {
    throw new ConfigError("PERSISTENCE_RETRY_MAX_MS", "must not be less than PERSISTENCE_RETRY_BASE_MS");
  }
  const anEndpoint = Boolean(v.DYNAMODB_ENDPOINT || v.SQS_ENDPOINT);
  return {
    sink,
    awsRegion: v.AWS_REGION,
    dynamodbEndpoint: v.DYNAMODB_ENDPOINT,
    messagesTable: v.DYNAMODB_MESSAGES_TABLE_NAME,
    channelsTable: v.DYNAMODB_CHANNELS_TABLE_NAME,
    queueUrl: v.QUEUE_URL,
    sqsEndpoint: v.SQS_ENDPOINT,
    hideSdkNodeVersionNotice: v.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED,
    batchSize: v.PERSISTENCE_BATCH_SIZE,
    batchWaitMs: v.PERSISTENCE_BATCH_WAIT_MS,
    queueMax: v.PERSISTENCE_QUEUE_MAX,
    concurrency: v.PERSISTENCE_CONCURRENCY,
    retries: v.PERSISTENCE_RETRIES,
    retryBaseMs: v.PERSISTENCE_RETRY_BASE_MS,
    retryMaxMs: v.PERSISTENCE_RETRY_MAX_MS,
    requestTimeoutMs: v.PERSISTENCE_REQUEST_TIMEOUT_MS,
    replayIntervalMs: v.PERSISTENCE_REPLAY_INTERVAL_MS,
    spillMaxBytes: v.PERSISTENCE_SPILL_MAX_BYTES,
    createTables: v.PERSISTENCE_CREATE_TABLES ?? Boolean(v.DYNAMODB_ENDPOINT),
    storePort: v.STORE_PORT,
    localCredentials: anEndpoint && !v.AWS_ACCESS_KEY_ID && !v.AWS_PROFILE,
  };
}

/**
 * The queue consumer's configuration: the persistence variables and CONSUMER_*, without the
 * server's own requirements (no API_KEY needed). Throws a ConfigError naming the bad variable.
 */
export function loadConsumerConfig(raw: Record<string, string | undefined>): ConsumerConfig {
  const v = parseEnvironment(raw);
  return deepFreeze({
    logLevel: v.LOG_LEVEL,
    persistence: persistenceFrom(v, "sqs"),
    waitSeconds: v.CONSUMER_WAIT_SECONDS,
    maxMessages: v.CONSUMER_MAX_MESSAGES,
    concurrency: v.CONSUMER_CONCURRENCY,
    visibilityTimeoutS: v.CONSUMER_VISIBILITY_TIMEOUT_S,
  });
}

/**
 * The consumer's configuration from this process's environment (and `.env`): for the Lambda
 * handler and `npm run consumer`. Like the primary, it hands the SDK its switches.
 */
export function consumerConfigFromProcess(): ConsumerConfig {
  const config = loadConsumerConfig(readEnvironment(process.env));
  exportSdkEnvironment(config.persistence);
  return config;
}

/**
 * The AWS SDK reads its switches from the environment of each process and thread that builds a
 * client. This writes ours into the environment of the process that loaded the configuration,
 * before it starts anything: forked workers, the embedded store and pool threads inherit it.
 */
export function exportSdkEnvironment(persistence: Config["persistence"], env: NodeJS.ProcessEnv = process.env): void {
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = String(persistence.hideSdkNodeVersionNotice);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** The environment variable through which the primary hands its validated configuration to workers. */
export const WORKER_CONFIG_ENV = "CEREBELLUM_WORKER_CONFIG";

/** A worker's configuration: validated by the primary, passed as JSON, never re-read from the raw env. */
export function workerConfigFrom(env: NodeJS.ProcessEnv = process.env): Config | undefined {
  const raw = env[WORKER_CONFIG_ENV];
  return raw ? deepFreeze(JSON.parse(raw) as Config) : undefined;
}

/** A worker's slot (0..WORKERS-1), stable across its restarts; the supervisor sets it. */
export function workerIndexFrom(env: NodeJS.ProcessEnv = process.env): number {
  const index = Number(env.CEREBELLUM_WORKER_INDEX ?? 0);
  return Number.isInteger(index) && index >= 0 ? index : 0;
}
