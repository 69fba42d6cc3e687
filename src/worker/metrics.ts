import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { channelRoom, messageEvent } from "./rooms.js";
import { METRIC_PREFIX, collectProcessMetrics, type MetricSnapshot } from "../shared/metrics.js";

/**
 * This worker's metrics. The primary asks every worker for a snapshot on each scrape of
 * `GET /metrics` and sums them (see src/primary/metrics.ts). Labels come from closed sets only
 * (event names of the handler table, error codes, disconnect reasons): never a channel or a client.
 *
 * Module-level, as prom-client's metrics are meant to be: the hot paths (dispatcher, adapters,
 * batcher) reach them without being handed a registry.
 */
const registry = new Registry();

const name = (suffix: string) => `${METRIC_PREFIX}${suffix}`;

export const workerMetrics = {
  connects: new Counter({ name: name("connects_total"), help: "Client connections accepted (recovered ones included).", registers: [registry] }),
  disconnects: new Counter({
    name: name("disconnects_total"),
    help: "Client disconnections, by Socket.IO's reason (transport close, ping timeout, server namespace disconnect, ...).",
    labelNames: ["reason"] as const,
    registers: [registry],
  }),
  recoveries: new Counter({
    name: name("recoveries_total"),
    help: "Connections that asked to recover a session: recovered=\"true\" got it back with what they missed, \"false\" started afresh.",
    labelNames: ["recovered"] as const,
    registers: [registry],
  }),
  published: new Counter({ name: name("messages_published_total"), help: "Messages accepted (from message:queue and the HTTP API) and broadcast to their channel.", registers: [registry] }),
  delivered: new Counter({
    name: name("messages_delivered_total"),
    help: "Channel messages handed to subscribers' connections (one per subscriber reached).",
    registers: [registry],
  }),
  commandDuration: new Histogram({
    name: name("command_duration_seconds"),
    help: "Time from a client event's arrival to its reply, by event (publishes: until durable and handed on).",
    labelNames: ["event"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  }),
  commandFailures: new Counter({
    name: name("command_failures_total"),
    help: "Client events answered with an error, by event and error code.",
    labelNames: ["event", "code"] as const,
    registers: [registry],
  }),
  httpApiRequests: new Counter({
    name: name("http_api_requests_total"),
    help: "HTTP API requests (/data, /api/<method>) answered, by route and HTTP status.",
    labelNames: ["route", "status"] as const,
    registers: [registry],
  }),
  httpApiDuration: new Histogram({
    name: name("http_api_duration_seconds"),
    help: "Time from an HTTP API request's arrival to its answer, by route (publishes: until durable and handed on).",
    labelNames: ["route"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  }),
  rateLimitedEvents: new Counter({ name: name("rate_limited_events_total"), help: "Client events dropped by the per-connection rate limit (CLIENT_RATE_*).", registers: [registry] }),
  rateLimitedDisconnects: new Counter({
    name: name("rate_limited_disconnects_total"),
    help: "Connections closed for exceeding the event rate limit again and again.",
    registers: [registry],
  }),
  slowConsumerDisconnects: new Counter({
    name: name("slow_consumer_disconnects_total"),
    help: "Connections closed because the server held more than CLIENT_QUEUE_MAX_BYTES for them.",
    registers: [registry],
  }),
  spilled: new Counter({ name: name("persistence_spilled_messages_total"), help: "Messages written to the spill file because the store did not take them.", registers: [registry] }),
  storeErrors: new Counter({
    name: name("persistence_store_errors_total"),
    help: "Batch writes to the store that failed (each attempt; they are retried, then spilled).",
    registers: [registry],
  }),
};

/** What the gauges read at scrape time (nothing is kept up to date on the hot path for them). */
export interface WorkerGaugeSources {
  /** Connected client sockets. */
  connections(): number;
  /** The adapter's rooms: channel rooms and their local members. */
  rooms(): ReadonlyMap<string, ReadonlySet<string>>;
  /** Messages accepted and not yet durable. */
  persistenceQueueDepth(): number;
}

/** Registers the gauges and the process metrics; called once, by the worker's main. */
export function observeWorker(sources: WorkerGaugeSources): void {
  collectProcessMetrics(registry, "worker");
  new Gauge({
    name: name("connections"),
    help: "Client connections open.",
    registers: [registry],
    collect() {
      this.set(sources.connections());
    },
  });
  new Gauge({
    name: name("subscriptions"),
    help: "Channel subscriptions held by open connections.",
    registers: [registry],
    collect() {
      this.set(channelRooms(sources.rooms()).members);
    },
  });
  new Gauge({
    name: name("channels"),
    help: "Channels with a subscriber, counted per worker and summed (a channel with subscribers on two workers counts twice).",
    registers: [registry],
    collect() {
      this.set(channelRooms(sources.rooms()).channels);
    },
  });
  new Gauge({
    name: name("persistence_queue_depth"),
    help: "Messages accepted and not yet stored or spilled.",
    registers: [registry],
    collect() {
      this.set(sources.persistenceQueueDepth());
    },
  });
}

/** This worker's metrics as the primary aggregates them. */
export function workerSnapshot(): Promise<MetricSnapshot> {
  return registry.getMetricsAsJSON();
}

const CHANNEL_PREFIX = channelRoom("");

/** Channel rooms here and their members: one pass over the rooms, at scrape time. */
function channelRooms(rooms: ReadonlyMap<string, ReadonlySet<string>>): { channels: number; members: number } {
  let channels = 0;
  let members = 0;
  for (const [room, sockets] of rooms) {
    if (!room.startsWith(CHANNEL_PREFIX)) continue;
    channels++;
    members += sockets.size;
  }
  return { channels, members };
}
const MESSAGE_EVENT_PREFIX = messageEvent("");

/**
 * Counts a broadcast's local deliveries when it is a channel message: the size of its room here,
 * read once per broadcast (never per recipient).
 */
export function countDelivered(rooms: ReadonlyMap<string, ReadonlySet<string>>, event: unknown, to: Iterable<string>): void {
  if (typeof event !== "string" || !event.startsWith(MESSAGE_EVENT_PREFIX)) return;
  let reached = 0;
  for (const room of to) reached += rooms.get(room)?.size ?? 0;
  if (reached > 0) workerMetrics.delivered.inc(reached);
}
