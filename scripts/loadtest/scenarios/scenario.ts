import type { ReceivedTally, SentTally } from "../sequence.js";

/** What a scenario hands back at the end, from one generator process. */
export interface ScenarioFinal {
  sent: Array<[number, SentTally]>;
  received: Array<[number, ReceivedTally]>;
  /** Presence sets: members this process holds per set, and (process 0 only) what the server lists. */
  presence?: { local: number[]; observed?: number[] };
  /** Connect storm, per stage: first connect started and last one finished, wall-clock ms. */
  connectSpans?: Array<{ first: number; last: number } | null>;
}

/** A workload: set up before the common start, run through the stages, then finish and report. */
export interface ScenarioRun {
  setup(): Promise<void>;
  run(): Promise<void>;
  finish(): Promise<ScenarioFinal>;
  /** Connections open now. */
  open(): number;
  /** Closes every connection (idempotent). */
  close(): void;
}
