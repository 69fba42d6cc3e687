import { connect, type Socket } from "node:net";
import type { EmbeddedStoreEndpoint } from "../shared/config.js";
import { FRAME_MAX_BYTES, FrameDecoder, FrameReader, FrameWriter, Op, PAGE_ASCENDING, PAGE_CURSOR, PROTOCOL_VERSION, Status } from "./wire.js";
import { errorText } from "./backoff.js";
import type { HistoryCursor, QueryPage } from "./dynamo-ops.js";
import type { StoredMessage } from "./record.js";
import type { StoreResults, StoreRunner, StoreTask, StoreTaskOf } from "./store-runner.js";
import { emptyOutcome, type WriteOutcome } from "./write-outcome.js";

/** A batch bigger than this goes out as several write requests (each one LevelDB batch). */
const WRITE_FRAME_BYTES = 1024 * 1024;
/** Where a request's id sits in its frame: after the u32 length and the u8 op. */
const ID_OFFSET = 5;
/** Where a write's record count sits: after the id. */
const COUNT_OFFSET = 9;
/** Fields that would not survive UTF-8 as they are (the store keys on their bytes). */
const LONE_SURROGATE = /\p{Cs}/u;

/** The store answered a request with an error (its reason is the message). */
export class StoreRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreRequestError";
  }
}

interface Pending {
  resolve: (reply: FrameReader) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One connection to the store: its socket, its requests waiting for answers, and why it ended. */
class Connection {
  readonly pending = new Map<number, Pending>();
  readonly hello: Promise<FrameReader>;
  private readonly decoder = new FrameDecoder();
  private lastError: string | undefined;
  closed = false;

  constructor(
    readonly socket: Socket,
    secret: string,
    send: (connection: Connection, frame: Buffer) => Promise<FrameReader>,
  ) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      try {
        this.decoder.push(chunk, (body) => this.answer(body));
      } catch (err) {
        socket.destroy(err as Error);
      }
    });
    // The cause is kept for the requests that fail when the socket closes (ECONNREFUSED, ...).
    socket.on("error", (err) => (this.lastError = errorText(err)));
    socket.on("close", () => this.fail(new Error(this.lastError ?? "the embedded store closed the connection")));
    // Requests may follow at once: the store reads them only after accepting this. A refusal
    // closes the connection; the requests that fail with it say why.
    this.hello = send(this, new FrameWriter(64).u8(Op.HELLO).u32(0).string(secret).u32(PROTOCOL_VERSION).finish());
    this.hello.catch((err: Error) => {
      if (err instanceof StoreRequestError) this.lastError = `the embedded store refused this client: ${err.message}`;
    });
  }

  private answer(body: Buffer): void {
    const reply = new FrameReader(body);
    const status = reply.u8();
    const id = reply.u32();
    const waiting = this.pending.get(id);
    if (!waiting) return; // timed out already: the answer comes too late to matter
    this.pending.delete(id);
    clearTimeout(waiting.timer);
    if (status === Status.OK) waiting.resolve(reply);
    else waiting.reject(new StoreRequestError(reply.string()));
  }

  fail(err: Error): void {
    this.closed = true;
    for (const waiting of this.pending.values()) {
      clearTimeout(waiting.timer);
      waiting.reject(err);
    }
    this.pending.clear();
  }
}

/**
 * The worker's side of the embedded store: one loopback connection, requests pipelined on it
 * (batches, channel names, history pages), each answered by id or failed by its timeout or the
 * connection's end. A new connection is made on the first request after one ends, so a store
 * restarted by the primary is found again without a timer. Plain Node (no AWS SDK): the worker
 * runs it on its event loop (worker/persistence.ts); store-ops.ts can also run it on a pool thread.
 */
export class EmbeddedStoreClient implements StoreRunner {
  private connection: Connection | undefined;
  private nextId = 1;
  closing = false;

  constructor(
    private readonly endpoint: EmbeddedStoreEndpoint,
    private readonly timeoutMs: number,
  ) {}

  run<K extends StoreTask["op"]>(task: StoreTaskOf<K>): Promise<StoreResults[K]>;
  async run(task: StoreTask): Promise<StoreResults[StoreTask["op"]]> {
    switch (task.op) {
      case "write":
        return this.write(task.records);
      case "channels":
        return { failed: await this.channels(task.names) };
      case "page":
        return this.page(task);
      case "warm":
        await this.connected().hello;
        return {};
      case "ensureTables":
        return { created: [] }; // the store has no tables to create
      default: {
        const never: never = task;
        throw new Error(`unknown store task ${JSON.stringify(never)}`);
      }
    }
  }

