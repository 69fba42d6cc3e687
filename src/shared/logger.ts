import pino, { type DestinationStream, type Logger } from "pino";
import pretty from "pino-pretty";
import type { LogFormat } from "./config.js";

export type { Logger };

/** One line per entry: time, level, where it comes from (role, worker, component), message, then the other fields. */
function prettyStream(): DestinationStream {
  return pretty({
    sync: true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname,role,worker,component",
    messageFormat: "{role}{if worker} {worker}{end}{if component} {component}{end}: {msg}",
    singleLine: true,
  });
}

/**
 * The root logger; components take `logger.child({ component })`. Tokens and keys are redacted.
 * `format` is the configuration's LOG_FORMAT as resolved at start (`json` unless a person reads it).
 */
export function createLogger(level: string, base: Record<string, unknown>, format: LogFormat = "json"): Logger {
  const options = {
    level,
    base: { pid: process.pid, ...base },
    redact: {
      paths: ["token", "*.token", "auth", "*.auth", "apiKey", "*.apiKey", "authorization", "*.authorization"],
      censor: "[redacted]",
    },
  };
  return format === "pretty" ? pino(options, prettyStream()) : pino(options);
}
