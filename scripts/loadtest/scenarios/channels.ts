import { sleep } from "../clock.js";
import { paddingFor, type LoadClient } from "../engines/client.js";
import { DeliveryBook } from "../deliveries.js";
import { connectMany, recordConnect } from "../pool.js";
import { PublisherSet, type PublisherSlot } from "../publishers.js";
import type { Runtime } from "../runtime.js";
import type { ScenarioFinal, ScenarioRun } from "./scenario.js";
import { waitQuiet } from "./quiet.js";

/**
 * The message scenarios: subscribers on channels, publishers sending probes.
 * - fan-out: few channels with many subscribers each; publishers are extra connections.
 * - chat: many small channels; the publishers are members of them.
 * - persistence-throughput: like fan-out, judged by the durable acks (`--rate max` by default).
 * - recovery-storm: like fan-out, and every `--storm-every` seconds a share of the subscribers
 *   lose their connection at once and come back with connection state recovery.
 */
export class ChannelScenario implements ScenarioRun {
  protected readonly clients = new Map<number, LoadClient>();
  protected readonly book: DeliveryBook;
  protected publishers: PublisherSet | undefined;
  private closed = false;
  /** Subscribers are owed every message of their channel, and their misses are losses. */
  protected tracksLoss = true;

  constructor(protected readonly rt: Runtime) {
    this.book = new DeliveryBook(rt.metrics);
  }

  open(): number {
    let n = 0;
    for (const c of this.clients.values()) if (c.connected) n++;
    return n;
  }

  protected newClient(index: number): LoadClient {
    const { metrics } = this.rt;
    return this.rt.newClient({
      probe: this.book.onProbe(index),
      event: () => undefined, // the welcome and anything else: not measured here
      closed: (reason) => {
        if (this.closed) return;
        metrics.count("disconnects");
        metrics.note(`disconnected: ${reason}`);
      },
    });
  }

  /** Subscribes connection `index` to its channel; a failure is an error (of `stage`, when given). */
  protected async subscribe(index: number, client: LoadClient, stage?: number): Promise<boolean> {
    const { layout, metrics, options } = this.rt;
    const channel = layout.channelOfConnection(index);
    const ack = await client.request("channel:subscribe", [layout.channelName(channel)], options.ackTimeoutMs);
    if (!ack.ok) {
      metrics.error(`subscribe: ${ack.error}`, stage);
      return false;
    }
    if (this.tracksLoss) this.book.add(index, channel);
    return true;
  }

  async setup(): Promise<void> {
    const { layout, options, shards, signal, metrics } = this.rt;
    const owned = (from: number, to: number) => {
      const list: number[] = [];
      for (let i = from; i < to; i++) if (this.rt.owns(i)) list.push(i);
      return list;
    };
    const publisherIndices = new Set<number>();
    for (let p = 0; p < layout.publishers; p++) publisherIndices.add(layout.publisherConnection(p));
    const indices = [...owned(0, layout.subscribers), ...owned(layout.subscribers, layout.total)];
    await connectMany({
      indices,
      rate: options.connectRate / shards,
      concurrency: Math.max(1, Math.ceil(options.connectConcurrency / shards)),
      signal,
      open: async (index) => {
        const client = this.newClient(index);
        const result = await client.connect(this.rt.tokens.next(index), false, options.connectTimeoutMs);
        recordConnect(metrics, result);
        if (!result.ok) return { result, value: undefined };
        this.clients.set(index, client);
        if (index < layout.subscribers) await this.subscribe(index, client);
        return { result, value: client };
      },
    });
    this.preparePublishers(false);
  }

  /** This process's publishers, on the connections opened for them. */
  protected preparePublishers(measuredOnly: boolean): void {
    const { layout, options } = this.rt;
    const slots: PublisherSlot[] = [];
    for (let p = 0; p < layout.publishers; p++) {
      const client = this.clients.get(layout.publisherConnection(p));
      if (!client) continue; // not ours, or its connect failed (already counted)
      const channel = layout.channelOfPublisher(p);
      slots.push({ p, client, channel, channelName: layout.channelName(channel) });
    }
    this.publishers = new PublisherSet(this.rt, slots, paddingFor(options.payloadBytes), this.book, measuredOnly);
    this.book.listener = this.publishers;
  }

  async run(): Promise<void> {
    const storms = this.rt.options.scenario === "recovery-storm" ? this.storms() : Promise.resolve();
    await this.publishers!.run();
    await storms;
  }

  /** Drops a share of this process's subscribers at once, every `stormEvery` seconds, and recovers them. */
  private async storms(): Promise<void> {
    const { options, signal, layout } = this.rt;
    const stages = this.rt.stages;
    const first = stages[0];
    const last = stages[stages.length - 1];
    if (!first || !last) return;
    const subscribers = [...this.clients.keys()].filter((i) => i < layout.subscribers).sort((a, b) => a - b);
    const perStorm = Math.max(1, Math.round(subscribers.length * options.dropFraction));
    let cursor = 0;
    // Storms start one interval into the run and leave the last second of it for the stragglers.
    for (let at = first.warmupAt + options.stormEveryS * 1000; at < last.endAt - 1000; at += options.stormEveryS * 1000) {
      await sleep(at - Date.now(), signal);
      if (signal.aborted) return;
      const victims: number[] = [];
      for (let i = 0; i < perStorm && subscribers.length > 0; i++) victims.push(subscribers[cursor++ % subscribers.length]!);
      for (const index of victims) this.clients.get(index)!.drop();
      await connectMany({
        indices: victims,
        rate: undefined,
        concurrency: options.connectConcurrency,
        signal,
        open: (index) => this.recover(index),
      });
    }
  }

  private async recover(index: number) {
    const { metrics, options } = this.rt;
    const client = this.clients.get(index)!;
    metrics.count("recoveries");
    const result = await client.connect(this.rt.tokens.next(index), true, options.connectTimeoutMs);
    if (!result.ok) {
      recordConnect(metrics, result);
      return { result, value: undefined };
    }
    metrics.latency("recovery", result.ms);
    if (result.recovered) {
      metrics.count("recovered");
    } else {
      // A new session: it must subscribe again, and whatever was published meanwhile is lost to it.
      metrics.count("notRecovered");
      metrics.error("recovery failed: new session");
      await this.subscribe(index, client);
    }
    return { result, value: client };
  }

  async finish(): Promise<ScenarioFinal> {
    const { options, layout, metrics, signal } = this.rt;
    await this.publishers!.settle(signal.aborted ? 500 : options.ackTimeoutMs);
    const drainMs = signal.aborted ? Math.min(1000, options.drainS * 1000) : options.drainS * 1000;
    await waitQuiet(() => metrics.total.counters.deliveries, 500, drainMs);
    return {
      sent: [...this.publishers!.sentTallies()],
      received: [...this.book.tallies(layout.publishers, layout.channelOfPublisher)],
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const client of this.clients.values()) client.close();
  }
}
