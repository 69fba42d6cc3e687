import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Logger } from "../shared/logger.js";
import { parseStored, serializeStored, type StoredMessage } from "./record.js";

/**
 * Where a worker puts messages it could not store, so that an acknowledged message survives a
 * store outage and a restart. Append-only JSON lines (one stored message per line), fsync'd per
 * batch before the batch counts as durable.
 *
 * Files under `<DATA_DIR>/spill/`, owned by the worker slot in their name (slots are stable
 * across restarts, and only one live worker holds a slot):
 * - `worker-<slot>.jsonl`: the segment being appended to;
 * - `worker-<slot>.<stamp>.replay.jsonl`: closed segments waiting to be replayed into the store
 *   (a segment is closed when a replay starts, so appends and replay never share a file);
 * - `rejected-<slot>.jsonl`: messages the store refused for good (e.g. too large), kept for an operator.
 * A torn last line (a crash mid-append) is skipped on replay.
 */
export class SpillFile {
  private handle: FileHandle | undefined;
  private bytes = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly slot: number,
    private readonly maxBytes: number,
    private readonly log: Logger,
  ) {}

  private get activePath(): string {
    return join(this.dir, `worker-${this.slot}.jsonl`);
  }

  /**
   * Prepares the directory and counts what is already spilled. Slot 0 also adopts the files of
   * slots that no longer exist (the server was restarted with fewer workers).
   */
  async open(workerCount: number): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    if (this.slot === 0) {
      for (const name of await readdir(this.dir)) {
        const match = /^worker-(\d+)\./.exec(name);
        if (match && Number(match[1]) >= workerCount) {
          await rename(join(this.dir, name), this.segmentPath());
          this.log.info({ file: name }, "adopted the spill file of a worker slot that no longer exists");
        }
      }
    }
    // A segment left by our predecessor may end in a torn line: never append after it.
    const left = await stat(this.activePath).then(
      () => true,
      () => false,
    );
    if (left) await rename(this.activePath, this.segmentPath());
    this.bytes = 0;
    for (const file of await this.ownFiles()) this.bytes += (await stat(file)).size;
  }

  /** Bytes spilled and not yet replayed. */
  get pendingBytes(): number {
    return this.bytes;
  }

  /**
   * Appends a batch and fsyncs it. Resolves false, without writing, when the file would pass its
   * bound; rejects on an I/O error. Appends run one at a time, in call order.
   */
  append(records: StoredMessage[]): Promise<boolean> {
    return this.serial(async () => {
      if (this.closed) throw new Error("spill file is closed");
      const text = records.map((r) => serializeStored(r) + "\n").join("");
      const buffer = Buffer.from(text, "utf8");
      if (this.bytes + buffer.length > this.maxBytes) return false;
      if (!this.handle) {
        this.handle = await open(this.activePath, "a");
        await this.syncDirectory();
      }
      await this.handle.write(buffer);
      await this.handle.datasync();
      this.bytes += buffer.length;
      return true;
    });
  }

  /** Closes the segment being appended to and returns every segment waiting for replay, oldest first. */
  takeSegments(): Promise<string[]> {
    return this.serial(async () => {
      if (this.handle) {
        await this.handle.close();
        this.handle = undefined;
      }
      const active = this.activePath;
      const exists = await stat(active).then(
        (s) => s.size > 0,
        () => false,
      );
      if (exists) await rename(active, this.segmentPath());
      return (await this.ownFiles()).filter((f) => f.endsWith(".replay.jsonl")).sort();
    });
  }

  /** Reads a segment in batches of up to `size` messages; lines that do not parse are logged and skipped. */
  async *read(segment: string, size: number): AsyncGenerator<StoredMessage[]> {
    const input = createReadStream(segment, { encoding: "utf8" });
    const lines = createInterface({ input, crlfDelay: Infinity });
    try {
      yield* this.batches(lines, segment, size);
    } finally {
      // A caller that stops early (store down again, shutdown) must not leak the descriptor.
      lines.close();
      input.destroy();
    }
  }

  private async *batches(lines: AsyncIterable<string>, segment: string, size: number): AsyncGenerator<StoredMessage[]> {
    let batch: StoredMessage[] = [];
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      if (line.length === 0) continue;
      const parsed = parseStored(line);
      if ("error" in parsed) {
        this.log.warn({ segment, line: lineNo, error: parsed.error }, "skipped an unreadable spill line (torn write?)");
        continue;
      }
      batch.push(parsed);
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  /** Deletes a replayed segment. */
  remove(segment: string): Promise<void> {
    return this.serial(async () => {
      const size = await stat(segment).then(
        (s) => s.size,
        () => 0,
      );
      await unlink(segment);
      this.bytes = Math.max(0, this.bytes - size);
    });
  }

  /** Appends messages the store refused for good to `rejected-<slot>.jsonl` (fsync'd). */
  rejected(entries: Array<{ message: StoredMessage; reason: string }>): Promise<void> {
    return this.serial(async () => {
      // `open()` may still be creating the directory (a refusal in the first moments): not lost for that.
      await mkdir(this.dir, { recursive: true });
      const file = await open(join(this.dir, `rejected-${this.slot}.jsonl`), "a");
      try {
        const text = entries.map((e) => JSON.stringify({ ...e.message, rejectedBecause: e.reason }) + "\n").join("");
        await file.write(text);
        await file.datasync();
      } finally {
        await file.close();
      }
    });
  }

  async close(): Promise<void> {
    await this.serial(async () => {
      this.closed = true;
      await this.handle?.close();
      this.handle = undefined;
    });
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work);
    // The chain only orders work; each caller sees its own result or error through `next`.
    this.chain = next.catch(() => undefined);
    return next;
  }

  private segmentPath(): string {
    const stamp = `${Date.now().toString().padStart(15, "0")}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    return join(this.dir, `worker-${this.slot}.${stamp}.replay.jsonl`);
  }

  private async ownFiles(): Promise<string[]> {
    const prefix = `worker-${this.slot}.`;
    return (await readdir(this.dir)).filter((name) => name.startsWith(prefix)).map((name) => join(this.dir, name));
  }

  /** Makes a newly created file's directory entry durable too. */
  private async syncDirectory(): Promise<void> {
    const dir = await open(this.dir, "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
