import type { Worker } from "node:cluster";
import { MessageType, type ClusterMessage } from "socket.io-adapter";
import {
  parseOffset,
  type AdapterDownMessage,
  type AdapterUpMessage,
  type RestoredSession,
} from "../shared/adapter-ipc.js";
import { AdapterOutbox } from "../shared/adapter-outbox.js";
import { assertNever } from "../shared/ipc.js";
import type { Logger } from "../shared/logger.js";
import { InterestTable } from "./interest-table.js";
import type { ReplayLog } from "./replay-log.js";
import type { SessionTable } from "./session-table.js";
import { sendTo, type Supervisor } from "./supervisor.js";

/**
 * How long a restore waits for broadcasts its offset says the client has, but that have not
 * reached the primary yet (they are on their way from another worker's IPC channel).
 */
const ORIGIN_WAIT_MS = 2000;
/** At most this many restores wait so at once; past it they are answered at once (a duplicate at worst). */
const MAX_HELD = 10_000;

const NO_WORKERS: ReadonlySet<number> = new Set();

/**
 * How long a worker may go without hearing how far its own broadcasts have been sequenced, when
 * nothing else is sent to it meanwhile. It only needs that to keep the offsets it stamps close to
 * the log's head (a restore replays from there); a `seen` per broadcast would cost the publishing
 * worker a wakeup and a read each.
 */
export const SEEN_DELAY_MS = 50;

interface HeldRestore {
  origin: string;
  n: number;
  timer: NodeJS.Timeout;
  run: () => void;
}

/**
 * The primary's side of the embedded adapter: relays cluster messages between workers (a
 * broadcast only to the workers with a member in its rooms), sequences and logs every broadcast,
 * and keeps the host's recovery sessions.
 */
