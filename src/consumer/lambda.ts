import { consumerConfigFromProcess, type ConsumerConfig } from "../shared/config.js";
import { createLogger, type Logger } from "../shared/logger.js";
import { storeSettingsFrom } from "../persistence/store-settings.js";
import { InlineStoreRunner } from "../persistence/inline-runner.js";
import type { StoreRunner } from "../persistence/store-runner.js";
import { storeRecords, type QueueRecord } from "./store-records.js";

/** The part of the Lambda SQS event the handler reads. */
export interface SqsEvent {
  Records: QueueRecord[];
}

/** Partial batch response: the event source mapping needs `FunctionResponseTypes: ["ReportBatchItemFailures"]`. */
export interface SqsBatchResponse {
  batchItemFailures: Array<{ itemIdentifier: string }>;
}

export type SqsHandler = (event: SqsEvent) => Promise<SqsBatchResponse>;

/** A Lambda SQS handler over the given configuration: every record is processed, failures reported one by one. */
export function createSqsHandler(config: ConsumerConfig, runner?: StoreRunner, log?: Logger): SqsHandler {
  const store = runner ?? new InlineStoreRunner({ ...storeSettingsFrom(config.persistence), target: "dynamodb" });
  const logger = log ?? createLogger(config.logLevel, { role: "consumer" });
  return async (event) => {
    const records = Array.isArray(event?.Records) ? event.Records : [];
    const failed = await storeRecords(store, records, logger);
    return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
  };
}

let handlerForProcess: SqsHandler | undefined;

/**
 * The AWS Lambda entry point (`dist/src/consumer/lambda.handler`), configured from the
 * function's environment (DYNAMODB_MESSAGES_TABLE_NAME, AWS_REGION, ...) on first call.
 */
export const handler: SqsHandler = (event) => (handlerForProcess ??= createSqsHandler(consumerConfigFromProcess()))(event);
