/**
 * Engine.IO 4 / Socket.IO 5 text framing, the part the raw engine needs (default namespace only).
 * An Engine.IO packet is one character of type then its data; a Socket.IO packet rides in an
 * Engine.IO "message" (4): one character of type, an optional ack id, then JSON.
 *
 *   0{...}  open           2 ping -> 3 pong     1 close
 *   40{...} CONNECT        41 DISCONNECT        42["event",...] EVENT (42<id>[...] wants an ack)
 *   43<id>[...] ACK        44{...} CONNECT_ERROR
 */

export const EIO_OPEN = 0x30; // '0'
export const EIO_CLOSE = 0x31; // '1'
export const EIO_PING = 0x32; // '2'
export const EIO_MESSAGE = 0x34; // '4'
export const SIO_CONNECT = 0x30;
export const SIO_DISCONNECT = 0x31;
export const SIO_EVENT = 0x32;
export const SIO_ACK = 0x33;
export const SIO_CONNECT_ERROR = 0x34;

export interface SocketPacket {
  type: number;
  id: number | undefined;
  data: unknown;
}

/** Decodes the Socket.IO packet inside an Engine.IO message (the text after the leading '4'). */
export function decodeSocketPacket(text: string): SocketPacket {
  const type = text.charCodeAt(0);
  let i = 1;
  // A namespace other than "/" would follow as "/nsp,": the load generator only uses "/".
  let id: number | undefined;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    id = (id ?? 0) * 10 + (c - 0x30);
    i++;
  }
  const body = text.slice(i);
  return { type, id, data: body.length > 0 ? JSON.parse(body) : undefined };
}

/** `42["event",...args]`, or `42<id>[...]` when an ack is wanted. */
export function encodeEvent(event: string, args: readonly unknown[], ackId?: number): string {
  return `42${ackId ?? ""}${JSON.stringify([event, ...args])}`;
}

/** `40{auth}`: the CONNECT packet with the auth payload (token, and pid/offset to recover). */
export function encodeConnect(auth: Record<string, unknown>): string {
  return `40${JSON.stringify(auth)}`;
}

const RECEIVE_PREFIX = Buffer.from('42["message:receive:');
const CONTENT_P = Buffer.from('"content":{"p":');
const S_KEY = Buffer.from(',"s":');
const T_KEY = Buffer.from(',"t":');

/** True when the frame is a `message:receive:*` event (no ack id). */
export function isReceiveFrame(frame: Buffer): boolean {
  return frame.length > RECEIVE_PREFIX.length && frame.compare(RECEIVE_PREFIX, 0, RECEIVE_PREFIX.length, 0, RECEIVE_PREFIX.length) === 0;
}

function matchAt(frame: Buffer, at: number, what: Buffer): boolean {
  return at + what.length <= frame.length && frame.compare(what, 0, what.length, at, at + what.length) === 0;
}

/** Reads a non-negative decimal number at `at`; returns [value, next index] or undefined. */
function readNumber(frame: Buffer, at: number): [number, number] | undefined {
  let i = at;
  let int = 0;
  let digits = 0;
  while (i < frame.length) {
    const c = frame[i]!;
    if (c < 0x30 || c > 0x39) break;
    int = int * 10 + (c - 0x30);
    i++;
    digits++;
  }
  if (digits === 0) return undefined;
  if (frame[i] !== 0x2e) return [int, i]; // no '.'
  i++;
  let frac = 0;
  let scale = 1;
  while (i < frame.length) {
    const c = frame[i]!;
    if (c < 0x30 || c > 0x39) break;
    frac = frac * 10 + (c - 0x30);
    scale *= 10;
    i++;
  }
  if (frame[i] === 0x65 || frame[i] === 0x45) return undefined; // exponent: leave it to JSON.parse
  return [int + frac / scale, i];
}

/**
 * The probe fields of a delivered message, read straight from the frame's bytes without decoding
 * the JSON (the hot path: one call per delivery). Undefined when the content is not a probe in
 * the generator's own key order; the caller then falls back to JSON.parse.
 */
export function readProbe(frame: Buffer): { p: number; s: number; t: number } | undefined {
  const at = frame.indexOf(CONTENT_P, RECEIVE_PREFIX.length);
  if (at < 0) return undefined;
  const p = readNumber(frame, at + CONTENT_P.length);
  if (!p || !matchAt(frame, p[1], S_KEY)) return undefined;
  const s = readNumber(frame, p[1] + S_KEY.length);
  if (!s || !matchAt(frame, s[1], T_KEY)) return undefined;
  const t = readNumber(frame, s[1] + T_KEY.length);
  if (!t) return undefined;
  return { p: p[0], s: s[0], t: t[0] };
}

/**
 * The recovery offset Socket.IO appends as the last argument of a broadcast (`...,"<offset>"]`),
 * or undefined when the last argument is not a string. Offsets hold no quotes or escapes.
 */
export function trailingOffset(frame: Buffer): string | undefined {
  const end = frame.length - 2;
  if (end < 2 || frame[end + 1] !== 0x5d || frame[end] !== 0x22) return undefined; // `"]`
  const open = frame.lastIndexOf(0x22, end - 1);
  if (open < 1 || frame[open - 1] !== 0x2c) return undefined; // `,"`
  for (let i = open + 1; i < end; i++) if (frame[i] === 0x5c) return undefined; // an escape: not an offset
  return frame.toString("latin1", open + 1, end);
}
