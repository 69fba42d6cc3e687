import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";

/** What the AWS clients of a sink need; plain data, so it can be handed to a pool thread. */
export interface AwsSettings {
  region: string;
  dynamodbEndpoint: string | undefined;
  sqsEndpoint: string | undefined;
  requestTimeoutMs: number;
  /** Static dummy credentials: a local endpoint is configured and the environment gives none. */
  localCredentials: boolean;
}

/** Local emulators (dynalite, DynamoDB Local, fauxqs) check that a signature exists, not whose it is. */
const LOCAL_CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };

/**
 * On Node < 22 the SDK warns, once in every process and thread that builds a client, that its
 * releases after January 2027 will need Node 22. The SDK version pinned here runs on Node 20, and
 * moving to a newer one is this project's release to make (README, "Requirements"), so the notice
 * would only repeat in the logs of the store, the pool threads and the consumer. An operator's own
 * setting of the SDK's switch wins (`false` shows it).
 */
function quietNodeVersionNotice(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
}

function common(settings: AwsSettings) {
  quietNodeVersionNotice();
  return {
    region: settings.region,
    // One SDK attempt: our batcher owns retries, with its own backoff, bound and spill.
    maxAttempts: 1,
    requestHandler: {
      connectionTimeout: Math.min(settings.requestTimeoutMs, 3_000),
      requestTimeout: settings.requestTimeoutMs,
    },
    ...(settings.localCredentials ? { credentials: LOCAL_CREDENTIALS } : {}),
  };
}

export function createDynamoClient(settings: AwsSettings): DynamoDBClient {
  return new DynamoDBClient({ ...common(settings), ...(settings.dynamodbEndpoint ? { endpoint: settings.dynamodbEndpoint } : {}) });
}

export function createSqsClient(settings: AwsSettings): SQSClient {
  return new SQSClient({ ...common(settings), ...(settings.sqsEndpoint ? { endpoint: settings.sqsEndpoint } : {}) });
}
