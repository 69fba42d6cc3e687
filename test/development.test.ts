/**
 * What a developer sees with `npm start` / `npm run dev`: with no API_KEY outside production, the
 * generated key is kept in DATA_DIR, so tokens made for it keep working after a restart (every
 * change under `npm run dev`); logs a person can read (LOG_FORMAT=pretty, what `auto` picks at a
 * terminal outside production).
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, onTestFinished } from "vitest";
import { closeAllClients, connect } from "./helpers/client.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";
import { mintToken } from "../harness/token.js";

/** The key the server printed at start. */
function printedKey(server: RunningServer): string {
  const line = server.output.find((l) => l.trim().startsWith("API_KEY="));
  expect(line, "the start-up output prints the key").toBeDefined();
  return line!.trim().slice("API_KEY=".length);
}

describe("the generated development key", () => {
  afterEach(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("is kept in DATA_DIR, readable by its owner only, and tokens for it work after a restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "cerebellum-devkey-"));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const env = { API_KEY: "", NODE_ENV: "development", PERSISTENCE: "off" };
    const first = await startServer({ workers: 1, dataDir, env });
    const key = printedKey(first);
    expect(statSync(join(dataDir, "development-api-key")).mode & 0o777).toBe(0o600);
    const token = mintToken(key, {}, { expiresIn: 300 });
    (await connect(first.url, token)).close();
    await first.stop();

    const second = await startServer({ workers: 1, dataDir, env });
    expect(printedKey(second)).toBe(key);
    (await connect(second.url, token)).close();
  });

  it("is not kept in production (with JWT_PUBLIC_KEY, API_KEY may be unset)", async () => {
    const { publicKey } = await import("node:crypto").then((c) => c.generateKeyPairSync("ec", { namedCurve: "P-256" }));
    const dataDir = mkdtempSync(join(tmpdir(), "cerebellum-devkey-"));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    await startServer({ workers: 1, dataDir, env: { API_KEY: "", NODE_ENV: "production", JWT_PUBLIC_KEY: pem, PERSISTENCE: "off" } });
    expect(() => statSync(join(dataDir, "development-api-key"))).toThrow();
  });
});

describe("LOG_FORMAT=pretty", () => {
  afterEach(async () => {
    await stopAllServers();
  });

  it("prints one readable line per entry from the primary and each worker, secrets still redacted", async () => {
    const server = await startServer({ workers: 2, waitReady: false, env: { LOG_FORMAT: "pretty", PERSISTENCE: "off", LOG_LEVEL: "debug" } });
    await waitFor(() => server.output.filter((l) => / INFO.*: worker \d+: worker ready/.test(l)).length === 2, { what: "two workers' ready lines", timeoutMs: 30_000 });
    expect(server.output.some((l) => /^\[\d\d:\d\d:\d\d\.\d{3}\] .*INFO.*primary: cerebellum listening/.test(l))).toBe(true);
    expect(server.output.filter((l) => l.startsWith("{"))).toEqual([]);
    expect(server.output.join("\n")).not.toContain(server.apiKey);
  });
});
