import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../shared/config.js";
import type { Logger } from "../shared/logger.js";
import { ReplayLog, type ReplayLogSnapshot } from "./replay-log.js";
import { SessionTable } from "./session-table.js";
import type { SessionRecord } from "../shared/adapter-ipc.js";

const FILE = "recovery-state.json";

interface SavedState {
  savedAt: number;
  log: ReplayLogSnapshot;
  sessions: Array<{ record: SessionRecord; disconnectedAt: number }>;
}

/**
 * Embedded recovery state survives a graceful restart of the whole server: it is written to
 * DATA_DIR on shutdown and read back at start when still inside the recovery window. A crash of
 * the primary keeps nothing (the epoch changes, so old offsets fail cleanly).
 */
export function loadRecoveryState(config: Config, log: Logger): { replay: ReplayLog; sessions: SessionTable } {
  const limits = {
    maxAgeMs: config.recovery.maxDisconnectionMs,
    maxEntries: config.recovery.logMaxEntries,
    maxBytes: config.recovery.logMaxBytes,
  };
  const sessions = new SessionTable(
    { maxDisconnectionMs: config.recovery.maxDisconnectionMs, maxDisconnected: config.recovery.maxSessions },
    (sid, reason) => log.debug({ sid, reason }, "recovery session dropped"),
  );
  const path = join(config.dataDir, FILE);
  const now = Date.now();
  let saved: SavedState | undefined;
  try {
    saved = JSON.parse(readFileSync(path, "utf8")) as SavedState;
    rmSync(path, { force: true }); // used once: a later crash must not bring back older state
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") log.warn({ err }, "recovery state unreadable, starting afresh");
  }
  if (saved && now - saved.savedAt <= config.recovery.maxDisconnectionMs) {
    const replay = new ReplayLog(limits, saved.log);
    replay.trim(now);
    sessions.restore(saved.sessions, now);
    log.info({ sessions: sessions.disconnectedCount, entries: replay.size }, "recovery state restored");
    return { replay, sessions };
  }
  return { replay: new ReplayLog(limits, { epoch: randomBytes(6).toString("hex"), seq: 0, entries: [] }), sessions };
}

export function saveRecoveryState(config: Config, replay: ReplayLog, sessions: SessionTable, log: Logger): void {
  const now = Date.now();
  const state: SavedState = { savedAt: now, log: replay.snapshot(), sessions: sessions.snapshot(now) };
  try {
    mkdirSync(config.dataDir, { recursive: true });
    const path = join(config.dataDir, FILE);
    writeFileSync(`${path}.tmp`, JSON.stringify(state));
    renameSync(`${path}.tmp`, path);
    log.info({ sessions: state.sessions.length, entries: state.log.entries.length }, "recovery state saved");
  } catch (err) {
    log.error({ err }, "could not save recovery state; clients will reconnect as new sessions");
  }
}
