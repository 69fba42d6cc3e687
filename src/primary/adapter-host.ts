import type { Worker } from "node:cluster";
import { MessageType } from "socket.io-adapter";
import {
  ADAPTER_SOURCE,
  isLoggedBroadcast,
  parseOffset,
  type AdapterDownMessage,
  type AdapterUpMessage,
  type RestoredSession,
} from "../shared/adapter-ipc.js";
import { WELCOME_EVENT } from "../shared/contract.js";
import { assertNever } from "../shared/ipc.js";
import type { Logger } from "../shared/logger.js";
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

interface HeldRestore {
  origin: string;
  n: number;
  timer: NodeJS.Timeout;
  run: () => void;
}

/**
 * The primary's side of the embedded adapter: relays cluster messages between workers,
 * sequences and logs every broadcast, and keeps the host's recovery sessions.
 */
export class AdapterHost {
  /** Which worker each adapter uid lives in, to route responses to their requester. */
  private readonly uidOwner = new Map<string, number>();
  /** Per publishing tag (`Position.origin`): its worker and the highest count logged so far. */
  private readonly origins = new Map<string, { worker: number; n: number }>();
  private readonly held = new Set<HeldRestore>();
  private readonly trimTimer: NodeJS.Timeout;

  constructor(
    private readonly supervisor: Supervisor,
    readonly log: ReplayLog,
    readonly sessions: SessionTable,
    private readonly logger: Logger,
  ) {
    supervisor.on("adapter", (worker, message) => this.onMessage(worker, message));
    supervisor.on("exit", (workerId) => {
      const count = this.sessions.ownerDied(workerId, Date.now());
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
    for (const h of this.held) clearTimeout(h.timer);
    this.held.clear();
  }

  private send(worker: Worker, message: AdapterDownMessage): void {
    sendTo(worker, message);
  }

  private relay(from: Worker, message: AdapterDownMessage): void {
    for (const worker of this.supervisor.connectedWorkers()) if (worker !== from) this.send(worker, message);
  }

  private onMessage(worker: Worker, message: AdapterUpMessage): void {
    const now = Date.now();
    switch (message.t) {
      case "pub": {
        const msg = message.msg;
        this.uidOwner.set(msg.uid, worker.id);
        if (message.id === undefined || msg.type !== MessageType.BROADCAST) {
          this.relay(worker, { source: ADAPTER_SOURCE, t: "msg", msg });
          break;
        }
        const packet = msg.data.packet as { type?: number; id?: number; data?: unknown[] };
        const loggable = isLoggedBroadcast(packet, msg.data.opts.flags);
        const from = loggable && message.origin !== undefined && message.n !== undefined ? { origin: message.origin, n: message.n } : undefined;
        // A connection's welcome (its own room, never relayed) is sequenced but not kept.
        const offset = !loggable
          ? ""
          : !message.relay && packet.data![0] === WELCOME_EVENT
            ? this.log.appendMarker(now, from)
            : this.log.append(packet.data!, msg.data.opts.rooms, msg.data.opts.except, message.bytes ?? 0, now, from);
        // Relay before answering the origin: every worker sees the broadcasts in offset order.
        if (message.relay) this.relay(worker, { source: ADAPTER_SOURCE, t: "msg", msg, offset });
        this.send(worker, { source: ADAPTER_SOURCE, t: "offset", id: message.id, offset });
        if (from) {
          const known = this.origins.get(from.origin);
          if (known) known.n = from.n;
          else this.origins.set(from.origin, { worker: worker.id, n: from.n });
          if (this.held.size > 0) this.release(from.origin, from.n);
        }
        break;
      }
      case "res": {
        const owner = this.uidOwner.get(message.to);
        const target = owner === undefined ? undefined : this.supervisor.connectedWorkers().find((w) => w.id === owner);
        if (target) this.send(target, { source: ADAPTER_SOURCE, t: "res", msg: message.msg });
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
      case "restore": {
        const answer = () => {
          if (!worker.isConnected()) return; // its sessions stay where they were
          this.send(worker, {
            source: ADAPTER_SOURCE,
            t: "restored",
            id: message.id,
            session: this.restore(worker, message.pid, message.offset, Date.now()),
            upTo: this.log.lastOffset,
          });
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
      if (holder) this.send(holder, { source: ADAPTER_SOURCE, t: "evict", sid: taken.record.sid });
    }
    this.logger.debug({ sid: taken.record.sid, offset, missed: missedPackets.length, upTo: this.log.lastOffset, worker: worker.id }, "session restored");
    return { ...taken.record, missedPackets };
  }
}
