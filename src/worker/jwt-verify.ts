import { createPublicKey, createSecretKey, type KeyObject } from "node:crypto";
import jwt from "jsonwebtoken";
import { AuthErrorCode, type AuthErrorCode as AuthCode } from "../shared/errors.js";
import type { JwtAlgorithm } from "../shared/config.js";

/** The outcome of one token check; never throws, never carries the token. */
export type VerifyResult =
  | { ok: true; subject: string | undefined; exp: number | undefined }
  | { ok: false; code: AuthCode };

export interface VerifierKeys {
  /** The HS256 secret (API_KEY's UTF-8 bytes), as a KeyObject: a string secret costs ~400 µs a check. */
  secret: KeyObject | undefined;
  publicKey: KeyObject | undefined;
  algorithms: readonly JwtAlgorithm[];
  requireExp: boolean;
  clockToleranceS: number;
}

/** Tokens longer than this are refused before any parsing. */
export const TOKEN_MAX_LENGTH = 8192;

export function buildKeys(options: {
  apiKey: string | undefined;
  publicKeyPem: string | undefined;
  algorithms: readonly JwtAlgorithm[];
  requireExp: boolean;
  clockToleranceS: number;
}): VerifierKeys {
  return {
    secret:
      options.apiKey && options.algorithms.includes("HS256")
        ? createSecretKey(Buffer.from(options.apiKey, "utf8"))
        : undefined,
    publicKey: options.publicKeyPem ? createPublicKey(options.publicKeyPem) : undefined,
    algorithms: options.algorithms,
    requireExp: options.requireExp,
    clockToleranceS: options.clockToleranceS,
  };
}

/** Reads the header's `alg` without trusting anything; undefined when the token is not a JWS. */
export function peekAlgorithm(token: unknown): string | undefined | null {
  if (typeof token !== "string" || token.length === 0 || token.length > TOKEN_MAX_LENGTH) return null;
  const dot = token.indexOf(".");
  if (dot <= 0) return null;
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot), "base64url").toString("utf8"));
    if (typeof header !== "object" || header === null) return null;
    const alg = (header as { alg?: unknown }).alg;
    return typeof alg === "string" ? alg : undefined;
  } catch {
    return null; // not base64url JSON: a malformed token, reported as such by the caller
  }
}

/** Verifies one token synchronously against the configured keys and policy. */
export function verifyToken(token: unknown, keys: VerifierKeys): VerifyResult {
  if (token === undefined || token === null || token === "") return { ok: false, code: AuthErrorCode.TOKEN_MISSING };
  const alg = peekAlgorithm(token);
  if (alg === null || typeof token !== "string") return { ok: false, code: AuthErrorCode.TOKEN_MALFORMED };
  if (alg === undefined || !(keys.algorithms as readonly string[]).includes(alg)) {
    return { ok: false, code: AuthErrorCode.TOKEN_ALGORITHM_NOT_ALLOWED };
  }
  const key = alg === "HS256" ? keys.secret : keys.publicKey;
  if (!key) return { ok: false, code: AuthErrorCode.TOKEN_ALGORITHM_NOT_ALLOWED };
  let payload: string | jwt.JwtPayload;
  try {
    payload = jwt.verify(token, key, {
      algorithms: [alg as jwt.Algorithm],
      clockTolerance: keys.clockToleranceS,
    });
  } catch (err) {
    return { ok: false, code: codeFor(err) };
  }
  if (typeof payload === "string") return { ok: false, code: AuthErrorCode.TOKEN_MALFORMED };
  if (keys.requireExp && typeof payload.exp !== "number") return { ok: false, code: AuthErrorCode.TOKEN_EXP_REQUIRED };
  return { ok: true, subject: typeof payload.sub === "string" ? payload.sub : undefined, exp: payload.exp };
}

function codeFor(err: unknown): AuthCode {
  if (err instanceof jwt.TokenExpiredError) return AuthErrorCode.TOKEN_EXPIRED;
  if (err instanceof jwt.NotBeforeError) return AuthErrorCode.TOKEN_NOT_YET_VALID;
  if (err instanceof jwt.JsonWebTokenError) {
    if (err.message === "invalid signature") return AuthErrorCode.TOKEN_INVALID_SIGNATURE;
    if (err.message === "invalid algorithm" || err.message === "jwt signature is required") {
      return AuthErrorCode.TOKEN_ALGORITHM_NOT_ALLOWED;
    }
  }
  return AuthErrorCode.TOKEN_MALFORMED;
}
