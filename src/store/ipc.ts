import { IPC_SOURCE } from "../shared/ipc.js";

/** Messages between the primary and its embedded store process, tagged like the workers' IPC. */
export type ToStore =
  | {
      source: typeof IPC_SOURCE;
      type: "store:start";
      /** Directory of the store's LevelDB. */
      path: string;
      /** Directory of the dynalite-based store of earlier versions, migrated at start when present. */
      legacyPath: string;
      /** Loopback port (0: any free port). */
      port: number;
      /** Clients must present it in their hello. */
      secret: string;
      /** fsync each write before answering it (the product always does; the benchmark measures both). */
      sync: boolean;
      logLevel: string;
      /** Table names of the legacy store to migrate. */
      tables: { messages: string; channels: string };
    }
  | { source: typeof IPC_SOURCE; type: "store:stop" };

export type FromStore =
  | { source: typeof IPC_SOURCE; type: "store:ready"; port: number }
  /** Still starting (a migration under way): the primary's start deadline begins again. */
  | { source: typeof IPC_SOURCE; type: "store:progress"; messages: number; channels: number }
  | { source: typeof IPC_SOURCE; type: "store:failed"; error: string };

function tagged(value: unknown): value is { source: string; type: string } {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { source?: unknown }).source === IPC_SOURCE &&
    typeof (value as { type?: unknown }).type === "string"
  );
}

export const isToStore = (value: unknown): value is ToStore =>
  tagged(value) && (value.type === "store:start" || value.type === "store:stop");

export const isFromStore = (value: unknown): value is FromStore =>
  tagged(value) && (value.type === "store:ready" || value.type === "store:progress" || value.type === "store:failed");
