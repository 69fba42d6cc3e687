/**
 * The per-connection rate limit on client events (CLIENT_RATE_LIMIT_PER_SEC, CLIENT_RATE_BURST,
 * CLIENT_RATE_MAX_REFUSALS): the token buckets on a fake clock, then a flooding client against
 * the real server with its defaults, next to a well-behaved publisher on the same worker.
 */
import type { Socket } from "socket.io-client";
import { afterAll, describe, expect, it } from "vitest";
import { EventRateLimiter, REFUSAL_WINDOW_MS, type Admission } from "../src/worker/rate-limit.js";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { startServer, stopAllServers } from "./helpers/server.js";
import { latch, waitFor } from "./helpers/wait.js";
import { logLines, workerOf } from "./helpers/workers.js";

/** Admits `count` events at the clock's current time and tallies the verdicts. */
function burst(limiter: EventRateLimiter, connection: object, count: number): Record<Admission, number> {
  const tally: Record<Admission, number> = { admitted: 0, refused: 0, disconnect: 0 };
  for (let i = 0; i < count; i++) tally[limiter.admit(connection)]++;
  return tally;
}

describe("event rate limiter (fake clock)", () => {
  it("takes a burst, then its rate; refuses beyond; runs out of refusals and says disconnect", () => {
    let now = 0;
    const limiter = new EventRateLimiter({ perSec: 100, burst: 200, maxRefusals: 100 }, () => now);
    const client = {};
    expect(burst(limiter, client, 200)).toEqual({ admitted: 200, refused: 0, disconnect: 0 });
    expect(limiter.admit(client)).toBe("refused");
    now += 50; // 5 tokens back
    expect(burst(limiter, client, 5)).toEqual({ admitted: 5, refused: 0, disconnect: 0 });
    // 99 refusals left after the first one above; the next event past them is the end.
    expect(burst(limiter, client, 99)).toEqual({ admitted: 0, refused: 99, disconnect: 0 });
    expect(limiter.admit(client)).toBe("disconnect");
    // Another connection has buckets of its own.
    expect(burst(limiter, {}, 200).admitted).toBe(200);
  });

  it("forgives refusals over the window: only a client that keeps exceeding is disconnected", () => {
    let now = 0;
    const limiter = new EventRateLimiter({ perSec: 10, burst: 10, maxRefusals: 5 }, () => now);
    // Two events too many every second: 20 refusals per 10 s, more than the 5 allowed.
    const pushy = {};
    const firstDisconnect = Array.from({ length: 10 }, (_, second) => {
      now = second * 1000;
      return burst(limiter, pushy, 12).disconnect > 0;
    }).indexOf(true);
    expect(firstDisconnect).toBe(3); // 5 refusals to start with, 2 spent and 0.5 back each second
    // One event too many every 2.5 s: 4 refusals per 10 s, within the 5 allowed, for ever.
    const polite = {};
    const tally = { admitted: 0, refused: 0, disconnect: 0 };
    for (let step = 0; step < 400; step++) {
      now = 100_000 + step * 2500;
      for (const [verdict, n] of Object.entries(burst(limiter, polite, 11))) tally[verdict as Admission] += n;
    }
    expect(tally).toEqual({ admitted: 4000, refused: 400, disconnect: 0 });
    expect(REFUSAL_WINDOW_MS).toBe(10_000);
  });

  it("has no limit at CLIENT_RATE_LIMIT_PER_SEC=0", () => {
    const limiter = new EventRateLimiter({ perSec: 0, burst: 1, maxRefusals: 1 }, () => 0);
    expect(burst(limiter, {}, 10_000)).toEqual({ admitted: 10_000, refused: 0, disconnect: 0 });
  });
});

type Ack = { success: boolean; error?: string };

describe("a client flooding at 10× the default limit", () => {
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("gets RATE_LIMITED, then a disconnect it can see, while a normal publisher on its worker keeps every message acked and delivered", async () => {
    // One worker: the flooder, the publisher and the subscriber share it. The limits are the defaults.
    const server = await startServer({ workers: 1 });
    const ws = { transports: ["websocket"] };
    const [subscriber, publisher, flooder] = [await connect(server.url, server.token(), ws), await connect(server.url, server.token(), ws), await connect(server.url, server.token(), ws)];
    expect(new Set([subscriber, publisher, flooder].map(workerOf)).size).toBe(1);
    expect(await request(subscriber, "channel:subscribe", "calm")).toEqual({ success: true });

    const count = 60;
    const delivered: unknown[] = [];
    const allDelivered = latch(count, 60_000, "the normal publisher's messages");
    subscriber.on("message:receive:calm", (m: { content: unknown }) => {
      delivered.push(m.content);
      allDelivered.hit();
    });

    // The flooder: 1,000 acked publishes a second (10× CLIENT_RATE_LIMIT_PER_SEC's 100), kept
    // to that rate on average (a late timer sends what is due), until the server closes it.
    const floodAcks: Record<string, number> = {};
    const notice = new Promise<unknown>((resolve) => flooder.once("cerebellum:disconnecting", resolve));
    const gone = new Promise<string>((resolve) => flooder.once("disconnect", resolve));
    const flood = (socket: Socket) => {
      const started = Date.now();
      let sent = 0;
      const timer = setInterval(() => {
        if (!socket.connected || sent >= 30_000) return clearInterval(timer);
        const due = Math.min(30_000, (Date.now() - started) * 1);
        for (; sent < due; sent++) {
          socket.emit("message:queue", "flood", { n: sent }, (ack: Ack) => {
            const key = ack.success ? "success" : String(ack.error);
            floodAcks[key] = (floodAcks[key] ?? 0) + 1;
          });
        }
      }, 5);
      return () => sent;
    };

    // The normal publisher: one message at a time, each once the previous one is acked; the flood
    // starts after its first ten.
    const acks: Ack[] = [];
    let floodSent: (() => number) | undefined;
    for (let i = 0; i < count; i++) {
      if (i === 10) floodSent = flood(flooder);
      acks.push((await publisher.timeout(30_000).emitWithAck("message:queue", "calm", i)) as Ack);
    }

    expect(await gone).toBe("io server disconnect"); // the server closed it (the client does not reconnect by itself)
    expect(await notice).toEqual({ code: "RATE_LIMITED", message: expect.stringMatching(/100 events per second/) });
    expect(floodAcks.RATE_LIMITED).toBeGreaterThan(0);
    // Refusals are answered at once; the publishes it had taken are acked once durable, which may
    // come after the disconnect (then not at all). Never anything else: no OVERLOADED.
    expect(Object.keys(floodAcks).filter((k) => k !== "RATE_LIMITED" && k !== "success")).toEqual([]);
    expect(floodSent!()).toBeGreaterThan((floodAcks.success ?? 0) + floodAcks.RATE_LIMITED!); // it sent more than it was answered
    await waitFor(() => logLines(server, "disconnected a client that kept exceeding its event rate (more than 100 refusals in 10 s)").length === 1, {
      what: "the server's log line for the disconnect",
    });

    // The others never noticed.
    expect(acks.every((a) => a.success)).toBe(true);
    await allDelivered.done;
    expect(delivered).toEqual([...Array(count).keys()]);
    expect(publisher.connected && subscriber.connected).toBe(true);
  });
});
