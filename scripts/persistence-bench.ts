/**
 * What persisting published messages costs and how fast it goes, per sink, through the real
 * pipeline (BatchingSink: batches of PERSISTENCE_BATCH_SIZE, PERSISTENCE_CONCURRENCY in flight),
 * each against a baseline measured in the same run.
 *
 * Suite `embedded`: the embedded store (the product's store process: LevelDB behind a loopback
 * connection) against the embedded store it replaced (dynalite over HTTP, written with direct
 * BatchWriteItem POSTs as that sink sent them). `--writers` sinks write at once, as that many
 * workers would, each with its own connection. Per variant: messages stored per second; the
 * store process's CPU per message (utime + stime from /proc/<pid>/stat over every measured
 * round); the writers' event-loop CPU per message, and how much of it is persistence's (above a
 * row whose store takes every write at once); and the latency of history pages of 50 read while
 * the writes run (one read every READ_EVERY_MS, from a thread of its own). The LevelDB store also
 * runs with its client on a pool thread (what the AWS sinks do) and without fsync per write, to
 * show what each choice costs, and with its writes paced at PACED_RATE, for page latency under a
 * heavy load that leaves the machine some CPU (the other rows write as fast as the store takes it).
 *
 * Suite `aws`: the dynamodb sink (dynalite standing in for DynamoDB) and the sqs sink (fauxqs),
 * with the piscina pool and inline, against the original's way: one PutItem (or SendMessage)
 * per message.
 *
 * Event-loop time is the main thread's own CPU time, read from /proc/self/task/<pid>/schedstat
 * (pool threads and libuv helpers are other tasks); where that file is missing, the event loop's
 * active time stands in. Every variant runs `--rounds` times after a warm-up; figures are medians
 * of the rounds, except the store's CPU (the sum over the rounds: /proc/<pid>/stat counts in
 * 10 ms ticks) and page latencies (every read of every round).
 *
 * Usage: npm run bench:persistence [-- --suite all|embedded|aws --messages 10000 --rounds 5
 *        --writers 2 --threads 1 --batch 100]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { PutItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, ListQueuesCommand, PurgeQueueCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import type { ChannelMessage } from "../src/shared/contract.js";
import { createLogger } from "../src/shared/logger.js";
import { ensureTables } from "../src/persistence/tables.js";
import { createDynamoClient, createSqsClient } from "../src/persistence/aws-clients.js";
import { BatchingSink } from "../src/persistence/batcher.js";
import { messageItem, queryPage, writeMessages } from "../src/persistence/dynamo-ops.js";
import { EmbeddedStoreClient } from "../src/persistence/embedded-client.js";
import { InlineStoreRunner } from "../src/persistence/inline-runner.js";
import { serializeStored, toStored } from "../src/persistence/record.js";
import { SpillFile } from "../src/persistence/spill-file.js";
import type { StoreResults, StoreSettings, StoreTask, StoreTaskOf } from "../src/persistence/store-ops.js";
import { PooledStoreRunner, type StoreRunner } from "../src/persistence/store-runner.js";
import { positiveInt } from "../harness/args.js";
import { startDynalite as startDynaliteProcess, stopAllDynalites } from "../harness/aws.js";
import { freePort } from "../harness/net.js";
import { mainThreadCpuNs, readStat, ticksPerSecond } from "../harness/procfs.js";
import { median, percentile } from "../harness/stats.js";
import { waitFor } from "../harness/wait.js";
import { DynaliteDirectWriter } from "./persistence/dynalite-direct.js";
import type { PageReaderData } from "./persistence/page-reader.js";
import { startStoreProcess, type StoreProcess } from "./persistence/store-process.js";

/** The bench must end by itself; past this it stops and exits 1. */
const DEADLINE_MS = 600_000;
/** In-flight requests of the one-per-message baselines (the original awaited none of them in order). */
const BASELINE_CONCURRENCY = 16;
/** Pace of the history reads that run beside the writes, in ms (a pace, not a wait for a condition). */
const READ_EVERY_MS = 20;
/** Items per history page read, and messages in the channel they read. */
const PAGE_LIMIT = 50;
const PROBE_MESSAGES = 500;
/**
 * The paced row's write rate, messages/s: a heavy load short of the store's limit (three times
 * what the dynalite-based store could take at all), where a page's latency is the store's
 * rather than the wait of a machine with every core busy.
 */
