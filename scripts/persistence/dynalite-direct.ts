import { Agent, request } from "node:http";
import type { BatchWrite, BatchWriteAnswer } from "../../src/persistence/dynamo-ops.js";

/** Connections kept open to dynalite (one per batch in flight). */
const MAX_SOCKETS = 16;

/** dynalite checks that a request is signed, not by whom (it has no users). */
const AUTHORIZATION = "AWS4-HMAC-SHA256 Credential=local/20260101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=0";

/**
 * The persistence benchmark's baseline for the embedded store: BatchWriteItem to dynalite on
 * loopback, spoken directly as the embedded sink did when the embedded store was dynalite (one
 * POST of DynamoDB's JSON protocol, no SDK middleware). Only the happy path is handled: an error
 * answer is surfaced by name for writeMessages' usual handling.
 */
export class DynaliteDirectWriter {
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
