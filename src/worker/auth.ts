import type { ExtendedError } from "socket.io";
import { AUTH_ERROR_MESSAGE, type AuthErrorCode } from "../shared/errors.js";
import type { VerifyResult } from "./jwt-verify.js";
import type { Logger } from "../shared/logger.js";
import type { AppServer, AppSocket } from "./handlers/context.js";
import type { JwtVerifier } from "./jwt-verifier.js";

function authError(code: AuthErrorCode): ExtendedError {
  const err: ExtendedError = new Error(AUTH_ERROR_MESSAGE);
  err.data = { code };
  return err;
}

/**
 * Authenticates the CONNECT packet's `auth.token` before the connection exists. A query-string
 * token is not looked at. Tokens are never logged.
 */
export function installAuth(io: AppServer, verifier: JwtVerifier, log: Logger): void {
  io.use((socket: AppSocket, next) => {
    const auth: unknown = socket.handshake.auth;
    const token = typeof auth === "object" && auth !== null ? (auth as { token?: unknown }).token : undefined;
    const done = (result: VerifyResult) => {
      if (result.ok) {
        if (result.subject !== undefined) socket.data.subject = result.subject;
        next();
      } else {
        log.debug({ code: result.code, address: socket.handshake.address }, "connection refused");
        next(authError(result.code));
      }
    };
    const result = verifier.verify(token);
    if (result instanceof Promise) void result.then(done);
    else done(result);
  });
}
