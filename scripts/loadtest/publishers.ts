import { sleep, wallMs } from "./clock.js";
import { OVERLOADED, type AckOutcome, type LoadClient } from "./engines/client.js";
import type { DeliveryBook, DeliveryListener } from "./deliveries.js";
import type { Runtime, StageTimes } from "./runtime.js";
import type { SentTally } from "./sequence.js";

/** Error codes with which the server refuses a message outright: it was not broadcast. */
export const REFUSED_CODES: ReadonlySet<string> = new Set([OVERLOADED, "RATE_LIMITED", "INVALID_ARGUMENT", "INVALID_CHANNEL", "PAYLOAD_TOO_LARGE"]);

/** Acks one publisher may wait on in open-loop mode; past it, due messages are skipped (and counted). */
export const MAX_OUTSTANDING_PER_PUBLISHER = 5000;

/** A generator that falls this far behind its schedule gives up the backlog (and counts it as skipped). */
const MAX_LAG_MS = 5000;

export interface PublisherSlot {
  p: number;
  client: LoadClient;
  channel: number;
  channelName: string;
}

interface SlotState extends PublisherSlot {
  nextSeq: number;
  outstanding: number;
  tally: SentTally;
}

/** Key of one message in the delivery window. */
const keyOf = (p: number, s: number) => p * 4_294_967_296 + s;

/**
 * This process's publishers. Open loop: each sends at its share of the stage's rate, every message
 * stamped with its *scheduled* send time, so a stalled generator or server shows as latency rather
 * than hiding it (no coordinated omission). `max`: each keeps `inflight` messages outstanding and
 * sends the next as one completes (ack, or delivery to every local subscriber).
 */
export class PublisherSet implements DeliveryListener {
  private readonly slots: SlotState[];
  private readonly byP = new Map<number, SlotState>();
  private outstanding = 0;
  /** Delivery window: messages waiting for their local deliveries. */
  private readonly awaiting = new Map<number, { remaining: number; sentAt: number; slot: SlotState }>();
  private windowOpen = false;

  /**
   * With `measuredOnly`, publishers are quiet in each stage's warm-up (the connections scenario
   * opens its new connections then) and publish in its measured window only.
   */
  constructor(
    private readonly rt: Runtime,
    slots: readonly PublisherSlot[],
    private readonly padding: string,
    private readonly book: DeliveryBook,
    private readonly measuredOnly = false,
  ) {
    this.slots = slots.map((s) => ({ ...s, nextSeq: 1, outstanding: 0, tally: { sent: 0, refused: 0 } }));
    for (const s of this.slots) this.byP.set(s.p, s);
  }

  get count(): number {
    return this.slots.length;
  }

  sentTallies(): Map<number, SentTally> {
    return new Map(this.slots.map((s) => [s.p, { ...s.tally }]));
  }

  /** Runs every stage of the plan; resolves when the last one ends (or on abort). */
  async run(): Promise<void> {
    for (const stage of this.rt.stages) {
      if (this.rt.signal.aborted) return;
      await sleep(this.startOf(stage) - Date.now(), this.rt.signal);
      if (stage.rate === "max") await this.runWindow(stage);
      else await this.runOpenLoop(stage, stage.rate);
    }
  }

  private startOf(stage: StageTimes): number {
    return this.measuredOnly ? stage.measureAt : stage.warmupAt;
  }