  /** Stores a batch: one write request per WRITE_FRAME_BYTES of records; content goes as its JSON text. */
  async write(records: readonly StoredMessage[]): Promise<WriteOutcome> {
    const outcome = emptyOutcome();
    const requests: Array<{ frame: Buffer; ids: string[] }> = [];
    let writer: FrameWriter | undefined;
    let ids: string[] = [];
    const cut = () => {
      if (!writer) return;
      writer.patchU32(COUNT_OFFSET, ids.length);
      requests.push({ frame: writer.finish(), ids });
      writer = undefined;
      ids = [];
    };
    for (const r of records) {
      const problem = unstorable(r);
      if (typeof problem === "string") {
        outcome.rejected.push({ messageId: r.messageId, reason: problem });
        continue;
      }
      const content = problem.content;
      if (writer && writer.size + content.length + 512 > WRITE_FRAME_BYTES) cut();
      writer ??= new FrameWriter(Math.min(WRITE_FRAME_BYTES, 4096 + records.length * 256)).u8(Op.WRITE).u32(0).u32(0);
      writer.string(r.channelName).string(r.createdAt).string(r.messageId).string(content);
      ids.push(r.messageId);
    }
    cut();
    await Promise.all(
      requests.map(({ frame, ids: sent }) =>
        this.request(frame).then(
          (reply) => {
            const refused = reply.u32();
            for (let i = 0; i < refused; i++) {
              const index = reply.u32();
              outcome.rejected.push({ messageId: sent[index] ?? "", reason: reply.string() });
            }
          },
          (err: unknown) => {
            outcome.failed.push(...sent);
            outcome.error = errorText(err);
          },
        ),
      ),
    );
    return outcome;
  }

  /** Records channel names; resolves with the names that were not recorded. */
  async channels(names: readonly string[]): Promise<string[]> {
    const writer = new FrameWriter(64 + names.length * 64).u8(Op.CHANNELS).u32(0).u32(names.length);
    for (const name of names) writer.string(name);
    return this.request(writer.finish()).then(
      () => [],
      () => [...names], // bookkeeping only: the caller forgets them, and a later subscribe tries again
    );
  }

  /** One page of a channel's history; the cursor is the last item's key, as the DynamoDB index gives it. */
  async page(query: { channel: string; limit: number; ascending: boolean; startKey: HistoryCursor | undefined }): Promise<QueryPage> {
    const flags = (query.ascending ? PAGE_ASCENDING : 0) | (query.startKey ? PAGE_CURSOR : 0);
    const writer = new FrameWriter(128 + query.channel.length * 3).u8(Op.PAGE).u32(0).u8(flags).u32(query.limit).string(query.channel);
    if (query.startKey) writer.string(query.startKey.createdAt).string(query.startKey.messageId);
    const reply = await this.request(writer.finish());
    const items = JSON.parse(reply.bytes().toString("utf8")) as QueryPage["items"];
    if (reply.u8() === 0) return { items };
    const createdAt = reply.string();
    const messageId = reply.string();
    return { items, lastEvaluatedKey: { channelName: query.channel, messageId, createdAt } };
  }

  async close(): Promise<void> {
    this.closing = true;
    const connection = this.connection;
    this.connection = undefined;
    if (!connection || connection.closed) return;
    connection.fail(new Error("the store client is closed"));
    await new Promise<void>((resolve) => {
      connection.socket.once("close", () => resolve());
      connection.socket.end();
      // A store that does not answer the FIN must not hold the shutdown.
      setTimeout(() => connection.socket.destroy(), 1_000).unref();
    });
  }

  private connected(): Connection {
    if (this.connection && !this.connection.closed) return this.connection;
    const socket = connect({ host: this.endpoint.host, port: this.endpoint.port });
    this.connection = new Connection(socket, this.endpoint.secret, (connection, frame) => this.send(connection, frame));
    return this.connection;
  }

  private request(frame: Buffer): Promise<FrameReader> {
    if (this.closing) return Promise.reject(new Error("the store client is closed"));
    return this.send(this.connected(), frame);
  }

  private send(connection: Connection, frame: Buffer): Promise<FrameReader> {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    frame.writeUInt32LE(id, ID_OFFSET);
    if (connection.closed) return Promise.reject(new Error("the embedded store connection is closed"));
    return new Promise<FrameReader>((resolve, reject) => {
      const timer = setTimeout(() => {
        connection.pending.delete(id);
        reject(new Error(`the embedded store did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      connection.pending.set(id, { resolve, reject, timer });
      connection.socket.write(frame);
    });
  }
}

/** The content's JSON text, or why the message can never be stored. */
function unstorable(r: StoredMessage): { content: string } | string {
  let content: string | undefined;
  try {
    content = JSON.stringify(r.content);
  } catch (err) {
    return `content is not JSON: ${(err as Error).message}`;
  }
  if (content === undefined) return "content is not JSON";
  if (content.length * 3 > FRAME_MAX_BYTES - 65_536 && Buffer.byteLength(content) > FRAME_MAX_BYTES - 65_536) {
    return `content is larger than the embedded store's limit (${FRAME_MAX_BYTES - 65_536} bytes)`;
  }
  if (LONE_SURROGATE.test(r.channelName) || LONE_SURROGATE.test(r.createdAt) || LONE_SURROGATE.test(r.messageId)) {
    return "channelName, createdAt or messageId holds a lone UTF-16 surrogate";
  }
  return { content };
}
