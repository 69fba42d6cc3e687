import type { Config } from "../shared/config.js";
import type { ChannelMessage } from "../shared/contract.js";
import type { Logger } from "../shared/logger.js";
import { backoffMs, errorText } from "./backoff.js";
import { toStored, type StoredMessage } from "./record.js";
import type { Enqueued, PersistenceSink } from "./sink.js";
import type { SpillFile } from "./spill-file.js";
import type { StoreRunner } from "./store-runner.js";
import type { WriteOutcome } from "./write-outcome.js";

export type BatcherTuning = Pick<
  Config["persistence"],
  "batchSize" | "batchWaitMs" | "queueMax" | "concurrency" | "retries" | "retryBaseMs" | "retryMaxMs" | "replayIntervalMs"
>;

export interface BatchingSinkOptions {
  runner: StoreRunner;
  spill: SpillFile;
  tuning: BatcherTuning;
  /** On close, how long queued batches may take to reach the store before the rest is spilled, in ms. */
  flushTimeoutMs: number;
  /** Worker slots on this host (slot 0 adopts spill files of slots beyond it). */
  workerCount: number;
  log: Logger;
  /** Counts store errors and spilled messages (the worker's metrics); none when left out. */
  counters?: SinkCounters;
}

export interface SinkCounters {
  storeErrors: { inc(): void };
  spilled: { inc(count: number): void };
}

/** Channel names remembered as recorded, per worker (oldest forgotten first). */
export const NOTED_CHANNELS_MAX = 10_000;
/** Channel names waiting to be recorded; beyond it a name is dropped until its next subscribe. */
export const CHANNEL_QUEUE_MAX = 10_000;
const CHANNEL_FLUSH_MS = 100;
const CHANNELS_PER_TASK = 100;

interface Batch {
  records: StoredMessage[];
  attempts: number;
  settled: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  promise: Promise<void>;
}

const REFUSED: Enqueued = { accepted: false };

/**
 * The persistence pipeline of one worker: messages are batched (flushed on size or age), each
 * batch is written by the runner (a piscina thread), failures are retried with backoff and
 * jitter, and a batch that still fails is spilled to disk and replayed once the store answers.
 * A message's `durable` promise resolves when it is stored or spilled.
 *
 * Bounded: at most `queueMax` messages accepted and not yet durable (beyond: refused, the
 * publisher gets OVERLOADED), `concurrency` batches in flight, `spillMaxBytes` on disk.
 */
export class BatchingSink implements PersistenceSink {
  private forming: Batch | undefined;
  private formTimer: NodeJS.Timeout | undefined;
  private readonly ready: Batch[] = [];
  private readonly retrying = new Map<Batch, NodeJS.Timeout>();
  private readonly outstanding = new Set<Batch>();
  private inFlight = 0;
  private queued = 0;
  /** Set when a batch ran out of retries; new batches then go straight to the spill file until a replay succeeds. */
  private storeDown = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private replayTimer: NodeJS.Timeout | undefined;
  private replaying: Promise<void> | undefined;
  private readonly opened: Promise<void>;
  private readonly noted = new Map<string, true>();
  private channelQueue: string[] = [];
  private channelTimer: NodeJS.Timeout | undefined;
  private channelFlush: Promise<void> | undefined;

  constructor(private readonly options: BatchingSinkOptions) {
    this.opened = options.spill.open(options.workerCount).then(
      () => {
        if (options.spill.pendingBytes > 0) {
          options.log.info({ bytes: options.spill.pendingBytes }, "spilled messages found: replaying them");
          this.scheduleReplay(0);
        }
      },
      (err: unknown) => options.log.error({ err }, "spill directory unavailable: outages cannot be spilled"),
    );
  }

  /** Messages accepted and not yet durable. */
  get pending(): number {
    return this.queued;
  }

  /** Resolves once spill files found at start are open and counted. */
  whenOpen(): Promise<void> {
    return this.opened;
  }

  hasRoom(): boolean {
    return !this.closed && this.queued < this.options.tuning.queueMax;
  }

  enqueue(channel: string, message: ChannelMessage): Enqueued {
    const { batchSize, batchWaitMs } = this.options.tuning;
    if (!this.hasRoom()) return REFUSED;
    this.queued++;
    const batch = (this.forming ??= this.newBatch());
    batch.records.push(toStored(channel, message));
    if (batch.records.length >= batchSize) this.cut();
    else this.formTimer ??= setTimeout(() => this.cut(), batchWaitMs);
    return { accepted: true, durable: batch.promise };
  }

  noteChannel(channel: string): void {
    if (this.closed || this.noted.has(channel)) return;
    if (this.noted.size >= NOTED_CHANNELS_MAX) this.noted.delete(this.noted.keys().next().value!);
    if (this.channelQueue.length >= CHANNEL_QUEUE_MAX) return; // not remembered: its next subscribe tries again
    this.noted.set(channel, true);
    this.channelQueue.push(channel);
    this.channelTimer ??= setTimeout(() => this.flushChannels(), CHANNEL_FLUSH_MS);
  }

