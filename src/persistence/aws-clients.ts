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

function common(settings: AwsSettings) {
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
