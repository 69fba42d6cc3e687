import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { SignJWT } from "jose";
import jwt from "jsonwebtoken";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAllClients, connect, type ClientOptions } from "./helpers/client.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";

const AUTH_ERROR = "Authentication error";
const now = () => Math.floor(Date.now() / 1000);

/** Connects expecting a refusal; returns the error's message and `data.code`. */
async function refusal(url: string, token: string | undefined, options: ClientOptions = {}) {
  let socket: Socket | undefined;
  try {
    socket = await connect(url, token, options);
  } catch (err) {
    const e = err as Error & { data?: { code?: unknown } };
    return { message: e.message, code: e.data?.code };
  }
  socket.close();
  throw new Error("the connection was accepted");
}

/** The part of a JWS that is unique to it: its signature (or the whole token when it has none). */
function secretPart(token: string): string {
  const signature = token.split(".")[2];
  return signature && signature.length >= 16 ? signature : token;
}

function hs(secret: string, claims: object, options: jwt.SignOptions = {}): string {
  return jwt.sign(claims, Buffer.from(secret, "utf8"), { algorithm: "HS256", ...options });
}

afterAll(async () => {
  closeAllClients();
  await stopAllServers();
});

describe("HS256 (API_KEY)", () => {
  let server: RunningServer;
  /** Every token handed to the server; none may show up in its output. */
  const used: string[] = [];
  let refusals = 0;
  const refused = async (token: string | undefined, options?: ClientOptions) => {
    if (token) used.push(token);
    const result = await refusal(server.url, token, options);
    refusals++;
    return result;
  };

  beforeAll(async () => {
    // debug: the auth middleware logs each refusal, so the "no token in the output" check has lines to look at.
    server = await startServer({ workers: 2, env: { LOG_LEVEL: "debug" } });
  });
  afterAll(async () => {
    closeAllClients();
    await server.stop();
  });

  it("accepts a valid token", async () => {
    const token = server.token({ sub: "alice" });
    used.push(token);
    const socket = await connect(server.url, token);
    expect(socket.connected).toBe(true);
  });

  it("accepts a token made exactly like @cerebellum/sdk 2.0.2 makes it (jose, {exp} only)", async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1m")
      .sign(new TextEncoder().encode(server.apiKey));
    used.push(token);
    expect(Object.keys(jwt.decode(token) as object)).toEqual(["exp"]);
    const socket = await connect(server.url, token);
    expect(socket.connected).toBe(true);
  });

  it("accepts the SDK's token over websocket only too", async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1m")
      .sign(new TextEncoder().encode(server.apiKey));
    used.push(token);
    const socket = await connect(server.url, token, { transports: ["websocket"] });
    expect(socket.connected).toBe(true);
  });

  it("refuses a connection without a token (TOKEN_MISSING)", async () => {
    expect(await refused(undefined)).toEqual({ message: AUTH_ERROR, code: "TOKEN_MISSING" });
  });

  it("refuses a token sent in the query string only (TOKEN_MISSING)", async () => {
    const token = server.token();
    expect(await refused(token, { auth: {}, query: { token } })).toEqual({ message: AUTH_ERROR, code: "TOKEN_MISSING" });
  });

  it("refuses a token that is not a token (TOKEN_MALFORMED)", async () => {
    expect(await refused("not-a-jwt-at-all-0123456789")).toEqual({ message: AUTH_ERROR, code: "TOKEN_MALFORMED" });
    expect(await refused("eyJub3QiOiJqc29uIg.e30.c2ln")).toEqual({ message: AUTH_ERROR, code: "TOKEN_MALFORMED" });
  });

  it("refuses a token that is not a string (TOKEN_MALFORMED)", async () => {
    const result = await refusal(server.url, undefined, { auth: { token: { alg: "HS256" } } });
    refusals++;
    expect(result).toEqual({ message: AUTH_ERROR, code: "TOKEN_MALFORMED" });
  });

  it("refuses a token signed with another secret (TOKEN_INVALID_SIGNATURE)", async () => {
    const token = hs("some-other-secret-0123456789abcdef", {}, { expiresIn: 300 });
    expect(await refused(token)).toEqual({ message: AUTH_ERROR, code: "TOKEN_INVALID_SIGNATURE" });
  });

  it("refuses a tampered payload (TOKEN_INVALID_SIGNATURE)", async () => {
    const [header, , signature] = server.token({ sub: "alice" }).split(".");
    const payload = Buffer.from(JSON.stringify({ sub: "admin", exp: now() + 300 })).toString("base64url");
    expect(await refused(`${header}.${payload}.${signature}`)).toEqual({ message: AUTH_ERROR, code: "TOKEN_INVALID_SIGNATURE" });
  });

  it('refuses an unsigned alg "none" token (TOKEN_ALGORITHM_NOT_ALLOWED)', async () => {
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const unsigned = `${part({ alg: "none", typ: "JWT" })}.${part({ sub: "admin", exp: now() + 300 })}.`;
    expect(await refused(unsigned)).toEqual({ message: AUTH_ERROR, code: "TOKEN_ALGORITHM_NOT_ALLOWED" });
    // Same with the header spelled "None" and with no trailing dot.
    const variant = `${part({ alg: "None" })}.${part({ exp: now() + 300 })}`;
    expect(await refused(variant)).toEqual({ message: AUTH_ERROR, code: "TOKEN_ALGORITHM_NOT_ALLOWED" });
  });

  it("refuses HS512 when only HS256 is allowed, even signed with API_KEY (TOKEN_ALGORITHM_NOT_ALLOWED)", async () => {
    const token = hs(server.apiKey, {}, { algorithm: "HS512", expiresIn: 300 });
    expect(await refused(token)).toEqual({ message: AUTH_ERROR, code: "TOKEN_ALGORITHM_NOT_ALLOWED" });
  });

  it("refuses an expired token (TOKEN_EXPIRED)", async () => {
    const token = hs(server.apiKey, { exp: now() - 60 });
    expect(await refused(token)).toEqual({ message: AUTH_ERROR, code: "TOKEN_EXPIRED" });
  });

  it("refuses a token whose nbf is in the future (TOKEN_NOT_YET_VALID)", async () => {
    const token = hs(server.apiKey, { nbf: now() + 3600, exp: now() + 7200 });
    expect(await refused(token)).toEqual({ message: AUTH_ERROR, code: "TOKEN_NOT_YET_VALID" });
  });

  it("refuses a token without exp (TOKEN_EXP_REQUIRED)", async () => {
    const token = hs(server.apiKey, { sub: "forever" });
    expect(await refused(token)).toEqual({ message: AUTH_ERROR, code: "TOKEN_EXP_REQUIRED" });
  });

  it("never writes a token to its output", async () => {
    expect(refusals).toBeGreaterThanOrEqual(13); // the refusals above ran first (this test relies on file order)
    // Wait until every refusal has been logged, so the check below looks at the complete output.
    await waitFor(() => server.output.filter((l) => l.includes("connection refused")).length >= refusals, {
      what: `${refusals} "connection refused" log lines`,
    });
    const leaks = used.filter((token) => server.output.some((line) => line.includes(secretPart(token))));
    expect(leaks).toEqual([]);
    expect(server.output.filter((l) => /eyJ[\w-]+\.eyJ[\w-]+\./.test(l))).toEqual([]);
  });
});

