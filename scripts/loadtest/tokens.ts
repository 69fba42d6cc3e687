import { createSecretKey, type KeyObject } from "node:crypto";
import { mintToken } from "../../harness/token.js";

/** Hands out the token for each connect: a supplied one, or a fresh HS256 token per connection. */
export interface TokenSource {
  next(connection: number): string | undefined;
}

/**
 * Mints `{sub, exp}` tokens signed with the UTF-8 bytes of the API key, as the SDK does. Each
 * connect gets its own token (the server verifies every one, as in production).
 */
export function tokenSource(options: { apiKey: string | undefined; token: string | undefined; ttlS: number }): TokenSource {
  if (options.token !== undefined) {
    const token = options.token;
    return { next: () => token };
  }
  if (options.apiKey === undefined) return { next: () => undefined };
  const key: KeyObject = createSecretKey(Buffer.from(options.apiKey, "utf8"));
  const ttl = Math.round(options.ttlS);
  return {
    next: (connection) => mintToken(key, { sub: `loadtest-${connection}` }, { expiresIn: ttl }),
  };
}
