import type { KeyObject } from "node:crypto";
import jwt from "jsonwebtoken";

/** An HS256 token signed with the server's API_KEY (its UTF-8 bytes, or a key made of them), as an app's backend mints it. */
export function mintToken(apiKey: string | KeyObject, claims: object = {}, options: jwt.SignOptions = {}): string {
  const key = typeof apiKey === "string" ? Buffer.from(apiKey, "utf8") : apiKey;
  return jwt.sign(claims, key, { algorithm: "HS256", ...options });
}
