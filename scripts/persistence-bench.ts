/**
 * What persisting published messages costs the worker's event loop, and how fast it goes, for
 * each sink: DynamoDB (the embedded store and the dynamodb sink run the same code; dynalite on
 * LevelDB, as the embedded store runs, stands in for both) and SQS (fauxqs), each through the real pipeline (BatchingSink: batches
 * of PERSISTENCE_BATCH_SIZE, BatchWriteItem ≤ 25 / SendMessageBatch ≤ 10) with the piscina pool
 * and inline, against the original's way: one PutItem (or SendMessage) per message.
 *
 * Event-loop time is the main thread's own CPU time, read from /proc/self/task/<pid>/schedstat
 * (pool threads and libuv helpers are other tasks); where that file is missing, the event loop's
 * active time stands in. The store runs in a child process, so its work is not counted.
 * Every variant runs `--rounds` times (after a warm-up) and the median is reported, with ratios
 * against the one-request-per-message baseline of the same store, measured in the same run.
 *
 * Usage: npm run bench:persistence [-- --messages 5000 --rounds 5 --threads 1 --batch 100]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { ListTablesCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, ListQueuesCommand, SendMessageCommand, PurgeQueueCommand } from "@aws-sdk/client-sqs";
import { createLogger } from "../src/shared/logger.js";
import type { ChannelMessage } from "../src/shared/contract.js";
import { ensureTables } from "../src/store/tables.js";
import { createDynamoClient, createSqsClient } from "../src/worker/persistence/aws-clients.js";
import { BatchingSink } from "../src/worker/persistence/batcher.js";
import { messageItem } from "../src/worker/persistence/dynamo-ops.js";
import { serializeStored, toStored } from "../src/worker/persistence/record.js";
import { SpillFile } from "../src/worker/persistence/spill-file.js";
import type { StoreSettings } from "../src/worker/persistence/store-ops.js";
import { InlineStoreRunner } from "../src/worker/persistence/inline-runner.js";
import { PooledStoreRunner, type StoreRunner } from "../src/worker/persistence/store-runner.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomUUID } from "node:crypto";

/** The bench must end by itself; past this it stops and exits 1. */
const DEADLINE_MS = 150_000;
/** In-flight requests of the one-per-message baselines (the original awaited none of them in order). */
const BASELINE_CONCURRENCY = 16;

