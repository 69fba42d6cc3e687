import jwt from "jsonwebtoken";

/** An HS256 token signed with the server's API_KEY, as an app's backend mints it. */
export function mintToken(apiKey: string, claims: object = {}, options: jwt.SignOptions = {}): string {
  return jwt.sign(claims, Buffer.from(apiKey, "utf8"), { algorithm: "HS256", ...options });
}
