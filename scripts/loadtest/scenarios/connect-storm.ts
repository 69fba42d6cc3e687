import { sleep, wallMs } from "../clock.js";
import type { LoadClient } from "../engines/client.js";
import { connectMany, recordConnect } from "../pool.js";
import type { Runtime } from "../runtime.js";
import type { ScenarioFinal, ScenarioRun } from "./scenario.js";

/**
 * Connect storm: `--connections` connects in all, each with its own freshly minted token, at the
 * stage's rate (connects/s; `max`: as fast as `--connect-concurrency` allows). Connections stay
 * open until the end, so the server's memory per connection is read with all of them held.
 */
export class ConnectStorm implements ScenarioRun {
  private readonly clients: LoadClient[] = [];
  private closed = false;
  private readonly spans: Array<{ first: number; last: number } | null> = [];

  constructor(private readonly rt: Runtime) {}

  open(): number {
    return this.clients.filter((c) => c.connected).length;
  }

  async setup(): Promise<void> {
    // Nothing before the start: the connects are what is measured.
  }

  async run(): Promise<void> {
    const { options, shards, signal, metrics } = this.rt;
    const pending: number[] = [];
    for (let i = 0; i < options.connections; i++) if (this.rt.owns(i)) pending.push(i);
    for (const stage of this.rt.stages) {
      if (signal.aborted || pending.length === 0) break;
      await sleep(stage.warmupAt - Date.now(), signal);
      const batch = pending.splice(0);
      const launched = new Set<number>();
      const span = { first: Infinity, last: 0 };
      await connectMany({
        indices: batch,
        rate: stage.rate === "max" ? undefined : stage.rate / shards,
        concurrency: Math.max(1, Math.ceil(options.connectConcurrency / shards)),
        keepGoing: () => Date.now() < stage.endAt,
        signal,
        open: async (index) => {
          launched.add(index);
          const client = this.rt.newClient({
            probe: () => undefined,
            event: () => undefined,
            closed: (reason) => {
              if (this.closed) return;
              metrics.count("disconnects");
              metrics.note(`disconnected: ${reason}`);
            },
          });
          this.clients.push(client);
          span.first = Math.min(span.first, wallMs());
          const result = await client.connect(this.rt.tokens.next(index), false, options.connectTimeoutMs);
          span.last = Math.max(span.last, wallMs());
          recordConnect(metrics, result);
          return { result, value: result.ok ? client : undefined };
        },
      });
      this.spans[stage.index] = span.last > 0 ? span : null;
      // Connects the stage had no time for wait for the next stage.
      pending.push(...batch.filter((i) => !launched.has(i)));
    }
  }

  async finish(): Promise<ScenarioFinal> {
    return { sent: [], received: [], connectSpans: this.spans };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const client of this.clients) client.close();
  }
}
