import { sleep } from "./clock.js";
import { layoutOf } from "./layout.js";
import { ShardMetrics, type EncodedWindow } from "./metrics.js";
import type { LoadtestOptions } from "./options.js";
import { clientFactory, stagePlan, type Runtime } from "./runtime.js";
import { createScenario, type ScenarioFinal } from "./scenarios/index.js";
import { tokenSource } from "./tokens.js";

/** What a generator process is told at start. */
export interface ShardInit {
  options: LoadtestOptions;
  shard: number;
  shards: number;
  runId: string;
}

/** Parent → generator process. */
export type ParentCommand =
  /** Start the stages at this wall-clock time (ms). */
  | { type: "go"; at: number }
  /** Every process has run: drain, count, report. */
  | { type: "finish" }
  /** Run only the first `stages` stages (the ramp reached a limit): later ones end now. */
  | { type: "truncate"; stages: number }
  /** Ctrl-C: stop early. */
  | { type: "stop" };

/** Everything a generator process measured, in a form that crosses process boundaries. */
export interface ShardFinal extends ScenarioFinal {
  total: EncodedWindow;
  setup: EncodedWindow;
  stages: EncodedWindow[];
  errors: Array<[string, number]>;
}

/** Generator process → parent. */
export type ShardReport =
  | { type: "ready"; shard: number; open: number }
  | { type: "tick"; shard: number; open: number; interval: EncodedWindow }
  /** A stage's measured window has ended: its figures so far (the final ones come with `done`). */
  | { type: "stage"; shard: number; index: number; window: EncodedWindow }
  | { type: "ran"; shard: number }
  | { type: "done"; shard: number; final: ShardFinal }
  | { type: "failed"; shard: number; message: string };

export const TICK_MS = 1000;

/** A stage's window is reported this long after it ends (events of its last moment still arriving). */
const STAGE_REPORT_DELAY_MS = 100;

/**
 * One generator process's share of the run: its connections, publishers and measurements,
 * driven through setup → go → run → finish by the parent (coordinator.ts).
 */
export class Shard {
  private readonly abort = new AbortController();
  private readonly metrics = new ShardMetrics();
  private readonly rt: Runtime;
  private go: ((at: number) => void) | undefined;
  private finishNow: (() => void) | undefined;
  private readonly goAt: Promise<number>;
  private readonly finishCalled: Promise<void>;
  private readonly stageTimers: NodeJS.Timeout[] = [];

  constructor(
    private readonly init: ShardInit,
    private readonly send: (report: ShardReport) => void,
  ) {
    const { options, shard, shards, runId } = init;
    const factory = clientFactory(options);
    this.rt = {
      options,
      layout: layoutOf(options, runId),
      shard,
      shards,
      metrics: this.metrics,
      signal: this.abort.signal,
      tokens: tokenSource({ apiKey: options.apiKey, token: options.token, ttlS: options.tokenTtlS }),
      stages: [],
      owns: (index) => index % shards === shard,
      newClient: factory,
    };
    this.goAt = new Promise((resolve) => (this.go = resolve));
    this.finishCalled = new Promise((resolve) => (this.finishNow = resolve));
  }

  handle(command: ParentCommand): void {
    switch (command.type) {
      case "go":
        this.go?.(command.at);
        break;
      case "finish":
        this.finishNow?.();
        break;
      case "truncate": {
        // Later stages end before they start, so every loop waiting on them moves on.
        const now = Date.now();
        for (const stage of this.rt.stages.slice(command.stages)) {
          stage.warmupAt = Math.min(stage.warmupAt, now);
          stage.measureAt = Math.min(stage.measureAt, now);
          stage.endAt = Math.min(stage.endAt, now);
        }
        this.rt.stages.splice(command.stages);
        this.metrics.plan(this.rt.stages);
        break;
      }
      case "stop":
        this.metrics.cut(Date.now());
        this.abort.abort();
        this.go?.(Date.now());
        break;
    }
  }

  /** Runs the whole life of this process's share; never rejects (failures are reported). */
  async start(): Promise<void> {
    const scenario = createScenario(this.rt);
    const tick = setInterval(() => {
      this.send({ type: "tick", shard: this.init.shard, open: scenario.open(), interval: this.metrics.takeInterval() });
    }, TICK_MS);
    try {
      await scenario.setup();
      this.send({ type: "ready", shard: this.init.shard, open: scenario.open() });
      const at = await this.goAt;
      this.rt.stages = stagePlan(this.rt.options, at);
      this.metrics.plan(this.rt.stages);
      for (const stage of this.rt.stages) {
        // Just after the window closes, so that its last events are in.
        const timer = setTimeout(() => {
          if (!this.rt.stages.includes(stage) || this.abort.signal.aborted) return;
          this.send({ type: "stage", shard: this.init.shard, index: stage.index, window: this.metrics.stages[stage.index]!.encode() });
        }, stage.endAt + STAGE_REPORT_DELAY_MS - Date.now());
        this.stageTimers.push(timer);
      }
      await scenario.run();
      this.send({ type: "ran", shard: this.init.shard });
      await this.finishCalled;
      const final = await scenario.finish();
      this.send({ type: "tick", shard: this.init.shard, open: scenario.open(), interval: this.metrics.takeInterval() });
      this.send({
        type: "done",
        shard: this.init.shard,
        final: {
          ...final,
          total: this.metrics.total.encode(),
          setup: this.metrics.setup.encode(),
          stages: this.metrics.stages.map((w) => w.encode()),
          errors: [...this.metrics.errors],
        },
      });
    } catch (err) {
      this.send({ type: "failed", shard: this.init.shard, message: (err as Error).stack ?? String(err) });
    } finally {
      clearInterval(tick);
      for (const timer of this.stageTimers) clearTimeout(timer);
      scenario.close();
      // Let the close frames leave before the process (or the caller) moves on.
      await sleep(100);
    }
  }
}
