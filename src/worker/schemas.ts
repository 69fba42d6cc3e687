import { z } from "zod";

/**
 * Runtime checks for every client event argument; handler types are inferred from these.
 * Limits come from configuration, so the schemas are built once per worker.
 */
export interface SchemaLimits {
  channelNameMaxLength: number;
  messageMaxBytes: number;
}

/** Letters, digits, punctuation, symbols and the plain space; no control or invisible characters. */
const CHANNEL_CHARS = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]+$/u;

/** Longest presence info key, in characters. */
export const PRESENCE_KEY_MAX_LENGTH = 128;
export const HISTORY_LIMIT_MAX = 100;
export const HISTORY_LIMIT_DEFAULT = 50;

export function buildSchemas(limits: SchemaLimits) {
  const channelName = z
    .string({ error: "channelName must be a string" })
    .min(1, "channelName must not be empty")
    .max(limits.channelNameMaxLength, `channelName is longer than ${limits.channelNameMaxLength} characters`)
    .regex(CHANNEL_CHARS, "channelName holds characters that are not allowed");

  // A flat object of scalars; its size and field count are checked by the handler (with their own codes).
  const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
  const presenceInfo = z.record(
    z.string().min(1).max(PRESENCE_KEY_MAX_LENGTH).refine((k) => k !== "socketId", "socketId is set by the server"),
    scalar,
  );

  const historyArgs = z.object({
    limit: z.preprocess(
      (v) => (v === undefined || v === null ? HISTORY_LIMIT_DEFAULT : v),
      z.number().int().min(1).max(HISTORY_LIMIT_MAX),
    ),
    sortDirection: z.preprocess(
      (v) => (v === undefined || v === null ? "ascending" : v),
      z.enum(["ascending", "descending"]),
    ),
    lastEvaluatedKey: z.unknown(),
  });

  return { channelName, presenceInfo, historyArgs };
}

export type Schemas = ReturnType<typeof buildSchemas>;
export type PresenceInfo = z.infer<Schemas["presenceInfo"]>;

/**
 * Returns the content's JSON size in bytes, or an error string when it is not a JSON value
 * (binary attachments, undefined). The size is measured on the serialised form.
 */
export function measureContent(content: unknown): { bytes: number } | { error: string } {
  if (content === undefined) return { error: "content is missing" };
  const problem = findNonJson(content, 0);
  if (problem) return { error: problem };
  const json = JSON.stringify(content);
  return { bytes: Buffer.byteLength(json, "utf8") };
}

export const CONTENT_MAX_DEPTH = 32;

function findNonJson(value: unknown, depth: number): string | undefined {
  if (value === null || typeof value !== "object") return undefined;
  // Bounded so that a deeply nested payload cannot exhaust the stack of a handler.
  if (depth >= CONTENT_MAX_DEPTH) return `content is nested deeper than ${CONTENT_MAX_DEPTH} levels`;
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return "content must be a JSON value, not binary";
  }
  for (const inner of Object.values(value)) {
    const problem = findNonJson(inner, depth + 1);
    if (problem) return problem;
  }
  return undefined;
}
