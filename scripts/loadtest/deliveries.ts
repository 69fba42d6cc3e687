import { wallMs } from "./clock.js";
import type { Probe } from "./engines/client.js";
import type { ShardMetrics } from "./metrics.js";
import { SubscriberTracks, type ReceivedTally } from "./sequence.js";

/** Something waiting on deliveries (a publisher window by delivery). */
export interface DeliveryListener {
  delivered(publisher: number, seq: number): void;
}

interface Subscriber {
  channel: number;
  tracks: SubscriberTracks;
}

/**
 * This process's subscribers: every delivered probe is timed (publish → deliver, from the
 * timestamp the publisher embedded) and checked against the publisher's sequence numbers.
 */
export class DeliveryBook {
  private readonly subscribers = new Map<number, Subscriber>();
  listener: DeliveryListener | undefined;

  constructor(private readonly metrics: ShardMetrics) {}

  /** Registers a subscriber (once its subscribe is acked): from now on it is owed every message of its channel. */
  add(index: number, channel: number): void {
    if (!this.subscribers.has(index)) this.subscribers.set(index, { channel, tracks: new SubscriberTracks() });
  }

  has(index: number): boolean {
    return this.subscribers.has(index);
  }

  /** Subscribers of `channel` in this process. */
  receiversOf(channel: number): number {
    let n = 0;
    for (const s of this.subscribers.values()) if (s.channel === channel) n++;
    return n;
  }

  /** The handler for connection `index`'s probes. */
  onProbe(index: number): (probe: Probe) => void {
    return (probe) => {
      this.metrics.delivery(wallMs() - probe.t);
      const subscriber = this.subscribers.get(index);
      if (!subscriber) return; // not (yet) subscribed through us: timed, not tracked
      subscriber.tracks.see(probe.p, probe.s);
      this.listener?.delivered(probe.p, probe.s);
    };
  }

  /** Per publisher: receivers here and what they saw. */
  tallies(publishers: number, channelOf: (p: number) => number): Map<number, ReceivedTally> {
    const byChannel = new Map<number, Subscriber[]>();
    for (const s of this.subscribers.values()) {
      const list = byChannel.get(s.channel) ?? [];
      list.push(s);
      byChannel.set(s.channel, list);
    }
    const out = new Map<number, ReceivedTally>();
    for (let p = 0; p < publishers; p++) {
      const receivers = byChannel.get(channelOf(p)) ?? [];
      if (receivers.length === 0) continue;
      const tally: ReceivedTally = { receivers: receivers.length, distinct: 0, duplicates: 0, reordered: 0 };
      for (const s of receivers) {
        const track = s.tracks.track(p);
        if (!track) continue;
        tally.distinct += track.distinct;
        tally.duplicates += track.duplicates;
        tally.reordered += track.reordered;
      }
      out.set(p, tally);
    }
    return out;
  }
}