describe("HS256 with JWT_REQUIRE_EXP=false", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ workers: 2, env: { JWT_REQUIRE_EXP: "false" } });
  });
  afterAll(async () => {
    closeAllClients();
    await server.stop();
  });

  it("accepts a token without exp", async () => {
    const socket = await connect(server.url, hs(server.apiKey, { sub: "forever" }));
    expect(socket.connected).toBe(true);
  });

  it("still refuses an expired one", async () => {
    expect(await refusal(server.url, hs(server.apiKey, { exp: now() - 60 }))).toEqual({
      message: AUTH_ERROR,
      code: "TOKEN_EXPIRED",
    });
  });
});

interface KeyCase {
  alg: "RS256" | "ES256";
  generate(): { publicKey: KeyObject; privateKey: KeyObject };
  /** How JWT_PUBLIC_KEY is given: with real newlines, or as one line with literal "\n" (as in a .env file). */
  escapeNewlines: boolean;
  /** Small batches and a long wait so that a burst really forms several batches, some flushed by size, some by timer. */
  batch: Record<string, string>;
  /** A listed algorithm the server does not accept. */
  otherAlg: "RS256" | "ES256";
  otherKey(): KeyObject;
}

const rsa = () => generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = () => generateKeyPairSync("ec", { namedCurve: "P-256" });

const keyCases: KeyCase[] = [
  {
    alg: "RS256",
    generate: rsa,
    escapeNewlines: false,
    batch: { JWT_BATCH_SIZE: "8", JWT_BATCH_WAIT_MS: "20" },
    otherAlg: "ES256",
    otherKey: () => ec().privateKey,
  },
  {
    alg: "ES256",
    generate: ec,
    escapeNewlines: true,
    batch: {},
    otherAlg: "RS256",
    otherKey: () => rsa().privateKey,
  },
];