export class AdapterHost {
  /** Which worker each adapter uid lives in, to route responses to their requester. */
  private readonly uidOwner = new Map<string, number>();
  /** Per publishing tag (`Position.origin`): its worker and the highest count logged so far. */
  private readonly origins = new Map<string, { worker: number; n: number }>();
  private readonly held = new Set<HeldRestore>();
  private readonly trimTimer: NodeJS.Timeout;
  /** Which workers have members in which rooms: where a broadcast is relayed. */
  readonly interest = new InterestTable();
  /** The workers that have written to the adapter, by id (routing targets). */
  private readonly workers = new Map<number, Worker>();
  /** Each worker's messages of this event-loop turn, sent as one batch. */
  private readonly outboxes = new Map<number, { worker: Worker; outbox: AdapterOutbox<AdapterDownMessage> }>();
  /** Per worker: its latest own broadcast sequenced without an answer, not told of yet (`seen`). */
  private readonly unseen = new Map<number, { worker: Worker; seen: AdapterDownMessage }>();
  private seenTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly supervisor: Supervisor,
    readonly log: ReplayLog,
    readonly sessions: SessionTable,
    private readonly logger: Logger,
  ) {
    supervisor.on("adapter", (worker, message) => this.onMessage(worker, message));
    supervisor.on("exit", (workerId) => {
      const count = this.sessions.ownerDied(workerId, Date.now());
      this.interest.workerLeft(workerId);
      this.workers.delete(workerId);
      this.outboxes.get(workerId)?.outbox.clear();
      this.outboxes.delete(workerId);
      this.unseen.delete(workerId);
      for (const [uid, owner] of this.uidOwner) if (owner === workerId) this.uidOwner.delete(uid);
      // What a dead worker had not sent will never come: restores waiting on it go ahead.
      for (const [origin, o] of this.origins) {
        if (o.worker !== workerId) continue;
        this.origins.delete(origin);
        this.release(origin, Number.POSITIVE_INFINITY);
      }
      if (count > 0) this.logger.info({ worker: workerId, sessions: count }, "kept a dead worker's sessions for recovery");
    });
    // Age bounds apply even when nothing is published or restored.
    this.trimTimer = setInterval(() => {
      const now = Date.now();
      this.log.trim(now);
      this.sessions.trim(now);
    }, 1000);
    this.trimTimer.unref();
  }

  close(): void {
    clearInterval(this.trimTimer);
    clearTimeout(this.seenTimer);
    this.unseen.clear();
    for (const h of this.held) clearTimeout(h.timer);
    this.held.clear();
    for (const { outbox } of this.outboxes.values()) outbox.clear();
  }

  /** Sends what every worker's outbox holds now (tests; the outboxes flush by themselves). */
  flush(): void {
    for (const { outbox } of this.outboxes.values()) outbox.flush();
  }

  private send(worker: Worker, message: AdapterDownMessage): void {
    // Anything for the worker carries its pending `seen` along, ahead of it (order kept).
    const unseen = this.unseen.get(worker.id);
    if (unseen) {
      this.unseen.delete(worker.id);
      this.push(worker, unseen.seen);
    }
    this.push(worker, message);
  }

  private push(worker: Worker, message: AdapterDownMessage): void {
    let entry = this.outboxes.get(worker.id);
    if (!entry || entry.worker !== worker) {
      const outbox = new AdapterOutbox<AdapterDownMessage>(
        (batch) => sendTo(worker, batch),
        (dropped, err) => this.logger.error({ err, t: dropped.t, worker: worker.id }, "adapter message to a worker could not be sent"),
      );
      this.outboxes.set(worker.id, (entry = { worker, outbox }));
    }
    entry.outbox.push(message);
  }

  /** To every other worker: cluster messages other than plain broadcasts, and broadcasts to all sockets. */
  private relay(from: Worker, message: AdapterDownMessage): void {
    for (const worker of this.supervisor.connectedWorkers()) if (worker !== from) this.send(worker, message);
  }

  /** A broadcast to rooms: to the other workers with a member in one of them (or holding the socket a room names). */
  private relayToRooms(from: Worker, rooms: readonly string[], message: AdapterDownMessage): void {
    if (rooms.length === 1) {
      // The usual case, per broadcast: no set to build.
      const room = rooms[0]!;
      for (const id of this.interest.workersOf(room) ?? NO_WORKERS) this.relayTo(id, from, message);
      // A socket's own room is not reported as interest (every socket has one): its session says where it is.
      const owner = this.sessions.ownerOf(room);
      if (owner !== undefined && !this.interest.has(owner, room)) this.relayTo(owner, from, message);
      return;
    }
    const targets = new Set<number>();
    for (const room of rooms) {
      for (const id of this.interest.workersOf(room) ?? NO_WORKERS) targets.add(id);
      const owner = this.sessions.ownerOf(room);
      if (owner !== undefined) targets.add(owner);
    }
    for (const id of targets) this.relayTo(id, from, message);
  }

  /** To worker `id` unless it is the publisher or gone. Every worker that has rooms or sockets has written here, so it is known. */
  private relayTo(id: number, from: Worker, message: AdapterDownMessage): void {
    if (id === from.id) return;
    const worker = this.workers.get(id);
    if (worker?.isConnected()) this.send(worker, message);
  }

  /** Relays a published cluster message to the workers it concerns. */
  private route(from: Worker, msg: ClusterMessage, message: AdapterDownMessage): void {
    // Other types (joins, fetches, acks, heartbeats) expect an answer or a count from every worker.
    if (msg.type === MessageType.BROADCAST && msg.data.opts.rooms.length > 0) this.relayToRooms(from, msg.data.opts.rooms, message);
    else this.relay(from, message);
  }

  private onMessage(worker: Worker, message: AdapterUpMessage): void {
    const now = Date.now();
    if (this.workers.get(worker.id) !== worker) this.workers.set(worker.id, worker);
    switch (message.t) {
      case "pub": {
        // Not sequenced: a cluster message other than a broadcast, or a volatile broadcast or
        // one with acks (sequenced broadcasts come as `bc`).
        const msg = message.msg;
        this.uidOwner.set(msg.uid, worker.id);
        this.route(worker, msg, { t: "msg", msg });
        if (message.id !== undefined) this.send(worker, { t: "offset", id: message.id, offset: "" });
        break;
      }
      case "bc": {
        this.uidOwner.set(message.uid, worker.id);
        const { uid, nsp, rooms, except, flags, d, origin, n } = message;
        // A connection's welcome (its own room, never relayed) is sequenced but not kept.
        const offset = d === undefined ? this.log.appendMarker(now, { origin, n }) : this.log.appendJson(d, rooms, except, d.length, now, { origin, n });
        // Relay before answering the origin: every worker sees the broadcasts in offset order.
        if (message.relay && d !== undefined) {
          const down: AdapterDownMessage = { t: "bc", uid, nsp, rooms, except, d, offset };
          if (flags) down.flags = flags;
          if (rooms.length > 0) this.relayToRooms(worker, rooms, down);
          else this.relay(worker, down);
        }
        if (message.id !== undefined) this.send(worker, { t: "offset", id: message.id, offset });
        else this.noteSeen(worker, n, offset);
        const known = this.origins.get(origin);
        if (known) known.n = n;
        else this.origins.set(origin, { worker: worker.id, n });
        if (this.held.size > 0) this.release(origin, n);
        break;
      }
      case "res": {
        const owner = this.uidOwner.get(message.to);
        const target = owner === undefined ? undefined : this.supervisor.connectedWorkers().find((w) => w.id === owner);
        if (target) this.send(target, { t: "res", msg: message.msg });
        break;
      }
      case "open":
        this.sessions.open(worker.id, message.session);
        break;
      case "rooms":
        this.sessions.rooms(worker.id, message.sid, message.add, message.del);
        break;
      case "closed":
        this.sessions.closed(worker.id, message.session, now);
        break;
      case "gone":
        this.sessions.gone(worker.id, message.sid);
        break;
      case "interest":
        if (message.add) this.interest.add(worker.id, message.add);
        if (message.del) this.interest.del(worker.id, message.del, message.pin ?? 0);
        if (message.id !== undefined) this.send(worker, { t: "interested", id: message.id });
        break;
      case "restore": {
        const answer = () => {
          if (!worker.isConnected()) return; // its sessions stay where they were
          const session = this.restore(worker, message.pid, message.offset, Date.now());
          // Broadcasts sequenced from now on reach the restored socket, joined or not yet.
          const pin = session ? this.interest.pin(worker.id, session.rooms.filter((r) => r !== session.sid)) : undefined;
          this.send(worker, { t: "restored", id: message.id, session, upTo: this.log.lastOffset, pin });
        };
        // The client may have had broadcasts its worker delivered before the primary got them
        // (Position): wait for them, or they would reach it again as live relays.
        const at = parseOffset(message.offset);
        const known = at?.origin === undefined ? undefined : this.origins.get(at.origin);
        if (at?.origin === undefined || !known || known.n >= at.n! || this.held.size >= MAX_HELD) answer();
        else this.hold(at.origin, at.n!, answer);
        break;
      }
      default:
        assertNever(message);
    }
  }

  /** Tells `worker` of its own broadcasts sequenced up to `n` with its next message, or after SEEN_DELAY_MS. */
  private noteSeen(worker: Worker, n: number, offset: string): void {
    this.unseen.set(worker.id, { worker, seen: { t: "seen", n, offset } });
    this.seenTimer ??= setTimeout(this.flushSeen, SEEN_DELAY_MS);
  }

  private readonly flushSeen = (): void => {
    this.seenTimer = undefined;
    for (const { worker, seen } of this.unseen.values()) if (worker.isConnected()) this.push(worker, seen);
    this.unseen.clear();
  };

  private hold(origin: string, n: number, run: () => void): void {
    const held: HeldRestore = {
      origin,
      n,
      run,
      timer: setTimeout(() => {
        this.held.delete(held);
        this.logger.warn({ origin, n }, "restore went ahead without broadcasts its offset names");
        run();
      }, ORIGIN_WAIT_MS),
    };
    this.held.add(held);
  }

  /** Runs the held restores of `origin` whose broadcasts up to their count have now arrived. */
  private release(origin: string, upTo: number): void {
    for (const h of this.held) {
      if (h.origin !== origin || h.n > upTo) continue;
      clearTimeout(h.timer);
      this.held.delete(h);
      h.run();
    }
  }

  private restore(worker: Worker, pid: string, offset: string, now: number): RestoredSession | null {
    const taken = this.sessions.take(pid, worker.id, now);
    if (!taken) return null;
    const missedPackets = this.log.since(offset, taken.record.rooms);
    if (!missedPackets) {
      // The log no longer covers the gap: fail whole; the client starts a new, authenticated session.
      this.sessions.delete(taken.record.sid);
      return null;
    }
    if (taken.previousOwner !== undefined) {
      // Half-open: the old connection still looks alive to its worker. Close it now rather than
      // after the ping timeout; its worker no longer owns the session, so its reports are ignored.
      const holder = this.supervisor.connectedWorkers().find((w) => w.id === taken.previousOwner);
      if (holder) this.send(holder, { t: "evict", sid: taken.record.sid });
    }
    this.logger.debug({ sid: taken.record.sid, offset, missed: missedPackets.length, upTo: this.log.lastOffset, worker: worker.id }, "session restored");
    return { ...taken.record, missedPackets };
  }
}
