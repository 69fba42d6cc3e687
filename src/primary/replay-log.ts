import { parseOffset } from "../shared/adapter-ipc.js";

/** One logged broadcast: what a recovering socket may have missed. */
export interface LogEntry {
  seq: number;
  at: number;
  /**
   * The event packet's data array as JSON, as the publishing worker encoded it (parsed only when
   * replayed, so a logged broadcast costs the primary no object graph to hold and collect).
   * Neither this nor `data` for a marker: a sequenced broadcast that is never replayed (a
   * connection's welcome), kept only so that its offset stays valid to recover from.
   */
  json?: string;
  /** The data array with its offset last: entries of a saved log written by an earlier version. */
  data: unknown[] | null;
  rooms: string[];
  except: string[];
  /** Approximate size (the packet's JSON length, as measured by the publishing worker). */
  bytes: number;
  /** The publishing worker's tag and its count of sequenced broadcasts (`Position`), when it sent them. */
  origin?: string;
  n?: number;
}

const NONE: string[] = [];

/** Who published a broadcast: the worker's tag and its own count, as `Position` has them. */
export interface Origin {
  origin: string;
  n: number;
}

export interface ReplayLogLimits {
  /** Entries older than this are dropped, in ms (the recovery window). */
  maxAgeMs: number;
  /** At most this many entries are kept; the oldest go first. */
  maxEntries: number;
  /** At most this many bytes of packets are kept; the oldest go first. */
  maxBytes: number;
}

export interface ReplayLogSnapshot {
  epoch: string;
  seq: number;
  entries: LogEntry[];
}

/**
 * The host's bounded replay log (embedded mode). Every sequenced broadcast is logged, so kept
 * entries have contiguous sequence numbers. Offsets are `Position`s (shared/adapter-ipc.ts): the
 * epoch names this log, so an offset from another log (a previous run that kept nothing) is never
 * misread.
 */
export class ReplayLog {
  private entries: LogEntry[];
  private head = 0; // index of the oldest kept entry in `entries`
  private seq: number;
  private bytes = 0;
  readonly epoch: string;

  constructor(
    private readonly limits: ReplayLogLimits,
    from: ReplayLogSnapshot,
  ) {
    this.epoch = from.epoch;
    this.seq = from.seq;
    this.entries = from.entries;
    for (const e of this.entries) this.bytes += e.bytes ?? 0;
  }

  /** The offset of the newest broadcast sequenced so far. */
  get lastOffset(): string {
    return `${this.epoch}-${this.seq}`;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  /** Logs a broadcast under the next sequence number and returns its offset. */
  append(data: unknown[], rooms: string[], except: string[], bytes: number, now: number, from?: Origin): string {
    return this.appendJson(JSON.stringify(data), rooms, except, bytes, now, from);
  }

  /** Logs a broadcast whose data array is given as JSON; returns its offset. */
  appendJson(json: string, rooms: string[], except: string[], bytes: number, now: number, from?: Origin): string {
    const seq = ++this.seq;
    this.entries.push({ seq, at: now, json, data: null, rooms, except, bytes, origin: from?.origin, n: from?.n });
    this.bytes += bytes;
    this.trim(now);
    return `${this.epoch}-${seq}`;
  }

  /**
   * Sequences a broadcast that is never replayed and returns its offset: the welcome each
   * connection gets (a recovered connection gets a fresh one), one per connected socket, so its
   * content is not kept. Counts toward the entry bound, not the byte bound.
   */
  appendMarker(now: number, from?: Origin): string {
    const seq = ++this.seq;
    this.entries.push({ seq, at: now, data: null, rooms: NONE, except: NONE, bytes: 0, origin: from?.origin, n: from?.n });
    this.trim(now);
    return `${this.epoch}-${seq}`;
  }

  /** Drops entries past the count and age bounds. */
  trim(now: number): void {
    let excess = Math.max(0, this.size - this.limits.maxEntries);
    while (this.head < this.entries.length) {
      const oldest = this.entries[this.head]!;
      if (excess <= 0 && this.bytes <= this.limits.maxBytes && now - oldest.at <= this.limits.maxAgeMs) break;
      this.bytes -= oldest.bytes;
      this.head++;
      excess--;
    }
    // Compact once the dead prefix dominates, so trimming stays O(1) amortised.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * The packets a socket in `rooms` would have received after `offset` (`Position`), or undefined
   * when the log no longer reaches back to it: recovery then fails whole, never partly. Entries
   * past `seq` from the offset's origin, up to its count, were delivered already and are skipped.
   */
  since(offset: string, rooms: readonly string[]): unknown[][] | undefined {
    const at = parseOffset(offset);
    if (!at || at.epoch !== this.epoch || at.seq > this.seq) return undefined;
    const from = at.seq;
    const oldestKept = this.entries[this.head]?.seq ?? this.seq + 1;
    if (from < oldestKept - 1) return undefined; // entries after `from` were trimmed
    const roomSet = new Set(rooms);
    const missed: unknown[][] = [];
    for (let i = this.head + (from - oldestKept + 1); i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.json === undefined && e.data === null) continue;
      if (at.origin !== undefined && e.origin === at.origin && e.n! <= at.n!) continue;
      const included = e.rooms.length === 0 || e.rooms.some((r) => roomSet.has(r));
      if (!included || e.except.some((r) => roomSet.has(r))) continue;
      if (e.json === undefined) missed.push(e.data!);
      else {
        const data = JSON.parse(e.json) as unknown[];
        data.push(`${this.epoch}-${e.seq}`);
        missed.push(data);
      }
    }
    return missed;
  }

  /** What to save across a graceful restart. */
  snapshot(): ReplayLogSnapshot {
    return { epoch: this.epoch, seq: this.seq, entries: this.entries.slice(this.head) };
  }
}
