/**
 * The catalogue of error codes a client can branch on. Messages are for humans, codes for machines.
 * The README lists each with its meaning.
 */
export const ErrorCode = {
  /** An event argument has the wrong type, shape or size. */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  /** A channel name is empty, too long or holds characters that are not allowed. */
  INVALID_CHANNEL: "INVALID_CHANNEL",
  /** Published content is larger than MESSAGE_MAX_BYTES once serialised. */
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  /** The server is at a bound (queue full) and refused the work; retry later. */
  OVERLOADED: "OVERLOADED",
  /** This connection sent more events than CLIENT_RATE_LIMIT_PER_SEC allows; the event was dropped. */
  RATE_LIMITED: "RATE_LIMITED",
  /** The operation needs a state the socket is not in (e.g. update without enter). */
  NOT_A_MEMBER: "NOT_A_MEMBER",
  /** A bounded collection is full (members per channel, channels per member, ...). */
  LIMIT_EXCEEDED: "LIMIT_EXCEEDED",
  /** A backing store failed; the operation may be retried. */
  STORE_UNAVAILABLE: "STORE_UNAVAILABLE",
  /** A backend closed this connection through the server API (`disconnect`); sent in cerebellum:disconnecting. */
  DISCONNECTED: "DISCONNECTED",
  /** Unexpected failure inside the server. */
  INTERNAL: "INTERNAL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes carried in `err.data.code` of a rejected connection (its message is always "Authentication error"). */
export const AuthErrorCode = {
  TOKEN_MISSING: "TOKEN_MISSING",
  TOKEN_MALFORMED: "TOKEN_MALFORMED",
  TOKEN_INVALID_SIGNATURE: "TOKEN_INVALID_SIGNATURE",
  TOKEN_ALGORITHM_NOT_ALLOWED: "TOKEN_ALGORITHM_NOT_ALLOWED",
  TOKEN_EXPIRED: "TOKEN_EXPIRED",
  TOKEN_NOT_YET_VALID: "TOKEN_NOT_YET_VALID",
  TOKEN_EXP_REQUIRED: "TOKEN_EXP_REQUIRED",
  SERVER_BUSY: "SERVER_BUSY",
} as const;
export type AuthErrorCode = (typeof AuthErrorCode)[keyof typeof AuthErrorCode];

/** The exact message the SDK compares byte for byte. */
export const AUTH_ERROR_MESSAGE = "Authentication error";
