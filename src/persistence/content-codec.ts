import type { AttributeValue } from "@aws-sdk/client-dynamodb";

/**
 * How `content` is kept in DynamoDB so that it round-trips exactly.
 *
 * Native DynamoDB types where they are lossless (S, N, BOOL, NULL, L, M), so that existing
 * tooling reading `content` sees the value itself. Two additions make that exact:
 *
 * - DynamoDB maps do not keep key order (DynamoDB Local returns `{d, c}` for `{c, d}`), and key
 *   order is observable in JavaScript (JSON.stringify, Object.keys). When some object in the
 *   content has two keys or more, `contentKeyOrder` (S) holds the key lists of every object, as
 *   JSON, in depth-first order; reads put the keys back in that order.
 * - A few JSON values have no lossless native form: numbers outside DynamoDB's range
 *   (|n| >= 1e126 or < 1e-130), strings or keys holding lone UTF-16 surrogates (DynamoDB stores
 *   UTF-8), empty map keys (refused by DynamoDB), a "__proto__" key (the SDK's response parser
 *   assigns keys with `acc[key] =`, so it would vanish on read), and nesting deeper than
 *   DynamoDB's 32 levels. Such content is stored as its JSON text in `content` (S) with the
 *   marker attribute `contentEncoding: "json"`.
 */
export const CONTENT_ENCODING_ATTRIBUTE = "contentEncoding";
export const CONTENT_KEY_ORDER_ATTRIBUTE = "contentKeyOrder";
export const JSON_ENCODING = "json";

/** Containers deeper than this fall back to JSON text (DynamoDB allows 32 levels, the item counts as one). */
const NATIVE_MAX_DEPTH = 30;
const LONE_SURROGATE = /\p{Cs}/u;

export interface EncodedContent {
  content: AttributeValue;
  /** Present when the content is stored as JSON text. */
  encoding?: typeof JSON_ENCODING;
  /** Present when an object of the content has several keys: their order, as JSON. */
  keyOrder?: string;
}

export function encodeContent(value: unknown): EncodedContent {
  const orders: string[][] = [];
  const native = toNative(value, 0, orders);
  if (!native) return { content: { S: JSON.stringify(value) }, encoding: JSON_ENCODING };
  return orders.some((keys) => keys.length > 1) ? { content: native, keyOrder: JSON.stringify(orders) } : { content: native };
}

/** Converts to a native attribute value, recording each object's keys (depth-first, pre-order); undefined when not lossless. */
function toNative(value: unknown, depth: number, orders: string[][]): AttributeValue | undefined {
  switch (typeof value) {
    case "string":
      return LONE_SURROGATE.test(value) ? undefined : { S: value };
    case "number":
      return numberInRange(value) ? { N: String(value) } : undefined;
    case "boolean":
      return { BOOL: value };
    case "object": {
      if (value === null) return { NULL: true };
      if (depth >= NATIVE_MAX_DEPTH) return undefined;
      if (Array.isArray(value)) {
        const list: AttributeValue[] = [];
        for (const item of value) {
          const inner = toNative(item, depth + 1, orders);
          if (!inner) return undefined;
          list.push(inner);
        }
        return { L: list };
      }
      const keys = Object.keys(value);
      orders.push(keys);
      const map: Record<string, AttributeValue> = {};
      for (const key of keys) {
        if (key === "" || key === "__proto__" || LONE_SURROGATE.test(key)) return undefined;
        const inner = toNative((value as Record<string, unknown>)[key], depth + 1, orders);
        if (!inner) return undefined;
        map[key] = inner;
      }
      return { M: map };
    }
    default:
      return undefined; // undefined, functions, bigint: not JSON (rejected before they get here)
  }
}

function numberInRange(n: number): boolean {
  if (!Number.isFinite(n)) return false;
  const abs = Math.abs(n);
  return abs === 0 || (abs >= 1e-130 && abs < 1e126);
}

/** Reads `content` back from a stored item (native or JSON-encoded), with its objects' key order. */
export function decodeContent(item: Record<string, AttributeValue>): unknown {
  const content = item.content;
  if (content === undefined) return null;
  if (item[CONTENT_ENCODING_ATTRIBUTE]?.S === JSON_ENCODING && content.S !== undefined) {
    return JSON.parse(content.S) as unknown;
  }
  const value = fromNative(content);
  const order = item[CONTENT_KEY_ORDER_ATTRIBUTE]?.S;
  return order === undefined ? value : reorder(value, parseOrders(order));
}

function parseOrders(text: string): string[][] | undefined {
  try {
    const parsed = JSON.parse(text) as unknown;
    return Array.isArray(parsed) && parsed.every((keys) => Array.isArray(keys)) ? (parsed as string[][]) : undefined;
  } catch {
    return undefined; // written by someone else: the content is still right, in the store's key order
  }
}

/** Puts each object's keys back in the recorded order; an object whose keys differ (edited by hand) is left as read. */
function reorder(value: unknown, orders: string[][] | undefined): unknown {
  if (!orders) return value;
  let next = 0;
  const walk = (v: unknown): unknown => {
    if (v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return v.map(walk);
    const record = v as Record<string, unknown>;
    const keys = orders[next++];
    const own = Object.keys(record);
    const order = keys && keys.length === own.length && keys.every((k) => Object.hasOwn(record, k)) ? keys : own;
    return Object.fromEntries(order.map((k) => [k, walk(record[k])]));
  };
  return walk(value);
}

/** Converts any attribute value to JSON; sets and binaries (never written by us) map to arrays and base64. */
export function fromNative(value: AttributeValue): unknown {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  if (value.L !== undefined) return value.L.map(fromNative);
  if (value.M !== undefined) return Object.fromEntries(Object.entries(value.M).map(([k, v]) => [k, fromNative(v)]));
  if (value.SS !== undefined) return [...value.SS];
  if (value.NS !== undefined) return value.NS.map(Number);
  if (value.B !== undefined) return Buffer.from(value.B).toString("base64");
  if (value.BS !== undefined) return value.BS.map((b) => Buffer.from(b).toString("base64"));
  return null;
}
