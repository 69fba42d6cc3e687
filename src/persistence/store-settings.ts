import type { Config } from "../shared/config.js";
import type { StoreSettings } from "./store-ops.js";

/** Retries of throttled UnprocessedItems inside one write attempt, before the batch-level retry takes over. */
const UNPROCESSED_RETRIES = 3;

/** The settings of the store runner for a configuration. */
export function storeSettingsFrom(p: Config["persistence"]): StoreSettings {
  return {
    target: p.sink === "sqs" ? "sqs" : p.sink === "embedded" ? "embedded" : "dynamodb",
    region: p.awsRegion,
    dynamodbEndpoint: p.dynamodbEndpoint,
    sqsEndpoint: p.sqsEndpoint,
    requestTimeoutMs: p.requestTimeoutMs,
    localCredentials: p.localCredentials,
    messagesTable: p.messagesTable,
    channelsTable: p.channelsTable,
    queueUrl: p.queueUrl,
    embeddedStore: p.embeddedStore,
    unprocessedRetries: UNPROCESSED_RETRIES,
    retryBaseMs: p.retryBaseMs,
    retryMaxMs: p.retryMaxMs,
  };
}
