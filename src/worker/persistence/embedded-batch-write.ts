import { Agent, request } from "node:http";
import type { BatchWrite, BatchWriteAnswer } from "./dynamo-ops.js";

/** Connections kept open to the embedded store per pool thread (one per batch in flight). */
const MAX_SOCKETS = 16;

/** dynalite checks that a request is signed, not by whom (it has no users). */
const AUTHORIZATION = "AWS4-HMAC-SHA256 Credential=local/20260101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=0";

/**
 * BatchWriteItem to the embedded store (dynalite on loopback), spoken directly: the request is
 * DynamoDB's JSON protocol, one POST. The AWS SDK's middleware stack (serialization, endpoint
 * rules, signing, checksums) costs 1.3–2.4 ms of CPU per request (0.3–0.6 ms here), as much as
 * the store's own write of a few items, and a publish rate that leaves small batches pays it per
 * batch on the cores that deliver messages (docs/benchmarks.md). Only the happy path is handled
 * here: any error answer is surfaced by name, and the caller falls back to its usual handling
 * (single PutItems through the SDK on a ValidationException). DynamoDB itself is always reached
 * through the SDK.
 */
export class EmbeddedBatchWriter {
  private readonly url: URL;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: MAX_SOCKETS });

  constructor(
    endpoint: string,
    private readonly timeoutMs: number,
  ) {
    this.url = new URL(endpoint);
  }

  readonly write: BatchWrite = (table, requests) => {
    const { url, agent, timeoutMs } = this;
    return new Promise<BatchWriteAnswer>((resolve, reject) => {
      const body = JSON.stringify({ RequestItems: { [table]: requests } });
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: "/",
          method: "POST",
          agent,
          timeout: timeoutMs,
          headers: {
            "content-type": "application/x-amz-json-1.0",
            "content-length": Buffer.byteLength(body),
            "x-amz-target": "DynamoDB_20120810.BatchWriteItem",
            "x-amz-date": new Date().toISOString().replace(/[-:]|\.\d{3}/g, ""),
            authorization: AUTHORIZATION,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", reject);
          res.on("end", () => {
            let answer: { __type?: string; message?: string; Message?: string } & BatchWriteAnswer;
            try {
              answer = JSON.parse(Buffer.concat(chunks).toString("utf8")) as typeof answer;
            } catch {
              reject(new Error(`the embedded store answered ${res.statusCode} with a body that is not JSON`));
              return;
            }
            if (res.statusCode === 200) {
              resolve(answer);
              return;
            }
            const err = new Error(answer.message ?? answer.Message ?? `the embedded store answered ${res.statusCode}`);
            // "com.amazonaws.dynamodb.v20120810#ValidationException" → "ValidationException"
            err.name = answer.__type?.split("#").pop() || `HTTP${res.statusCode}`;
            reject(err);
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`the embedded store did not answer within ${timeoutMs} ms`)));
      req.on("error", reject);
      req.end(body);
    });
  };

  /** Closes the kept-open connections. */
  destroy(): void {
    this.agent.destroy();
  }
}