const PACED_RATE = 10_000;

const { values: args } = parseArgs({
  options: {
    suite: { type: "string", default: "all" },
    messages: { type: "string", default: "10000" },
    rounds: { type: "string", default: "5" },
    writers: { type: "string", default: "2" }, // workers on this 2-core machine
    threads: { type: "string", default: "1" }, // POOL_THREADS' default
    batch: { type: "string", default: "100" }, // PERSISTENCE_BATCH_SIZE's default
  },
});
const SUITE = args.suite;
if (SUITE !== "all" && SUITE !== "embedded" && SUITE !== "aws") throw new Error(`--suite must be all, embedded or aws (got ${SUITE})`);
const MESSAGES = positiveInt("messages", args.messages);
const ROUNDS = positiveInt("rounds", args.rounds);
const WRITERS = positiveInt("writers", args.writers);
const THREADS = positiveInt("threads", args.threads);
const BATCH = positiveInt("batch", args.batch);

// ---------------------------------------------------------------------------------------------
// Clocks

// Not Linux, or no schedstat: the event-loop utilisation stands in.
const hasSchedstat = mainThreadCpuNs() !== undefined;
/** The main thread's CPU time in µs. */
function loopCpuUs(): number {
  if (hasSchedstat) return mainThreadCpuNs()! / 1000;
  return performance.eventLoopUtilization().active * 1000;
}

/** A process's CPU time (utime + stime, every thread) in µs, from /proc/<pid>/stat; NaN off Linux. */
function processCpuUs(pid: number): number {
  const ticks = readStat(pid)?.ticks;
  return ticks === undefined ? Number.NaN : (ticks / ticksPerSecond()) * 1e6;
}

const pct = (xs: number[], p: number) => percentile(xs, p) ?? Number.NaN;

// ---------------------------------------------------------------------------------------------
// Local services, each in its own process

const children: ChildProcess[] = [];
const stores: StoreProcess[] = [];
const tempDirs: string[] = [];
const tempDir = (name: string) => {
  const dir = mkdtempSync(join(tmpdir(), `cerebellum-bench-${name}-`));
  tempDirs.push(dir);
  return dir;
};

function startChild(script: string, argv: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, [script, ...argv], { stdio: "ignore", env: { ...process.env, ...env } });
  children.push(child);
  return child;
}
/** The sinks' settings as the bench runs them (local credentials, the default tables and retries). */
function benchSettings(sink: Pick<StoreSettings, "target"> & Partial<StoreSettings>): StoreSettings {
  return {
    region: "us-east-1",
    dynamodbEndpoint: undefined,
    sqsEndpoint: undefined,
    requestTimeoutMs: 10_000,
    localCredentials: true,
    messagesTable: "messages",
    channelsTable: "channels",
    queueUrl: undefined,
    embeddedStore: undefined,
    unprocessedRetries: 3,
    retryBaseMs: 100,
    retryMaxMs: 5000,
    ...sink,
  };
}

async function startDynalite(): Promise<{ pid: number; settings: StoreSettings; client: DynamoDBClient }> {
  // On disk (LevelDB), as the previous embedded store ran it.
  const dynalite = await startDynaliteProcess({ path: tempDir("dynalite") });
  const settings = benchSettings({ target: "dynamodb", dynamodbEndpoint: dynalite.endpoint });
  const client = createDynamoClient(settings);
  await ensureTables(client, { messages: "messages", channels: "channels" });
  return { pid: dynalite.pid!, settings, client };
}

// ---------------------------------------------------------------------------------------------
// Feeding a sink