describe.each(keyCases)("$alg with JWT_PUBLIC_KEY (verified in the pool)", (kc) => {
  let server: RunningServer;
  let privateKey: KeyObject;
  let publicPem: string;
  let strangerKey: KeyObject;
  /** Every token handed to the server; none may show up in its output. */
  const used: string[] = [];
  const sign = (claims: object = {}, key: KeyObject = privateKey, alg: jwt.Algorithm = kc.alg) => {
    const token = jwt.sign(claims, key, { algorithm: alg, expiresIn: 300 });
    used.push(token);
    return token;
  };

  beforeAll(async () => {
    const pair = kc.generate();
    privateKey = pair.privateKey;
    publicPem = pair.publicKey.export({ type: "spki", format: "pem" }).toString();
    strangerKey = kc.generate().privateKey;
    const pemEnv = kc.escapeNewlines ? publicPem.trim().replace(/\n/g, "\\n") : publicPem;
    if (kc.escapeNewlines) expect(pemEnv).not.toContain("\n");
    server = await startServer({
      workers: 2,
      env: { JWT_PUBLIC_KEY: pemEnv, JWT_ALGORITHMS: kc.alg, LOG_LEVEL: "debug", ...kc.batch },
    });
  });
  afterAll(async () => {
    closeAllClients();
    await server.stop();
  });

  it("accepts a valid token", async () => {
    const socket = await connect(server.url, sign({ sub: "carol" }));
    expect(socket.connected).toBe(true);
  });

  it("refuses a token signed with another key (TOKEN_INVALID_SIGNATURE)", async () => {
    expect(await refusal(server.url, sign({}, strangerKey))).toEqual({ message: AUTH_ERROR, code: "TOKEN_INVALID_SIGNATURE" });
  });

  it("refuses an expired token (TOKEN_EXPIRED)", async () => {
    const token = jwt.sign({ exp: now() - 60 }, privateKey, { algorithm: kc.alg });
    used.push(token);
    expect(await refusal(server.url, token)).toEqual({ message: AUTH_ERROR, code: "TOKEN_EXPIRED" });
  });

  it(`refuses ${kc.otherAlg}, which is not in JWT_ALGORITHMS (TOKEN_ALGORITHM_NOT_ALLOWED)`, async () => {
    const token = sign({}, kc.otherKey(), kc.otherAlg);
    expect(await refusal(server.url, token)).toEqual({ message: AUTH_ERROR, code: "TOKEN_ALGORITHM_NOT_ALLOWED" });
  });

  it("refuses HS256, even signed with API_KEY or with the public key as secret (TOKEN_ALGORITHM_NOT_ALLOWED)", async () => {
    const hsToken = server.token();
    used.push(hsToken);
    expect(await refusal(server.url, hsToken)).toEqual({ message: AUTH_ERROR, code: "TOKEN_ALGORITHM_NOT_ALLOWED" });
    // The classic algorithm-confusion forgery: HMAC keyed with the public key's PEM text.
    const forged = jwt.sign({ sub: "admin" }, Buffer.from(publicPem, "utf8"), { algorithm: "HS256", expiresIn: 300 });
    used.push(forged);
    expect(await refusal(server.url, forged)).toEqual({ message: AUTH_ERROR, code: "TOKEN_ALGORITHM_NOT_ALLOWED" });
  });

  it("answers each of 50 concurrent connects (mixed with 10 bad tokens) with its own verdict", async () => {
    const good = Array.from({ length: 50 }, (_, i) => sign({ sub: `user-${i}` }));
    const bad = Array.from({ length: 10 }, (_, i) => sign({ sub: `intruder-${i}` }, strangerKey));
    // Interleaved so that good and bad tokens share batches: a result given to the wrong token shows up here.
    const attempts = good.flatMap((token, i) => {
      const one = connect(server.url, token).then((s) => ({ ok: true as const, id: s.id }));
      const intruder = bad[i % 5 === 0 ? i / 5 : -1];
      return intruder
        ? [one, refusal(server.url, intruder).then((r) => ({ ok: false as const, ...r }))]
        : [one];
    });
    const results = await Promise.all(attempts);
    const accepted = results.filter((r) => r.ok);
    const refused = results.filter((r) => !r.ok);
    expect(accepted).toHaveLength(50);
    expect(new Set(accepted.map((r) => r.id)).size).toBe(50);
    expect(refused).toHaveLength(10);
    for (const r of refused) expect(r).toEqual({ ok: false, message: AUTH_ERROR, code: "TOKEN_INVALID_SIGNATURE" });
  });

  it("never writes a token to its output", async () => {
    // 15 refusals above (file order): wait until all are logged, so the check sees the complete output.
    await waitFor(() => server.output.filter((l) => l.includes("connection refused")).length >= 15, {
      what: "15 \"connection refused\" log lines",
    });
    const leaks = used.filter((token) => server.output.some((line) => line.includes(secretPart(token))));
    expect(leaks).toEqual([]);
    // Nor anything shaped like a JWS (header.payload.), whoever's it is.
    expect(server.output.filter((l) => /eyJ[\w-]+\.eyJ[\w-]+\./.test(l))).toEqual([]);
  });
});
