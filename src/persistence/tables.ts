import {
  CreateTableCommand,
  DescribeTableCommand,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";

/** The local secondary index history reads through (docs/protocol.md, "Storage layout"). */
export const CREATED_AT_INDEX = "createdAtIndex";

/** `messages`: key (channelName, messageId), LSI createdAtIndex on (channelName, createdAt), projection ALL. */
export function messagesTable(name: string): CreateTableCommandInput {
  return {
    TableName: name,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [
      { AttributeName: "channelName", AttributeType: "S" },
      { AttributeName: "messageId", AttributeType: "S" },
      { AttributeName: "createdAt", AttributeType: "S" },
    ],
    KeySchema: [
      { AttributeName: "channelName", KeyType: "HASH" },
      { AttributeName: "messageId", KeyType: "RANGE" },
    ],
    LocalSecondaryIndexes: [
      {
        IndexName: CREATED_AT_INDEX,
        KeySchema: [
          { AttributeName: "channelName", KeyType: "HASH" },
          { AttributeName: "createdAt", KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "ALL" },
      },
    ],
  };
}

/** `channels`: key channelName. */
export function channelsTable(name: string): CreateTableCommandInput {
  return {
    TableName: name,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "channelName", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "channelName", KeyType: "HASH" }],
  };
}

const errorName = (err: unknown) => (err instanceof Error ? err.name : "");

/**
 * Creates the tables that are missing and waits until each is ACTIVE (bounded by `timeoutMs`).
 * Safe to run from several processes at once: a concurrent creation shows up as ResourceInUse.
 */
export async function ensureTables(
  client: DynamoDBClient,
  names: { messages: string; channels: string },
  timeoutMs = 30_000,
): Promise<string[]> {
  const created: string[] = [];
  for (const definition of [messagesTable(names.messages), channelsTable(names.channels)]) {
    const table = definition.TableName!;
    let status = await tableStatus(client, table);
    if (status === undefined) {
      try {
        await client.send(new CreateTableCommand(definition));
        created.push(table);
      } catch (err) {
        // Another worker created it between our look and our create: that is the goal reached.
        if (errorName(err) !== "ResourceInUseException") throw err;
      }
      status = await tableStatus(client, table);
    }
    const deadline = Date.now() + timeoutMs;
    while (status !== "ACTIVE") {
      if (Date.now() > deadline) throw new Error(`table ${table} is not ACTIVE after ${timeoutMs} ms (${status})`);
      await new Promise((r) => setTimeout(r, 100));
      status = await tableStatus(client, table);
    }
  }
  return created;
}

async function tableStatus(client: DynamoDBClient, table: string): Promise<string | undefined> {
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: table }));
    return Table?.TableStatus ?? "UNKNOWN";
  } catch (err) {
    if (errorName(err) === "ResourceNotFoundException") return undefined;
    throw err;
  }
}
