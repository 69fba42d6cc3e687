/**
 * The bench's reference for the two-worker shapes: plain socket.io in N processes the way its
 * documentation shows, node:cluster's round-robin spreading connections (the bench's clients are
 * websocket-only, so no stickiness is needed) and @socket.io/cluster-adapter relaying broadcasts
 * through the primary. The baseline's channel handlers (baseline-channels.ts); no authentication,
 * no persistence, no connection state recovery. Not judged by the bar: it shows what running
 * socket.io in two processes costs on the machine, whoever runs it (docs/benchmarks.md).
 *
 * Usage: node dist/scripts/bench/baseline-cluster.js [--port 0] [--host 127.0.0.1] [--workers 2]
 * Prints one JSON line `{"port": N}` once every worker listens; stops on SIGTERM/SIGINT.
 */
import cluster from "node:cluster";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { createAdapter, setupPrimary } from "@socket.io/cluster-adapter";
import { Server } from "socket.io";
import { BASELINE_ENGINE_OPTIONS, serveChannels } from "./baseline-channels.js";

const { values } = parseArgs({
  options: { port: { type: "string", default: "0" }, host: { type: "string", default: "127.0.0.1" }, workers: { type: "string", default: "2" } },
});

if (cluster.isPrimary) {
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers must be a positive integer (got ${values.workers})`);
  setupPrimary();
  cluster.setupPrimary({ serialization: "advanced" });
  let listening = 0;
  // Workers that listen on port 0 share one port: the primary holds the socket.
  cluster.on("listening", (_worker, address) => {
    if (++listening === workers) process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
  });
  let stopping = false;
  let alive = workers;
  cluster.on("exit", (_worker, code, signal) => {
    alive--;
    if (stopping) {
      if (alive === 0) process.exit(0);
      return;
    }
    process.stderr.write(`a worker exited (${signal ?? code}): stopping\n`);
    process.exit(1);
  });
  // Exits once every worker has: nothing is left behind.
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const httpServer = createServer((_req, res) => res.writeHead(404).end());
  const io = new Server(httpServer, { ...BASELINE_ENGINE_OPTIONS, adapter: createAdapter() });
  serveChannels(io);
  httpServer.listen(Number(values.port), values.host);
  process.on("SIGINT", () => undefined); // the primary stops the workers
}
