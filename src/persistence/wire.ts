/**
 * The embedded store's wire format, spoken over one loopback TCP connection per client:
 * length-prefixed binary frames, so that neither side parses HTTP or JSON envelopes and a
 * message's content crosses as the JSON text the worker made of it once.
 *
 *   frame   := u32le length | body                  (length of body, at most FRAME_MAX_BYTES)
 *   request := u8 op | u32le id | payload
 *   reply   := u8 status | u32le id | payload       (status OK or ERROR; id of the request)
 *   string  := u32le length | UTF-8 bytes
 *
 * Payloads by op (request → OK reply):
 *   HELLO    string secret, u32 version        → (empty); a wrong secret or version closes the connection
 *   WRITE    u32 n, n × (channel, createdAt, messageId, contentJson)   → u32 k, k × (u32 index, string reason)
 *            (one LevelDB batch; the k records the store refuses for good, by index)
 *   CHANNELS u32 n, n × string name           → (empty)
 *   PAGE     u8 flags, u32 limit, string channel, [string createdAt, string messageId]
 *            (flags: PAGE_ASCENDING, PAGE_CURSOR; the cursor strings only with PAGE_CURSOR)
 *            → string itemsJson, u8 more, [string createdAt, string messageId]  (the cursor when more)
 * An ERROR reply carries one string, the reason. Requests on one connection may be answered out
 * of order; the id matches them.
 */

export const PROTOCOL_VERSION = 1;

export const Op = { HELLO: 1, WRITE: 2, CHANNELS: 3, PAGE: 4 } as const;
export type Op = (typeof Op)[keyof typeof Op];

export const Status = { OK: 0, ERROR: 1 } as const;

export const PAGE_ASCENDING = 1;
export const PAGE_CURSOR = 2;

/** Largest frame either side accepts; a bigger length prefix ends the connection. */
export const FRAME_MAX_BYTES = 64 * 1024 * 1024;

/** Thrown by a reader whose frame ends before the field it was asked for. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/** Builds one frame in a growing buffer; `finish()` writes the length prefix. */
export class FrameWriter {
  private buf: Buffer;
  private off = 4;

  constructor(initialBytes = 256) {
    this.buf = Buffer.allocUnsafe(Math.max(16, initialBytes));
  }

  /** Bytes written so far, prefix included. */
  get size(): number {
    return this.off;
  }

  u8(value: number): this {
    this.reserve(1);
    this.buf[this.off++] = value;
    return this;
  }

  u32(value: number): this {
    this.reserve(4);
    this.buf.writeUInt32LE(value, this.off);
    this.off += 4;
    return this;
  }

  /** A string as u32 byte length and UTF-8 (lone surrogates become U+FFFD, as in any UTF-8 text). */
  string(value: string): this {
    // At most 3 bytes per UTF-16 unit: reserving that avoids measuring the string first.
    this.reserve(4 + value.length * 3);
    const n = this.buf.write(value, this.off + 4, "utf8");
    this.buf.writeUInt32LE(n, this.off);
    this.off += 4 + n;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.reserve(4 + value.length);
    this.buf.writeUInt32LE(value.length, this.off);
    this.buf.set(value, this.off + 4);
    this.off += 4 + value.length;
    return this;
  }

  /** Overwrites a u32 written earlier at `offset` (a count known only at the end). */
  patchU32(offset: number, value: number): void {
    this.buf.writeUInt32LE(value, offset);
  }

  finish(): Buffer {
    this.buf.writeUInt32LE(this.off - 4, 0);
    return this.buf.subarray(0, this.off);
  }

  private reserve(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }
}

/** Reads the fields of one frame body; every read is bounds-checked. */
export class FrameReader {
  private off = 0;

  constructor(private readonly body: Buffer) {}

  get remaining(): number {
    return this.body.length - this.off;
  }

  u8(): number {
    this.need(1);
    return this.body[this.off++]!;
  }

  u32(): number {
    this.need(4);
    const value = this.body.readUInt32LE(this.off);
    this.off += 4;
    return value;
  }

  /** A length-prefixed field as a view into the frame (no copy). */
  bytes(): Buffer {
    const n = this.u32();
    this.need(n);
    const value = this.body.subarray(this.off, this.off + n);
    this.off += n;
    return value;
  }

  string(): string {
    return this.bytes().toString("utf8");
  }

  private need(n: number): void {
    if (this.off + n > this.body.length) throw new FrameError("frame ends early");
  }
}

/**
 * Cuts a byte stream into frame bodies. Chunks are kept as they come and joined once a frame
 * is complete, so a large frame arriving in many chunks is copied once.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Body length of the frame being assembled, once its prefix is in. */
  private expected = -1;

  /** `maxBytes` bounds each frame's body; it may be raised later (a peer's first frame gets less). */
  constructor(public maxBytes = FRAME_MAX_BYTES) {}

  /** Feeds a chunk; calls `onFrame` for each complete body. Throws FrameError on an oversized frame. */
  push(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < 4) return;
        const head = this.peekHead();
        if (head > this.maxBytes) throw new FrameError(`frame of ${head} bytes exceeds ${this.maxBytes}`);
        this.expected = head;
      }
      if (this.buffered < 4 + this.expected) return;
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
      const end = 4 + this.expected;
      onFrame(all.subarray(4, end));
      const rest = all.subarray(end);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.expected = -1;
    }
  }

  private peekHead(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32LE(0);
    const joined = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [joined];
    return joined.readUInt32LE(0);
  }
}
