import { sleep, wallMs } from "../clock.js";
import { OVERLOADED, type LoadClient } from "../engines/client.js";
import { connectMany, recordConnect } from "../pool.js";
import type { Runtime, StageTimes } from "../runtime.js";
import type { ScenarioFinal, ScenarioRun } from "./scenario.js";
import { waitQuiet } from "./quiet.js";

/** Presence sets whose member lists are checked at the end (the first ones, when there are more). */
const MAX_CHECKED_SETS = 1000;

/** Each member cycles through these operations, one per turn. */
const CYCLE = ["update-on", "update-off", "leave", "enter"] as const;

interface Member {
  index: number;
  set: number;
  client: LoadClient;
  inSet: boolean;
  step: number;
  busy: boolean;
}

/**
 * Presence churn: `--connections` members spread over `--channels` presence sets, entering,
 * updating (a typing flag) and leaving at `--rate` operations/s in total; every tenth operation
 * is a members list. Latency is from the operation to the member's own join/update event (the
 * server sends both to the member itself). At the end the server's member lists are compared
 * with who is really in each set: ghosts and missing members.
 */
export class PresenceChurn implements ScenarioRun {
  private readonly members: Member[] = [];
  private closed = false;
  private opCount = 0;

  constructor(private readonly rt: Runtime) {}

  open(): number {
    return this.members.filter((m) => m.client.connected).length;
  }

  private setName(set: number): string {
    return this.rt.layout.channelName(set);
  }

  private onEvent(member: () => Member | undefined) {
    return (name: string, args: unknown[]) => {
      if (!name.startsWith("presence:")) return;
      this.rt.metrics.count("presenceEvents");
      if (!name.endsWith(":join") && !name.endsWith(":update")) return;
      const state = args[0] as { socketId?: unknown; t?: unknown } | undefined;
      const self = member();
      if (!self || state?.socketId !== self.client.sid || typeof state?.t !== "string") return;
      this.rt.metrics.latency("presence", wallMs() - Number(state.t));
    };
  }

  async setup(): Promise<void> {
    const { options, shards, signal, metrics, layout } = this.rt;
    const indices: number[] = [];
    for (let i = 0; i < options.connections; i++) if (this.rt.owns(i)) indices.push(i);
    await connectMany({
      indices,
      rate: options.connectRate / shards,
      concurrency: Math.max(1, Math.ceil(options.connectConcurrency / shards)),
      signal,
      open: async (index) => {
        let member: Member | undefined;
        const client = this.rt.newClient({
          probe: () => undefined,
          event: this.onEvent(() => member),
          closed: (reason) => {
            if (this.closed) return;
            metrics.count("disconnects");
            metrics.note(`disconnected: ${reason}`);
            if (member) member.inSet = false; // the server removes a member whose socket is gone for good
          },
        });
        const result = await client.connect(this.rt.tokens.next(index), false, options.connectTimeoutMs);
        recordConnect(metrics, result);
        if (!result.ok) return { result, value: undefined };
        member = { index, set: layout.channelOfConnection(index), client, inSet: false, step: 0, busy: false };
        this.members.push(member);
        await this.operate(member, "enter");
        return { result, value: member };
      },
    });
  }

  private async operate(member: Member, op: (typeof CYCLE)[number]): Promise<void> {
    const { metrics, options } = this.rt;
    const set = this.setName(member.set);
    const t = wallMs().toFixed(3);
    const started = wallMs();
    member.busy = true;
    let outcome;
    switch (op) {
      case "enter":
        outcome = await member.client.request("presenceSet:enter", [set, { user: `u${member.index}`, typing: "false", t }], options.ackTimeoutMs);
        if (outcome.ok) member.inSet = true;
        break;
      case "update-on":
      case "update-off":
        outcome = await member.client.request("presence:update", [set, { typing: op === "update-on" ? "true" : "false", t }], options.ackTimeoutMs);
        break;
      case "leave":
        outcome = await member.client.request("presenceSet:leave", [set], options.ackTimeoutMs);
        if (outcome.ok) member.inSet = false;
        break;
    }
    member.busy = false;
    metrics.count("presenceOps");
    if (outcome.ok) metrics.latency("ack", wallMs() - started);
    else this.failed(`presence ${op}`, outcome.error);
  }

