import pino, { type Logger } from "pino";

export type { Logger };

/** The root logger; components take `logger.child({ component })`. Tokens and keys are redacted. */
export function createLogger(level: string, base: Record<string, unknown>): Logger {
  return pino({
    level,
    base: { pid: process.pid, ...base },
    redact: {
      paths: ["token", "*.token", "auth", "*.auth", "apiKey", "*.apiKey", "authorization", "*.authorization"],
      censor: "[redacted]",
    },
  });
}
