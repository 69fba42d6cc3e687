/**
 * Lost and duplicated message detection. Every publisher numbers its messages 1, 2, 3...; each
 * subscriber keeps, per publisher, the highest contiguous sequence number seen and the numbers
 * seen beyond it. A number at or below the contiguous mark, or seen twice beyond it, is a
 * duplicate. At the end, a subscriber that missed nothing has seen every number its publishers
 * sent (less those the server refused, which were never broadcast).
 */

/** Out-of-order numbers kept per (subscriber, publisher) before further ones are only counted. */
export const MAX_GAP_ENTRIES = 100_000;

export class PublisherTrack {
  /** Every number below this has been seen. */
  next = 1;
  /** Numbers seen beyond `next`. */
  private ahead: Set<number> | undefined;
  distinct = 0;
  duplicates = 0;
  /** Arrivals with a number lower than one already seen (overtaken in flight). */
  reordered = 0;
  /** Out-of-order numbers past MAX_GAP_ENTRIES, counted but not tracked (duplicates among them go unseen). */
  untracked = 0;
  private highest = 0;

  see(seq: number): void {
    if (seq < this.next) {
      this.duplicates++;
      return;
    }
    if (seq < this.highest) this.reordered++;
    else this.highest = seq;
    if (seq === this.next) {
      this.distinct++;
      this.next++;
      const ahead = this.ahead;
      if (ahead && ahead.size > 0) {
        while (ahead.delete(this.next)) this.next++;
      }
      return;
    }
    const ahead = (this.ahead ??= new Set());
    if (ahead.has(seq)) {
      this.duplicates++;
      return;
    }
    if (ahead.size >= MAX_GAP_ENTRIES) {
      this.untracked++;
      this.distinct++;
      return;
    }
    ahead.add(seq);
    this.distinct++;
  }
}

/** One subscriber's view: a track per publisher (publishers are numbered 0..P-1). */
export class SubscriberTracks {
  private readonly tracks: Array<PublisherTrack | undefined> = [];

  see(publisher: number, seq: number): void {
    let track = this.tracks[publisher];
    if (!track) {
      track = new PublisherTrack();
      this.tracks[publisher] = track;
    }
    track.see(seq);
  }

  track(publisher: number): PublisherTrack | undefined {
    return this.tracks[publisher];
  }
}

/** What one generator process saw from one publisher, summed over its subscribers of that publisher's channel. */
export interface ReceivedTally {
  /** Subscribers that were listening for the whole run (their misses are losses). */
  receivers: number;
  distinct: number;
  duplicates: number;
  reordered: number;
}

/** What a publisher sent: numbers 1..sent, of which `refused` were refused by the server (never broadcast). */
export interface SentTally {
  sent: number;
  refused: number;
}

export interface DeliveryTally {
  /** Deliveries owed: for each publisher, messages broadcast × subscribers of its channel. */
  expected: number;
  /** Distinct deliveries that arrived. */
  delivered: number;
  lost: number;
  duplicated: number;
  reordered: number;
  /** Distinct deliveries beyond what was owed (a refused message that was broadcast after all). */
  unexpected: number;
}

/**
 * Combines the publishers' sent counts with the receivers' tallies (from any number of
 * processes) into lost and duplicated deliveries.
 */
export function tallyDeliveries(sent: ReadonlyMap<number, SentTally>, received: ReadonlyArray<ReadonlyMap<number, ReceivedTally>>): DeliveryTally {
  const total: DeliveryTally = { expected: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0, unexpected: 0 };
  const merged = new Map<number, ReceivedTally>();
  for (const part of received) {
    for (const [publisher, tally] of part) {
      const into = merged.get(publisher) ?? { receivers: 0, distinct: 0, duplicates: 0, reordered: 0 };
      into.receivers += tally.receivers;
      into.distinct += tally.distinct;
      into.duplicates += tally.duplicates;
      into.reordered += tally.reordered;
      merged.set(publisher, into);
    }
  }
  const publishers = new Set([...sent.keys(), ...merged.keys()]);
  for (const publisher of publishers) {
    const s = sent.get(publisher) ?? { sent: 0, refused: 0 };
    const r = merged.get(publisher) ?? { receivers: 0, distinct: 0, duplicates: 0, reordered: 0 };
    const owed = Math.max(0, s.sent - s.refused) * r.receivers;
    total.expected += owed;
    total.delivered += r.distinct;
    total.lost += Math.max(0, owed - r.distinct);
    total.unexpected += Math.max(0, r.distinct - owed);
    total.duplicated += r.duplicates;
    total.reordered += r.reordered;
  }
  return total;
}