  /** A refused or unanswered operation: OVERLOADED and timeouts are limits, anything else an error. */
  private failed(what: string, error: string | undefined): void {
    const { metrics } = this.rt;
    if (error === OVERLOADED) {
      metrics.count("overloaded");
      metrics.note(`${what} refused: ${error}`);
    } else if (error === "TIMEOUT") {
      metrics.count("ackTimeouts");
      metrics.note(`${what}: no answer before --ack-timeout`);
    } else {
      metrics.error(`${what}: ${error}`);
    }
  }

  private async membersList(member: Member): Promise<void> {
    const { metrics, options, layout } = this.rt;
    const started = wallMs();
    const set = this.opCount % layout.channels;
    const outcome = await member.client.request("presence:members:get", [this.setName(set)], options.ackTimeoutMs);
    metrics.count("presenceOps");
    if (outcome.ok) metrics.latency("ack", wallMs() - started);
    else this.failed("presence members", outcome.error);
  }

  async run(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    for (const stage of this.rt.stages) {
      if (this.rt.signal.aborted) break;
      await this.runStage(stage, inFlight);
    }
    await Promise.all(inFlight);
  }

  private async runStage(stage: StageTimes, inFlight: Set<Promise<void>>): Promise<void> {
    const { signal, shards, metrics } = this.rt;
    await sleep(stage.warmupAt - Date.now(), signal);
    if (this.members.length === 0) return;
    // `max`: one operation in flight per member, back to back.
    const rate = stage.rate === "max" ? Infinity : stage.rate / shards;
    const spacing = rate === Infinity ? 0 : 1000 / rate;
    let due = Date.now();
    let cursor = 0;
    while (!signal.aborted && Date.now() < stage.endAt) {
      if (spacing > 0 && due > Date.now()) {
        await sleep(Math.min(due, stage.endAt) - Date.now(), signal);
        continue;
      }
      due = Math.max(due + spacing, Date.now() - 1000);
      const member = this.members[cursor++ % this.members.length]!;
      if (member.busy || !member.client.connected) {
        // Open loop: an operation that was due and could not go counts as skipped.
        if (spacing > 0) metrics.count("skipped");
        else await sleep(1, signal);
        continue;
      }
      this.opCount++;
      const task = this.opCount % 10 === 0 ? this.membersList(member) : this.operate(member, CYCLE[member.step++ % CYCLE.length]!);
      inFlight.add(task);
      void task.then(() => inFlight.delete(task));
      if (spacing === 0 && inFlight.size >= this.members.length) await Promise.race(inFlight);
    }
  }

  async finish(): Promise<ScenarioFinal> {
    const { layout, metrics, options, signal } = this.rt;
    await waitQuiet(() => metrics.total.counters.presenceEvents, 500, signal.aborted ? 1000 : options.drainS * 1000);
    const sets = Math.min(layout.channels, MAX_CHECKED_SETS);
    const local = new Array<number>(sets).fill(0);
    for (const m of this.members) if (m.inSet && m.set < sets) local[m.set]!++;
    if (this.rt.shard !== 0 || signal.aborted) return { sent: [], received: [], presence: { local } };
    const asker = this.members.find((m) => m.client.connected);
    if (!asker) return { sent: [], received: [], presence: { local } };
    const observed: number[] = [];
    for (let set = 0; set < sets; set++) {
      const outcome = await asker.client.request("presence:members:get", [this.setName(set)], options.ackTimeoutMs);
      const users = (outcome.value as { users?: unknown } | undefined)?.users;
      observed.push(outcome.ok && Array.isArray(users) ? users.length : -1);
    }
    return { sent: [], received: [], presence: { local, observed } };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const m of this.members) m.client.close();
  }
}
