import type { Server, Socket } from "socket.io";
import type { Config } from "../../shared/config.js";
import type { ClientToServerEvents, InterServerEvents, ServerToClientEvents, SocketData } from "../../shared/contract.js";
import type { Logger } from "../../shared/logger.js";
import type { Schemas } from "../schemas.js";
import type { PresenceStore } from "../presence/store.js";
import type { PersistenceSink, HistoryReader } from "../../persistence/sink.js";
import type { Evictions } from "../adapter/evictions.js";
import type { BroadcastReceipt } from "../adapter/broadcast-receipt.js";
import type { OwedAcks } from "./owed-acks.js";

export type AppServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type AppSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

/** `io.to(room).emit(event, data)` that says what became of the broadcast (see BroadcastReceipt). */
export type ChannelPublisher = (room: string, event: string, data: unknown) => BroadcastReceipt;

/** What every handler needs, built once per worker. */
export interface HandlerContext {
  io: AppServer;
  config: Config;
  log: Logger;
  schemas: Schemas;
  presence: PresenceStore;
  /** Sockets closed because a newer connection took their session: not a departure. */
  evictions: Evictions;
  sink: PersistenceSink;
  history: HistoryReader;
  /** Broadcasts a channel message and says what became of it (for an honest publish ack). */
  publish: ChannelPublisher;
  /** Publish acks still to send; a draining worker sends them before it closes its sockets. */
  owedAcks: OwedAcks;
}