const content = (n: number) => ({ text: "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod", n, ok: true });
const newMessage = (n: number): ChannelMessage => ({
  createdAt: new Date().toISOString(),
  content: content(n),
  socketId: "bench",
  messageId: randomUUID(),
});

const silent = createLogger("silent", {});

function newSink(runner: StoreRunner, queueMax: number): BatchingSink {
  return new BatchingSink({
    runner,
    spill: new SpillFile(join(tempDir("spill"), "spill"), 0, 1 << 30, silent),
    tuning: {
      batchSize: BATCH,
      batchWaitMs: 50,
      queueMax,
      concurrency: 4,
      retries: 4,
      retryBaseMs: 100,
      retryMaxMs: 5000,
      replayIntervalMs: 5000,
    },
    flushTimeoutMs: 30_000,
    workerCount: 1,
    log: silent,
  });
}

/** Feeds `count` messages to each sink as a busy server would (a slice per event-loop turn), then waits until all are durable. */
async function throughSinks(sinks: BatchingSink[], count: number, channel: string, perSecond = Infinity): Promise<void> {
  await Promise.all(sinks.map((s) => s.whenOpen()));
  const durable: Array<Promise<void>> = [];
  const perSink = Math.ceil(count / sinks.length);
  const t0 = performance.now();
  for (let n = 0; n < perSink; ) {
    for (const end = Math.min(perSink, n + 50); n < end; n++) {
      for (const [i, sink] of sinks.entries()) {
        const queued = sink.enqueue(`${channel}-${i}`, newMessage(n));
        if (!queued.accepted) throw new Error("refused");
        durable.push(queued.durable);
      }
    }
    // At a set rate: the next slice when it is due (the publishing pace, not a wait for a condition).
    const due = t0 + ((n * sinks.length) / perSecond) * 1000;
    await new Promise((r) => (due > performance.now() + 1 ? setTimeout(r, due - performance.now()) : setImmediate(r)));
  }
  await Promise.all(durable);
  if (sinks.some((s) => s.pending !== 0)) throw new Error("not all durable");
}

