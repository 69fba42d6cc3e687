/**
 * Entry point of a generator process forked by the coordinator (`--procs K`). It takes its share
 * from the first message, reports over IPC, and exits when its share is done or the parent goes.
 */
import { Shard, type ParentCommand, type ShardInit, type ShardReport } from "./shard.js";

function isInit(message: unknown): message is { type: "init"; init: ShardInit } {
  return typeof message === "object" && message !== null && (message as { type?: unknown }).type === "init";
}

let shard: Shard | undefined;
const send = (report: ShardReport) => {
  if (process.connected) process.send?.(report);
};

process.on("message", (message: unknown) => {
  if (isInit(message)) {
    if (shard) return;
    shard = new Shard(message.init, send);
    void shard.start().then(() => {
      // The parent reads the last report before it sees the exit.
      process.disconnect?.();
      setTimeout(() => process.exit(0), 200).unref();
    });
    return;
  }
  shard?.handle(message as ParentCommand);
});
// The parent is gone (killed, or Ctrl-C reached it first): stop at once.
process.on("disconnect", () => {
  shard?.handle({ type: "stop" });
  setTimeout(() => process.exit(0), 2000).unref();
});
// Ctrl-C reaches the whole process group: the parent decides, this process waits for its "stop".
process.on("SIGINT", () => undefined);