  /** Waits (bounded) for the acks still outstanding. */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.outstanding > 0 || this.awaiting.size > 0) && Date.now() < deadline && !this.rt.signal.aborted) await sleep(20);
  }

  private send(slot: SlotState, t: number, onDone?: (outcome: AckOutcome) => void): void {
    const { options, metrics } = this.rt;
    if (!slot.client.connected) {
      metrics.count("skipped");
      metrics.error("publisher not connected");
      return;
    }
    const seq = slot.nextSeq++;
    slot.tally.sent++;
    metrics.count("published");
    const sentAt = wallMs();
    const pending = slot.client.publish(slot.channelName, { p: slot.p, s: seq, t }, this.padding, options.ack, options.ackTimeoutMs);
    if (this.windowOpen && options.windowBy === "delivery") {
      const remaining = this.book.receiversOf(slot.channel);
      // No local subscriber: nothing can complete it, so this publisher's window closes.
      if (remaining > 0) this.awaiting.set(keyOf(slot.p, seq), { remaining, sentAt, slot });
      else metrics.error("delivery window: no local subscriber on the channel");
    }
    if (!pending) return;
    slot.outstanding++;
    this.outstanding++;
    void pending.then((outcome) => {
      slot.outstanding--;
      this.outstanding--;
      if (outcome.ok) {
        metrics.count("acked");
        metrics.latency("ack", wallMs() - sentAt);
      } else if (outcome.error !== undefined && REFUSED_CODES.has(outcome.error)) {
        slot.tally.refused++;
        metrics.count("refused");
        // OVERLOADED is the server at a bound (a capacity limit); the other codes say the
        // publish itself was wrong (an error of the options, or of the server).
        if (outcome.error === OVERLOADED) {
          metrics.count("overloaded");
          metrics.note(`publish refused: ${outcome.error}`);
        } else {
          metrics.error(`publish refused: ${outcome.error}`);
        }
        this.complete(slot.p, seq); // never broadcast: nothing will be delivered
      } else if (outcome.error === "TIMEOUT") {
        metrics.count("ackTimeouts");
        metrics.note("publish: no ack before --ack-timeout");
      } else {
        metrics.error(`publish: ${outcome.error ?? "failed"}`);
      }
      onDone?.(outcome);
    });
  }

  private async runOpenLoop(stage: StageTimes, rate: number): Promise<void> {
    const { metrics, signal } = this.rt;
    const perPublisher = rate / this.rt.layout.publishers;
    const spacing = 1000 / perPublisher;
    // Spread the publishers over one spacing so that they do not all fire together.
    const start = this.startOf(stage);
    const nextDue = this.slots.map((s) => start + (s.p / this.rt.layout.publishers) * spacing);
    while (!signal.aborted) {
      const now = wallMs(); // the clock receivers compare with; within a millisecond of Date.now()
      if (now >= stage.endAt) break;
      let earliest = stage.endAt;
      for (const [i, slot] of this.slots.entries()) {
        let due = nextDue[i]!;
        if (now - due > MAX_LAG_MS) {
          const behind = Math.floor((now - due) / spacing);
          metrics.count("skipped", behind);
          metrics.error("generator behind schedule (backlog skipped)");
          due += behind * spacing;
        }
        while (due <= now) {
          if (slot.outstanding >= MAX_OUTSTANDING_PER_PUBLISHER) {
            metrics.count("skipped");
            metrics.error("too many publishes waiting for acks");
          } else {
            this.send(slot, due);
          }
          due += spacing;
        }
        nextDue[i] = due;
        if (due < earliest) earliest = due;
      }
      await sleep(Math.max(1, Math.min(earliest, stage.endAt) - wallMs()), signal);
    }
  }

  private async runWindow(stage: StageTimes): Promise<void> {
    const { options, signal } = this.rt;
    const byDelivery = options.windowBy === "delivery";
    this.windowOpen = true;
    const inWindow = () => !signal.aborted && Date.now() < stage.endAt;
    const next = (slot: SlotState) => {
      if (!inWindow()) return;
      if (byDelivery) this.send(slot, wallMs());
      else this.send(slot, wallMs(), () => next(slot));
    };
    this.refill = byDelivery ? next : undefined;
    for (const slot of this.slots) for (let i = 0; i < options.inflight; i++) next(slot);
    // Messages whose deliveries never all come (a dead subscriber) are given up after the ack timeout.
    const sweep = setInterval(() => {
      const cutoff = wallMs() - options.ackTimeoutMs;
      for (const [key, entry] of this.awaiting) {
        if (entry.sentAt >= cutoff) continue;
        this.awaiting.delete(key);
        this.rt.metrics.error("delivery window: not every subscriber received in time");
        this.refill?.(entry.slot);
      }
    }, 250);
    await sleep(stage.endAt - Date.now(), signal);
    clearInterval(sweep);
    this.windowOpen = false;
    this.refill = undefined;
  }

  private refill: ((slot: SlotState) => void) | undefined;

  /** A delivery to a local subscriber (DeliveryListener). */
  delivered(publisher: number, seq: number): void {
    if (this.awaiting.size === 0) return;
    const key = keyOf(publisher, seq);
    const entry = this.awaiting.get(key);
    if (!entry) return;
    if (--entry.remaining > 0) return;
    this.awaiting.delete(key);
    this.refill?.(entry.slot);
  }

  private complete(publisher: number, seq: number): void {
    const key = keyOf(publisher, seq);
    const entry = this.awaiting.get(key);
    if (!entry) return;
    this.awaiting.delete(key);
    this.refill?.(entry.slot);
  }
}
