import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { ConfigError, consumerConfigFromProcess, type ConsumerConfig } from "../shared/config.js";
import { createLogger, type Logger } from "../shared/logger.js";
import { createSqsClient } from "../persistence/aws-clients.js";
import { backoffMs, errorText } from "../persistence/backoff.js";
import { storeSettingsFrom } from "../persistence/store-settings.js";
import { InlineStoreRunner } from "../persistence/inline-runner.js";
import type { StoreRunner } from "../persistence/store-runner.js";
import { storeRecords } from "./store-records.js";

/**
 * `npm run consumer`: the queue consumer as a long-polling process, for those who self-host
 * the SQS sink. Same processing as the Lambda handler; a message is deleted only once stored.
 * SIGTERM/SIGINT: stop polling, finish the batch in hand, exit.
 */
process.title = "cerebellum-consumer";

async function pollLoop(sqs: SQSClient, runner: StoreRunner, config: ConsumerConfig, signal: AbortSignal, log: Logger): Promise<void> {
  const queueUrl = config.persistence.queueUrl!;
  let errors = 0;
  while (!signal.aborted) {
    let messages;
    try {
      ({ Messages: messages } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: config.maxMessages,
          WaitTimeSeconds: config.waitSeconds,
          ...(config.visibilityTimeoutS !== undefined ? { VisibilityTimeout: config.visibilityTimeoutS } : {}),
        }),
        { abortSignal: signal },
      ));
      errors = 0;
    } catch (err) {
      if (signal.aborted) return;
      errors++;
      const delay = backoffMs(errors, config.persistence.retryBaseMs, config.persistence.retryMaxMs);
      log.warn({ err: errorText(err), retryInMs: delay }, "receive failed");
      await abortableSleep(delay, signal);
      continue;
    }
    if (!messages || messages.length === 0) continue;
    const records = messages.map((m) => ({ messageId: m.MessageId ?? "", body: m.Body ?? "" }));
    const failed = new Set(await storeRecords(runner, records, log));
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ""));
    if (done.length > 0) {
      try {
        const result = await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
        // Not deleted means delivered again later, and stored again under the same key: harmless.
        if (result.Failed?.length) log.warn({ failed: result.Failed.length }, "some stored messages could not be deleted");
      } catch (err) {
        log.warn({ err: errorText(err) }, "delete failed: those messages will be delivered and stored again");
      }
    }
    log.debug({ stored: done.length, failed: failed.size }, "batch processed");
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

async function main(): Promise<void> {
  let config: ConsumerConfig;
  try {
    config = consumerConfigFromProcess();
    if (!config.persistence.queueUrl) throw new ConfigError("QUEUE_URL", "is required by the consumer");
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, { role: "consumer" });
  const settings = storeSettingsFrom(config.persistence);
  const runner = new InlineStoreRunner({ ...settings, target: "dynamodb" });
  // A long poll holds the request open for up to waitSeconds: the timeout must outlast it.
  const sqs = createSqsClient({ ...settings, requestTimeoutMs: Math.max(settings.requestTimeoutMs, (config.waitSeconds + 10) * 1000) });
  const controller = new AbortController();
  const stop = (signal: string) => {
    if (controller.signal.aborted) return;
    log.info({ signal }, "consumer stopping after the batch in hand");
    controller.abort();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  log.info({ queueUrl: config.persistence.queueUrl, table: config.persistence.messagesTable, pollers: config.concurrency }, "consumer polling");
  await Promise.all(Array.from({ length: config.concurrency }, () => pollLoop(sqs, runner, config, controller.signal, log)));
  sqs.destroy();
  await runner.close();
  log.info("consumer stopped");
}

main().catch((err: unknown) => {
  console.error("consumer failed", err);
  process.exit(1);
});
