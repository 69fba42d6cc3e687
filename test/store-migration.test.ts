import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Socket } from "socket.io-client";
import { createLogger } from "../src/shared/logger.js";
import { MessageDb } from "../src/store/message-db.js";
import { hasLegacyStore, migrateDynalite } from "../src/store/migrate-dynalite.js";
import { serializeStored, type StoredMessage } from "../src/persistence/record.js";
import { closeAllClients, connect, request } from "./helpers/client.js";
import { withLegacyStore } from "./helpers/legacy-store.js";
import { startServer, stopAllServers } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";

const log = createLogger("silent", {});
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "cerebellum-migration-"));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  closeAllClients();
  await stopAllServers();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Content the previous store kept natively, with a key order to restore, and as JSON text. */
const nest = (levels: number) => {
  let value: unknown = "bottom";
  for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { k: value };
  return value;
};
const SHAPES: unknown[] = [
  "", "text", 0, -1.5, 1e21, 2 ** 53 + 2, 5e-324, 1e200, true, false, null, [], {}, [""], { "": "empty key" },
  { z: 1, a: 2, m: { y: [], b: "", k: { q: null, c: true } } }, "\ud800 lone", { "\udc00": 1 },
  JSON.parse('{"__proto__": {"x": 1}, "a": 1}') as unknown, nest(40), "ünï 😀",
];

const at = (ms: number) => new Date(Date.UTC(2025, 5, 1, 0, 0, 0, ms)).toISOString();
const messages = (channel: string, count: number, content: (i: number) => unknown = (i) => i): StoredMessage[] =>
  Array.from({ length: count }, (_, i) => ({ channelName: channel, messageId: `${channel}-${String(i).padStart(5, "0")}`, content: content(i), createdAt: at(i) }));

describe("migration from the dynalite-based store", () => {
  it("copies every message and channel, and a crash half-way only means copying again", async () => {
    const root = tempDir();
    const legacy = join(root, "store");
    const many = messages("many", 1_200); // more than one Scan page
    const shapes = messages("shapes", SHAPES.length, (i) => SHAPES[i]);
    await withLegacyStore(legacy, async (old) => {
      await old.write([...many, ...shapes]);
      await old.channels(["many", "shapes", "quiet"]);
      await old.putWithoutCreatedAt("many", "not-history");
    });
    expect(hasLegacyStore(legacy)).toBe(true);

    const db = await MessageDb.open(join(root, "history"), { sync: false });
    const options = { legacyPath: legacy, keepAs: `${legacy}.migrated`, db, tables: { messages: "messages", channels: "channels" }, log };
    // A crash after the first page: the old store is still there and nothing marks it done.
    await expect(
      migrateDynalite({
        ...options,
        onProgress: () => {
          throw new Error("crash");
        },
      }),
    ).rejects.toThrow("crash");
    expect(hasLegacyStore(legacy)).toBe(true);
    expect((await db.page({ channel: Buffer.from("many"), limit: 1000, ascending: true })).itemsJson.length).toBeGreaterThan(2);

    const result = await migrateDynalite(options);
    expect(result).toEqual({ messages: 1_200 + SHAPES.length, channels: 3, skipped: 1, otherTables: [], keptAt: `${legacy}.migrated` });
    expect(existsSync(legacy)).toBe(false);
    expect(hasLegacyStore(`${legacy}.migrated`)).toBe(true);

    const all: Array<{ content: unknown; createdAt: string }> = [];
    let after: { createdAt: Buffer; messageId: Buffer } | undefined;
    do {
      const page = await db.page({ channel: Buffer.from("many"), limit: 1000, ascending: true, after });
      all.push(...(JSON.parse(page.itemsJson.toString()) as typeof all));
      after = page.next;
    } while (after);
    expect(all).toEqual(many.map((m) => ({ content: m.content, createdAt: m.createdAt })));
    const copied = JSON.parse((await db.page({ channel: Buffer.from("shapes"), limit: 100, ascending: true })).itemsJson.toString()) as typeof all;
    expect(JSON.stringify(copied.map((m) => m.content))).toBe(JSON.stringify(SHAPES));
    expect(await db.channels()).toEqual(["many", "quiet", "shapes"]);
    await db.close();
  });
});