  flush(): void {
    this.cut();
  }

  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private newBatch(): Batch {
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Every publisher's handler observes this promise; this keeps a batch nobody waits on from
    // becoming an unhandled rejection.
    promise.catch(() => undefined);
    const batch: Batch = { records: [], attempts: 0, settled: false, resolve, reject, promise };
    this.outstanding.add(batch);
    return batch;
  }

  private cut(): void {
    if (this.formTimer) clearTimeout(this.formTimer);
    this.formTimer = undefined;
    if (!this.forming) return;
    this.ready.push(this.forming);
    this.forming = undefined;
    this.pump();
  }

  private pump(): void {
    while (this.ready.length > 0) {
      if (this.storeDown) {
        void this.spillBatch(this.ready.shift()!);
        continue;
      }
      if (this.inFlight >= this.options.tuning.concurrency) return;
      const batch = this.ready.shift()!;
      this.inFlight++;
      void this.attempt(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async attempt(batch: Batch): Promise<void> {
    let outcome: WriteOutcome;
    try {
      outcome = await this.options.runner.run({ op: "write", records: batch.records });
    } catch (err) {
      // The pool itself failed (thread crash, shutdown): nothing of this batch is known stored.
      outcome = { failed: batch.records.map((r) => r.messageId), rejected: [], error: errorText(err) };
    }
    if (batch.settled) return; // spilled at the shutdown deadline while this write was out
    if (outcome.failed.length > 0) this.options.counters?.storeErrors.inc();
    await this.setAside(batch, outcome);
    const failed = new Set(outcome.failed);
    const before = batch.records.length;
    batch.records = batch.records.filter((r) => failed.has(r.messageId));
    this.queued -= before - batch.records.length;
    if (batch.records.length === 0) return this.settle(batch);

    batch.attempts++;
    const { retries, retryBaseMs, retryMaxMs } = this.options.tuning;
    if (this.closed || batch.attempts > retries) {
      if (!this.storeDown && !this.closed) {
        this.storeDown = true;
        this.options.log.warn({ error: outcome.error, attempts: batch.attempts }, "store unavailable: spilling to disk until it answers");
      }
      this.scheduleReplay();
      return this.spillBatch(batch);
    }
    this.options.log.debug({ error: outcome.error, attempt: batch.attempts, count: batch.records.length }, "batch failed, retrying");
    this.retryLater(batch, backoffMs(batch.attempts - 1, retryBaseMs, retryMaxMs));
  }

  private retryLater(batch: Batch, delayMs: number): void {
    const timer = setTimeout(() => {
      this.retrying.delete(batch);
      // First in line: behind the batches formed meanwhile, a store that times out would see
      // its retries only after theirs, and the batcher would take that long to call it down.
      this.ready.unshift(batch);
      this.pump();
    }, delayMs);
    this.retrying.set(batch, timer);
  }

  /** Messages the store refused for good go to the rejected file, out of the batch. */
  private async setAside(batch: Batch, outcome: WriteOutcome): Promise<void> {
    if (outcome.rejected.length === 0) return;
    const reasons = new Map(outcome.rejected.map((r) => [r.messageId, r.reason]));
    const entries = batch.records.filter((r) => reasons.has(r.messageId)).map((message) => ({ message, reason: reasons.get(message.messageId)! }));
    batch.records = batch.records.filter((r) => !reasons.has(r.messageId));
    this.queued -= entries.length;
    await this.recordRejected(entries);
  }

  private async recordRejected(entries: Array<{ message: StoredMessage; reason: string }>): Promise<void> {
    if (entries.length === 0) return;
    this.options.log.error(
      { count: entries.length, reason: entries[0]!.reason, messageIds: entries.map((e) => e.message.messageId) },
      "store refused messages for good: kept in the rejected file",
    );
    try {
      await this.options.spill.rejected(entries);
    } catch (err) {
      // Last resort: the log line holds the messages themselves.
      this.options.log.error({ err, messages: entries }, "could not write the rejected file");
    }
  }

  private settle(batch: Batch): void {
    if (batch.settled) return;
    batch.settled = true;
    this.outstanding.delete(batch);
    batch.resolve();
  }

  private async spillBatch(batch: Batch): Promise<void> {
    await this.opened;
    if (batch.settled) return;
    const count = batch.records.length;
    let spilled = false;
    try {
      spilled = await this.options.spill.append(batch.records);
      if (!spilled) this.options.log.error({ count }, "spill file is at PERSISTENCE_SPILL_MAX_BYTES: keeping the batch in memory");
    } catch (err) {
      this.options.log.error({ err, count }, "could not spill a batch: keeping it in memory");
    }
    if (batch.settled) return;
    if (spilled) {
      this.options.counters?.spilled.inc(count);
      this.queued -= count;
      batch.records = [];
      this.settle(batch);
      this.scheduleReplay();
      return;
    }
    if (this.closed) {
      batch.settled = true;
      this.outstanding.delete(batch);
      this.queued -= count;
      this.options.log.error({ count, messages: batch.records }, "shutdown: neither the store nor the spill file took these messages");
      batch.reject(new Error("neither the store nor the spill file took the message"));
      return;
    }
    // Still counted against PERSISTENCE_QUEUE_MAX, so publishers get OVERLOADED rather than memory growing.
    this.retryLater(batch, this.options.tuning.retryMaxMs);
  }

  private scheduleReplay(delayMs = this.options.tuning.replayIntervalMs): void {
    if (this.closed || this.replayTimer || this.replaying) return;
    this.replayTimer = setTimeout(() => {
      this.replayTimer = undefined;
      this.replaying = this.replay()
        .catch((err: unknown) => this.options.log.error({ err }, "replay failed"))
        .finally(() => {
          this.replaying = undefined;
          if (this.storeDown || this.options.spill.pendingBytes > 0) this.scheduleReplay();
        });
    }, delayMs);
  }

  /**
   * Writes spilled segments back to the store, one batch at a time; the first batch doubles as the
   * probe of whether the store is back. A segment is deleted only once fully written, so a crash
   * mid-replay replays it again, which is harmless: the messageId is the key.
   */
  private async replay(): Promise<void> {
    await this.opened;
    const { spill, runner, tuning, log } = this.options;
    const segments = await spill.takeSegments();
    let replayed = 0;
    for (const segment of segments) {
      for await (const records of spill.read(segment, tuning.batchSize)) {
        if (this.closed) return; // the segment stays for the next start
        let outcome: WriteOutcome;
        try {
          outcome = await runner.run({ op: "write", records });
        } catch (err) {
          outcome = { failed: records.map((r) => r.messageId), rejected: [], error: errorText(err) };
        }
        if (outcome.rejected.length > 0) {
          const reasons = new Map(outcome.rejected.map((r) => [r.messageId, r.reason]));
          await this.recordRejected(records.filter((r) => reasons.has(r.messageId)).map((message) => ({ message, reason: reasons.get(message.messageId)! })));
        }
        if (outcome.failed.length > 0) {
          if (!this.storeDown) log.warn({ error: outcome.error }, "store unavailable during replay");
          this.storeDown = true;
          if (replayed > 0) log.info({ replayed }, "replayed part of the spilled messages");
          log.debug({ error: outcome.error }, "store still unavailable, replay later");
          return;
        }
        replayed += records.length;
      }
      await spill.remove(segment);
    }
    if (replayed > 0) log.info({ replayed }, "replayed spilled messages into the store");
    if (this.storeDown) {
      this.storeDown = false;
      log.info("store is back: writing batches to it again");
      this.pump();
    }
  }

  private flushChannels(): void {
    this.channelTimer = undefined;
    if (this.channelFlush || this.channelQueue.length === 0) return;
    const names = this.channelQueue.splice(0, CHANNELS_PER_TASK);
    this.channelFlush = this.options.runner
      .run({ op: "channels", names })
      .then(
        ({ failed }) => failed,
        () => names,
      )
      .then((failed) => {
        // Forgotten, so that the channel's next subscribe records it again.
        for (const name of failed) this.noted.delete(name);
        if (failed.length > 0) this.options.log.debug({ count: failed.length }, "channel bookkeeping failed");
      })
      .finally(() => {
        this.channelFlush = undefined;
        if (this.channelQueue.length > 0 && !this.closed) this.channelTimer ??= setTimeout(() => this.flushChannels(), CHANNEL_FLUSH_MS);
      });
  }

  /** Records the channel names still queued (shutdown), one task after another. */
  private async lastChannels(): Promise<void> {
    while (this.channelFlush || this.channelQueue.length > 0) {
      await this.channelFlush;
      if (this.channelQueue.length > 0) this.flushChannels();
    }
  }

  private async shutdown(): Promise<void> {
    const { log, flushTimeoutMs, spill, runner } = this.options;
    this.closed = true;
    if (this.replayTimer) clearTimeout(this.replayTimer);
    if (this.channelTimer) clearTimeout(this.channelTimer);
    this.cut();
    for (const [batch, timer] of this.retrying) {
      clearTimeout(timer);
      this.ready.push(batch);
    }
    this.retrying.clear();
    this.pump(); // closed: a failing write is spilled at once, without retries
    const pendingAtClose = this.queued;

    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, flushTimeoutMs)));
    const settled = Promise.allSettled([...this.outstanding].map((b) => b.promise)).then(() => undefined);
    await Promise.race([Promise.all([settled, this.lastChannels()]), deadline]);
    clearTimeout(timer);

    // The store was too slow: spill what is still out. A write that lands later is harmless (same key).
    const late = [...this.outstanding].filter((b) => !b.settled);
    this.ready.length = 0;
    for (const batch of late) await this.spillBatch(batch);
    // A replay or channel write still out is cut short by the pool's end; a replay resumes at next start.
    await spill.close();
    await runner.close();
    log.info({ pendingAtClose, spilledAtDeadline: late.length }, "persistence closed");
  }
}
