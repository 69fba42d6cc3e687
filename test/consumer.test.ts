import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConsumerConfig } from "../src/shared/config.js";
import { createSqsHandler } from "../src/consumer/lambda.js";
import { ensureTables } from "../src/persistence/tables.js";
import { dynamoClient, sqsClient, startDynalite, startFauxqs, stopAllDynalites, type DynaliteProcess, type Fauxqs } from "./helpers/aws.js";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { startServer, stopAllServers } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";

const CONSUMER = resolve(__dirname, "../dist/src/consumer/main.js");

type Page = { success: boolean; pastMessages: Array<{ content: unknown; createdAt: string }>; lastEvaluatedKey?: unknown };

let dynamo: DynaliteProcess;
let sqs: Fauxqs;
const temp: string[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  [dynamo, sqs] = await Promise.all([startDynalite(), startFauxqs()]);
});
afterAll(async () => {
  closeAllClients();
  await stopAllServers();
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await sqs?.stop();
  await stopAllDynalites();
  for (const d of temp) rmSync(d, { recursive: true, force: true });
});

async function createQueue(name: string): Promise<string> {
  const { QueueUrl } = await sqsClient(sqs.endpoint).send(new CreateQueueCommand({ QueueName: name }));
  return QueueUrl!;
}

function awsEnv(queueUrl: string, tables: { messages: string; channels: string }): Record<string, string> {
  return {
    QUEUE_URL: queueUrl,
    SQS_ENDPOINT: sqs.endpoint,
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    DYNAMODB_MESSAGES_TABLE_NAME: tables.messages,
    DYNAMODB_CHANNELS_TABLE_NAME: tables.channels,
    AWS_REGION: "us-east-1",
  };
}

describe("SQS sink and its consumer", () => {
  it("sends each message as {channelName, messageId, content, createdAt}; the consumer stores them for history", async () => {
    const queueUrl = await createQueue(`cerebellum-sink-${process.pid}`);
    const tables = { messages: `sqs_messages_${process.pid}`, channels: `sqs_channels_${process.pid}` };
    const env = awsEnv(queueUrl, tables);
    const server = await startServer({ workers: 2, env: { ...env, PERSISTENCE_BATCH_WAIT_MS: "5" } });
    const client = await connect(server.url, server.token(), { transports: ["websocket"] });
    const contents: unknown[] = ["", "text", 0, 1e21, true, null, [], {}, { a: [1, { b: "" }] }, [[["x"]]]];
    const sent = new Map<string, unknown>();
    for (const content of contents) {
      const ack = await request<{ success: boolean; messageId: string }>(client, "message:queue", "orders:eu", content);
      expect(ack.success).toBe(true);
      sent.set(ack.messageId, content);
    }

    // The queue holds exactly the contract's bodies (read with visibility 0, so they stay for the consumer).
    const bodies = new Map<string, Record<string, unknown>>();
    const queue = sqsClient(sqs.endpoint);
    await waitFor(
      async () => {
        const { Messages = [] } = await queue.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0, WaitTimeSeconds: 0 }),
        );
        for (const m of Messages) {
          const body = JSON.parse(m.Body!) as Record<string, unknown>;
          bodies.set(body.messageId as string, body);
        }
        return bodies.size === sent.size;
      },
      { what: "queued bodies" },
    );
    for (const [messageId, body] of bodies) {
      expect(Object.keys(body)).toEqual(["channelName", "messageId", "content", "createdAt"]);
      expect(body).toEqual({ channelName: "orders:eu", messageId, content: sent.get(messageId), createdAt: expect.stringMatching(/Z$/) });
    }
    // Nothing consumed yet: history (read from DynamoDB) is empty.
    expect(await request<Page>(client, "channel:history", "orders:eu", 50, "ascending", null)).toEqual({ success: true, pastMessages: [] });

    const cwd = mkdtempSync(join(tmpdir(), "cerebellum-consumer-"));
    temp.push(cwd);
    const consumer = spawn(process.execPath, [CONSUMER], {
      cwd,
      env: { PATH: process.env.PATH ?? "", ...env, CONSUMER_WAIT_SECONDS: "1", LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(consumer);
    const output: string[] = [];
    consumer.stdout!.on("data", (c: Buffer) => output.push(c.toString()));
    consumer.stderr!.on("data", (c: Buffer) => output.push(c.toString()));

    const history = await waitFor(
      async () => {
        const page = await request<Page>(client, "channel:history", "orders:eu", 50, "ascending", null);
        return page.pastMessages.length === contents.length ? page : undefined;
      },
      { what: `consumer to store the messages (${output.join("")})` },
    );
    expect(history.pastMessages.map((m) => m.content)).toEqual(contents);
    await waitFor(
      async () => {
        const { Attributes } = await queue.send(
          new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
        );
        return Attributes?.ApproximateNumberOfMessages === "0" && Attributes.ApproximateNumberOfMessagesNotVisible === "0";
      },
      { what: "queue drained" },
    );
    const exited = new Promise<number | null>((r) => consumer.once("exit", (code) => r(code)));
    consumer.kill("SIGTERM");
    expect(await exited).toBe(0);
    await server.stop();
  });

  describe("Lambda handler", () => {
    const tables = { messages: `lambda_messages_${process.pid}`, channels: `lambda_channels_${process.pid}` };
    beforeAll(async () => {
      await ensureTables(dynamoClient(dynamo.endpoint), tables);
    });

    const body = (messageId: string, content: unknown) =>
      JSON.stringify({ channelName: "lambda", messageId, content, createdAt: new Date().toISOString() });

    it("processes every record and reports each failed one in batchItemFailures", async () => {
      const handler = createSqsHandler(loadConsumerConfig({ ...awsEnv("http://unused.invalid/q", tables), LOG_LEVEL: "silent" }));
      const event = {
        Records: [
          { messageId: "sqs-1", body: body("m-1", { first: true }) },
          { messageId: "sqs-2", body: "{not json" },
          { messageId: "sqs-3", body: body("m-3", ["second"]) },
          { messageId: "sqs-4", body: JSON.stringify({ channelName: "lambda", messageId: "m-4", createdAt: "t" }) },
          { messageId: "sqs-5", body: JSON.stringify([1, 2]) },
          { messageId: "sqs-6", body: body("m-6", "x".repeat(410 * 1024)) },
          { messageId: "sqs-7", body: body("m-7", null) },
        ],
      };
      const response = await handler(event);
      expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(["sqs-2", "sqs-4", "sqs-5", "sqs-6"]);
      const store = dynamoClient(dynamo.endpoint);
      for (const [id, content] of [["m-1", { M: { first: { BOOL: true } } }], ["m-3", { L: [{ S: "second" }] }], ["m-7", { NULL: true }]] as const) {
        const { Item } = await store.send(new GetItemCommand({ TableName: tables.messages, Key: { channelName: { S: "lambda" }, messageId: { S: id } } }));
        expect(Item?.content).toEqual(content);
      }
    });

    it("reports every record when the table cannot be written", async () => {
      const handler = createSqsHandler(
        loadConsumerConfig({ ...awsEnv("http://unused.invalid/q", { ...tables, messages: "no_such_table" }), LOG_LEVEL: "silent" }),
      );
      const response = await handler({ Records: [{ messageId: "a", body: body("x-1", 1) }, { messageId: "b", body: body("x-2", 2) }] });
      expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: "a" }, { itemIdentifier: "b" }] });
    });
  });
});
