import { IPC_SOURCE } from "../shared/ipc.js";

/** Messages between the primary and its embedded store process, tagged like the workers' IPC. */
export type ToStore =
  | {
      source: typeof IPC_SOURCE;
      type: "store:start";
      /** Directory of the LevelDB files. */
      path: string;
      port: number;
      logLevel: string;
      tables: { messages: string; channels: string };
    }
  | { source: typeof IPC_SOURCE; type: "store:stop" };

export type FromStore =
  | { source: typeof IPC_SOURCE; type: "store:ready"; port: number; createdTables: string[] }
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
  tagged(value) && (value.type === "store:ready" || value.type === "store:failed");
