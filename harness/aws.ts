import { spawn, type ChildProcess } from "node:child_process";
import {
  DynamoDBClient,
  ListTablesCommand,
  ScanCommand,
  type AttributeValue,
} from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { freePort } from "./net.js";
import { waitFor } from "./wait.js";

const LOCAL = { accessKeyId: "local", secretAccessKey: "local" };
const DYNALITE_CLI = require.resolve("dynalite/cli.js");

export function dynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ region: "us-east-1", endpoint, credentials: LOCAL, maxAttempts: 1 });
}

export function sqsClient(endpoint: string): SQSClient {
  return new SQSClient({ region: "us-east-1", endpoint, credentials: LOCAL, maxAttempts: 1 });
}

export interface DynaliteProcess {
  port: number;
  endpoint: string;
  /** The running process's pid (undefined while stopped). */
  readonly pid: number | undefined;
  /** Stops it (SIGKILL: an outage, not a goodbye). */
  stop(): Promise<void>;
  /** Starts it again on the same port and path. */
  start(): Promise<void>;
}

/**
 * dynalite in a child process on a fixed free port, so a test can take it down and bring it
 * back; with `path`, its LevelDB files keep the data across restarts.
 */
export async function startDynalite(options: { path?: string } = {}): Promise<DynaliteProcess> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const probe = dynamoClient(endpoint);
  const proc: DynaliteProcess = {
    port,
    endpoint,
    get pid() {
      return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    async start() {
      const args = [DYNALITE_CLI, "--port", String(port), "--host", "127.0.0.1", "--createTableMs", "0", "--deleteTableMs", "0"];
      if (options.path) args.push("--path", options.path);
      child = spawn(process.execPath, args, { stdio: "ignore" });
      await waitFor(
        async () => {
          if (child?.exitCode !== null) throw new Error("dynalite exited at start");
          return probe.send(new ListTablesCommand({})).then(
            () => true,
            () => false, // not listening yet: waitFor polls again
          );
        },
        { what: `dynalite on ${port}` },
      );
    },
    stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        c.once("exit", () => resolve());
        c.kill("SIGKILL");
      });
    },
  };
  await proc.start();
  running.add(proc);
  return proc;
}

const running = new Set<DynaliteProcess>();
// Whatever ends this process (a test run, a bench's deadline), no dynalite outlives it.
process.on("exit", () => {
  for (const p of running) {
    try {
      if (p.pid !== undefined) process.kill(p.pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
});

export async function stopAllDynalites(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
  running.clear();
}

/** Every item of a table, plain JSON-ish (for exact-once checks). */
export async function scanAll(client: DynamoDBClient, table: string): Promise<Array<Record<string, AttributeValue>>> {
  const items: Array<Record<string, AttributeValue>> = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

export interface Fauxqs {
  endpoint: string;
  stop(): Promise<void>;
}

/** fauxqs 1.9 (SQS's JSON protocol) in the test process on a free port. */
export async function startFauxqs(): Promise<Fauxqs> {
  const { startFauxqs: start } = (await import("fauxqs")) as {
    startFauxqs: (o: { port: number; logger: boolean }) => Promise<{ address: string; stop(): Promise<void> }>;
  };
  const server = await start({ port: 0, logger: false });
  return { endpoint: server.address, stop: () => server.stop() };
}
