import { sleep } from "../clock.js";
import { connectMany, recordConnect } from "../pool.js";
import type { StageTimes } from "../runtime.js";
import { ChannelScenario } from "./channels.js";

/**
 * Connections: how many connections one server holds. Each stage opens connections up to its
 * level (`--connections 1000,2000,4000`) in its warm-up, each subscribing to one of `--channels`
 * channels, then holds them through its measured window while `--publishers` extra connections
 * publish at `--rate` in all to a few of those channels: most connections idle, a few lightly
 * active. Connect latency and outcomes count in the stage they open for; delivery latency of the
 * active ones, and the server's RSS and CPU at each level, judge it. The coordinator stops the
 * ramp at the first level that misses.
 *
 * Loss is not counted here: a connection that joins at a later level was never owed the
 * messages before it (the message scenarios count losses).
 */
export class ConnectionsRamp extends ChannelScenario {
  protected override tracksLoss = false;

  /** Opens connection `index` (a subscriber opened for `stage`, or a publisher when it is undefined). */
  private async connect(index: number, stage: number | undefined) {
    const { metrics, options, layout } = this.rt;
    const client = this.newClient(index);
    const result = await client.connect(this.rt.tokens.next(index), false, options.connectTimeoutMs);
    recordConnect(metrics, result, stage);
    if (!result.ok) return { result, value: undefined };
    this.clients.set(index, client);
    if (index < layout.subscribers) await this.subscribe(index, client, stage);
    return { result, value: client };
  }

  /** Opens the publishers; the connections that are counted come with the stages. */
  override async setup(): Promise<void> {
    const { layout, options, shards, signal } = this.rt;
    const indices: number[] = [];
    for (let p = 0; p < layout.publishers; p++) if (this.rt.owns(layout.publisherConnection(p))) indices.push(layout.publisherConnection(p));
    await connectMany({
      indices,
      rate: options.connectRate / shards,
      concurrency: Math.max(1, Math.ceil(options.connectConcurrency / shards)),
      signal,
      open: (index) => this.connect(index, undefined),
    });
    // Quiet in the warm-ups, while the stage's connections open.
    this.preparePublishers(true);
  }

  override async run(): Promise<void> {
    await Promise.all([this.publishers!.run(), this.ramp()]);
  }

  /** Each stage's warm-up opens this process's share of the connections up to its level. */
  private async ramp(): Promise<void> {
    const { options, shards, signal } = this.rt;
    let from = 0;
    for (const stage of this.rt.stages) {
      if (signal.aborted) return;
      await sleep(stage.warmupAt - Date.now(), signal);
      const to = stage.level ?? from;
      const indices: number[] = [];
      for (let i = from; i < to; i++) if (this.rt.owns(i)) indices.push(i);
      from = to;
      await connectMany({
        indices,
        rate: options.connectRate / shards,
        concurrency: Math.max(1, Math.ceil(options.connectConcurrency / shards)),
        keepGoing: () => this.running(stage),
        signal,
        open: (index) => this.connect(index, stage.index),
      });
    }
  }

  /** The stage is still part of the run (not cut by the ramp's stop) and not over. */
  private running(stage: StageTimes): boolean {
    return this.rt.stages.includes(stage) && Date.now() < stage.endAt;
  }
}