type Page = { success: boolean; error?: string; pastMessages: Array<{ content: unknown; createdAt: string }>; lastEvaluatedKey?: unknown };

async function readAll(s: Socket, channel: string, sort: "ascending" | "descending" = "ascending", from: unknown = null): Promise<unknown[]> {
  const seen: unknown[] = [];
  let key: unknown = from;
  do {
    const page = await request<Page>(s, "channel:history", channel, 100, sort, key);
    if (!page.success) throw new Error(`history failed: ${page.error}`);
    seen.push(...page.pastMessages.map((m) => m.content));
    key = page.lastEvaluatedKey;
  } while (key !== undefined);
  return seen;
}

describe("a DATA_DIR written by the version with the dynalite-based store", () => {
  it("is migrated at start: history, order, content and old cursors carry on, exactly once, also after a restart", async () => {
    const dataDir = join(tempDir(), "data");
    const chat = messages("room:chat", 230, (i) => ({ text: `line ${i}`, by: i % 3 }));
    const shapes = messages("room:shapes", SHAPES.length, (i) => SHAPES[i]);
    // Written with the previous version's layout; a client kept a cursor from its history.
    const oldCursor = await withLegacyStore(join(dataDir, "store"), async (old) => {
      await old.write([...chat, ...shapes]);
      await old.channels(["room:chat", "room:shapes"]);
      const first = await old.page("room:chat", 50, true);
      expect(first.items).toHaveLength(50);
      return first.lastEvaluatedKey;
    });
    expect(oldCursor).toEqual({ channelName: "room:chat", messageId: chat[49]!.messageId, createdAt: chat[49]!.createdAt });
    // A spill file that version left (the store was down at its last stop): one message it also
    // stored (a write that landed after the spill), one only spilled.
    const onlySpilled: StoredMessage = { channelName: "room:chat", messageId: "spilled-only", content: "from the spill", createdAt: at(10_000) };
    mkdirSync(join(dataDir, "spill"), { recursive: true });
    writeFileSync(join(dataDir, "spill", "worker-0.jsonl"), [chat[3]!, onlySpilled].map((m) => serializeStored(m) + "\n").join(""));

    const server = await startServer({ workers: 2, env: { DATA_DIR: dataDir } });
    expect(server.output.some((l) => l.includes("migrated the previous embedded store") && l.includes(`"messages":${230 + SHAPES.length}`))).toBe(true);
    expect(existsSync(join(dataDir, "store"))).toBe(false);
    expect(existsSync(join(dataDir, "store.migrated"))).toBe(true);
    const client = await connect(server.url, server.token(), { transports: ["websocket"] });
    const expected = [...chat.map((m) => m.content), "from the spill"];
    await waitFor(async () => (await readAll(client, "room:chat")).length === expected.length, { what: "the spill replayed" });
    expect(await readAll(client, "room:chat")).toEqual(expected);
    expect(await readAll(client, "room:chat", "descending")).toEqual([...expected].reverse());
    // The cursor a client got from the previous version continues where it stopped.
    expect(await readAll(client, "room:chat", "ascending", oldCursor)).toEqual(expected.slice(50));
    const shapesRead = await readAll(client, "room:shapes");
    expect(JSON.stringify(shapesRead)).toBe(JSON.stringify(SHAPES));
    expect(shapesRead).toEqual(SHAPES);
    client.close();
    expect((await server.stop()).code).toBe(0);

    // Migrated once: a restart neither copies again nor loses anything.
    const again = await startServer({ workers: 2, env: { DATA_DIR: dataDir } });
    expect(again.output.filter((l) => /"msg":"[^"]*migrat/.test(l))).toEqual([]);
    const reader = await connect(again.url, again.token(), { transports: ["websocket"] });
    expect(await readAll(reader, "room:chat")).toEqual(expected);
    expect(await readAll(reader, "room:shapes")).toEqual(SHAPES);
    reader.close();
    await again.stop();
  });
});
