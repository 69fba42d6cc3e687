import { resolve } from "node:path";
import Piscina from "piscina";
import { AuthErrorCode } from "../shared/errors.js";
import { buildKeys, peekAlgorithm, verifyToken, type VerifierKeys, type VerifyResult } from "./jwt-verify.js";
import type { Config } from "../shared/config.js";

/** Tokens waiting for the pool beyond this are refused with SERVER_BUSY rather than queued without bound. */
export const JWT_PENDING_MAX = 10_000;

interface Pending {
  token: string;
  resolve: (r: VerifyResult) => void;
}

/**
 * Checks connection tokens. HS256 runs inline with a KeyObject (8–20 µs, cheaper than a pool
 * round trip of 25–35 µs); RS256/ES256 go to a piscina pool in micro-batches, where the pool pays
 * (see scripts/jwt-bench.ts for the figures behind this policy).
 */
export class JwtVerifier {
  private readonly keys: VerifierKeys;
  private pool: Piscina | undefined;
  private batch: Pending[] = [];
  private pendingCount = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly config: Config) {
    this.keys = buildKeys({
      apiKey: config.apiKey,
      publicKeyPem: config.jwt.publicKey,
      algorithms: config.jwt.algorithms,
      requireExp: config.jwt.requireExp,
      clockToleranceS: config.jwt.clockToleranceS,
    });
  }

  /** Returns synchronously for inline checks, a promise for pooled ones. */
  verify(token: unknown): VerifyResult | Promise<VerifyResult> {
    const alg = peekAlgorithm(token);
    if (alg !== "RS256" && alg !== "ES256") return verifyToken(token, this.keys);
    if (!(this.config.jwt.algorithms as readonly string[]).includes(alg) || !this.keys.publicKey) {
      return { ok: false, code: AuthErrorCode.TOKEN_ALGORITHM_NOT_ALLOWED };
    }
    if (this.closed || this.pendingCount >= JWT_PENDING_MAX) return { ok: false, code: AuthErrorCode.SERVER_BUSY };
    return new Promise((resolve) => {
      this.pendingCount++;
      this.batch.push({ token: token as string, resolve });
      if (this.batch.length >= this.config.jwt.batchSize) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.config.jwt.batchWaitMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    this.pool ??= new Piscina({
      filename: resolve(__dirname, "tasks/verify-tokens.js"),
      minThreads: 1,
      maxThreads: this.config.poolThreads,
      workerData: {
        apiKey: this.config.apiKey,
        publicKeyPem: this.config.jwt.publicKey,
        algorithms: [...this.config.jwt.algorithms],
        requireExp: this.config.jwt.requireExp,
        clockToleranceS: this.config.jwt.clockToleranceS,
      },
    });
    const settle = (results: VerifyResult[]) => {
      this.pendingCount -= batch.length;
      batch.forEach((p, i) => p.resolve(results[i] ?? { ok: false, code: AuthErrorCode.SERVER_BUSY }));
    };
    this.pool.run(batch.map((p) => p.token)).then(settle, () =>
      // A pool failure (thread crash, shutdown) refuses this batch; clients retry their connect.
      settle([]),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    await this.pool?.destroy();
  }
}
