/**
 * Regenerates the README's configuration table from .env.example, so the two never drift:
 * `npm run docs:env` rewrites the part between the config markers; test/docs.test.ts checks it.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

const START = "<!-- config:start (generated from .env.example by npm run docs:env) -->";
const END = "<!-- config:end -->";

/** Descriptions for variables whose comment in .env.example is shared with the line above. */
const SEE_ABOVE: Record<string, string> = {
  REDIS_ENDPOINT_PORT: "Port for REDIS_ENDPOINT_ADDRESS (6379 when unset).",
  PING_TIMEOUT_MS: "See PING_INTERVAL_MS.",
  WORKER_RESTART_MAX_DELAY_MS: "Ceiling of that backoff, in ms.",
  PERSISTENCE_RETRY_MAX_MS: "Ceiling of the retry delay, in ms.",
  DYNAMODB_ENDPOINT: "DynamoDB endpoint (DynamoDB Local, dynalite); unset with PERSISTENCE=dynamodb means AWS.",
  QUEUE_URL: "SQS queue for PERSISTENCE=sqs (the reference deployment).",
  SQS_ENDPOINT: "SQS endpoint override (local emulators); unset means AWS.",
  DYNAMODB_MESSAGES_TABLE_NAME: "Table of messages (layout in docs/protocol.md).",
  DYNAMODB_CHANNELS_TABLE_NAME: "Table of channels in use.",
  AWS_REGION: "AWS region of DynamoDB and SQS.",
  AWS_PROFILE: "See AWS_ACCESS_KEY_ID.",
  CONSUMER_MAX_MESSAGES: "See CONSUMER_WAIT_SECONDS.",
  CONSUMER_CONCURRENCY: "See CONSUMER_WAIT_SECONDS.",
  CONSUMER_VISIBILITY_TIMEOUT_S: "See CONSUMER_WAIT_SECONDS.",
  PRESENCE_MAX_CHANNELS_PER_MEMBER: "See PRESENCE_MAX_MEMBERS.",
  PRESENCE_INFO_MAX_FIELDS: "See PRESENCE_MAX_MEMBERS.",
  PRESENCE_INFO_MAX_BYTES: "See PRESENCE_MAX_MEMBERS.",
};

export function envTable(example: string): string {
  const rows = ["| variable | default | meaning |", "|---|---|---|"];
  let comments: string[] = [];
  for (const line of example.split("\n")) {
    if (line.startsWith("# ---")) {
      rows.push(`| **${line.replace(/^[#\s-]+|[\s-]+$/g, "")}** | | |`);
      comments = [];
      continue;
    }
    const m = /^(#\s*)?([A-Z][A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) {
      const [, commented, name, value] = m;
      let meaning = comments.join(" ") || SEE_ABOVE[name!] || "";
      if (commented && value) meaning += ` Example: \`${value}\`.`;
      rows.push(`| \`${name}\` | ${commented ? "unset" : `\`${value}\``} | ${meaning.replaceAll("|", "\\|").trim()} |`);
      comments = [];
    } else if (line.startsWith("#")) {
      const text = line.replace(/^#\s*/, "").trim();
      if (text && !text.startsWith("Cerebellum server configuration") && !text.startsWith("the value shown")) comments.push(text);
    } else if (!line.trim()) {
      comments = [];
    }
  }
  return rows.join("\n");
}

export function withTable(readme: string, table: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start === -1 || end === -1) throw new Error("README has no config markers");
  return `${readme.slice(0, start + START.length)}\n${table}\n${readme.slice(end)}`;
}

if (require.main === module) {
  const root = resolve(__dirname, "../../..");
  const readmePath = resolve(root, "README.md");
  const table = envTable(readFileSync(resolve(root, ".env.example"), "utf8"));
  writeFileSync(readmePath, withTable(readFileSync(readmePath, "utf8"), table));
  console.log("README configuration table regenerated");
}