const { values: args } = parseArgs({
  options: {
    messages: { type: "string", default: "5000" },
    rounds: { type: "string", default: "5" },
    threads: { type: "string", default: "1" }, // POOL_THREADS' default
    batch: { type: "string", default: "100" }, // PERSISTENCE_BATCH_SIZE's default
  },
});
const positiveInt = (name: string, raw: string | undefined) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer (got ${raw})`);
  return n;
};
const MESSAGES = positiveInt("messages", args.messages);
const ROUNDS = positiveInt("rounds", args.rounds);
const THREADS = positiveInt("threads", args.threads);
const BATCH = positiveInt("batch", args.batch);

// ---------------------------------------------------------------------------------------------
// Clocks

const SCHEDSTAT = `/proc/self/task/${process.pid}/schedstat`;
const hasSchedstat = (() => {
  try {
    readFileSync(SCHEDSTAT);
    return true;
  } catch {
    return false; // not Linux, or no schedstat: the event-loop utilisation stands in
  }
})();
/** The main thread's CPU time in µs. */
function loopCpuUs(): number {
  if (hasSchedstat) return Number(readFileSync(SCHEDSTAT, "utf8").split(" ")[0]) / 1000;
  return performance.eventLoopUtilization().active * 1000;
}

// ---------------------------------------------------------------------------------------------
// Local services, each in its own process

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

const children: ChildProcess[] = [];
function startChild(script: string, argv: string[], env: Record<string, string> = {}): void {
  const child = spawn(process.execPath, [script, ...argv], { stdio: "ignore", env: { ...process.env, ...env } });
  children.push(child);
}
async function until(what: string, check: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what} did not start: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Variants

interface Sample {
  perSecond: number;
  loopUsPerMessage: number;
}

const content = (n: number) => ({ text: "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod", n, ok: true });
const newMessage = (n: number): ChannelMessage => ({
  createdAt: new Date().toISOString(),
  content: content(n),
  socketId: "bench",
  messageId: randomUUID(),
});

/** Feeds messages as a busy server would: a slice per event-loop turn, then waits until all are durable. */
async function throughSink(runner: StoreRunner, count: number, channel: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "cerebellum-bench-"));
  const sink = new BatchingSink({
    runner,
    spill: new SpillFile(join(dir, "spill"), 0, 1 << 30, createLogger("silent", {})),
    tuning: {
      batchSize: BATCH,
      batchWaitMs: 50,
      queueMax: count + 1,
      concurrency: 4,
      retries: 4,
      retryBaseMs: 100,
      retryMaxMs: 5000,
      replayIntervalMs: 5000,
    },
    flushTimeoutMs: 30_000,
    workerCount: 1,
    log: createLogger("silent", {}),
  });
  await sink.whenOpen();
  const durable: Array<Promise<void>> = [];
  for (let n = 0; n < count; ) {
    for (const end = Math.min(count, n + 50); n < end; n++) {
      const queued = sink.enqueue(channel, newMessage(n));
      if (!queued.accepted) throw new Error("refused");
      durable.push(queued.durable);
    }
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(durable);
  if (sink.pending !== 0) throw new Error("not all durable");
  rmSync(dir, { recursive: true, force: true });
}

/** The original's way: one request per message, a bounded number in flight. */
async function onePerMessage(count: number, send: (n: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: BASELINE_CONCURRENCY }, async () => {
      while (next < count) await send(next++);
    }),
  );
}

async function measure(run: () => Promise<void>, count: number): Promise<Sample> {
  const cpu0 = loopCpuUs();
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  return { perSecond: (count / ms) * 1000, loopUsPerMessage: (loopCpuUs() - cpu0) / count };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

interface Variant {
  store: "dynamodb" | "sqs";
  name: string;
  baseline?: boolean;
  /** Runs `count` messages; `setup` objects are created once per variant (and warmed up). */
  open(): Promise<{ run(count: number, round: number): Promise<void>; close(): Promise<void> }>;
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    console.error(`bench: still running after ${DEADLINE_MS} ms, giving up`);
    for (const c of children) c.kill("SIGKILL");
    process.exit(1);
  }, DEADLINE_MS);
  deadline.unref();

  const [dynamoPort, sqsPort] = await Promise.all([freePort(), freePort()]);
  // On disk (LevelDB), as the embedded store runs; the dynamodb sink is the same code against AWS.
  const storeDir = mkdtempSync(join(tmpdir(), "cerebellum-bench-store-"));
  const dynalitePath = ["--path", storeDir];
  startChild(require.resolve("dynalite/cli.js"), ["--port", String(dynamoPort), "--host", "127.0.0.1", "--createTableMs", "0", ...dynalitePath]);
  // fauxqs exports only its ESM entry; its CLI is reached by path (dist/scripts → repo root).
  startChild(resolve(__dirname, "../../node_modules/fauxqs/dist/cli.js"), [], { FAUXQS_PORT: String(sqsPort), FAUXQS_LOGGER: "false" });
  const base: StoreSettings = {
    target: "dynamodb",
    region: "us-east-1",
    dynamodbEndpoint: `http://127.0.0.1:${dynamoPort}`,
    sqsEndpoint: `http://127.0.0.1:${sqsPort}`,
    requestTimeoutMs: 10_000,
    localCredentials: true,
    messagesTable: "messages",
    channelsTable: "channels",
    queueUrl: undefined,
    embeddedStore: undefined,
    unprocessedRetries: 3,
    retryBaseMs: 100,
    retryMaxMs: 5000,
  };
  const dynamo = createDynamoClient(base);
  const sqs = createSqsClient(base);
  await until("dynalite", () => dynamo.send(new ListTablesCommand({})));
  await until("fauxqs", () => sqs.send(new ListQueuesCommand({})));
  await ensureTables(dynamo, { messages: "messages", channels: "channels" });
  const { QueueUrl: queueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "bench" }));
  const sqsSettings: StoreSettings = { ...base, target: "sqs", queueUrl };

  const sinkVariant = (store: "dynamodb" | "sqs", pooled: boolean): Variant => ({
    store,
    name: `${store} sink, ${pooled ? `pool (${THREADS} thread${THREADS > 1 ? "s" : ""})` : "inline"}`,
    async open() {
      const settings = store === "sqs" ? sqsSettings : base;
      const runner: StoreRunner = pooled ? new PooledStoreRunner(settings, THREADS) : new InlineStoreRunner(settings);
      return { run: (count, round) => throughSink(runner, count, `${store}-${pooled}-${round}`), close: () => runner.close() };
    },
  });
  const variants: Variant[] = [
    {
      store: "dynamodb",
      name: "PutItem per message (original), inline",
      baseline: true,
      async open() {
        return {
          run: (count, round) =>
            onePerMessage(count, (n) =>
              dynamo.send(new PutItemCommand({ TableName: "messages", Item: messageItem(toStored(`put-${round}`, newMessage(n))) })),
            ),
          close: async () => undefined,
        };
      },
    },
    sinkVariant("dynamodb", false),
    sinkVariant("dynamodb", true),
    {
      store: "sqs",
      name: "SendMessage per message (original), inline",
      baseline: true,
      async open() {
        return {
          run: (count, round) =>
            onePerMessage(count, (n) =>
              sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: serializeStored(toStored(`send-${round}`, newMessage(n))) })),
            ),
          close: async () => undefined,
        };
      },
    },
    sinkVariant("sqs", false),
    sinkVariant("sqs", true),
  ];

  console.log(
    `persistence bench: ${MESSAGES} messages × ${ROUNDS} rounds (median), batch ${BATCH}, ${THREADS} pool thread(s), ` +
      `event loop = ${hasSchedstat ? "main thread CPU (schedstat)" : "event-loop active time"}\n`,
  );
  const results: Array<{ variant: Variant; sample: Sample }> = [];
  for (const variant of variants) {
    const opened = await variant.open();
    await opened.run(Math.min(500, MESSAGES), -1); // warm-up: pool threads, connections, JIT
    const samples: Sample[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      samples.push(await measure(() => opened.run(MESSAGES, round), MESSAGES));
      if (variant.store === "sqs") await sqs.send(new PurgeQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined); // keep the queue small; a purge refused is harmless
    }
    await opened.close();
    const sample = {
      perSecond: median(samples.map((s) => s.perSecond)),
      loopUsPerMessage: median(samples.map((s) => s.loopUsPerMessage)),
    };
    results.push({ variant, sample });
    console.log(`  done: ${variant.name}`);
  }

  const rows = results.map(({ variant, sample }) => {
    const baseline = results.find((r) => r.variant.store === variant.store && r.variant.baseline)!.sample;
    return {
      variant: variant.name,
      "msgs/s": Math.round(sample.perSecond),
      "loop µs/msg": sample.loopUsPerMessage.toFixed(1),
      "throughput × baseline": (sample.perSecond / baseline.perSecond).toFixed(2),
      "loop cost ÷ baseline": (baseline.loopUsPerMessage / sample.loopUsPerMessage).toFixed(1),
    };
  });
  console.log("");
  console.table(rows);
  console.log(
    "\nloop cost ÷ baseline: how many times less event-loop time per message than one request per message " +
      "(higher is better); throughput × baseline: messages persisted per second relative to it.",
  );
  dynamo.destroy();
  sqs.destroy();
  for (const c of children) c.kill("SIGTERM");
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r)))));
  rmSync(storeDir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  for (const c of children) c.kill("SIGKILL");
  process.exit(1);
});
