import { io, type Socket, type ManagerOptions, type SocketOptions } from "socket.io-client";

export type ClientOptions = Partial<ManagerOptions & SocketOptions>;

const open = new Set<Socket>();

/** Connects like an app would; resolves on `connect`, rejects with the `connect_error`. */
export function connect(url: string, token: string | undefined, options: ClientOptions = {}): Promise<Socket> {
  const socket = io(url, {
    auth: token === undefined ? {} : { token },
    reconnection: false,
    forceNew: true,
    timeout: 10_000,
    ...options,
  });
  open.add(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      open.delete(socket);
      reject(err);
    });
  });
}

/** Emits and resolves with the ack. */
export function request<T = { success: boolean; error?: string }>(
  socket: Socket,
  event: string,
  ...args: unknown[]
): Promise<T> {
  return socket.timeout(10_000).emitWithAck(event, ...args) as Promise<T>;
}

/** Resolves with the next payload of an event. */
export function nextEvent<T = unknown>(socket: Socket, event: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    socket.once(event, (payload: T) => {
      clearTimeout(timer);
      resolve(payload);
    });
  });
}

export function closeAllClients(): void {
  for (const socket of open) socket.close();
  open.clear();
}
