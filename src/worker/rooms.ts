/**
 * Internal room names. Every room the server creates is prefixed, so a channel name can never
 * reach a presence room or a socket's own room (socket ids carry no prefix and no colon).
 */
export const channelRoom = (channel: string): string => `ch:${channel}`;
export const presenceRoom = (channel: string): string => `pr:${channel}`;
export const messageEvent = (channel: string) => `message:receive:${channel}` as const;
export const presenceEvent = <K extends "join" | "update" | "leave">(channel: string, kind: K) =>
  `presence:${channel}:${kind}` as const;

/** Whether a room is a socket's own (its id): every room the server makes has a prefix with a colon. */
export const isSocketRoom = (room: string): boolean => !room.includes(":");
