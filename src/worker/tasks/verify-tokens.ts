import { workerData } from "node:worker_threads";
import { buildKeys, verifyToken, type VerifyResult } from "../jwt-verify.js";
import type { JwtAlgorithm } from "../../shared/config.js";

/** Piscina task: verifies a micro-batch of tokens off the event loop (asymmetric algorithms). */
interface VerifyWorkerData {
  apiKey: string | undefined;
  publicKeyPem: string | undefined;
  algorithms: JwtAlgorithm[];
  requireExp: boolean;
  clockToleranceS: number;
}

const keys = buildKeys(workerData as VerifyWorkerData);

export default function verifyTokens(tokens: string[]): VerifyResult[] {
  return tokens.map((token) => verifyToken(token, keys));
}
