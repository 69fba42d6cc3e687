import type { LoadtestOptions, Scenario } from "./options.js";

/**
 * Who does what, computed the same way in every generator process. Connections are numbered
 * 0..total-1 and process k of K owns those with `index % K === k`; publishers are numbered
 * 0..P-1 and publisher p publishes on channel `p % C`.
 */
export interface Layout {
  /** Connections in all (subscribers or members, plus dedicated publishers). */
  total: number;
  /** Connections 0..subscribers-1 subscribe (fan-out, chat, recovery, persistence, connections) or are members (presence). */
  subscribers: number;
  publishers: number;
  channels: number;
  /** Connection index of publisher p. */
  publisherConnection(p: number): number;
  channelOfConnection(index: number): number;
  channelOfPublisher(p: number): number;
  channelName(channel: number): string;
  owner(index: number): number;
}

/** Scenarios whose publishers are members of the channels rather than extra connections. */
const MEMBER_PUBLISHERS: ReadonlySet<Scenario> = new Set(["chat"]);

export function layoutOf(options: Pick<LoadtestOptions, "scenario" | "connections" | "channels" | "publishers" | "procs">, runId: string): Layout {
  const { connections, channels, procs } = options;
  const publishing = options.scenario !== "connect-storm" && options.scenario !== "presence-churn";
  const publishers = publishing ? options.publishers : 0;
  const members = MEMBER_PUBLISHERS.has(options.scenario);
  return {
    total: connections + (publishing && !members ? publishers : 0),
    subscribers: connections,
    publishers,
    channels,
    publisherConnection: (p) => (members ? p : connections + p),
    channelOfConnection: (index) => index % channels,
    channelOfPublisher: (p) => p % channels,
    channelName: (channel) => `loadtest:${runId}:${channel}`,
    owner: (index) => index % procs,
  };
}
