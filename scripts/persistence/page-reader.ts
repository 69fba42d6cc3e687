import { performance } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";
import type { EmbeddedStoreEndpoint } from "../../src/shared/config.js";
import { createDynamoClient } from "../../src/persistence/aws-clients.js";
import { queryPage } from "../../src/persistence/dynamo-ops.js";
import { EmbeddedStoreClient } from "../../src/persistence/embedded-client.js";
import type { QueryPage } from "../../src/persistence/dynamo-ops.js";

/**
 * A worker thread of the persistence bench that reads one history page after another at a
 * steady pace, on its own event loop, so that a page's latency is the store's and the
 * connection's, not the wait behind the bench's own message generation. On "stop" it posts the
 * latencies (ms) and exits.
 */
export interface PageReaderData {
  store: { kind: "embedded"; endpoint: EmbeddedStoreEndpoint } | { kind: "dynalite"; endpoint: string };
  channel: string;
  limit: number;
  everyMs: number;
}

const data = workerData as PageReaderData;
let read: () => Promise<QueryPage>;
let close: () => Promise<void>;
const query = { channel: data.channel, limit: data.limit, ascending: false, startKey: undefined };
if (data.store.kind === "embedded") {
  const client = new EmbeddedStoreClient(data.store.endpoint, 10_000);
  read = () => client.page(query);
  close = () => client.close();
} else {
  const client = createDynamoClient({ region: "us-east-1", dynamodbEndpoint: data.store.endpoint, sqsEndpoint: undefined, requestTimeoutMs: 10_000, localCredentials: true });
  read = () => queryPage(client, "messages", query);
  close = async () => client.destroy();
}

const latencies: number[] = [];
let running = true;
parentPort!.once("message", () => (running = false));
(async () => {
  while (running) {
    const t0 = performance.now();
    const page = await read();
    latencies.push(performance.now() - t0);
    if (page.items.length !== data.limit) throw new Error(`a history page held ${page.items.length} items, not ${data.limit}`);
    await new Promise((r) => setTimeout(r, data.everyMs)); // the pace of reads, not a wait for a condition
  }
  await close();
  parentPort!.postMessage(latencies);
})().catch((err: unknown) => {
  parentPort!.postMessage({ error: String(err) });
});