/** Reads pages of PAGE_LIMIT at a steady pace on a thread of its own until stopped; the latencies in ms. */
function pacedReads(data: PageReaderData): { stop(): Promise<number[]> } {
  const thread = new Worker(resolve(__dirname, "persistence/page-reader.js"), { workerData: data });
  const result = new Promise<number[]>((resolveResult, reject) => {
    thread.once("message", (message: number[] | { error: string }) => (Array.isArray(message) ? resolveResult(message) : reject(new Error(message.error))));
    thread.once("error", reject);
  });
  return {
    async stop() {
      thread.postMessage("stop");
      try {
        return await result;
      } finally {
        await thread.terminate();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Suite `embedded`

interface StoreRow {
  name: string;
  baseline?: boolean;
  perSecond: number;
  loopUsPerMessage: number;
  storeUsPerMessage: number;
  pageP50Ms: number;
  pageP99Ms: number;
}

interface StoreVariant {
  name: string;
  baseline?: boolean;
  /** Writes at this rate instead of as fast as the store takes them. */
  perSecond?: number;
  /** `runners` are closed with their sinks; `close` ends the rest. */
  open(): Promise<{ storePid?: number; runners: StoreRunner[]; reader?: StoreRunner; readFrom?: PageReaderData["store"]; close(): Promise<void> }>;
}

/** The previous embedded store's way: dynalite, batches as direct BatchWriteItem POSTs, pages through the SDK. */
class DynaliteRunner implements StoreRunner {
  closing = false;
  private readonly direct: DynaliteDirectWriter;

  constructor(
    private readonly settings: StoreSettings,
    private readonly client: DynamoDBClient,
  ) {
    this.direct = new DynaliteDirectWriter(settings.dynamodbEndpoint!, settings.requestTimeoutMs);
  }

  run<K extends StoreTask["op"]>(task: StoreTaskOf<K>): Promise<StoreResults[K]>;
  async run(task: StoreTask): Promise<StoreResults[StoreTask["op"]]> {
    switch (task.op) {
      case "write":
        return writeMessages(this.client, this.settings.messagesTable, task.records, { unprocessedRetries: 3, baseMs: 100, maxMs: 5000 }, this.direct.write);
      case "page":
        return queryPage(this.client, this.settings.messagesTable, task);
      default:
        throw new Error(`not benchmarked: ${task.op}`);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    this.direct.destroy();
  }
}

async function levelStore(sync: boolean): Promise<{ store: StoreProcess; settings: StoreSettings }> {
  const store = await startStoreProcess(tempDir("level"), { sync });
  stores.push(store);
  const settings = benchSettings({ target: "embedded", embeddedStore: store.endpoint });
  return { store, settings };
}

/** A store that takes every write at once: what generating and batching the messages costs the bench itself. */
class NoStore implements StoreRunner {
  closing = false;
  run<K extends StoreTask["op"]>(task: StoreTaskOf<K>): Promise<StoreResults[K]>;
  async run(task: StoreTask): Promise<StoreResults[StoreTask["op"]]> {
    if (task.op !== "write") throw new Error(`not benchmarked: ${task.op}`);
    return { failed: [], rejected: [] };
  }
  async close(): Promise<void> {
    this.closing = true;
  }
}

const storeVariants: StoreVariant[] = [
  {
    name: "no store (the bench's own cost)",
    async open() {
      return { runners: Array.from({ length: WRITERS }, () => new NoStore()), close: async () => undefined };
    },
  },
  {
    name: "dynalite (previous embedded store)",
    baseline: true,
    async open() {
      const { pid, settings, client } = await startDynalite();
      const runners = Array.from({ length: WRITERS }, () => new DynaliteRunner(settings, client));
      const reader = new DynaliteRunner(settings, client);
      return {
        storePid: pid,
        runners,
        reader,
        readFrom: { kind: "dynalite", endpoint: settings.dynamodbEndpoint! },
        async close() {
          await reader.close();
          client.destroy();
        },
      };
    },
  },
  ...[
    { name: "LevelDB store, client on the event loop (product)", sync: true, pooled: false },
    { name: "LevelDB store, client on a pool thread", sync: true, pooled: true },
    { name: "LevelDB store, event loop, no fsync per write", sync: false, pooled: false },
    { name: `LevelDB store (product), writes paced at ${PACED_RATE.toLocaleString("en")}/s`, sync: true, pooled: false, perSecond: PACED_RATE },
  ].map(
    ({ name, sync, pooled, perSecond }): StoreVariant => ({
      name,
      perSecond,
      async open() {
        const { store, settings } = await levelStore(sync);
        const runner = (): StoreRunner => (pooled ? new PooledStoreRunner(settings, THREADS) : new EmbeddedStoreClient(store.endpoint, 10_000));
        const runners = Array.from({ length: WRITERS }, runner);
        const reader = new EmbeddedStoreClient(store.endpoint, 10_000);
        return {
          storePid: store.pid,
          runners,
          reader,
          readFrom: { kind: "embedded", endpoint: store.endpoint },
          async close() {
            await reader.close();
            await store.stop();
          },
        };
      },
    }),
  ),
];

async function runStoreVariant(variant: StoreVariant): Promise<StoreRow> {
  const opened = await variant.open();
  // The channel the history reads page through, filled before any round.
  const probe = `probe-${randomUUID()}`;
  for (let n = 0; opened.reader && n < PROBE_MESSAGES; n += BATCH) {
    const records = Array.from({ length: Math.min(BATCH, PROBE_MESSAGES - n) }, (_, i) => toStored(probe, newMessage(n + i)));
    const outcome = await opened.reader.run({ op: "write", records });
    if (outcome.failed.length + outcome.rejected.length > 0) throw new Error(`could not fill the probe channel: ${outcome.error}`);
  }
  const sinks = opened.runners.map((r) => newSink(r, MESSAGES + 1));
  await throughSinks(sinks, Math.min(2_000, MESSAGES), "warm-up"); // connections, pool threads, JIT

  const perSecond: number[] = [];
  const loopUs: number[] = [];
  const latencies: number[] = [];
  const storeCpu = () => (opened.storePid === undefined ? Number.NaN : processCpuUs(opened.storePid));
  const store0 = storeCpu();
  for (let round = 0; round < ROUNDS; round++) {
    const reads = opened.readFrom
      ? pacedReads({ store: opened.readFrom, channel: probe, limit: PAGE_LIMIT, everyMs: READ_EVERY_MS })
      : { stop: async () => [] };
    const cpu0 = loopCpuUs();
    const t0 = performance.now();
    await throughSinks(sinks, MESSAGES, `round-${round}`, variant.perSecond);
    const ms = performance.now() - t0;
    loopUs.push((loopCpuUs() - cpu0) / MESSAGES);
    perSecond.push((MESSAGES / ms) * 1000);
    latencies.push(...(await reads.stop()));
  }
  const storeUs = (storeCpu() - store0) / (MESSAGES * ROUNDS);
  await Promise.all(sinks.map((s) => s.close())); // closes the runners too
  await opened.close();
  return {
    name: variant.name,
    baseline: variant.baseline,
    perSecond: median(perSecond),
    loopUsPerMessage: median(loopUs),
    storeUsPerMessage: storeUs,
    pageP50Ms: pct(latencies, 50),
    pageP99Ms: pct(latencies, 99),
  };
}

async function embeddedSuite(): Promise<void> {
  console.log(
    `embedded store: ${MESSAGES} messages × ${ROUNDS} rounds, ${WRITERS} writers (one connection each), batch ${BATCH}, ` +
      `history pages of ${PAGE_LIMIT} read every ${READ_EVERY_MS} ms during the writes\n`,
  );
  const rows: StoreRow[] = [];
  for (const variant of storeVariants) {
    rows.push(await runStoreVariant(variant));
    console.log(`  done: ${variant.name}`);
  }
  const base = rows.find((r) => r.baseline)!;
  const floor = rows[0]!; // no store
  const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "—");
  console.log("");
  console.table(
    rows.map((r) => ({
      variant: r.name,
      "msgs/s": Math.round(r.perSecond),
      "× baseline": fixed(r.perSecond / base.perSecond),
      "store µs/msg": fixed(r.storeUsPerMessage),
      "store CPU ÷ baseline": fixed(base.storeUsPerMessage / r.storeUsPerMessage),
      "writer loop µs/msg": fixed(r.loopUsPerMessage),
      "of which persistence": r === floor ? "—" : fixed(r.loopUsPerMessage - floor.loopUsPerMessage),
      "page p50 ms": fixed(r.pageP50Ms, 2),
      "page p99 ms": fixed(r.pageP99Ms, 2),
    })),
  );
  console.log(
    "\n× baseline: messages stored per second relative to dynalite; store CPU ÷ baseline: how many times less " +
      "store-process CPU per message (higher is better); of which persistence: the writer's event-loop time above " +
      "the no-store row (encoding, hand-off, answers); page: one history page of 50 read under that write load.\n",
  );
}

// ---------------------------------------------------------------------------------------------
// Suite `aws`

interface Sample {
  perSecond: number;
  loopUsPerMessage: number;
}

interface Variant {
  store: "dynamodb" | "sqs";
  name: string;
  baseline?: boolean;
  open(): Promise<{ run(count: number, round: number): Promise<void>; close(): Promise<void> }>;
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

async function awsSuite(): Promise<void> {
  const { settings: base, client: dynamo } = await startDynalite();
  const sqsPort = await freePort();
  // fauxqs exports only its ESM entry; its CLI is reached by path (dist/scripts → repo root).
  startChild(resolve(__dirname, "../../node_modules/fauxqs/dist/cli.js"), [], { FAUXQS_PORT: String(sqsPort), FAUXQS_LOGGER: "false" });
  const sqs = createSqsClient({ ...base, sqsEndpoint: `http://127.0.0.1:${sqsPort}` });
  await waitFor(() => sqs.send(new ListQueuesCommand({})).then(() => true, () => false), { what: "fauxqs", timeoutMs: 20_000, intervalMs: 100 });
  const { QueueUrl: queueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "bench" }));
  const sqsSettings: StoreSettings = { ...base, target: "sqs", sqsEndpoint: `http://127.0.0.1:${sqsPort}`, queueUrl };

  const sinkVariant = (store: "dynamodb" | "sqs", pooled: boolean): Variant => ({
    store,
    name: `${store} sink, ${pooled ? `pool (${THREADS} thread${THREADS > 1 ? "s" : ""})` : "inline"}`,
    async open() {
      const settings = store === "sqs" ? sqsSettings : base;
      const runner: StoreRunner = pooled ? new PooledStoreRunner(settings, THREADS) : new InlineStoreRunner(settings);
      const sink = newSink(runner, MESSAGES + 1);
      return {
        run: (count, round) => throughSinks([sink], count, `${store}-${pooled}-${round}`),
        close: () => sink.close(), // and its runner
      };
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

  // The AWS sinks at the product's earlier default size: dynalite and fauxqs are slow, and the
  // baselines send one request per message.
  const count = Math.min(MESSAGES, 5_000);
  console.log(`aws sinks: ${count} messages × ${ROUNDS} rounds (median), batch ${BATCH}, ${THREADS} pool thread(s)\n`);
  const results: Array<{ variant: Variant; sample: Sample }> = [];
  for (const variant of variants) {
    const opened = await variant.open();
    await opened.run(Math.min(500, count), -1); // warm-up: pool threads, connections, JIT
    const samples: Sample[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      samples.push(await measure(() => opened.run(count, round), count));
      if (variant.store === "sqs") await sqs.send(new PurgeQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined); // keep the queue small; a purge refused is harmless
    }
    await opened.close();
    results.push({
      variant,
      sample: { perSecond: median(samples.map((s) => s.perSecond)), loopUsPerMessage: median(samples.map((s) => s.loopUsPerMessage)) },
    });
    console.log(`  done: ${variant.name}`);
  }
  console.log("");
  console.table(
    results.map(({ variant, sample }) => {
      const baseline = results.find((r) => r.variant.store === variant.store && r.variant.baseline)!.sample;
      return {
        variant: variant.name,
        "msgs/s": Math.round(sample.perSecond),
        "loop µs/msg": sample.loopUsPerMessage.toFixed(1),
        "throughput × baseline": (sample.perSecond / baseline.perSecond).toFixed(2),
        "loop cost ÷ baseline": (baseline.loopUsPerMessage / sample.loopUsPerMessage).toFixed(1),
      };
    }),
  );
  console.log(
    "\nloop cost ÷ baseline: how many times less event-loop time per message than one request per message " +
      "(higher is better); throughput × baseline: messages persisted per second relative to it.\n",
  );
  dynamo.destroy();
  sqs.destroy();
}

// ---------------------------------------------------------------------------------------------

async function cleanUp(): Promise<void> {
  await Promise.all(stores.map((s) => s.stop()));
  await stopAllDynalites();
  for (const c of children) c.kill("SIGTERM");
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("exit", r)))));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  // As the product does (exportSdkEnvironment): the SDK's notice about Node 22 is not a finding.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const deadline = setTimeout(() => {
    console.error(`bench: still running after ${DEADLINE_MS} ms, giving up`);
    for (const c of children) c.kill("SIGKILL");
    process.exit(1);
  }, DEADLINE_MS);
  deadline.unref();
  console.log(`persistence bench (event loop = ${hasSchedstat ? "main thread CPU (schedstat)" : "event-loop active time"})\n`);
  if (SUITE !== "aws") await embeddedSuite();
  if (SUITE !== "embedded") await awsSuite();
  await cleanUp();
}

main().catch((err: unknown) => {
  console.error(err);
  for (const c of children) c.kill("SIGKILL");
  process.exit(1);
});
