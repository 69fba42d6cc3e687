/**
 * The benchmark's baseline: one plain socket.io process (no authentication, the default
 * in-memory adapter, no connection state recovery) doing only the channel part of the contract
 * (baseline-channels.ts). It is what a team would write in an afternoon; the product is held to a
 * ratio of it (docs/benchmarks.md).
 *
 * Usage: node dist/scripts/bench/baseline-server.js [--port 0] [--host 127.0.0.1]
 * Prints one JSON line `{"port": N}` once listening; stops on SIGTERM/SIGINT.
 */
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";
import { BASELINE_ENGINE_OPTIONS, serveChannels } from "./baseline-channels.js";

const { values } = parseArgs({ options: { port: { type: "string", default: "0" }, host: { type: "string", default: "127.0.0.1" } } });

const httpServer = createServer((_req, res) => res.writeHead(404).end());
const io = new Server(httpServer, BASELINE_ENGINE_OPTIONS);
serveChannels(io);

httpServer.listen(Number(values.port), values.host, () => {
  const address = httpServer.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 })}\n`);
});

const stop = () => io.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
